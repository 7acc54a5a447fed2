#!/bin/bash
# End to end, SIGTERM in the middle of an upload: the daemon stops cleanly
# within 10 s and the next start resumes the upload where the board left
# off.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../e2e-lib.sh"

e2e_server --auto-approve || exit 1
e2e_image "$T/old.bin" 1.0.0 1
e2e_image "$T/new.bin" 2.0.0 2 60000
new_hash=$(image_hash "$T/new.bin")
e2e_artifact "$T/new.rdfm" "$T/new.bin" typeS 2.0.0
e2e_package "$T/new.rdfm" 2.0.0 typeS >/dev/null

# --- SIGTERM mid-upload -------------------------------------------------------
e2e_board slow serial "$T/old.bin" --baud 57600 || exit 1
e2e_config "$T/slow.json" -- slow:typeS
e2e_start term -c "$T/slow.json"
for i in $(seq 1 200); do
	off=$(board_field slow .upload.offset)
	[ "${off:-0}" -gt 15000 ] && break
	sleep 0.1
done
check "set-up: the upload is under way" [ "${off:-0}" -gt 15000 ]
kill -TERM "$CLIENT_PID"
for i in $(seq 1 120); do
	kill -0 "$CLIENT_PID" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$CLIENT_PID" 2>/dev/null; then
	not_ok "SIGTERM: the client exits within 10 s" "still running"
	kill -9 "$CLIENT_PID"
else
	ok "SIGTERM: the client exits within 10 s"
fi
wait "$CLIENT_PID"
check "SIGTERM: exit status 0" [ $? -eq 0 ]
check "SIGTERM: the upload was stopped, not failed" \
	grep -q 'msg="Upload stopped; it resumes at the next start" device="slow"' \
	"$T/term.log"
check "SIGTERM: no error line" [ "$(count "$T/term.log" 'level=ERROR')" -eq 0 ]
part=$(board_field slow .upload.offset)
check "SIGTERM: the board holds part of the image (${part} bytes)" \
	[ "$part" -gt 0 -a "$part" -lt 60552 ]
check "SIGTERM: the journal says uploading" \
	grep -q '"uploading"' "$T/state/journal/"*
e2e_run resume -c "$T/slow.json" --once
check "resume: --once completes the update" [ "$RC" -eq 0 ]
check "resume: the upload went on from the board's offset, not from 0" \
	grep -Eq 'msg="upload resumes" offset=[1-9][0-9]{3,}' "$T/resume.log"
check "resume: the board runs the new image, confirmed" \
	[ "$(slot slow 0 hash):$(slot slow 0 confirmed)" = "$new_hash:true" ]
if [ "$RC" -ne 0 ]; then show_log "$T/resume.log"; fi
e2e_board_stop slow

done_testing
