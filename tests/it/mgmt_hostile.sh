#!/bin/bash
# Management channel, a hostile server (issue 15 item 8): malformed JSON,
# messages of the wrong shape, oversized messages, frames that break RFC
# 6455, binary frames, unknown methods, actions not listed, device-side
# messages coming back, a flood, and shell_attach with a bad uuid or
# another device's mac.  Each is logged once with the reason; the device
# never crashes, comes back when the connection had to go, and no board
# operation happens that the config did not allow.  (File paths and
# upload URLs: mgmt_files.sh.)
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/rdfm_lib.bash"
. "$(dirname "$0")/mgmt_lib.bash"

mgmt_server || exit 1
device_config "$T/c.json" "$(udp_dev sensor aa:01 1 '{"shell": true}')" \
	"$(udp_dev other aa:02 2)"
start_drive d "$T/c.json" --backoff 100:500:1000 --flood 100 || exit 1
wait_dev aa:01 .connected && wait_dev aa:02 .connected

warned() { grep -c "level=WARN.*$1" "$T/d.err"; }
# said PATTERN N: the log has N lines matching (the first a warning, the
# rest at debug level): every message sent was handled.
said() { [ "$(grep -c "$1" "$T/d.err")" -ge "$2" ]; }
conns() { mdev aa:01 | jq .connections; }
still_up() { wait_dev aa:01 ".connected and .connections == $1" 15; }
ops() { count_board d 'dev=sensor'; }
n0=$(ops)

for msg in '{not json' '[1, 2]' '42' '{"m": 1}' '{"method": 5}' \
	'{"method": "action_exec", "execution_id": 7, "action_id": "x"}' \
	'{"method": "action_exec", "execution_id": "e"}' \
	'{"method": "fs_file_download", "id": "d", "file": "/x", "upload_urls": null, "part_size": 1}' \
	'{"method": "shell_attach", "mac_addr": "aa:01", "uuid": "'"$(head -c 300 /dev/zero | tr '\0' x)"'"}'; do
	send_raw aa:01 "$(jq -cn --arg t "$msg" '{text: $t}')"
done
eventually 20 said 'a malformed message; ignored' 9
check "malformed messages: logged once" test "$(warned 'a malformed message; ignored')" -eq 1
check "malformed messages: each named in the log" \
	test "$(grep -c 'a malformed message; ignored' "$T/d.err")" -eq 9
check "malformed messages: the connection stays" still_up 1

send_raw aa:01 '{"text": "{\"method\": \"fs_file_delete\", \"file\": \"/\"}"}'
send_raw aa:01 '{"text": "{\"method\": \"reboot\"}"}'
send_raw aa:01 '{"text": "{\"method\": \"action_exec_result\", \"execution_id\": \"nope\", \"status_code\": 0, \"output\": \"\"}"}'
eventually 20 said 'a method we do not know; ignored' 3
check "unknown methods (and our own messages sent back): logged once" \
	test "$(warned 'a method we do not know; ignored')" -eq 1
check "unknown methods: named" grep -q 'method="action_exec_result"' "$T/d.err"

send_raw aa:01 '{"binary_b64": "AAECAw=="}'
send_raw aa:01 '{"binary_b64": "AAECAw=="}'
eventually 20 said 'a binary message; ignored' 2
check "binary frames: logged once, ignored" test "$(warned 'a binary message; ignored')" -eq 1
check "binary frames: the connection stays" still_up 1

e=$(admin POST /admin/mgmt/exec '{"device": "aa:01", "action_id": "rm -rf", "force": true}' | jq -r .execution_id)
admin POST /admin/mgmt/exec '{"device": "aa:01", "action_id": "evil", "force": true}' >/dev/null
check "an action not listed: refused with an error result" \
	wait_exec "$e" '.control == "ok" and .status_code == -1 and
	  (.output | test("no such action"))'
check "an action not listed: logged once" \
	test "$(warned 'an action this device does not offer')" -eq 1

# The same action_exec 300 times: a flood, and one run.
e=$(run_action aa:01 rdfm.mcumgr.echo flood-1)
wait_exec "$e" '.has_result'
send_raw aa:01 '{"text": "{\"method\":\"action_exec\",\"execution_id\":\"flood-1\",\"action_id\":\"rdfm.mcumgr.echo\"}", "repeat": 300}'
# Every copy answered (the wait), then what the log and the board saw.
check "flood: its result not sent again on the same connection" \
	wait_exec flood-1 '.results == 1 and .controls == 301'
check "flood: logged once" test "$(warned 'more than the limit of messages a second')" -eq 1
check "flood: the repeated execution ran once" test "$(count_board d 'dev=sensor board=sensor op=echo')" -eq 1
check "flood: the connection stays" still_up 1

a=$(admin GET /admin/mgmt/stats | jq .shell_attaches)
send_raw aa:01 '{"text": "{\"method\":\"shell_attach\",\"mac_addr\":\"aa:01\",\"uuid\":\"../../../../admin/mgmt/config\"}"}'
send_raw aa:01 '{"text": "{\"method\":\"shell_attach\",\"mac_addr\":\"aa:01\",\"uuid\":\"0b3e9a5c-1d2f-4a6b-8c7d-9e0f1a2b3c4d/x\"}"}'
send_raw aa:01 '{"text": "{\"method\":\"shell_attach\",\"mac_addr\":\"aa:02\",\"uuid\":\"0b3e9a5c-1d2f-4a6b-8c7d-9e0f1a2b3c4d\"}"}'
send_raw aa:01 '{"text": "{\"method\":\"shell_attach\",\"mac_addr\":\"aa:01/../x\",\"uuid\":\"0b3e9a5c-1d2f-4a6b-8c7d-9e0f1a2b3c4d\"}"}'
sleep 1
check "shell_attach with a uuid that is not one: refused, logged once" \
	test "$(warned 'uuid that is not a UUID')" -eq 1
check "shell_attach for another device: refused, logged once" \
	test "$(warned 'shell_attach names another device')" -eq 1
check "shell_attach refusals: no socket opened" \
	test "$(admin GET /admin/mgmt/stats | jq .shell_attaches)" -eq "$a"
check "no other board operation came of all this" test "$(ops)" -eq $((n0 + 1))

# Frames that break the protocol: the device closes, logs, comes back.
c=1
for hex in 8185010203046966676865 c1026869 83026869 09026869 8102fffe; do
	send_raw aa:01 "{\"raw_hex\": \"$hex\"}"
	c=$((c + 1))
	check "bad frame $hex: the device came back" still_up "$c"
done
check "bad frames: logged once with the reason" \
	test "$(warned 'the server sent a bad frame')" -eq 1
check "bad frames: the code the device closed with is in the log" \
	grep -q 'error="closed with code 1002' "$T/d.err"
check "invalid UTF-8: closed with 1007" grep -q 'closed with code 1007' "$T/d.err"

send_raw aa:01 '{"oversize": 2000000}'
c=$((c + 1))
check "an oversized message: the device came back" still_up "$c"
check "an oversized message: logged once" \
	test "$(warned 'a message over the size limit')" -eq 1
check "the other device saw nothing of it" \
	wait_dev aa:02 '.connected and .connections == 1'
check "no board operation for the other device" test "$(count_board d 'dev=other')" -eq 0
check "driver stops cleanly" stop_drive d
check_servers
done_testing
