#!/bin/bash
# `smp` commands against the real Zephyr smp_svr (../shared/zephyr-peer):
# echo, params, image list, an upload with the default (learning) window,
# an upload interrupted and resumed, image test, reset (the peer's process
# exits: started again on the same flash file, the pending flag and slot 1
# are still there), and confirm.  The peer must run: without it the test
# fails.
. "$(dirname "$0")/../lib.sh"
. "$SRC/tests/it/peer_lib.bash"

CLI=$BIN/rdfm-mcumgr-client
MK=$BIN/mcuboot-mkimage
"$MK" --version 1.0.0 --size 20000 --seed 61 -o "$T/old.bin" >/dev/null
"$MK" --version 1.1.0+2 --size 60000 --seed 62 -o "$T/new.bin" >/dev/null
"$MK" --version 1.2.0 --size 200000 --seed 63 -o "$T/big.bin" >/dev/null
old_hash=$("$MK" --print-hash "$T/old.bin")
new_hash=$("$MK" --print-hash "$T/new.bin")
big_hash=$("$MK" --print-hash "$T/big.bin")
new_size=$(stat -c %s "$T/new.bin")
big_size=$(stat -c %s "$T/big.bin")

peer_flash "$T/board.flash" "$T/old.bin"
if ! peer_start "$T/board.flash"; then
	not_ok "the real Zephyr peer runs" "../shared/zephyr-peer is required"
	exit 1
fi
smp() { "$CLI" smp --transport serial --device "$PEER_PTY" "$@"; }
slot() {
	jq -r --argjson s "$2" ".images[] | select(.slot == \$s) | .$3" "$1"
}

check "echo" [ "$(smp echo 'hello zephyr' 2>/dev/null)" = "hello zephyr" ]
smp --json params >"$T/params.json" 2>/dev/null
check "params: Zephyr's defaults, buf_size 384 and buf_count 4" \
	[ "$(jq -r '"\(.buf_size) \(.buf_count)"' "$T/params.json")" = "384 4" ]
smp --json image list >"$T/l0.json" 2>/dev/null
check "image list: slot 0 runs the image, confirmed and active" \
	[ "$(slot "$T/l0.json" 0 hash):$(slot "$T/l0.json" 0 version):$(slot "$T/l0.json" 0 confirmed):$(slot "$T/l0.json" 0 active)" = "$old_hash:1.0.0:true:true" ]

# An upload with the default window: the client sizes packets from
# buf_size and learns what the board takes.
smp -v --json image upload "$T/new.bin" >"$T/up.json" 2>"$T/up.err"
check "upload with the default window" [ $? -eq 0 ]
check "... all of it ($(jq -c . "$T/up.json"))" \
	[ "$(jq -r .bytes "$T/up.json")" = "$new_size" ]
check "... the window started at buf_count - 1" \
	grep -q 'msg="upload starts".* window=3 .*window_from=params' "$T/up.err"
smp --json image list >"$T/l1.json" 2>/dev/null
check "slot 1 holds the uploaded image" [ "$(slot "$T/l1.json" 1 hash)" = "$new_hash" ]
check "... in Zephyr's version spelling" [ "$(slot "$T/l1.json" 1 version)" = 1.1.0.2 ]

# Interrupted (SIGTERM: the upload stops at a packet boundary) and run
# again: the board says how far it got and the upload goes on from there.
"$CLI" smp -v --transport serial --device "$PEER_PTY" image upload \
	"$T/big.bin" >"$T/int.out" 2>"$T/int.err" &
cli=$!
wait_for_line "$T/int.err" 'msg="upload starts"' 20
sleep 3
kill -TERM "$cli"
wait "$cli"
check "an interrupted upload stops with an error" [ $? -ne 0 ]
check "... before the end" bash -c "! grep -q '^uploaded' '$T/int.out'"
smp -v --json image upload "$T/big.bin" >"$T/res.json" 2>"$T/res.err"
check "run again, it completes" [ $? -eq 0 ]
sent=$(jq -r .bytes "$T/res.json")
check "... from where the board was ($sent of $big_size bytes sent)" \
	[ "$sent" -gt 0 ] && [ "$sent" -lt "$big_size" ]
check "... the worker says it resumed" grep -q 'msg="upload resumes"' "$T/res.err"
smp --json image list >"$T/l2.json" 2>/dev/null
check "slot 1 holds the resumed image whole" [ "$(slot "$T/l2.json" 1 hash)" = "$big_hash" ]

smp image test "$big_hash" >"$T/test.out" 2>&1
check "image test" [ $? -eq 0 ]
smp --json image list >"$T/l3.json" 2>/dev/null
check "... slot 1 is pending" [ "$(slot "$T/l3.json" 1 pending)" = true ]

# Reset: the peer answers, then its process exits as a reboot cuts the
# line.  Started again on the same flash file, slot 1 and its pending
# flag are still there (no MCUboot swaps them in).
smp reset >"$T/reset.out" 2>&1
check "reset" [ $? -eq 0 ]
check "... the peer's process exits" peer_gone 5
check "the board starts again on the same flash" peer_start "$T/board.flash"
smp --json image list >"$T/l4.json" 2>/dev/null
check "after the reset slot 1 still holds the image" \
	[ "$(slot "$T/l4.json" 1 hash)" = "$big_hash" ]
check "... still pending" [ "$(slot "$T/l4.json" 1 pending)" = true ]
check "... and slot 0 the old one" [ "$(slot "$T/l4.json" 0 hash)" = "$old_hash" ]

smp image confirm >"$T/confirm.out" 2>&1
check "image confirm (the running image)" [ $? -eq 0 ]
smp --json image list >"$T/l5.json" 2>/dev/null
check "... slot 0 confirmed" [ "$(slot "$T/l5.json" 0 confirmed)" = true ]
peer_stop
done_testing
