# Sourced by bench/run.sh: turns $OUT/data/*.tsv into $OUT/results.md and
# the PNG plots, and prints the tables.  Parts without data are left out,
# so a partial run (BENCH_ONLY) keeps the figures of earlier ones.
D=$OUT/data
R=$OUT/results.md

# meta_line PART: the machine line of a part.
meta_line() {
	local f=$D/meta-$1.tsv
	[ -f "$f" ] || return 0
	awk -F'\t' '{ printf "Measured %s on %s (load average %s at the start), commit %s; every figure is the median of %s runs, with min and max.\n", $1, $2, $3, $4, $5 }' "$f"
}

# med FILE COLUMN FILTER: the median of a column (see stats in run.sh).
med() { stats "$2" "$1" "$3" | cut -d' ' -f1; }

report_serial() {
	[ -s "$D/serial-summary.tsv" ] || return 0
	cat <<'EOF'
## 1. Serial: upload speed against the link's ceiling

A 256 KiB image uploaded with `rdfm-mcumgr-client smp image upload`
through `mcumgr-board-sim --serial --baud N` (8N1: N/10 bytes/s each way)
with the board's `--buf-size` and `--buf-count`.  The ceiling
(`bench-ceiling`, bench/ceiling.c) is the image-data rate the framing
allows when the line never idles: every packet carries the largest chunk
that fits `buf_size - 4` (length and CRC share the buffer), measured with
the real SMP encoder, plus the 2-byte length, CRC-16, base64 and a 2-byte
marker and newline per line of at most 127 bytes.  Replies travel on the
other direction of the line and do not count.  Target: at least 0.95 of
the ceiling whenever the window is at least 2 (`buf_count` >= 3).  The
simulator's line runs on a clock: bytes are taken off the pseudo-terminal
in chunks of about a millisecond when its side of the line is free and
handed on when their last bit would have arrived, so a board answers as
late as a real UART lets it and idle time is never saved up.  A window of
1 (`buf_count` 2) is how the Go client uploads: each packet waits for the
reply to the one before.

EOF
	meta_line serial
	echo
	echo "| baud | buf_size | buf_count (window) | chunk | ceiling B/s | measured B/s: median (min-max) | ratio: median (min-max) | target |"
	echo "|---:|---:|---:|---:|---:|---:|---:|---|"
	while read -r baud bs bc win ceil m lo hi r rlo rhi; do
		chunk=$(awk -v b="$baud" -v s="$bs" -v c="$bc" \
			'$1 == b && $2 == s && $3 == c { print $8; exit }' \
			"$D/serial.tsv")
		if [ "$bc" -ge 3 ]; then
			tgt=$(awk -v r="$r" 'BEGIN { print (r >= 0.95 ? "met" : "MISSED") }')
		else
			tgt="(window 1: no target)"
		fi
		printf '| %s | %s | %s (%s) | %s | %.0f | %.0f (%.0f-%.0f) | %.3f (%.3f-%.3f) | %s |\n' \
			"$baud" "$bs" "$bc" "$win" "$chunk" "$ceil" "$m" "$lo" \
			"$hi" "$r" "$rlo" "$rhi" "$tgt"
	done <"$D/serial-summary.tsv"
	echo
	echo '![Serial upload speed as a fraction of the ceiling](serial.png)'
	echo
}

plot_serial() {
	[ -s "$D/serial-summary.tsv" ] || return 0
	# label, then median/min/max ratio at 115200 and at 921600.
	awk '{ k = $2 "/" $3; r[k, $1] = $9 " " $10 " " $11;
		if (!(k in seen)) { seen[k] = 1; order[++n] = k } }
		END { for (i = 1; i <= n; i++)
			print order[i], r[order[i], 115200], r[order[i], 921600] }' \
		"$D/serial-summary.tsv" >"$W/serial-plot.dat"
	gnuplot <<EOF
set terminal pngcairo size 900,480 font ",10"
set output "$OUT/serial.png"
set termoption noenhanced
set title "256 KiB over SMP serial: measured rate / link ceiling (dashed: target 0.95 for window >= 2)"
set xlabel "board buf_size / buf_count"
set ylabel "fraction of the ceiling"
set yrange [0.8:1.05]
set grid ytics
set key outside top center horizontal
set style data histograms
set style histogram errorbars gap 2 lw 1
set style fill solid 0.6 border -1
set arrow from graph 0, first 0.95 to graph 1, first 0.95 nohead dt 2 lc rgb "red"
plot "$W/serial-plot.dat" using 2:3:4:xtic(1) title "115200 baud", \
     "" using 5:6:7 title "921600 baud"
EOF
}

report_udp() {
	[ -s "$D/udp-summary.tsv" ] || return 0
	cat <<'EOF'
## 2. UDP: throughput against the window

A 1 MiB image over UDP to `mcumgr-board-sim --udp --latency-ms 20
--buf-size 1024 --buf-count N` (every reply 20 ms late, pipelined); the
client's window is `buf_count - 1`.  Target: a window of w gives at least
0.8 x w times the window-1 rate, until the CPU or the link limits it.

EOF
	meta_line udp
	echo
	echo "| buf_count | window | B/s: median (min-max) | x window-1 | target | |"
	echo "|---:|---:|---:|---:|---:|---|"
	while read -r bc w m lo hi sp tg; do
		ok=$(awk -v s="$sp" -v t="$tg" 'BEGIN { print (s >= t ? "met" : "MISSED") }')
		printf '| %s | %s | %.0f (%.0f-%.0f) | %.2f | >= %.1f | %s |\n' \
			"$bc" "$w" "$m" "$lo" "$hi" "$sp" "$tg" "$ok"
	done <"$D/udp-summary.tsv"
	echo
	echo '![UDP upload rate against the window](udp.png)'
	echo
}

plot_udp() {
	[ -s "$D/udp-summary.tsv" ] || return 0
	base=$(awk 'NR == 1 { print $3 }' "$D/udp-summary.tsv")
	gnuplot <<EOF
set terminal pngcairo size 720,480 font ",10"
set output "$OUT/udp.png"
set termoption noenhanced
set title "1 MiB over UDP, replies 20 ms late"
set xlabel "window (buf_count - 1)"
set ylabel "image KiB/s"
set xrange [0:9]
set yrange [0:*]
set grid
set key top left
b = $base / 1024.0
plot b * x title "w x window-1 rate" dt 2 lc rgb "gray", \
     0.8 * b * x title "target 0.8 w x window-1 rate" dt 3 lc rgb "red", \
     "$D/udp-summary.tsv" using 2:(\$3/1024):(\$4/1024):(\$5/1024) \
     with yerrorlines title "measured (median, min-max)" pt 7 lc rgb "blue"
EOF
}

report_where() {
	[ -s "$D/where.tsv" ] || return 0
	cat <<'EOF'
## 5. Where the time goes (serial, 115200 baud, buf_size 384)

One 256 KiB upload split into: time the requests occupy the line towards
the board (from the ceiling calculation: every byte the client sends),
time the replies occupy the line back (overlapped with requests once the
window is 2 or more), CPU time of our processes (the `smp` command and its
serial worker, user + system, from `/usr/bin/time`), and the line's idle
time (wall time minus request time: waiting for replies and for us).

EOF
	meta_line where
	echo
	echo "| buf_count (window) | wall s | requests on the line s (busy %) | replies on the line s | our CPU s | line idle s (per packet ms) |"
	echo "|---:|---:|---:|---:|---:|---:|"
	read -r _ _ _ _ _ _ pk _ _ wire_s _ rsp_s <"$D/where-ceiling.tsv"
	for bc in 2 4; do
		el=$(med "$D/where.tsv" 6 "\$3 == $bc")
		win=$(awk -v c="$bc" '$3 == c { print $7; exit }' "$D/where.tsv")
		cpu=$(awk -v c="$bc" '$3 == c { print $11 + $12 }' \
			"$D/where.tsv" | sort -g |
			awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
		awk -v c="$bc" -v w="$win" -v el="$el" -v ws="$wire_s" \
			-v rs="$rsp_s" -v cpu="$cpu" -v pk="$pk" 'BEGIN {
			e = el / 1000; idle = e - ws
			printf "| %s (%s) | %.2f | %.2f (%.1f%%) | %.2f | %.2f | %.2f (%.2f) |\n",
				c, w, e, ws, 100 * ws / e, rs, cpu, idle,
				1000 * idle / pk }'
	done
	echo
	el2=$(med "$D/where.tsv" 6 '$3 == 2')
	el4=$(med "$D/where.tsv" 6 '$3 == 4')
	awk -v e2="$el2" -v e4="$el4" -v ws="$wire_s" -v rs="$rsp_s" \
		-v pk="$pk" 'BEGIN {
		printf "With a window of 3 the line towards the board is busy %.1f%% of the time: the wire limits the upload, not the board and not our processes. ", 100 * ws / (e4 / 1000)
		printf "With a window of 1 (the Go client'"'"'s way: one packet, then wait for its reply) each packet waits for its reply to cross the line back, %.1f ms a packet (%.1f%% on top of the request time), plus the board'"'"'s turnaround: the line towards the board idles for that time, and the upload took %.1f%% longer than with a window of 3.\n",
			1000 * rs / pk, 100 * rs / ws,
			100 * (e2 - e4) / e4 }'
	echo
}

report_memory() {
	[ -s "$D/memory.tsv" ] || return 0
	cat <<'EOF'
## 4. Supervisor memory against artifact size

Peak resident set (VmHWM, sampled from /proc every 50 ms) of the
supervisor for a full single-board update (server, download, artifact,
upload over UDP, test, reset, confirm) with `--once`.  Target: the 64 MiB
update within 2 MiB of the 1 MiB one.

EOF
	meta_line memory
	echo
	echo "| artifact | supervisor peak RSS KiB: median (min-max) | worker peak RSS KiB | wall s |"
	echo "|---|---:|---:|---:|"
	for sz in 1 64; do
		read -r m lo hi _ < <(stats 3 "$D/memory.tsv" "\$1 == $sz")
		wk=$(med "$D/memory.tsv" 4 "\$1 == $sz")
		wall=$(med "$D/memory.tsv" 5 "\$1 == $sz")
		printf '| %s MiB image | %.0f (%.0f-%.0f) | %.0f | %.1f |\n' \
			"$sz" "$m" "$lo" "$hi" "$wk" "$wall"
	done
	echo
	m1=$(med "$D/memory.tsv" 3 '$1 == 1')
	m64=$(med "$D/memory.tsv" 3 '$1 == 64')
	awk -v a="$m1" -v b="$m64" 'BEGIN { d = b - a;
		printf "Difference: %.0f KiB (%.2f MiB): target %s.\n\n", d,
			d / 1024, (d <= 2048 ? "met" : "MISSED") }'
}

# The fleet's section is written by bench/fleet.sh (fleet-report.sh).
report_fleet() {
	[ -s "$OUT/fleet.md" ] && cat "$OUT/fleet.md"
	return 0
}

{
	cat <<EOF
# Benchmark results

Generated by \`make bench\` (bench/run.sh, then bench/report.sh) against
the virtual board \`mcumgr-board-sim\`.  Raw numbers are in bench/data/.
Reproduce with \`make bench\`; \`BENCH_ONLY="serial udp where memory fleet"\`
picks parts and \`BENCH_REPS\` the runs per figure.

EOF
	report_serial
	report_udp
	report_fleet
	report_memory
	report_where
} >"$R"
plot_serial
plot_udp
cat "$R"
