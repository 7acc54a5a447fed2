# Shared by bench/run.sh and bench/daemon.sh (sourced): messages, the
# statistics every figure goes through, and the note of where and when a
# part was measured.  Needs OUT, MACHINE, LOAD, COMMIT and REPS.

say() { echo "$*" >&2; }

# stats COLUMN FILE [AWK-FILTER]: "median min max n" of a column.
stats() {
	awk "${3:-1}"' { print $'"$1"' }' "$2" | sort -g |
		awk '{ v[NR] = $1 } END {
			if (NR == 0) { print "0 0 0 0"; exit }
			m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			print m, v[1], v[NR], NR }'
}

now() { date -u '+%Y-%m-%d %H:%M UTC'; }

# meta PART: when, where and from which commit PART's figures were taken.
meta() {
	printf '%s\t%s\t%s\t%s\t%s\n' "$(now)" "$MACHINE" "$LOAD" \
		"$COMMIT" "$REPS" >"$OUT/data/meta-$1.tsv"
}
