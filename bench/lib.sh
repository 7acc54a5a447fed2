# Shared by the bench scripts (sourced): the workspace, messages, the
# statistics every figure goes through, and the note of where and when a
# part was measured.  Needs OUT, MACHINE, LOAD, COMMIT and REPS.

say() { echo "$*" >&2; }

# bench_workspace NAME: a scratch directory W, and PIDS where every
# process started writes its pid; at exit those are ended (TERM, then
# KILL) and W removed.
bench_workspace() {
	W=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
	PIDS=$W/pids
	: >"$PIDS"
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
}
bench_cleanup() {
	local p
	while read -r p; do kill "$p" 2>/dev/null; done <"$PIDS"
	sleep 0.2
	while read -r p; do kill -9 "$p" 2>/dev/null; done <"$PIDS"
	wait 2>/dev/null
	rm -rf "$W"
}

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
