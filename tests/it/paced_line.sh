#!/bin/bash
# The paced line (tests/tools/paced-line.c) that the benchmarks put in
# front of the real Zephyr peer, measured by line-meter over five seconds
# of bytes both ways at once (a fit of bytes over arrival time): every byte
# arrives, never faster than baud/10 bytes per second (within 0.5 %), near
# that rate (within 10 %: a busy machine only slows it, and the benchmark
# reports the figure it measured), and a burst after a quiet second takes
# the line's time, not arriving early on credit saved while idle.
. "$(dirname "$0")/../lib.sh"

PL=$BIN/paced-line
LM=$BIN/line-meter

# measure BAUD: the meter's result line in $T/m-BAUD.out.
measure() {
	local baud=$1 pty
	bg "$LM" --link "$T/line-$baud" --bytes $((baud / 2)) --burst $((baud / 50)) \
		--limit 60 >"$T/m-$baud.out" 2>"$T/m-$baud.err"
	local meter=$!
	wait_for_line "$T/m-$baud.out" '^PTY ' 10 || return 1
	pty=$(sed -n 's/^PTY //p' "$T/m-$baud.out")
	bg "$PL" --board "$pty" --link "$T/line-$baud" --baud "$baud" \
		>"$T/p-$baud.out" 2>"$T/p-$baud.err"
	wait "$meter"
}

for baud in 115200 19200; do
	if ! measure "$baud"; then
		not_ok "line-meter ran at $baud baud" \
			"$(cat "$T/m-$baud.err" "$T/p-$baud.err" 2>/dev/null)"
		continue
	fi
	read -r _ down _ up _ bytes secs < <(grep '^down ' "$T/m-$baud.out")
	want=$((baud / 10))
	echo "# $baud baud: down $down B/s, up $up B/s (want $want);" \
		"burst of $bytes bytes in $secs s"
	for dir in board client; do
		[ "$dir" = board ] && r=$down || r=$up
		check "$baud baud towards the $dir: $r B/s, never above $want by 0.5 %" \
			awk -v r="$r" -v w="$want" 'BEGIN { exit !((r - w) / w < 0.005) }'
		check "$baud baud towards the $dir: $r B/s, within 10 % below $want" \
			awk -v r="$r" -v w="$want" 'BEGIN { exit !((r - w) / w > -0.1) }'
	done
	# The burst's last byte cannot arrive before bytes/rate after it was
	# written (less one chunk of a millisecond in flight when measured).
	check "$baud baud: no credit for a quiet line ($bytes bytes in $secs s)" \
		awk -v b="$bytes" -v s="$secs" -v w="$want" 'BEGIN { exit !(s >= (b / w) * 0.995 - 0.001) }'
done
done_testing
