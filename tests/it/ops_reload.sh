#!/bin/bash
# SIGHUP reloads the config while an update is in flight: the changed
# device finishes its upload and update untouched and restarts only then,
# the removed device stops (its worker ends, its board hears nothing more),
# the added device starts (its key generated) and is updated; a config
# that fails validation is refused and the running one stays.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../e2e-lib.sh"

e2e_server --auto-approve || exit 1
e2e_image "$T/old.bin" 1.0.0 1
e2e_image "$T/new.bin" 2.0.0 2 40000
new_hash=$(image_hash "$T/new.bin")
for t in typeS typeF; do
	e2e_artifact "$T/$t.rdfm" "$T/new.bin" "$t" 2.0.0
	e2e_package "$T/$t.rdfm" 2.0.0 "$t" >/dev/null
done

# One request in flight at a time and 40 ms per reply: an upload of a few
# seconds, long enough to reload in the middle of it.
e2e_board slow udp "$T/old.bin" --latency-ms 40 --buf-count 2 || exit 1
e2e_board gone udp "$T/old.bin" || exit 1
e2e_board fresh udp "$T/old.bin" || exit 1
e2e_board gm1 udp "$T/old.bin" || exit 1
e2e_board gm2 udp "$T/old.bin" || exit 1
# A worker per board (boards_per_worker 1), so a removed board's worker
# ends with it; fleet_workers.sh covers workers that serve several.
e2e_config "$T/c.json" '{"boards_per_worker": 1}' -- slow:typeS gone:typeG
E2E_DEVICE_JSON='{"update_interval": "2s"}' \
	e2e_config "$T/c2.json" '{"boards_per_worker": 1}' -- slow:typeS \
	fresh:typeF
rm -f "$T/keys/fresh.key"
# with_group CONFIG INTERVAL: add a group of two UDP boards (nothing is
# offered to its type), polled at INTERVAL.
e2e_key pair
with_group() {
	local g
	g=$(jq -cn --arg a "${BOARD_LINK[gm1]}" --arg b "${BOARD_LINK[gm2]}" \
		--arg i "$2" '{name: "pair", id: "id-pair", type: "typeP",
		key: "pair.key", update_interval: $i,
		members: [{name: "gm1", device: "gm1", transport: {type: "udp", address: $a}},
		          {name: "gm2", device: "gm2", transport: {type: "udp", address: $b}}]}')
	jq --argjson g "$g" '.groups = [$g]' "$1" >"$1.tmp" && mv "$1.tmp" "$1"
}
with_group "$T/c.json" 1s
with_group "$T/c2.json" 3s
L=$T/d.log

bg "$BIN/notify-listen" "$T/notify.sock" >"$T/notify.out" 2>"$T/notify.err"
for i in $(seq 1 50); do [ -S "$T/notify.sock" ] && break; sleep 0.1; done
cp "$T/c.json" "$T/live.json"
NOTIFY_SOCKET=$T/notify.sock e2e_start d -c "$T/live.json"
if ! wait_for_line "$L" 'msg="Uploading the new image" device="slow"' 20; then
	show_log "$L"
	exit 1
fi
sleep 1
cp "$T/c2.json" "$T/live.json"
kill -HUP "$CLIENT_PID"
wait_for_line "$L" 'msg="Configuration reloaded"' 20
check "the reload came while the upload was running" \
	eval '! grep -q "msg=\"Upload finished\" device=\"slow\"" <(sed -n "1,/Reloading the configuration/p" $L)'
check "reload: the changed device restarts once idle" \
	grep -q 'msg="Changed in the configuration; restarting it once idle" device="slow"' "$L"
check "reload: the removed device stops once idle" \
	grep -q 'msg="Removed from the configuration; stopping it once idle" device="gone"' "$L"
check "reload: three to stop, three to start" \
	grep -q 'msg="Configuration reloaded" unchanged=0 stopping=3 starting=3' "$L"
check "reload: the changed group restarts once idle" \
	grep -q 'msg="Changed in the configuration; restarting it once idle" group="pair"' "$L"
check "reload: the new device's key is generated" \
	eval 'grep -q "msg=\"Generated new key\" device=\"fresh\"" $L && [ -f $T/keys/fresh.key ]'
check "reload: RELOADING=1, then READY=1 again" \
	eval 'grep -q "^$CLIENT_PID RELOADING=1" $T/notify.out &&
	[ $(grep -c "^$CLIENT_PID READY=1" $T/notify.out) -eq 2 ]'

wait_for_line "$L" 'msg="Update successful" device="fresh"' 30
check "the added device is started and updated" \
	eval 'grep -q "msg=\"Started\" device=\"fresh\"" $L &&
	[ "$(slot fresh 0 hash):$(slot fresh 0 confirmed)" = "$new_hash:true" ]'

wait_for_line "$L" 'msg="Started" device="slow"' 40
check "the update in flight finished" \
	grep -q 'msg="Update successful" device="slow" new_version=2.0.0' "$L"
check "... with one upload and one reset, never interrupted" \
	eval '[ $(count $L "msg=\"Uploading the new image\" device=\"slow\"") -eq 1 ] &&
	[ $(board_field slow .counters.resets) = 1 ] &&
	! grep -q "Update failed.*device=\"slow\"" $L'
check "... and the board runs it, confirmed" \
	[ "$(slot slow 0 hash):$(slot slow 0 confirmed)" = "$new_hash:true" ]
check "the changed device stopped after its update, then started again" \
	eval '[ $(grep -n "msg=\"Update successful\" device=\"slow\"" $L | cut -d: -f1) -lt $(grep -n "msg=\"Stopped\" device=\"slow\"" $L | cut -d: -f1) ] &&
	[ $(grep -n "msg=\"Stopped\" device=\"slow\"" $L | cut -d: -f1) -lt $(grep -n "msg=\"Started\" device=\"slow\"" $L | cut -d: -f1) ]'
check "the removed device stopped" grep -q 'msg="Stopped" device="gone"' "$L"
check "the changed group stopped, then started again" \
	eval '[ $(grep -n "msg=\"Stopped\" group=\"pair\"" $L | cut -d: -f1) -lt $(grep -n "msg=\"Started\" group=\"pair\"" $L | cut -d: -f1) ]'
p1=$(board_field gm1 .counters.requests)
g1=$(board_field gone .counters.requests)
sleep 3
check "... and its board hears nothing more" \
	[ "$(board_field gone .counters.requests)" = "$g1" ]
# gm1 is read at its group's next cycles (every 3 s).
requests_above() { [ "$(board_field "$1" .counters.requests)" -gt "$2" ]; }
check "... and its worker is gone: one worker per remaining board" \
	[ "$(pgrep -P "$CLIENT_PID" -f rdfm-mcumgr-worker-udp | wc -l)" -eq 4 ]
check "the restarted group reads its members again" \
	eventually 10 requests_above gm1 "$p1"
# checks PATTERN-ID: update checks the server had from that device id.
checks() {
	jq -r --arg d "$1" 'select(.device == $d and .path == "/api/v1/update/check") | .path' \
		"$SLOG" | wc -l
}
s1=$(checks id-slow)
polled_since() { [ "$(checks "$1")" -gt "$2" ]; }
check "the restarted device polls again" eventually 10 polled_since id-slow "$s1"

# A broken config is refused; the running one goes on.
echo '{"server": ' >"$T/live.json"
kill -HUP "$CLIENT_PID"
wait_for_line "$L" 'Reload refused' 10
check "a broken config is refused, naming the file" \
	grep -q "msg=\"Reload refused; the running configuration stays\" error=\"$T/live.json" "$L"
f1=$(board_field fresh .counters.requests)
check "... and the daemon keeps polling its boards" \
	eventually 10 requests_above fresh "$f1"
jq '.devices[1].transport.address = "127.0.0.1"' "$T/c2.json" >"$T/live.json"
kill -HUP "$CLIENT_PID"
wait_for_line "$L" 'Reload refused.*has no port' 10
check "an invalid address is refused with its key path" \
	grep -q 'Reload refused.*devices\[1\].transport.address' "$L"

# The same config again: nothing changes.
cp "$T/c2.json" "$T/live.json"
kill -HUP "$CLIENT_PID"
wait_for_line "$L" 'msg="Configuration reloaded" unchanged=3' 10
check "an unchanged config keeps every device and group running" \
	grep -q 'msg="Configuration reloaded" unchanged=3 stopping=0 starting=0' "$L"

# A key that needs a restart is kept, with a warning.
jq --arg s "$T/other-state" '.state_dir = $s' "$T/c2.json" >"$T/live.json"
kill -HUP "$CLIENT_PID"
wait_for_line "$L" 'takes effect at the next start" key=state_dir' 10
check "a new state_dir waits for the next start" \
	eval 'grep -q "takes effect at the next start\" key=state_dir" $L && [ ! -e $T/other-state ]'

e2e_stop
check "SIGTERM after reloads: exit 0" [ "$STOP_RC" -eq 0 ]
check "no errors beyond the refused reloads" \
	eval '[ $(grep -c "level=ERROR" $L) -eq 2 ]'
if [ "$_nfail" -gt 0 ]; then show_log "$L" 60; fi

done_testing
