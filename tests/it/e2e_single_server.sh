#!/bin/bash
# End to end, trouble before the board: a server that is down, answers 5xx
# or offers the wrong sha256, and artifacts that must be refused (wrong
# device type, not an MCUboot payload).  Each is reported, retried as
# configured, and never touches the board.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../e2e-lib.sh"

# untouched NAME: no upload, no reset, slot 1 still empty.
untouched() {
	[ "$(board_field "$1" .counters.resets)" = 0 ] &&
		[ "$(board_field "$1" '.upload.len')" = 0 ] &&
		[ "$(slot "$1" 1 hash)" = null ]
}

e2e_server --auto-approve || exit 1
e2e_image "$T/old.bin" 1.0.0 1
e2e_image "$T/new.bin" 2.0.0 2 30000
new_hash=$(image_hash "$T/new.bin")
e2e_artifact "$T/new.rdfm" "$T/new.bin" typeA 2.0.0
e2e_board a udp "$T/old.bin" || exit 1

# --- server down --------------------------------------------------------------
realurl=$URL
URL=http://127.0.0.1:1 e2e_config "$T/down.json" -- a:typeA
URL=$realurl
e2e_run down -c "$T/down.json" --once
check "server down: --once exits non-zero" [ "$RC" -ne 0 ]
check "server down: one error naming the device and the check phase" \
	grep -q 'level=ERROR msg="Update failed" device="a" phase=check reason=' \
	"$T/down.log"
check "server down: the board is untouched" untouched a

# --- 5xx, then recovery -------------------------------------------------------
e2e_package "$T/new.rdfm" 2.0.0 typeA >/dev/null
e2e_config "$T/c.json" '{"retries": 2}' -- a:typeA
admin POST /admin/faults '{"error_rate": 1, "error_status": 503}' >/dev/null
e2e_start f5 -c "$T/c.json"
# (The server's backoff grows with the management channel's failed
# authentications too: the second check may come several seconds later.)
twice() {
	local i
	for i in $(seq 1 150); do
		[ "$(count "$T/f5.log" 'Update failed.*phase=check')" -ge 2 ] &&
			return 0
		sleep 0.1
	done
	return 1
}
if wait_for_line "$T/f5.log" 'Update failed.*phase=check.*503' 15 && twice; then
	ok "5xx: every failed check is reported and retried"
else
	not_ok "5xx: every failed check is reported and retried" "see log"
	show_log "$T/f5.log"
fi
check "5xx: no WARN: a server fault is no attempt at an offer" \
	[ "$(count "$T/f5.log" 'Giving up')" -eq 0 ]
check "5xx: the board is untouched" untouched a
admin POST /admin/faults '{"reset": true}' >/dev/null
if wait_for_line "$T/f5.log" 'Update successful' 30; then
	ok "5xx: once the server recovers the board is updated"
else
	not_ok "5xx: once the server recovers the board is updated" "no success"
	show_log "$T/f5.log"
fi
e2e_stop
check "5xx: the board runs the new image" [ "$(slot a 0 hash)" = "$new_hash" ]
e2e_board_stop a

# --- wrong sha256 ------------------------------------------------------------
e2e_board b udp "$T/old.bin" || exit 1
e2e_artifact "$T/newB.rdfm" "$T/new.bin" typeB 2.0.0
e2e_package "$T/newB.rdfm" 2.0.0 typeB >/dev/null
e2e_config "$T/b.json" '{"retries": 2}' -- b:typeB
admin POST /admin/faults '{"wrong_sha": true}' >/dev/null
e2e_start ws -c "$T/b.json"
if wait_for_line "$T/ws.log" 'Giving up on this update' 30; then
	ok "wrong sha: retried, then given up with one WARN"
else
	not_ok "wrong sha: retried, then given up with one WARN" "no WARN"
	show_log "$T/ws.log"
fi
check "wrong sha: two failures in the download phase" \
	[ "$(count "$T/ws.log" 'Update failed" device="b" phase=download')" -eq 2 ]
check "wrong sha: the board is untouched" untouched b
admin POST /admin/faults '{"reset": true}' >/dev/null
if wait_for_line "$T/ws.log" 'Update successful' 30; then
	ok "wrong sha: the right offer (a new sha256) is taken at once"
else
	not_ok "wrong sha: the right offer (a new sha256) is taken at once" "-"
	show_log "$T/ws.log"
fi
e2e_stop
e2e_board_stop b

# --- broken artifacts ---------------------------------------------------------
e2e_board c udp "$T/old.bin" || exit 1
e2e_config "$T/cc.json" -- c:typeC
# Registered for typeC, but the artifact says typeA.
e2e_package "$T/new.rdfm" 2.0.0 typeC >/dev/null
e2e_run wt -c "$T/cc.json" --once
check "wrong device type: --once exits non-zero" [ "$RC" -ne 0 ]
check "wrong device type: refused, naming the types" \
	grep -q 'Update failed" device="c" phase=artifact reason="artifact refused: it is for device types \[typeA\], not \\"typeC\\"' \
	"$T/wt.log"
check "wrong device type: the board is untouched" untouched c
head -c 30000 /dev/urandom >"$T/junk.bin"
e2e_artifact "$T/junk.rdfm" "$T/junk.bin" typeC 2.0.1
e2e_package "$T/junk.rdfm" 2.0.1 typeC >/dev/null
e2e_run nm -c "$T/cc.json" --once
check "not an MCUboot payload: --once exits non-zero" [ "$RC" -ne 0 ]
check "not an MCUboot payload: refused as an artifact" \
	grep -q 'Update failed" device="c" phase=artifact reason="artifact refused: ' \
	"$T/nm.log"
check "not an MCUboot payload: the board is untouched" untouched c
if ! untouched c; then show_log "$T/nm.log"; fi

done_testing
