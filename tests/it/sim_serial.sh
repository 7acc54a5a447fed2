#!/bin/bash
# The virtual board over its serial link: golden frames on the wire, the
# receive-buffer limit (buf_size - 4 on serial), Zephyr's UART line
# buffers beneath it, USB re-enumeration on reset, pacing at --baud
# (bytes per second, generous bounds), console noise mixed into the
# output, and corrupted lines both ways.
. "$(dirname "$0")/../lib.sh"
. "$SRC/tests/sim/it-lib.sh"

start_sim s serial --serial "$T/tty" || {
	not_ok "simulator starts" "no READY line"
	exit 1
}
check "READY names the link" grep -qx "READY serial $T/tty" "$T/s.out"
check "the link is a symlink to a pty" bash -c '[[ $(readlink "$0") == /dev/pts/* ]]' "$T/tty"

# Golden frames: an echo "hi" request typed by hand, the reply as bytes
# (length, packet, CRC-16/XMODEM, base64, 06 09 marker, newline).
exec 3<>"$T/tty"
stty -F "$T/tty" raw -echo
xxd -r -p <<<0609414241434141414741414141414b46685a474a6f61516b580a >&3
got=$(timeout 3 head -c 31 <&3 | xxd -p | tr -d '\n')
check "echo over serial: golden reply frame" \
	[ "$got" = 0609414245444141414841414141414c3968636d4a6f61662f3566413d3d0a ]
exec 3>&-

out=$(cl echo hello)
check "sim-client echo over serial" [ "$(rfield .r <<<"$out")" = hello ]
# On serial the buffer also holds length and CRC: 380 bytes pass, 381 not.
out=$(cl raw "$(echo_pkt 366)")
check "a packet of buf_size - 4 bytes is answered" grep -q '^hdr ' <<<"$out"
out=$(cl --timeout-ms 700 raw "$(echo_pkt 367)")
check "a packet of buf_size - 3 bytes gets no reply" [ "$out" = timeout ]
check "... counted as dropped" [ "$(st .counters.dropped)" = 1 ]
stop_sim
check "the link is removed at exit" [ ! -e "$T/tty" ]

# Re-enumeration: a reset closes the pty and makes a new one at the path.
start_sim r serial --serial "$T/acm" --reenumerate --reboot-ms 800 || exit 1
exec 4<>"$T/acm"
before=$(readlink "$T/acm")
cl reset >/dev/null
wait_status '.state == "down"' 5
check "while resetting the device is gone" [ ! -e "$T/acm" ]
wait_status '.state == "up"' 10
check "after the reboot the device is back" [ -L "$T/acm" ]
check "... as a new terminal ($before -> $(readlink "$T/acm"))" \
	[ "$(readlink "$T/acm")" != "$before" ]
check_fails "writing to the old terminal fails (hang-up)" bash -c 'echo x >&4' 2>/dev/null
exec 4>&-
out=$(cl echo again)
check "the new terminal answers" [ "$(rfield .r <<<"$out")" = again ]
stop_sim

# Without --reenumerate the same terminal stays.
start_sim n serial --serial "$T/uart" --reboot-ms 300 || exit 1
before=$(readlink "$T/uart")
cl reset >/dev/null
wait_status '.state == "up" and .counters.resets == 1' 10
check "a plain UART keeps its terminal across a reset" [ "$(readlink "$T/uart")" = "$before" ]
stop_sim

# Pacing: echo ping-pong at 19200 baud moves 1920 bytes/s on the line.
text=$(head -c 200 /dev/zero | tr '\0' 'p')
start_sim p serial --serial "$T/slow" --baud 19200 || exit 1
out=$(cl --timeout-ms 5000 rate 8 "$text")
bps=$(sed -n 's/^rate .* bps=\([0-9]*\)$/\1/p' <<<"$out")
echo "# 19200 baud: $out"
check "--baud 19200 paces the line near 1920 bytes/s (got ${bps:-none})" \
	[ "${bps:-0}" -ge 900 -a "${bps:-99999}" -le 2300 ]
stop_sim
start_sim f serial --serial "$T/fast" || exit 1
out=$(cl --timeout-ms 5000 rate 8 "$text")
fast=$(sed -n 's/^rate .* bps=\([0-9]*\)$/\1/p' <<<"$out")
# Above what 19200 baud can carry at all, not a multiple of the paced
# figure: it is about 2 MB/s here, and one scheduling stall of a loaded
# CI machine (0.4 s once) takes the eight exchanges down to a few kB/s.
check "unpaced, the same exchange beats the 19200 baud line ($fast bytes/s)" \
	[ "${fast:-0}" -gt 2300 ]
stop_sim

# Console noise: log lines between frames; SMP still works.
start_sim c serial --serial "$T/noisy" --console-noise || exit 1
check "console lines appear on the line" bash -c \
	'timeout 2 cat "$0" | grep -aq "<inf> smp_sample"' "$T/noisy"
out=$(cl echo "through the noise")
check "SMP works with console noise" [ "$(rfield .r <<<"$out")" = "through the noise" ]
stop_sim

# Corrupted lines fail their CRC, both ways.
start_sim x serial --serial "$T/bad" --corrupt-rate 1 || exit 1
out=$(cl --timeout-ms 700 echo x)
check "--corrupt-rate 1: no reply" [ "$out" = timeout ]
check "... and every request too: the board never saw one" \
	[ "$(st .counters.requests)" = 0 ]
stop_sim

# Half the lines corrupted (seeded): some requests lost, some replies lost.
start_sim y serial --serial "$T/half" --corrupt-rate 0.5 --seed 3 || exit 1
got=0
for i in $(seq 1 16); do
	out=$(cl --seq "$i" --timeout-ms 300 echo "n$i")
	[ "$(rfield .r <<<"$out" 2>/dev/null)" = "n$i" ] && got=$((got + 1))
done
seen=$(st .counters.requests)
check "--corrupt-rate 0.5: some requests lost ($seen of 16 seen)" [ "$seen" -lt 16 ]
check "... and some replies lost ($got of $seen received)" \
	[ "$got" -gt 0 -a "$got" -lt "$seen" ]
stop_sim


# Zephyr's UART line buffers (--line-bufs 2, --line-buf-size 128 by
# default).  Two echo requests of three lines each, back to back at 115200
# baud (11 ms a line), to a board that spends 100 ms on each request: the
# second one's first two lines wait in the two buffers, its third finds
# none and is dropped whole, so only the first request is answered.
text=$(head -c 256 /dev/zero | tr '\0' 'x')
start_sim lb serial --serial "$T/lb" --baud 115200 --proc-us 100000 || exit 1
out=$(cl --timeout-ms 1500 burst 2 "$text")
check "two lines of buffer: the second 3-line request is lost" \
	grep -qx 'replies 1' <<<"$out"
check "... its dropped line is counted" [ "$(st .counters.lines_dropped)" -ge 1 ]
out=$(cl --timeout-ms 1500 burst 1 "$text")
check "... and a request on its own is answered again" grep -qx 'replies 1' <<<"$out"
stop_sim
# The same with more line buffers, or none counted (a lossless pipeline).
start_sim lb4 serial --serial "$T/lb4" --baud 115200 --proc-us 100000 \
	--line-bufs 4 || exit 1
out=$(cl --timeout-ms 1500 burst 2 "$text")
check "four line buffers hold the second request" grep -qx 'replies 2' <<<"$out"
stop_sim
start_sim lb0 serial --serial "$T/lb0" --baud 115200 --proc-us 100000 \
	--line-bufs 0 || exit 1
out=$(cl --timeout-ms 1500 burst 3 "$text")
check "--line-bufs 0: no line limit" grep -qx 'replies 3' <<<"$out"
check "... nothing dropped" [ "$(st .counters.lines_dropped)" = 0 ]
stop_sim
# A board that does not spend time on requests frees its lines at once:
# an unpaced burst of long requests that fits its SMP buffers is all
# answered.
start_sim lbf serial --serial "$T/lbf" || exit 1
out=$(cl --timeout-ms 1500 burst 4 "$text")
check "a board with time to spare keeps up with a burst (4 requests, buf_count 4)" grep -qx "replies 4" <<<"$out"
stop_sim
# A line longer than its buffer is dropped whole (Zephyr's driver).
start_sim ls serial --serial "$T/ls" --line-buf-size 64 || exit 1
out=$(cl --timeout-ms 700 echo "$text")
check "a 127-byte line into 64-byte buffers gets no reply" [ "$out" = timeout ]
out=$(cl echo hi)
check "... a short one does" [ "$(rfield .r <<<"$out")" = hi ]
stop_sim
done_testing
