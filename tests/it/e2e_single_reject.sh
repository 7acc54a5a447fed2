#!/bin/bash
# End to end, boards that do not take the update: a self-rejecting image is
# reported as rejected, the board ends on its old image, the offer is tried
# `retries` times and then skipped with one WARN while polling goes on; a
# board that never answers after its reset fails on the reboot deadline.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../e2e-lib.sh"

e2e_server --auto-approve || exit 1
e2e_image "$T/old.bin" 1.0.0 1
e2e_image "$T/new.bin" 2.0.0 2 30000
old_hash=$(image_hash "$T/old.bin")
new_hash=$(image_hash "$T/new.bin")
e2e_artifact "$T/new.rdfm" "$T/new.bin" typeR 2.0.0
e2e_package "$T/new.rdfm" 2.0.0 typeR >/dev/null

# --- self-reject, retries 2 -------------------------------------------------
e2e_board rej udp "$T/old.bin" --self-reject --confirm-ms 300 || exit 1
e2e_config "$T/rej.json" '{"retries": 2}' -- rej:typeR:self
e2e_start rej -c "$T/rej.json"
L=$T/rej.log
if wait_for_line "$L" 'Giving up on this update' 50; then
	ok "retries ran out: one WARN line"
else
	not_ok "retries ran out: one WARN line" "no WARN"
	show_log "$L"
fi
# Keep polling for a while after giving up.
checks_then=$(grep -c '"/api/v1/update/check"' "$SLOG")
sleep 3
checks_now=$(grep -c '"/api/v1/update/check"' "$SLOG")
e2e_stop
check "the client exits 0 on SIGTERM" [ "$STOP_RC" -eq 0 ]
check "each failure was reported as rejected, with device and phase" \
	[ "$(count "$L" 'level=ERROR msg="Update failed" device="rej" phase=[a-z]+ reason="rejected')" -eq 2 ]
check "the attempts were counted against retries" \
	grep -q 'attempt=2/2' "$L"
check "exactly one WARN about giving up" \
	[ "$(count "$L" 'level=WARN msg="Giving up on this update')" -eq 1 ]
check "the board is back on the old image, confirmed" \
	[ "$(slot rej 0 hash):$(slot rej 0 confirmed)" = "$old_hash:true" ]
check "the board was reset by us twice (plus its own reverts)" \
	[ "$(count "$L" 'Resetting the board into the new image')" -eq 2 ]
check "the second attempt did not upload again (slot 1 held it)" \
	[ "$(count "$L" 'Slot 1 already holds the image')" -ge 1 ]
check "the artifact was downloaded once for both attempts" \
	[ "$(count "$L" 'download verified')" -eq 1 ]
check "polling went on after giving up" [ "$checks_now" -gt "$checks_then" ]
check "... without trying the skipped offer again" \
	[ "$(count "$L" 'Update offered')" -eq 2 ]

# A new offer is tried again.
e2e_image "$T/new3.bin" 3.0.0 3 30000
e2e_artifact "$T/new3.rdfm" "$T/new3.bin" typeR 3.0.0
e2e_package "$T/new3.rdfm" 3.0.0 typeR >/dev/null
e2e_run rej2 -c "$T/rej.json" --once
check "a different offer after a restart is tried (and rejected)" \
	grep -q 'Update failed" device="rej".*reason="rejected' "$T/rej2.log"
check "--once exits non-zero after a rejection" [ "$RC" -ne 0 ]
e2e_board_stop rej

# --- no boot after the reset ------------------------------------------------
e2e_board nob serial "$T/old.bin" --no-boot || exit 1
E2E_DEVICE_JSON='{"timeouts": {"reboot": "2s", "request": "500ms"}}' \
	e2e_config "$T/nob.json" -- nob:typeR
e2e_run nob -c "$T/nob.json" --once
check "--once exits non-zero when the board never comes back" [ "$RC" -ne 0 ]
check "a reboot-deadline error names device, phase and the deadline" \
	grep -q 'level=ERROR msg="Update failed" device="nob" phase=reboot reason="the board did not answer within 2000 ms after the reset' \
	"$T/nob.log"
if [ "$RC" -eq 0 ]; then show_log "$T/nob.log"; fi

# --- self-confirm slower than the confirm deadline ------------------------------
e2e_board late udp "$T/old.bin" --self-confirm --confirm-ms 2500 || exit 1
E2E_DEVICE_JSON='{"timeouts": {"confirm": "1s"}}' \
	e2e_config "$T/late.json" -- late:typeR:self
e2e_start late -c "$T/late.json"
if wait_for_line "$T/late.log" 'Update successful' 30; then
	ok "a late self-confirm: the update completes in a later cycle"
else
	not_ok "a late self-confirm: the update completes in a later cycle" "-"
	show_log "$T/late.log"
fi
e2e_stop
check "a late self-confirm: the confirm deadline was reported" \
	grep -q 'Update failed" device="late" phase=confirm reason="the board neither confirmed nor reverted the image within 1000 ms (timeouts.confirm)' \
	"$T/late.log"
check "a late self-confirm: the next cycle finished it without a new upload or reset" \
	[ "$(count "$T/late.log" 'Uploading the new image')" -eq 1 -a "$(board_field late .counters.resets)" = 1 ]
check "a late self-confirm: the board runs the new image, confirmed" \
	[ "$(slot late 0 hash):$(slot late 0 confirmed)" = "$(image_hash "$T/new3.bin"):true" ]

# --- an upload that stalls ---------------------------------------------------
e2e_board hang udp "$T/old.bin" --hang-after 15000 || exit 1
E2E_DEVICE_JSON='{"timeouts": {"stall": "2s", "request": "1s"}}' \
	e2e_config "$T/hang.json" -- hang:typeR
e2e_run hang -c "$T/hang.json" --once
check "--once exits non-zero when the upload stalls" [ "$RC" -ne 0 ]
check "a stalled upload fails in the upload phase, naming the reason" \
	grep -Eq 'level=ERROR msg="Update failed" device="hang" phase=upload reason="(the upload made no progress for 2000 ms|.*no answer)' \
	"$T/hang.log"
check "the stalled board was not reset" \
	[ "$(board_field hang .counters.resets)" = 0 ]

done_testing
