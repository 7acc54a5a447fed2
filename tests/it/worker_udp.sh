#!/bin/bash
# The UDP worker as a real process (through ipc-drive, a supervisor stand-in)
# against the virtual board: every operation, IPv4 and IPv6, the pipelined
# upload, abort, and resume after the board died mid-upload.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/worker_lib.bash"

W=rdfm-mcumgr-worker-udp
hash=$(mkimage 150000 "$T/new.bin" 2)

start_sim b --udp 127.0.0.1:0 --state "$T/b.state" || {
	not_ok "simulator starts" "no READY line"
	exit 1
}
drive "$T/o1" $W --udp "$READY" echo "hello board" \; params \; image-list
check "worker says hello with protocol version 1" \
	grep -q '^hello version=1 role=udp' "$T/o1"
check "echo comes back" grep -q '^reply status=OK echo="hello board"' "$T/o1"
check "params reports the board's buffers" \
	grep -q '^reply status=OK supported=1 buf_size=384 buf_count=4' "$T/o1"
check "an empty board lists no image" \
	[ "$(grep -c '^image=' "$T/o1")" -eq 0 ]
check "worker exits when the socket closes" grep -q '^worker exit=0' "$T/o1"

drive "$T/o2" $W --udp "$READY" image-upload "$T/new.bin" \; image-list
check "upload succeeds" grep -q '^reply status=OK bytes=150072 ' "$T/o2"
check "upload keeps buf_count - 1 requests in flight" \
	grep -q '^reply status=OK bytes=.* window=3 ' "$T/o2"
check "slot 1 holds the uploaded image" [ "$(slot_hash "$T/o2" 1)" = "$hash" ]

drive "$T/o3" $W --udp "$READY" image-test "$hash" \; reset \; sleep 800 \
	\; image-list
check "image test marks slot 1 pending" \
	grep -q "^image=0 slot=1 .*hash=$hash bootable=1 pending=1" "$T/o3"
check "after reset the new image runs in slot 0" \
	[ "$(slot_hash "$T/o3" 0)" = "$hash" ]
drive "$T/o4" $W --udp "$READY" image-confirm
check "confirm of the running image" grep -q '^reply status=OK' "$T/o4"

check_fails "a hash in no slot is refused by the board" \
	drive "$T/o5" $W --udp "$READY" image-test \
	0000000000000000000000000000000000000000000000000000000000000000
check "the board's error reaches the supervisor" \
	grep -q '^reply status=BOARD_ERROR board_rc=3' "$T/o5"

# A bad address: a clear error for every request, and the worker, retrying
# inside its sandbox, must not be killed for it.
check_fails "a bad address fails the request" \
	drive "$T/bad" $W --udp "no-such-host.invalid:1" echo x \; sleep 1500 \
	\; echo y
check "the reason names the address" \
	grep -q '^reply status=LINK_DOWN .*no-such-host.invalid' "$T/bad"
check "the worker survives the retries" grep -q '^worker exit=0' "$T/bad"

# IPv6.
if start_sim b6 --udp '[::1]:0'; then
	drive "$T/o6" $W --udp "$READY" echo six
	check "echo over IPv6" grep -q '^reply status=OK echo="six"' "$T/o6"
else
	ok "# SKIP no IPv6 loopback"
fi

# Abort at a packet boundary, on a board slow enough to see progress.
hash2=$(mkimage 200000 "$T/two.bin" 3)
start_sim slow --udp 127.0.0.1:0 --latency-ms 20 || {
	not_ok "simulator starts" "no READY line"
	exit 1
}
check_fails "aborted upload is reported as such" \
	drive "$T/o7" $W --udp "$READY" --abort-at 20000 image-upload "$T/two.bin"
check "abort answered with ABORTED" grep -q '^reply status=ABORTED' "$T/o7"

# Resume: the board dies mid-upload and comes back on the same port.
start_sim d --udp "127.0.0.1:0" --state "$T/d.state" --die-after 60000 || {
	not_ok "simulator starts" "no READY line"
	exit 1
}
daddr=$READY
check_fails "upload to a board that dies fails" \
	drive "$T/o8" $W --udp "$daddr" --timeout-ms 200 --retries 2 \
	image-upload "$T/two.bin"
check "the failure is a timeout" grep -q '^reply status=TIMEOUT' "$T/o8"
wait "$SIM_PID" 2>/dev/null
start_sim d2 --udp "$daddr" --state "$T/d.state" || {
	not_ok "simulator restarts" "no READY line"
	exit 1
}
drive "$T/o9" $W --udp "$daddr" image-upload "$T/two.bin" \; image-list
bytes=$(sed -n 's/^reply status=OK bytes=\([0-9]*\) .*/\1/p' "$T/o9")
check "upload resumes where the board stopped" \
	[ -n "$bytes" -a "$bytes" -lt 200072 -a "$bytes" -gt 0 ]
check "resumed image is whole" [ "$(slot_hash "$T/o9" 1)" = "$hash2" ]

done_testing
