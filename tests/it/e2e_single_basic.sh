#!/bin/bash
# End to end, single boards that take the update: manual confirm over
# serial, self-confirm over UDP, BLE through the simulator's ATT socket, one
# --once run for all; then up to date,
# and a board found running an unconfirmed image that is not ours.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../e2e-lib.sh"

e2e_server --auto-approve || exit 1
e2e_image "$T/old.bin" 1.0.0 1
e2e_image "$T/new.bin" 2.0.0+3 2 60000
new_hash=$(image_hash "$T/new.bin")
old_hash=$(image_hash "$T/old.bin")
e2e_artifact "$T/ser.rdfm" "$T/new.bin" typeS 2.0.0+3
e2e_artifact "$T/udp.rdfm" "$T/new.bin" typeU 2.0.0+3
e2e_package "$T/ser.rdfm" 2.0.0+3 typeS >/dev/null
e2e_package "$T/udp.rdfm" 2.0.0+3 typeU >/dev/null
e2e_artifact "$T/ble.rdfm" "$T/new.bin" typeB 2.0.0+3
e2e_package "$T/ble.rdfm" 2.0.0+3 typeB >/dev/null

e2e_board ser serial "$T/old.bin" || exit 1
e2e_board udp udp "$T/old.bin" --self-confirm --confirm-ms 500 || exit 1
e2e_board ble ble "$T/old.bin" || exit 1
e2e_config "$T/c.json" -- ser:typeS udp:typeU:self ble:typeB

e2e_run once1 -c "$T/c.json" --once
check "--once exits 0 when every board was updated" [ "$RC" -eq 0 ]
L=$T/once1.log
check "serial board: Update successful with new_version" \
	grep -q 'msg="Update successful" device="ser" new_version=2.0.0+3' "$L"
check "UDP board: Update successful with new_version" \
	grep -q 'msg="Update successful" device="udp" new_version=2.0.0+3' "$L"
check "the server holds the new version right after the update" \
	eval 'admin GET /admin/devices |
		jq -e ".[] | select(.id == \"id-ser\") | .software_version == \"2.0.0+3\"" >/dev/null'
check "serial board runs the new image, confirmed" \
	[ "$(slot ser 0 hash):$(slot ser 0 confirmed)" = "$new_hash:true" ]
check "serial board keeps the old image in slot 1" \
	[ "$(slot ser 1 hash)" = "$old_hash" ]
check "UDP board confirmed the new image itself" \
	[ "$(slot udp 0 hash):$(slot udp 0 confirmed)" = "$new_hash:true" ]
check "BLE board: updated and confirmed" \
	[ "$(slot ble 0 hash):$(slot ble 0 confirmed)" = "$new_hash:true" ]
check "the self-confirming board was watched, not confirmed by us" \
	grep -q 'Waiting for the board to confirm the new image.*device="udp"' "$L"
check "each board was reset once" \
	[ "$(board_field ser .counters.resets):$(board_field udp .counters.resets)" = 1:1 ]
check "the board's version went to the server in RDFM spelling" \
	grep -q 'msg="Update offered" device="ser" running=1.0.0 ' "$L"
if [ "$RC" -ne 0 ]; then show_log "$L"; fi

check "upload progress is logged at most every few seconds" \
	[ "$(count "$L" 'msg="Uploading" ')" -le 3 ]

# A second run: the boards report 2.0.0+3, nothing is offered.
e2e_run once2 -c "$T/c.json" --once
check "second --once: exit 0, both up to date" [ "$RC" -eq 0 ]
check "second --once: nothing uploaded" \
	[ "$(count "$T/once2.log" 'Uploading the new image')" -eq 0 ]
check "second --once reports version 2.0.0+3" \
	grep -q 'msg="Up to date" device="ser" version=2.0.0+3' "$T/once2.log"
check "no reset in the second run" \
	[ "$(board_field ser .counters.resets)" = 1 ]

# A board running an unconfirmed image we did not put there is confirmed.
"$CLIENT" smp --transport serial --device "${BOARD_LINK[ser]}" \
	image test "$old_hash" >/dev/null 2>&1
"$CLIENT" smp --transport serial --device "${BOARD_LINK[ser]}" reset \
	>/dev/null 2>&1
for i in $(seq 1 50); do
	[ "$(slot ser 0 hash)" = "$old_hash" ] && break
	sleep 0.1
done
check "set-up: the serial board runs 1.0.0 unconfirmed" \
	[ "$(slot ser 0 hash):$(slot ser 0 confirmed)" = "$old_hash:false" ]
rm -rf "$T/state/journal"
e2e_run once3 -c "$T/c.json" --once
check "an unconfirmed image that is not ours is confirmed at start-up" \
	grep -q 'runs an unconfirmed image that is not ours.*device="ser"' \
	"$T/once3.log"
check "... and the serial board is then updated again" \
	[ "$(slot ser 0 hash):$(slot ser 0 confirmed)" = "$new_hash:true" ]
check "... and --once exits 0" [ "$RC" -eq 0 ]

# A USB CDC-ACM board: its tty goes away on reset and comes back later.
e2e_board re serial "$T/old.bin" --reenumerate --reboot-ms 1500 || exit 1
e2e_config "$T/re.json" -- re:typeS
e2e_run re -c "$T/re.json" --once
check "a re-enumerating serial board is updated across its reset" \
	[ "$RC" -eq 0 -a "$(slot re 0 hash):$(slot re 0 confirmed)" = "$new_hash:true" ]
check "... after its link went down and came back" \
	grep -q 'link up again' "$T/re.log"

done_testing
