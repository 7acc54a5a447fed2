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
## 1. Serial: upload speed against the link's ceiling (simulator)

A 256 KiB image uploaded with `rdfm-mcumgr-client smp image upload`
through `mcumgr-board-sim --serial --baud N` (8N1: N/10 bytes/s each way)
with the board's `--buf-size` and `--buf-count`.  The ceiling
(`bench-ceiling`, bench/ceiling.c) is the image-data rate the framing
allows when the line never idles: every packet carries the largest chunk
that fits a packet limit, measured with the real SMP encoder, plus the
2-byte length, CRC-16, base64 and a 2-byte marker and newline per line of
at most 127 bytes; the limit is the one at or below `buf_size - 4` (length
and CRC share the buffer) that puts the most image through the line, as
the client picks it (a packet that spills a few bytes onto one more line
pays for all of that line).  Replies travel on the
other direction of the line and do not count.  Target: at least 0.95 of
the ceiling whenever the window is at least 2 (`buf_count` >= 3).  The
simulator's line runs on a clock: bytes are taken off the pseudo-terminal
in chunks of about a millisecond when its side of the line is free and
handed on when their last bit would have arrived, so a board answers as
late as a real UART lets it and idle time is never saved up.  The board
keeps Zephyr's two 128-byte UART line buffers (`--line-bufs 2`), which a
board that answers at once never fills.  The window is the client's
default: it starts at `buf_count - 1` and learns (section 7).  A window of
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
set yrange [0:1.1]
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
## 2. UDP: throughput against the window (simulator)

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
## 5. Where the time goes (serial, 115200 baud, buf_size 384; simulator)

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
## 4. Supervisor memory against artifact size (simulator boards)

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


report_peer() {
	[ -s "$D/peer.tsv" ] || return 0
	cat <<'TXT'
## 6. The real Zephyr board (../shared/zephyr-peer)

Zephyr's own `smp_svr` (Zephyr 3.2.99 on native_posix_64, MCUmgr's UART
transport, its default buffers: `buf_size` 384, `buf_count` 4, two UART
line buffers of 128 bytes), each run on a fresh flash file whose slot 0
holds the running image; a 256 KiB image uploaded with `smp image
upload`.  "paced": behind `paced-line` (tests/tools/paced-line.c) at
115200 baud, 11520 bytes/s each way with no credit for idle time (its test
checks it is never faster; the rate it carried in this run is below).
"unpaced": straight on the peer's
pseudo-terminal, where the peer's own UART polling (at most 32 bytes a
millisecond towards the board) and its processing are the limit, so it is
compared with window 1 rather than with a ceiling.  "learning" is the
client's default window (it starts at `buf_count - 1`, shrinks at any
loss, grows back while clean); "window 1" is `--window 1`, stop-and-wait
as the Go client uploads.  The ceiling is `bench-ceiling --baud 115200
--buf-size 384` (section 1).  Target: the default at least 0.98 x window
1.

TXT
	meta_line peer
	if [ -s "$D/paced-line.tsv" ]; then
		awk -F'\t' '{ printf "The paced line, measured by line-meter: %.1f bytes/s towards the board, %.1f back (%.2f %% and %.2f %% of %d).\n", $2, $3, 100 * $2 / ($1 / 10), 100 * $3 / ($1 / 10), $1 / 10 }' "$D/paced-line.tsv"
	fi
	echo
	local ceil line mode m lo hi w1 win chunk rew tgt fr f
	ceil=$(cut -f9 "$D/peer-ceiling.tsv")
	echo "| line | window | B/s: median (min-max) | of the ceiling ($ceil B/s) | x window 1 | settled window | chunk | rewinds | target |"
	echo "|---|---|---:|---:|---:|---:|---:|---:|---|"
	for line in paced unpaced; do
		w1=$(med "$D/peer.tsv" 4 "\$1 == \"$line\" && \$2 == \"w1\"")
		for mode in adaptive w1; do
			f="\$1 == \"$line\" && \$2 == \"$mode\""
			read -r m lo hi _ < <(stats 4 "$D/peer.tsv" "$f")
			win=$(med "$D/peer.tsv" 6 "$f")
			chunk=$(med "$D/peer.tsv" 7 "$f")
			rew=$(med "$D/peer.tsv" 12 "$f")
			if [ "$line" = paced ]; then
				fr=$(awk -v m="$m" -v c="$ceil" 'BEGIN { printf "%.3f", m / c }')
			else
				fr="-"
			fi
			tgt=
			if [ "$mode" = adaptive ]; then
				tgt=$(awk -v m="$m" -v w="$w1" 'BEGIN { print (m >= 0.98 * w ? "met" : "MISSED") }')
			fi
			printf '| %s | %s | %.0f (%.0f-%.0f) | %s | %.3f | %s | %s | %s | %s |\n' \
				"$line" "$([ "$mode" = w1 ] && echo "window 1" || echo learning)" \
				"$m" "$lo" "$hi" "$fr" \
				"$(awk -v m="$m" -v w="$w1" 'BEGIN { print (w > 0 ? m / w : 0) }')" \
				"$win" "$chunk" "$rew" "$tgt"
		done
	done
	echo
	if [ -s "$D/peer-before.tsv" ]; then
		echo "The client before the learning window (commit $(cut -f1 "$D/peer-before.tsv" | head -n 1), packets of 380 bytes, window fixed at \`buf_count - 1\` = 3), measured once each the same way:"
		echo
		echo "| line | window | B/s | of the ceiling | note |"
		echo "|---|---|---:|---:|---|"
		while IFS=$'\t' read -r _ line win bps note; do
			printf '| %s | %s | %s | %s | %s |\n' "$line" "$win" "$bps" \
				"$([ "$line" = paced ] && awk -v m="$bps" -v c="$ceil" 'BEGIN { printf "%.3f", m / c }' || echo -)" \
				"$note"
		done <"$D/peer-before.tsv"
		echo
	fi
}

report_adaptive() {
	[ -s "$D/adaptive.tsv" ] || return 0
	cat <<'TXT'
## 7. The learning window on simulated boards

The same 256 KiB image to `mcumgr-board-sim` (`buf_size` 384 and
`buf_count` 4 unless said; Zephyr's two 128-byte UART line buffers on
serial), with the client's learning window and with `--window 1` on the
same board.  serial-115200 and serial-921600: a board that answers at
once, whose line buffers never fill; serial-115200-slow: a board that
spends 40 ms on every request (`--proc-us 40000`), so the lines of a
second packet in flight overflow its two line buffers; udp-20ms: replies
20 ms late, `buf_size` 1024; udp-drop-5%: 5 % of the requests lost at
random (`--drop-rate 0.05`).  Targets: where the board takes a pipeline,
at least 0.98 of the ceiling (serial) or 0.8 x w times window 1 (UDP,
w = 3); where it does not, never slower than window 1 (0.98 x window 1
for the slow board, at least window 1 for random loss).

TXT
	meta_line adaptive
	echo
	echo "| board | window 1 B/s | learning B/s: median (min-max) | x window 1 | of the ceiling | settled window | rewinds | resent | target |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
	local cfg m lo hi w1 ceil fr x win rew rtx tgt f
	for cfg in serial-115200 serial-921600 serial-115200-slow udp-20ms udp-drop-5%; do
		grep -q "^$cfg " "$D/adaptive.tsv" || continue
		w1=$(med "$D/adaptive.tsv" 4 "\$1 == \"$cfg\" && \$2 == \"w1\"")
		f="\$1 == \"$cfg\" && \$2 == \"adaptive\""
		read -r m lo hi _ < <(stats 4 "$D/adaptive.tsv" "$f")
		win=$(med "$D/adaptive.tsv" 6 "$f")
		rew=$(med "$D/adaptive.tsv" 12 "$f")
		rtx=$(med "$D/adaptive.tsv" 8 "$f")
		x=$(awk -v m="$m" -v w="$w1" 'BEGIN { printf "%.3f", (w > 0 ? m / w : 0) }')
		ceil=
		case $cfg in
		serial-115200) ceil=$(awk '$1 == 115200 { print $9 }' "$D/adaptive-ceiling.tsv") ;;
		serial-921600) ceil=$(awk '$1 == 921600 { print $9 }' "$D/adaptive-ceiling.tsv") ;;
		esac
		fr=-
		[ -n "$ceil" ] && fr=$(awk -v m="$m" -v c="$ceil" 'BEGIN { printf "%.3f", m / c }')
		case $cfg in
		serial-115200 | serial-921600)
			tgt=$(awk -v f="$fr" 'BEGIN { print (f >= 0.98 ? "met" : "MISSED") }')
			tgt="$tgt (>= 0.98 of the ceiling)" ;;
		serial-115200-slow)
			tgt=$(awk -v x="$x" 'BEGIN { print (x >= 0.98 ? "met" : "MISSED") }')
			tgt="$tgt (>= 0.98 x window 1)" ;;
		udp-20ms)
			tgt=$(awk -v x="$x" 'BEGIN { print (x >= 2.4 ? "met" : "MISSED") }')
			tgt="$tgt (>= 2.4 x window 1)" ;;
		*)
			tgt=$(awk -v x="$x" 'BEGIN { print (x >= 1.0 ? "met" : "MISSED") }')
			tgt="$tgt (>= window 1)" ;;
		esac
		printf '| %s | %.0f | %.0f (%.0f-%.0f) | %s | %s | %s | %s | %s | %s |\n' \
			"$cfg" "$w1" "$m" "$lo" "$hi" "$x" "$fr" "$win" "$rew" \
			"$rtx" "$tgt"
	done
	echo
	echo '![Seconds to upload a 256 KiB image: learning window against window 1, simulator and real board](update.png)'
	echo
}

# update.png: seconds to upload 256 KiB per board, learning window against
# window 1, simulator and real board.
plot_update() {
	local cfg f a w
	: >"$W/update-plot.dat"
	for cfg in serial-115200 serial-921600 serial-115200-slow udp-20ms udp-drop-5%; do
		[ -s "$D/adaptive.tsv" ] && grep -q "^$cfg " "$D/adaptive.tsv" || continue
		a=$(med "$D/adaptive.tsv" 5 "\$1 == \"$cfg\" && \$2 == \"adaptive\"")
		w=$(med "$D/adaptive.tsv" 5 "\$1 == \"$cfg\" && \$2 == \"w1\"")
		echo "sim:$cfg $a $w" >>"$W/update-plot.dat"
	done
	for cfg in paced unpaced; do
		[ -s "$D/peer.tsv" ] && grep -q "^$cfg " "$D/peer.tsv" || continue
		a=$(med "$D/peer.tsv" 5 "\$1 == \"$cfg\" && \$2 == \"adaptive\"")
		w=$(med "$D/peer.tsv" 5 "\$1 == \"$cfg\" && \$2 == \"w1\"")
		f=zephyr:115200
		[ "$cfg" = unpaced ] && f=zephyr:unpaced
		echo "$f $a $w" >>"$W/update-plot.dat"
	done
	[ -s "$W/update-plot.dat" ] || return 0
	gnuplot <<GP
set terminal pngcairo size 960,500 font ",10"
set output "$OUT/update.png"
set termoption noenhanced
set title "Seconds to upload a 256 KiB image (median): the learning window against window 1 (stop-and-wait)"
set ylabel "seconds"
set yrange [0:*]
set grid ytics
set key inside top right vertical
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.7 border -1
set xtics rotate by -20
set boxwidth 0.9
plot "$W/update-plot.dat" using (\$2/1000):xtic(1) title "learning window (default)" lc rgb "#1f77b4", \
     "" using (\$3/1000) title "window 1" lc rgb "#ff7f0e", \
     "" using (\$0 - 0.17):(\$2/1000):(sprintf("%.1f", \$2/1000)) with labels offset 0,0.7 notitle, \
     "" using (\$0 + 0.17):(\$3/1000):(sprintf("%.1f", \$3/1000)) with labels offset 0,0.7 notitle
GP
}

{
	cat <<EOF
# Benchmark results

Generated by \`make bench\` (bench/run.sh, then bench/report.sh).  Each
section names the board its figures come from: the virtual board
\`mcumgr-board-sim\` (sections 1 to 5 and 7) or the real Zephyr
\`smp_svr\` of ../shared/zephyr-peer (section 6).  Raw numbers are in
bench/data/.  Reproduce with \`make bench\`; \`BENCH_ONLY="serial udp
where adaptive peer memory fleet"\` picks parts and \`BENCH_REPS\` the
runs per figure.

EOF
	report_serial
	report_udp
	report_fleet
	report_memory
	report_where
	report_peer
	report_adaptive
	# The management channel's section (bench/mgmt.sh writes it).
	if [ -f "$OUT/data/mgmt.md" ]; then
		echo
		echo "<!-- mgmt begin -->"
		cat "$OUT/data/mgmt.md"
		echo "<!-- mgmt end -->"
	fi
} >"$R"
plot_serial
plot_udp
plot_update
cat "$R"
