#!/bin/bash
# End to end, an update machine that meets boards and a journal that do not
# say what it expects: a reboot slower than timeouts.reboot is waited out
# and the new image confirmed; a journal entry that does not match the
# board is reported and the board's slots win; an offer of the image the
# board already runs writes nothing and is not tried again.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../e2e-lib.sh"

e2e_server --auto-approve || exit 1
e2e_image "$T/old.bin" 1.0.0 1
e2e_image "$T/new.bin" 2.0.0 2 30000
e2e_image "$T/fallback.bin" 0.9.0 3
old_hash=$(image_hash "$T/old.bin")
new_hash=$(image_hash "$T/new.bin")
fb_hash=$(image_hash "$T/fallback.bin")
e2e_artifact "$T/new.rdfm" "$T/new.bin" typeS 2.0.0
e2e_package "$T/new.rdfm" 2.0.0 typeS >/dev/null

# --- a reboot slower than timeouts.reboot -------------------------------------
e2e_board slow udp "$T/old.bin" --reboot-ms 3500 || exit 1
E2E_DEVICE_JSON='{"timeouts": {"reboot": "1500ms", "request": "500ms"}}' \
	e2e_config "$T/slow.json" -- slow:typeS
e2e_start slow -c "$T/slow.json"
L=$T/slow.log
check "slow reboot: the reboot deadline is reported" \
	wait_for_line "$L" 'msg="Update failed" device="slow" phase=reboot' 30
if wait_for_line "$L" 'msg="Update successful" device="slow"' 30; then
	ok "slow reboot: a later cycle finishes the update"
else
	not_ok "slow reboot: a later cycle finishes the update" "no success"
	show_log "$L"
fi
e2e_stop
check "slow reboot: the board runs the new image, confirmed" \
	[ "$(slot slow 0 hash):$(slot slow 0 confirmed)" = "$new_hash:true" ]
check "slow reboot: uploaded once, reset once" \
	[ "$(count "$L" 'Uploading the new image')" -eq 1 -a "$(board_field slow .counters.resets)" = 1 ]
e2e_board_stop slow

# --- a journal entry the board contradicts ------------------------------------
# The board runs the new image, unconfirmed (put there by hand), and the
# server has nothing newer for its type.
e2e_board mis udp "$T/old.bin" || exit 1
SMPL=(--transport udp --address "${BOARD_LINK[mis]}")
"$CLIENT" smp "${SMPL[@]}" image upload "$T/new.bin" >/dev/null 2>&1
"$CLIENT" smp "${SMPL[@]}" image test "$new_hash" >/dev/null 2>&1
"$CLIENT" smp "${SMPL[@]}" reset >/dev/null 2>&1
for i in $(seq 1 50); do
	[ "$(slot mis 0 hash)" = "$new_hash" ] && break
	sleep 0.1
done
check "mismatch: set-up: the board runs an image unconfirmed" \
	[ "$(slot mis 0 hash):$(slot mis 0 confirmed)" = "$new_hash:false" ]
e2e_config "$T/mis.json" -- mis:typeNone
mkdir -p "$T/state/journal"
jq -n --arg o "$(printf 'a%.0s' $(seq 64))" --arg n "$(printf 'b%.0s' $(seq 64))" \
	'{format: 1, kind: "device", id: "id-mis", phase: "confirming",
	  artifact_sha256: "", target_version: "9.9.9", attempt: 1,
	  members: [{name: "mis", phase: "confirming", old_hash: $o,
	             new_hash: $n}]}' >"$T/state/journal/device-id-mis.json"
e2e_run mis -c "$T/mis.json" --once
check "mismatch: the journal's disagreement is reported" \
	grep -q 'level=ERROR msg="The journal does not match the boards.*device="mis"' \
	"$T/mis.log"
check "mismatch: the board's unconfirmed image is confirmed, not left" \
	[ "$(slot mis 0 hash):$(slot mis 0 confirmed)" = "$new_hash:true" ]
check "mismatch: --once exits 0" [ "$RC" -eq 0 ]
e2e_board_stop mis

# --- the offer is the image the board runs ------------------------------------
# The server spells the version 1.0.0+0, the board 1.0.0: the server offers
# what the board runs.  Slot 1 keeps its fallback image.
e2e_artifact "$T/same.rdfm" "$T/old.bin" typeO 1.0.0+0
e2e_package "$T/same.rdfm" 1.0.0+0 typeO >/dev/null
e2e_board same udp "$T/old.bin" || exit 1
"$CLIENT" smp --transport udp --address "${BOARD_LINK[same]}" image upload "$T/fallback.bin" \
	>/dev/null 2>&1
check "same image: set-up: slot 1 holds a fallback image" \
	[ "$(slot same 1 hash)" = "$fb_hash" ]
e2e_config "$T/same.json" -- same:typeO
e2e_start same -c "$T/same.json"
L=$T/same.log
check "same image: recognised before any upload" \
	wait_for_line "$L" 'already running; nothing to do" device="same" running=1.0.0 offered=1.0.0' 20
# Several cycles at 1 s.
sleep 4
e2e_stop
check "same image: nothing uploaded, nothing failed" \
	[ "$(count "$L" 'Uploading the new image')" -eq 0 -a "$(count "$L" 'Update failed')" -eq 0 ]
check "same image: downloaded once, not tried again" \
	[ "$(count "$L" 'already running; nothing to do')" -eq 1 -a "$(count "$L" 'download verified')" -eq 1 ]
check "same image: the fallback in slot 1 is untouched" \
	[ "$(slot same 1 hash):$(slot same 0 hash)" = "$fb_hash:$old_hash" ]
check "same image: the board was not reset" \
	[ "$(board_field same .counters.resets)" = 0 ]

done_testing
