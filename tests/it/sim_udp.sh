#!/bin/bash
# The virtual board's SMP server over UDP: golden reply bytes (indefinite
# and definite maps, v1/v2, --zephyr-3), parameters, the empty board, and
# the receive-buffer rules (oversize packets and requests beyond buf_count
# are dropped without a reply), --latency-ms pipelining, several boards in
# one process.
. "$(dirname "$0")/../lib.sh"
. "$SRC/tests/sim/it-lib.sh"

start_sim u udp --udp 127.0.0.1:0 || {
	not_ok "simulator starts" "no READY line"
	exit 1
}
check "READY names a loopback port" grep -Eq '^READY udp 127\.0\.0\.1:[0-9]+$' "$T/u.out"
check "status file exists at READY" [ "$(st .state)" = up ]

out=$(cl echo hi)
check "echo v1: golden indefinite-map reply" \
	[ "$(rhex <<<"$out")" = 0300000700000000bf6172626869ff ]
out=$(cl --v2 --seq 7 echo hi)
check "echo v2: v2 header, same sequence number" \
	[ "$(rhex <<<"$out")" = 0b00000700000700bf6172626869ff ]
out=$(cl params)
check "params: golden reply with buf_size 384, buf_count 4" \
	[ "$(rhex <<<"$out")" = 0100001900000006bf686275665f73697a65190180696275665f636f756e7404ff ]
out=$(cl state)
check "an empty board lists no images" \
	[ "$(rjson <<<"$out")" = '{"images":[],"splitStatus":0}' ]
check "success replies carry no rc" [ "$(rfield 'has("rc")' <<<"$out")" = false ]
# Reset read (not write) and an unknown group: not supported.
out=$(cl raw 0000000000000005)
check "reset as a read is not supported (rc 8)" [ "$(rfield .rc <<<"$out")" = 8 ]
out=$(cl raw 0200000000400000)
check "unknown group is not supported (rc 8)" [ "$(rfield .rc <<<"$out")" = 8 ]
out=$(cl test 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff)
check "state write with an unknown hash: rc 3" [ "$(rfield .rc <<<"$out")" = 3 ]
out=$(cl --v2 test 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff)
check "the same in v2: an err map of the image group" \
	[ "$(rfield '.err.group' <<<"$out")" = 1 -a "$(rfield 'has("rc")' <<<"$out")" = false ]

# Receive buffer 384 bytes: a 384-byte packet is answered, 385 is not.
out=$(cl raw "$(echo_pkt 370)")
check "a packet of buf_size bytes is answered" grep -q '^hdr ' <<<"$out"
d0=$(st .counters.dropped)
out=$(cl --timeout-ms 700 raw "$(echo_pkt 371)")
check "a packet of buf_size + 1 bytes gets no reply" [ "$out" = timeout ]
check "... and is counted as dropped" [ "$(st .counters.dropped)" -eq $((d0 + 1)) ]
check "the board still answers after the drop" eval "cl echo alive >/dev/null"
stop_sim

start_sim d udp --udp 127.0.0.1:0 --definite-maps --zephyr-3 || exit 1
out=$(cl --v2 echo hi)
check "--zephyr-3 answers a v2 request in v1, --definite-maps: golden" \
	[ "$(rhex <<<"$out")" = 0300000600000000a16172626869 ]
out=$(cl --v2 test 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff)
check "--zephyr-3 errors use the v1 rc form" [ "$(rfield .rc <<<"$out")" = 3 ]
stop_sim

# buf_count 4 and 100 ms per request: of 10 requests sent at once, 4 fit.
start_sim q udp --udp 127.0.0.1:0 --proc-us 100000 || exit 1
out=$(cl --timeout-ms 2500 burst 10 x)
check "requests beyond buf_count are dropped silently (4 of 10 answered)" \
	grep -qx 'replies 4' <<<"$out"
check "the status counts 6 dropped" [ "$(st .counters.dropped)" = 6 ]
seqs=$(sed -n 's/^hdr .* seq=\([0-9]*\) .*/\1/p' <<<"$out" | tr '\n' ' ')
check "requests are processed in order ($seqs)" [ "$seqs" = "0 1 2 3 " ]
stop_sim

start_sim q2 udp --udp 127.0.0.1:0 --buf-count 2 --buf-size 512 --proc-us 100000 || exit 1
out=$(cl params)
check "--buf-size/--buf-count are reported" \
	[ "$(rjson <<<"$out")" = '{"buf_size":512,"buf_count":2}' ]
out=$(cl --timeout-ms 2000 burst 5 x)
check "--buf-count 2: 2 of 5 answered" grep -qx 'replies 2' <<<"$out"
stop_sim

# 4 requests, 600 ms latency each: pipelined, all four come within 1.8 s
# (held back one behind the other they would need 2.4 s).
start_sim l udp --udp 127.0.0.1:0 --latency-ms 600 || exit 1
out=$(cl --timeout-ms 1800 burst 4 x)
check "--latency-ms does not hold back later replies" grep -qx 'replies 4' <<<"$out"
stop_sim

check "--help documents every option" bash -c '
	h=$("$0" --help)
	for o in serial reenumerate baud console-noise udp ble slot-size image \
	    state reboot-ms reject-new no-boot self-confirm self-reject \
	    confirm-ms buf-size buf-count definite-maps zephyr-3 latency-ms \
	    flash-us-per-kb seed drop-rate drop-reply-rate corrupt-rate \
	    hang-after die-after status proc-us erase-us-per-kb line-bufs \
	    line-buf-size; do
		grep -q -- "--$o" <<<"$h" || { echo "# --$o missing"; exit 1; }
	done' "$SIM"
check_fails "a bad option value is refused" "$SIM" --udp 127.0.0.1:0 --drop-rate 2
check_fails "two links are refused" "$SIM" --udp 127.0.0.1:0 --serial "$T/x"

# Bad files get a clear error naming them.
head -c 1000 /dev/urandom >"$T/notimage.bin"
"$SIM" --udp 127.0.0.1:0 --image "$T/notimage.bin" >/dev/null 2>"$T/img.err"
check "a non-image --image is refused, naming the file" \
	grep -q "not a valid MCUboot image.*notimage.bin" "$T/img.err"
"$SIM" --udp 127.0.0.1:0 --state "$T/u.state" --slot-size 65536 >/dev/null 2>"$T/ss.err"
check "a state file of another slot size is refused" \
	grep -q "slot size differs" "$T/ss.err"
echo garbage >"$T/garbage.state"
"$SIM" --udp 127.0.0.1:0 --state "$T/garbage.state" >/dev/null 2>"$T/gs.err"
check "a state file that is not one is refused" \
	grep -q "not a simulator state file" "$T/gs.err"

# Several boards in one process (--boards): a READY line and a port each,
# flash and counters of their own, a reset that resets one board only.
"$MK" --version 1.2.0 --size 3000 --seed 5 -o "$T/m.bin" >/dev/null
bg "$SIM" --boards 3 --udp 127.0.0.1:0 --state "$T/m.state" \
	--status "$T/m.status" --image "$T/m.bin" >"$T/m.out" 2>"$T/m.err"
MPID=$!
for _ in $(seq 1 100); do
	[ "$(grep -c '^READY ' "$T/m.out")" -ge 3 ] && break
	sleep 0.1
done
check "--boards 3: three READY lines, three ports" \
	[ "$(grep '^READY udp 127\.0\.0\.1:' "$T/m.out" | sort -u | wc -l)" -eq 3 ]
check "... a state and a status file each" \
	test -f "$T/m.state.1" -a -f "$T/m.state.3" -a -f "$T/m.status.2"
a2=$(sed -n '2s/^READY udp //p' "$T/m.out")
out=$("$CL" --udp "$a2" reset)
check "the second board takes a reset" [ "$(rjson <<<"$out")" = '{}' ]
sleep 0.6
check "... and only the second board was reset" \
	[ "$(jq -r .counters.resets "$T/m.status.1"):$(jq -r .counters.resets "$T/m.status.2"):$(jq -r .counters.resets "$T/m.status.3")" = 0:1:0 ]
for i in 1 2 3; do
	a=$(sed -n "${i}s/^READY udp //p" "$T/m.out")
	out=$("$CL" --udp "$a" echo "board $i")
	check "board $i answers on its own port" \
		[ "$(rfield .r <<<"$out")" = "board $i" ]
done
check "... each counting its own requests" \
	[ "$(jq -r .counters.requests "$T/m.status.1"):$(jq -r .counters.requests "$T/m.status.2")" = 1:2 ]
kill -TERM "$MPID"
wait "$MPID"
check "... and SIGTERM ends them all with status 0" [ $? -eq 0 ]
"$SIM" --boards 2 --serial "$T/x.tty" >/dev/null 2>"$T/bs.err"
check "--boards without --udp is refused" grep -q -- "--boards needs --udp" "$T/bs.err"

# SIGTERM: a clean exit.
start_sim t udp --udp 127.0.0.1:0 || exit 1
kill -TERM "$SIM_PID"
wait "$SIM_PID"
check "SIGTERM ends the simulator with status 0" [ $? -eq 0 ]

done_testing
