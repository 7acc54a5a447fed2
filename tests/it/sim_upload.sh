#!/bin/bash
# The virtual board's upload rules (docs/design.md "SMP") over UDP: the
# first packet needs len and may carry sha; resume with the same len and
# sha; a different sha restarts; a wrong offset is answered with the
# expected one; after completion a first packet starts over; bad magic is
# refused before anything is erased; pending slot 1 refuses uploads (rc 5)
# and erase (rc 6).
. "$(dirname "$0")/../lib.sh"
. "$SRC/tests/sim/it-lib.sh"

"$MK" --version 1.0.0+1 --size 20000 --seed 1 -o "$T/old.bin" >/dev/null
"$MK" --version 1.2.3+4 --size 30000 --seed 2 -o "$T/new.bin" >/dev/null
"$MK" --version 1.2.3+5 --size 30000 --seed 3 -o "$T/other.bin" >/dev/null
new_hash=$(hash_of "$T/new.bin")
total=$(stat -c %s "$T/new.bin")
head -c 4096 /dev/urandom >"$T/junk.bin"

start_sim u udp --udp 127.0.0.1:0 --image "$T/old.bin" || {
	not_ok "simulator starts" "no READY line"
	exit 1
}

# A first packet without len is invalid.
out=$(cl raw 0200001000010001a2636f66660064646174614401020304)
check "first packet without len: rc 3" [ "$(rfield .rc <<<"$out")" = 3 ]

out=$(cl upload "$T/new.bin" 200 1000)
check "partial upload stops at 1000" grep -qx 'off 1000' <<<"$out"
check "status shows the upload in progress" \
	[ "$(st .upload.offset)/$(st .upload.len)" = "1000/$total" ]
check "status shows the upload's sha" \
	[ "$(st .upload.sha)" = "$(sha256sum "$T/new.bin" | cut -c1-64)" ]

# Resume: the first packet again with the same len and sha.
out=$(cl chunk "$T/new.bin" 0 200 first)
check "same len and sha resumes at the board's offset" \
	[ "$(rfield .off <<<"$out")" = 1000 ]
# A wrong offset is answered with the expected one.
out=$(cl chunk "$T/new.bin" 1400 200)
check "a wrong offset is answered with the expected one (golden)" \
	[ "$(rhex <<<"$out")" = 0300000900010001bf636f66661903e8ff ]
check "... and nothing is written" [ "$(st .upload.offset)" = 1000 ]
out=$(cl chunk "$T/new.bin" 1000 200)
check "the expected offset continues the upload" \
	[ "$(rfield .off <<<"$out")" = 1200 ]

# A different sha (another image of the same size) restarts.
out=$(cl chunk "$T/other.bin" 0 200 first)
check "a different sha restarts the upload" [ "$(rfield .off <<<"$out")" = 200 ]
# No sha at all: no resume either.
out=$(NO_SHA=1 cl chunk "$T/new.bin" 0 300 first)
check "a first packet without sha starts over" [ "$(rfield .off <<<"$out")" = 300 ]

out=$(cl upload "$T/new.bin" 256)
check "a whole upload completes" grep -qx "off $total" <<<"$out"
out=$(cl state)
check "slot 1 lists the image with its TLV hash" \
	[ "$(rfield '.images[1].hash' <<<"$out")" = "$new_hash" ]
check "slot 1: version in Zephyr spelling, not pending, not active" \
	[ "$(rfield '.images[1] | "\(.version) \(.pending) \(.active) \(.bootable)"' <<<"$out")" = "1.2.3.4 false false true" ]
check "upload finished: status shows none in progress" [ "$(st .upload.len)" = 0 ]

# After completion the same first packet starts over (the slot is erased).
out=$(cl chunk "$T/new.bin" 0 200 first)
check "after completion a first packet starts over" [ "$(rfield .off <<<"$out")" = 200 ]
out=$(cl state)
check "... and slot 1 no longer holds a valid image" \
	[ "$(rfield '.images | length' <<<"$out")" = 1 ]

out=$(cl upload "$T/new.bin" 256)
# Bad magic: refused with rc 3 before anything is erased.
out=$(cl chunk "$T/junk.bin" 0 200 first)
check "bad magic: rc 3, magic mismatch" \
	[ "$(rfield '"\(.rc) \(.rsn)"' <<<"$out")" = "3 magic mismatch" ]
out=$(cl state)
check "bad magic erased nothing: slot 1 still holds the image" \
	[ "$(rfield '.images[1].hash' <<<"$out")" = "$new_hash" ]

# Slot 1 pending: uploads answer rc 5, erase rc 6.
out=$(cl test "$new_hash")
check "state write marks slot 1 pending" [ "$(rfield '.images[1].pending' <<<"$out")" = true ]
check "status shows slot 1 pending" [ "$(st '.slots[1].pending')" = true ]
out=$(cl chunk "$T/other.bin" 0 200 first)
check "upload while slot 1 is pending: rc 5" [ "$(rfield .rc <<<"$out")" = 5 ]
out=$(cl erase)
check "erase while slot 1 is pending: rc 6" [ "$(rfield .rc <<<"$out")" = 6 ]
stop_sim

start_sim e udp --udp 127.0.0.1:0 --image "$T/old.bin" || exit 1
cl upload "$T/new.bin" 256 >/dev/null
out=$(cl erase)
check "erase answers an empty map" [ "$(rjson <<<"$out")" = '{}' ]
out=$(cl state)
check "erase empties slot 1" [ "$(rfield '.images | length' <<<"$out")" = 1 ]
# An image larger than the slot is refused.
"$MK" --version 9.0.0 --size 600000 --seed 9 -o "$T/huge.bin" >/dev/null
out=$(cl chunk "$T/huge.bin" 0 200 first)
check "an image larger than the slot: rc 3" [ "$(rfield .rc <<<"$out")" = 3 ]
stop_sim

# --erase-us-per-kb: the first packet of a new upload takes its time (30 KiB
# at 50 ms per KiB: 1.5 s), then is answered; a resume does not erase.
start_sim er udp --udp 127.0.0.1:0 --image "$T/old.bin" --erase-us-per-kb 50000 || exit 1
out=$(cl --timeout-ms 300 chunk "$T/new.bin" 0 200 first)
check "a first packet waits for the erase" [ "$out" = timeout ]
check "... and is applied once erased" wait_status '.upload.offset == 200' 10
out=$(cl --timeout-ms 1000 chunk "$T/new.bin" 0 200 first)
check "a resume does not erase again" [ "$(rfield .off <<<"$out")" = 200 ]
stop_sim

done_testing
