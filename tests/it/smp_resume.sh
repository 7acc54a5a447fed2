#!/bin/bash
# Uploads that survive trouble: the board dies mid-upload and comes back
# (the next upload resumes from the board's offset), a serial board that
# vanishes and returns during one command, and a worker SIGKILLed during an
# upload (the supervisor restarts it and the upload resumes).
. "$(dirname "$0")/../lib.sh"

CLI=$BIN/rdfm-mcumgr-client
SIM=$BIN/mcumgr-board-sim
MK=$BIN/mcuboot-mkimage
SIZE=400000

start_sim() {
	local name=$1
	shift
	bg "$SIM" --state "$T/$name.state" --status "$T/$name.status" \
		--slot-size 1048576 "$@" >"$T/$name.out" 2>"$T/$name.err"
	SIM_PID=$!
	wait_for_line "$T/$name.out" '^READY ' 10 || return 1
	READY=$(sed -n 's/^READY [a-z]* //p' "$T/$name.out" | tail -n 1)
}

status() { jq -r "$2" <"$T/$1.status"; }

slot1_hash() {
	"$CLI" smp "$@" --json image list 2>/dev/null |
		jq -r '.images[] | select(.slot == 1) | .hash'
}

"$MK" --version 1.0.0 --size 20000 --seed 21 -o "$T/old.bin" >/dev/null
"$MK" --version 3.0.0 --size $SIZE --seed 22 -o "$T/new.bin" >/dev/null
new_hash=$("$MK" --print-hash "$T/new.bin")
total=$(stat -c %s "$T/new.bin")

# 1. UDP: the board dies after 150000 bytes; the command fails; the board
# restarts on the same port with its flash; the next upload resumes.
start_sim u --udp 127.0.0.1:0 --image "$T/old.bin" --die-after 150000 ||
	not_ok "simulator starts" "no READY"
port=${READY##*:}
U=(--transport udp --address "$READY" --timeout 300ms --retries 2)
"$CLI" smp "${U[@]}" image upload "$T/new.bin" >/dev/null 2>"$T/u1.err"
check "upload fails when the board dies" [ $? -ne 0 ]
wait "$SIM_PID" 2>/dev/null
died_at=$(status u .upload.offset)
check "the board got part of the image before dying" \
	[ "$died_at" -gt 0 -a "$died_at" -lt "$total" ]
start_sim u2 --udp "127.0.0.1:$port" --state "$T/u.state" ||
	not_ok "simulator restarts" "no READY"
"$CLI" smp "${U[@]}" image upload "$T/new.bin" >"$T/u2.out" 2>"$T/u2.err"
check "the second upload completes" [ $? -eq 0 ]
check "slot 1 has the image after the resumed upload" \
	[ "$(slot1_hash "${U[@]}")" = "$new_hash" ]
in2=$(status u2 .counters.bytes_in)
check "the second upload did not start from 0 ($in2 bytes sent, image $total, board had $died_at)" \
	[ "$in2" -lt $((total - died_at / 2)) ]
kill "$SIM_PID" 2>/dev/null

# 2. Serial: the board dies mid-upload and is back a moment later on the
# same path; the supervisor reopens the device and one command finishes.
start_sim s --serial "$T/tty" --image "$T/old.bin" --die-after 120000 ||
	not_ok "serial simulator starts" "no READY"
S=(--transport serial --device "$T/tty" --timeout 500ms --retries 3)
"$CLI" smp "${S[@]}" image upload "$T/new.bin" >"$T/s.out" 2>"$T/s.err" &
cli=$!
wait "$SIM_PID" 2>/dev/null
start_sim s2 --serial "$T/tty" --state "$T/s.state" ||
	not_ok "serial simulator restarts" "no READY"
wait "$cli"
check "one serial upload survives the board dying and returning" [ $? -eq 0 ]
check "... by resuming within the same command" grep -q "resumed 1 time\b" "$T/s.out"
check "slot 1 has the image (serial)" \
	[ "$(slot1_hash --transport serial --device "$T/tty")" = "$new_hash" ]
in2=$(status s2 .counters.bytes_in)
check "the serial upload resumed, not restarted ($in2 bytes after the restart)" \
	[ "$in2" -lt $((total * 9 / 10)) ]
kill "$SIM_PID" 2>/dev/null

# 3. SIGKILL the UDP worker in the middle of an upload.
start_sim k --udp 127.0.0.1:0 --image "$T/old.bin" --flash-us-per-kb 8000 ||
	not_ok "simulator starts" "no READY"
K=(--transport udp --address "$READY")
# -v: the supervisor's INFO lines say which worker did what.
"$CLI" smp "${K[@]}" -v image upload "$T/new.bin" >"$T/k.out" 2>"$T/k.err" &
cli=$!
for i in $(seq 1 100); do
	off=$(status k .upload.offset 2>/dev/null)
	[ "${off:-0}" -gt 100000 ] && break
	sleep 0.1
done
worker=$(pgrep -P "$cli" -f rdfm-mcumgr-worker-udp)
check "the upload runs in a UDP worker" [ -n "$worker" ]
killed_at=$(status k .upload.offset)
kill -KILL $worker
wait "$cli"
check "the upload completes after the worker was killed" [ $? -eq 0 ]
check "the supervisor logged the restart" grep -q "worker died" "$T/k.err"
check "the upload says it resumed" grep -q "resumed" "$T/k.out"
check "a new worker did the rest" \
	[ "$(grep -c 'restarting worker' "$T/k.err")" -ge 1 ]
check "slot 1 has the image after the worker was killed" \
	[ "$(slot1_hash "${K[@]}")" = "$new_hash" ]
in=$(status k .counters.bytes_in)
check "the upload resumed from the board's offset (killed at $killed_at, $in bytes in)" \
	[ "$in" -lt $((total + killed_at * 2 / 3)) ]

done_testing
