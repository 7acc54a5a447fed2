#!/bin/bash
# The serial worker as a real process (through ipc-drive) against the
# virtual board on a pseudo-terminal: operations and the upload at 115200
# baud (throughput printed), a board that re-enumerates on reset, and an
# upload over a line that corrupts 5 % of the frames.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/worker_lib.bash"

W=rdfm-mcumgr-worker-serial
hash=$(mkimage 24000 "$T/new.bin" 4)

start_sim b --serial "$T/tty0" --baud 115200 || {
	not_ok "simulator starts" "no READY line"
	exit 1
}
drive "$T/o1" $W --serial "$T/tty0" --baud 115200 echo "over serial" \; \
	params \; image-upload "$T/new.bin" \; image-list
check "echo over serial" grep -q '^reply status=OK echo="over serial"' "$T/o1"
check "params over serial" grep -q '^reply status=OK supported=1' "$T/o1"
check "upload over serial" grep -q '^reply status=OK bytes=24072 ' "$T/o1"
check "slot 1 holds the image" [ "$(slot_hash "$T/o1" 1)" = "$hash" ]
rate=$(sed -n 's/.* bytes_per_s=\([0-9]*\).*/\1/p' "$T/o1")
echo "# serial upload at 115200 baud: ${rate:-?} bytes/s of image"
# 115200 baud carries at most ~7.8 KB/s of image through base64 framing;
# a stalled pipeline would reach half of it at best.
check "pipeline keeps the line busy (> 5000 bytes/s)" \
	[ "${rate:-0}" -gt 5000 ]

# A board that disappears on reset and comes back as a new device.
start_sim r --serial "$T/tty1" --reenumerate --reboot-ms 300 || {
	not_ok "simulator starts" "no READY line"
	exit 1
}
drive "$T/o2" $W --serial "$T/tty1" echo one \; reset \; wait-up \; \
	echo two
check "link loss is reported" grep -q '^linkstate up=0' "$T/o2"
check "a fresh descriptor brings the link back" \
	grep -q '^linkfd again' "$T/o2"
check "the board answers on the new device" \
	grep -q '^reply status=OK echo="two"' "$T/o2"

# 5 % of the board's frames corrupted: CRC rejects, retransmits recover.
big=$(mkimage 200000 "$T/big.bin" 5)
start_sim c --serial "$T/tty2" --baud 0 --corrupt-rate 0.05 --seed 3 \
	--slot-size 524288 || {
	not_ok "simulator starts" "no READY line"
	exit 1
}
drive "$T/o3" $W --serial "$T/tty2" --timeout-ms 300 --retries 10 \
	image-upload "$T/big.bin" \; image-list
check "upload over a corrupting line succeeds" \
	grep -q '^reply status=OK bytes=200072 ' "$T/o3"
# (A corrupted reply is usually covered by the next one: the board's offset
# acknowledges everything below it, so retransmits may well be 0.)
check "the image arrived whole" [ "$(slot_hash "$T/o3" 1)" = "$big" ]

done_testing
