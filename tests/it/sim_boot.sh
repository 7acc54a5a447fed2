#!/bin/bash
# MCUboot and firmware behaviour of the virtual board over UDP: test swap
# and revert of an unconfirmed image, confirm, permanent swap, silence while
# resetting, self-confirming and self-rejecting firmware, refusal of an
# image that fails validation (--reject-new, a corrupted body), --no-boot,
# and state kept across a restart of the simulator.
. "$(dirname "$0")/../lib.sh"
. "$SRC/tests/sim/it-lib.sh"

"$MK" --version 1.0.0+1 --size 20000 --seed 1 -o "$T/old.bin" >/dev/null
"$MK" --version 1.2.3 --size 30000 --seed 2 -o "$T/new.bin" >/dev/null
old_hash=$(hash_of "$T/old.bin")
new_hash=$(hash_of "$T/new.bin")
# A corrupted copy: one body byte flipped, the hash TLV unchanged.
cp "$T/new.bin" "$T/bad.bin"
b=$(xxd -s 1000 -l 1 -p "$T/bad.bin")
printf "\\x$(printf %02x $((0x$b ^ 0xff)))" |
	dd of="$T/bad.bin" bs=1 seek=1000 conv=notrunc 2>/dev/null

# slots: "slot0-hash:flags slot1-hash:flags" from the status file, flags
# being a(ctive) c(onfirmed) p(ending) P(ermanent).
slots() {
	jq -r '[.slots[] | "\(.hash // "-"):" +
		(if .active then "a" else "" end) +
		(if .confirmed then "c" else "" end) +
		(if .pending then "p" else "" end) +
		(if .permanent then "P" else "" end)] | join(" ")' <"$ST"
}
# reset_and_wait N: reset the board, wait until it is up after reset N.
reset_and_wait() {
	cl reset >/dev/null
	wait_status ".state == \"up\" and .counters.resets == $1" 10
}

start_sim a udp --udp 127.0.0.1:0 --image "$T/old.bin" --reboot-ms 1000 || {
	not_ok "simulator starts" "no READY line"
	exit 1
}
check "slot 0 holds the --image, active and confirmed" \
	[ "$(slots)" = "$old_hash:ac -:" ]
cl upload "$T/new.bin" 256 >/dev/null
out=$(cl test "$new_hash")
check "test: the reply lists slot 1 pending" \
	[ "$(rfield '.images[1] | "\(.hash) \(.pending) \(.permanent)"' <<<"$out")" = "$new_hash true false" ]
out=$(cl reset)
check "reset answers an empty map" [ "$(rjson <<<"$out")" = '{}' ]
wait_status '.state == "down"' 5
out=$(cl --timeout-ms 200 echo x)
check "the board is silent while it resets" [ "$out" = timeout ]
wait_status '.state == "up" and .counters.resets == 1' 10
check "test swap: new image active, unconfirmed; old one in slot 1 (confirmed)" \
	[ "$(slots)" = "$new_hash:a $old_hash:c" ]
out=$(cl state)
check "image list after the swap, as Zephyr reports a revert-pending board" \
	[ "$(rfield '[.images[] | [.slot, .active, .confirmed, .pending, .permanent]] | tostring' <<<"$out")" = '[[0,true,false,false,false],[1,false,true,false,false]]' ]
check "version in Zephyr spelling without .0 build" \
	[ "$(rfield '.images[0].version' <<<"$out")" = 1.2.3 ]
out=$(cl chunk "$T/new.bin" 0 200 first)
check "no upload while slot 1 holds the revert image: rc 5" [ "$(rfield .rc <<<"$out")" = 5 ]

reset_and_wait 2
check "unconfirmed image reverted at the next reset" \
	[ "$(slots)" = "$old_hash:ac $new_hash:" ]

cl test "$new_hash" >/dev/null
reset_and_wait 3
out=$(cl confirm)
check "confirm (no hash) confirms the running image" \
	[ "$(rfield '.images[0] | "\(.hash) \(.confirmed)"' <<<"$out")" = "$new_hash true" ]
reset_and_wait 4
check "a confirmed image stays after a reset" [ "$(slots)" = "$new_hash:ac $old_hash:" ]
out=$(cl test "$new_hash")
check "testing the active image is refused: rc 6" [ "$(rfield .rc <<<"$out")" = 6 ]

# Roll back by marking the old image, now in slot 1, permanent.
out=$(cl permanent "$old_hash")
check "state write with confirm: slot 1 pending and permanent" \
	[ "$(rfield '.images[1] | "\(.pending) \(.permanent)"' <<<"$out")" = "true true" ]
reset_and_wait 5
check "permanent swap: old image confirmed, no revert pending" \
	[ "$(slots)" = "$old_hash:ac $new_hash:" ]
reset_and_wait 6
check "a permanent swap does not revert" [ "$(slots)" = "$old_hash:ac $new_hash:" ]
stop_sim

# A restart of the simulator keeps flash and flags.
start_sim a2 udp --udp 127.0.0.1:0 --state "$T/a.state" || exit 1
check "state kept across a restart" [ "$(slots)" = "$old_hash:ac $new_hash:" ]
stop_sim

start_sim sc udp --udp 127.0.0.1:0 --image "$T/old.bin" --self-confirm --confirm-ms 800 || exit 1
cl upload "$T/new.bin" 256 >/dev/null
cl test "$new_hash" >/dev/null
reset_and_wait 1
check "self-confirm: the new image boots unconfirmed" [ "$(slots)" = "$new_hash:a $old_hash:c" ]
wait_status '.slots[0].confirmed' 10
check "self-confirm: it confirms itself after --confirm-ms" [ "$(slots)" = "$new_hash:ac $old_hash:" ]
reset_and_wait 2
check "self-confirmed image stays after a reset" [ "$(slots)" = "$new_hash:ac $old_hash:" ]
stop_sim

start_sim sr udp --udp 127.0.0.1:0 --image "$T/old.bin" --self-reject --confirm-ms 500 || exit 1
cl upload "$T/new.bin" 256 >/dev/null
cl test "$new_hash" >/dev/null
reset_and_wait 1
check "self-reject: the new image boots" [ "$(slots)" = "$new_hash:a $old_hash:c" ]
wait_status '.state == "up" and .counters.resets == 2' 10
check "self-reject: it resets itself and MCUboot reverts" [ "$(slots)" = "$old_hash:ac $new_hash:" ]
stop_sim

start_sim rj udp --udp 127.0.0.1:0 --image "$T/old.bin" --reject-new || exit 1
cl upload "$T/new.bin" 256 >/dev/null
cl test "$new_hash" >/dev/null
reset_and_wait 1
check "--reject-new: the old image boots, the new one is erased" \
	[ "$(slots)" = "$old_hash:ac -:" ]
stop_sim

start_sim bad udp --udp 127.0.0.1:0 --image "$T/old.bin" || exit 1
cl upload "$T/bad.bin" 256 >/dev/null
out=$(cl state)
check "a corrupted image is listed with the hash it claims" \
	[ "$(rfield '.images[1].hash' <<<"$out")" = "$new_hash" ]
cl test "$new_hash" >/dev/null
reset_and_wait 1
check "MCUboot refuses the corrupted image and boots the old one" \
	[ "$(slots)" = "$old_hash:ac -:" ]
stop_sim

start_sim nb udp --udp 127.0.0.1:0 --image "$T/old.bin" --no-boot || exit 1
cl reset >/dev/null
wait_status '.state == "hung"' 10
out=$(cl --timeout-ms 300 echo x)
check "--no-boot: never answers after a reset" [ "$out" = timeout ]
stop_sim

done_testing
