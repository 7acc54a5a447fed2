# Sourced by bench/fleet.sh: turns $OUT/data/fleet*.tsv into $OUT/fleet.md
# (the fleet section of results.md, which bench/report.sh includes) and
# $OUT/fleet.png.  Needs OUT, and stats/say from bench/lib.sh.
FD=$OUT/data
F=$FD/fleet.tsv
FI=$FD/fleet-idle.tsv

# fmed COLUMN FILTER: the median of a column of fleet.tsv.
fmed() { stats "$1" "$F" "$2" | cut -d' ' -f1; }
# frange COLUMN FILTER: "median (min-max)".
frange() {
	stats "$1" "$F" "$2" | awk '{ printf "%s (%s-%s)", $1, $2, $3 }'
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
verdict() { awk "BEGIN { print ($1) ? \"met\" : \"MISSED\" }"; }

fleet_row() {
	local who=$1 n=$2 lim=$3 f wall ok fds
	f="\$1 == \"$who\" && \$2 == $n && \$4 == $lim"
	[ "$(stats 5 "$F" "$f" | cut -d' ' -f4)" -gt 0 ] || return 0
	wall=$(fmed 5 "$f")
	ok=$(fmed 8 "$f")
	fds=$(fmed 9 "$f")
	printf '| %s | %d | %s | %s | %.1f | %s of %d | %s (%.2f) | %s | %s | %s (%s) | %s |\n' \
		"$who" "$n" "$lim" "$(frange 5 "$f")" \
		"$(awk -v w="$wall" -v n="$n" 'BEGIN { print 1000 * w / n }')" \
		"$ok" "$n" "$fds" "$(awk -v a="$fds" -v n="$n" 'BEGIN { print a / n }')" \
		"$(mib "$(fmed 10 "$f")")" "$(mib "$(fmed 11 "$f")")" \
		"$(mib "$(fmed 12 "$f")")" "$(fmed 14 "$f")" \
		"$(mib "$(fmed 13 "$f")")"
}

fleet_report() {
	local when machine load commit reps base hard sizes n big small lim
	[ -s "$F" ] || return 0
	IFS=$'\t' read -r when machine load commit reps base hard \
		<"$FD/meta-fleet.tsv"
	sizes=$(awk '$1 == "current" { print $2 }' "$F" | sort -nu)
	big=$(tail -n 1 <<<"$sizes")
	small=$(head -n 1 <<<"$sizes")
	cat <<EOF
## 3. Fleet: a thousand boards on one proxy (simulator)

One supervisor updates N virtual UDP boards (\`mcumgr-board-sim\`, no
added latency), each taking a 64 KiB image, with \`--once\`: the
descriptors, memory and time a fleet costs.  "current" runs under a soft
open-file limit of 1024, as systemd starts a service (the client raises
it to the hard limit, $hard here); "baseline" is the client before
issue 17 (commit $base, built by the bench from git), run with its limit
raised by hand as it needs, and once under 1024.  Supervisor RSS is its
peak (VmHWM); PSS, the proportional share of memory that the processes
really cost together, is the largest sampled every 500 ms, for the
supervisor and summed over its workers; descriptors are the supervisor's
at the peak, sampled every 100 ms.  The simulators and the test server
share the machine's CPUs with the client.

Measured $when on $machine (load average $load at the start), commit
$commit; every figure is the median of $reps runs (wall time with min and
max).

| client | boards | soft limit | wall s | ms per board | updated | descriptors at the peak (per board) | supervisor RSS MiB | supervisor PSS MiB | workers' PSS MiB (workers) | total PSS MiB |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
EOF
	for n in $sizes; do fleet_row current "$n" 1024; done
	for n in $sizes; do fleet_row baseline "$n" "$hard"; done
	fleet_row baseline "$big" 1024
	echo
	echo '![Memory against board count](fleet.png)'
	echo
	local fc="\$1 == \"current\" && \$2 == $big && \$4 == 1024"
	local fb="\$1 == \"baseline\" && \$2 == $big && \$4 == $hard"
	local fs="\$1 == \"current\" && \$2 == $small && \$4 == 1024"
	local ok fds tpss hwm wall bwall pb ps
	ok=$(fmed 8 "$fc")
	fds=$(fmed 9 "$fc")
	tpss=$(fmed 13 "$fc")
	hwm=$(fmed 10 "$fc")
	wall=$(fmed 5 "$fc")
	pb=$(awk -v w="$wall" -v n="$big" 'BEGIN { print w / n }')
	ps=$(awk -v w="$(fmed 5 "$fs")" -v n="$small" 'BEGIN { print w / n }')
	echo "Targets at $big boards (issue 17):"
	echo
	echo "| target | measured | |"
	echo "|---|---:|---|"
	printf '| every board updated under a soft limit of 1024 | %s of %s | %s |\n' \
		"$ok" "$big" "$(verdict "$ok == $big")"
	printf '| supervisor descriptors at the peak at most 1.2 per board | %.2f | %s |\n' \
		"$(awk -v a="$fds" -v n="$big" 'BEGIN { print a / n }')" \
		"$(verdict "$fds <= 1.2 * $big")"
	printf '| supervisor plus workers at most 128 MiB PSS | %s MiB | %s |\n' \
		"$(mib "$tpss")" "$(verdict "$tpss <= 128 * 1024")"
	printf '| supervisor RSS at most 32 MiB | %s MiB | %s |\n' \
		"$(mib "$hwm")" "$(verdict "$hwm <= 32 * 1024")"
	if grep -q "^baseline $big " "$F"; then
		bwall=$(fmed 5 "$fb")
		printf '| wall time no more than the baseline'"'"'s (%s s) | %s s | %s |\n' \
			"$bwall" "$wall" "$(verdict "$wall <= $bwall")"
	fi
	printf '| linear in the board count: time per board at %s no more than 1.25 times that at %s (%.1f ms) | %.1f ms | %s |\n' \
		"$big" "$small" "$(awk -v p="$ps" 'BEGIN { print 1000 * p }')" \
		"$(awk -v p="$pb" 'BEGIN { print 1000 * p }')" \
		"$(verdict "$pb <= 1.25 * $ps")"
	if [ -s "$FI" ]; then
		while read -r who n secs ticks checks hz; do
			printf '| idle (%s), %s boards polling every 10 s: supervisor under 1%% of one CPU | %.2f%% (%s checks in %s s) | %s |\n' \
				"$who" "$n" \
				"$(awk -v t="$ticks" -v h="$hz" -v s="$secs" 'BEGIN { print 100 * t / h / s }')" \
				"$checks" "$secs" \
				"$( [ "$who" = current ] && verdict "100 * $ticks / $hz / $secs < 1" || echo "(today)")"
		done <"$FI"
	fi
	echo
}

fleet_plot() {
	[ -s "$F" ] || return 0
	local w
	w=$(mktemp -d "${TMPDIR:-/tmp}/rdfm-fleet-plot.XXXXXX")
	# boards, then MiB: supervisor RSS, supervisor PSS, workers PSS,
	# total PSS, for one client at its usual limit.
	for who in current baseline; do
		for n in $(awk -v c="$who" '$1 == c { print $2 }' "$F" | sort -nu); do
			lim=1024
			[ "$who" = baseline ] && lim=$(awk -F'\t' '{ print $7 }' "$FD/meta-fleet.tsv")
			f="\$1 == \"$who\" && \$2 == $n && \$4 == $lim"
			[ "$(stats 5 "$F" "$f" | cut -d' ' -f4)" -gt 0 ] || continue
			echo "$n $(fmed 10 "$f") $(fmed 11 "$f") $(fmed 12 "$f") $(fmed 13 "$f")"
		done >"$w/$who.dat"
	done
	gnuplot <<EOF
set terminal pngcairo size 1100,520 font ",10"
set output "$OUT/fleet.png"
set termoption noenhanced
set title "Memory of one supervisor and its workers against the number of UDP boards"
set xlabel "boards"
set ylabel "MiB"
set grid
set key outside right top
set logscale y
set yrange [1:*]
plot "$w/current.dat" using 1:(\$5/1024) with linespoints lw 2 title "total PSS, current", \
     "$w/current.dat" using 1:(\$3/1024) with linespoints title "supervisor PSS, current", \
     "$w/current.dat" using 1:(\$4/1024) with linespoints title "workers' PSS, current", \
     "$w/current.dat" using 1:(\$2/1024) with linespoints dt 2 title "supervisor RSS, current", \
     "$w/baseline.dat" using 1:(\$5/1024) with linespoints lw 2 title "total PSS, baseline", \
     "$w/baseline.dat" using 1:(\$2/1024) with linespoints dt 2 title "supervisor RSS, baseline", \
     128 with lines lc rgb "red" dt 3 title "target: total PSS 128 MiB", \
     32 with lines lc rgb "orange" dt 3 title "target: supervisor RSS 32 MiB"
EOF
	rm -rf "$w"
}

fleet_report >"$OUT/fleet.md"
fleet_plot
cat "$OUT/fleet.md" >&2
