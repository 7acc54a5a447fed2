#!/bin/bash
# End to end, the server's side of a long update: a device that is not yet
# approved waits quietly and updates once approved; its token expires
# (--token-expiry 2) during an upload over a slow serial line, and the next
# check authenticates again instead of failing.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../e2e-lib.sh"

e2e_server --token-expiry 2 || exit 1
e2e_image "$T/old.bin" 1.0.0 1
e2e_image "$T/new.bin" 2.0.0 2 24000
new_hash=$(image_hash "$T/new.bin")
e2e_artifact "$T/new.rdfm" "$T/new.bin" typeS 2.0.0
e2e_package "$T/new.rdfm" 2.0.0 typeS >/dev/null
# 57600 baud: the upload takes several seconds, longer than the token.
e2e_board slow serial "$T/old.bin" --baud 57600 || exit 1
e2e_config "$T/c.json" -- slow:typeS
e2e_start ap -c "$T/c.json"
L=$T/ap.log

wait_for_line "$L" 'waiting for approval' 15
sleep 3
check "unapproved: one INFO line" \
	[ "$(count "$L" 'level=INFO msg="waiting for approval')" -eq 1 ]
check "unapproved: no error lines while waiting" \
	[ "$(count "$L" 'level=ERROR')" -eq 0 ]
check "unapproved: polling went on (several 401s)" \
	[ "$(jq -c 'select(.path == "/api/v1/auth/device" and .status == 401)' "$SLOG" | wc -l)" -ge 2 ]
check "unapproved: the board is untouched" \
	[ "$(board_field slow .counters.resets)" = 0 ]

admin POST /admin/approve '{"id":"id-slow"}' >/dev/null
if wait_for_line "$L" 'Update successful' 50; then
	ok "approved: the board is updated"
else
	not_ok "approved: the board is updated" "no success line"
	show_log "$L"
fi
up_s=$(sed -n 's/.*msg="Upload finished".* seconds=\([0-9.]*\).*/\1/p' "$L")
check "the upload took longer than the token lives (${up_s}s > 2s)" \
	awk -v s="$up_s" 'BEGIN { exit !(s > 2.0) }'
check "upload progress lines with percent and bytes/s" \
	grep -Eq 'msg="Uploading" device="slow" percent=[0-9.]+ bytes=[0-9]+ total=24[0-9]+ bytes_per_s=[0-9]+' "$L"
# The check after the update needs a fresh token.
for i in $(seq 1 50); do
	[ "$(jq -c 'select(.path == "/api/v1/update/check" and .status == 204)' "$SLOG" | wc -l)" -ge 1 ] && break
	sleep 0.2
done
e2e_stop
check "after the long upload the client authenticated again" \
	[ "$(jq -c 'select(.path == "/api/v1/auth/device" and .status == 200)' "$SLOG" | wc -l)" -ge 2 ]
check "... and the next check succeeded (204: up to date)" \
	[ "$(jq -c 'select(.path == "/api/v1/update/check" and .status == 204)' "$SLOG" | wc -l)" -ge 1 ]
check "no failure at all" [ "$(count "$L" 'level=ERROR')" -eq 0 ]
check "the board runs the new image, confirmed" \
	[ "$(slot slow 0 hash):$(slot slow 0 confirmed)" = "$new_hash:true" ]

done_testing
