#!/bin/bash
# Management channel, device logs (issue 15 item 7): update outcomes and
# action runs go to POST /api/v1/logs in batches with RFC 822 timestamps
# under the device's token; a 401 gets a new token, a 5xx is retried, and a
# server without the route (404) is asked once and then left alone until
# restart.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/rdfm_lib.bash"
. "$(dirname "$0")/mgmt_lib.bash"

mgmt_server || exit 1
device_config "$T/c.json" "$(udp_dev sensor aa:01 1)"
start_drive d "$T/c.json" --log-flush-ms 500 || exit 1
wait_dev aa:01 .connected

posts() { count_log '.path == "/api/v1/logs"'; }
posts_above() { [ "$(posts)" -gt "$1" ]; }

# 0 offered, 4 updated (enum mgmt_outcome).
drive d outcome sensor 0 1.0.0 1.1.0 -1
drive d outcome sensor 4 1.0.0 1.1.0 42123
e=$(run_action aa:01 rdfm.mcumgr.echo)
wait_exec "$e" '.has_result'
check "update outcomes and the action run arrive" \
	wait_dev aa:01 '.logs | length == 3'
check "outcome entries: name and text" \
	wait_dev aa:01 '[.logs[:2][] | [.name, .entry]] == [["update",
	  "offered from 1.0.0 to 1.1.0"], ["update",
	  "updated from 1.0.0 to 1.1.0 in 42.123 s"]]'
check "action entry" \
	wait_dev aa:01 '.logs[2].name == "action" and
	  (.logs[2].entry | startswith("rdfm.mcumgr.echo on sensor: status 0"))'
check "timestamps in RFC 822 with -0000" \
	wait_dev aa:01 'all(.logs[]; .device_timestamp |
	  test("^[A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9:]{8} -0000$"))'
check "batched: the two outcomes in one request" \
	test "$(posts)" -le 2

# A server in trouble: kept and sent again.
admin POST /admin/mgmt/config '{"logs_status": 503}' >/dev/null
n=$(posts)
drive d log sensor note "while the server is in trouble"
check "5xx: tried" eventually 10 posts_above "$n"
admin POST /admin/mgmt/config '{"logs_status": 0}' >/dev/null
check "5xx: delivered once the server is back" \
	wait_dev aa:01 '.logs[-1].entry == "while the server is in trouble"' 20

# A dead token: 401, a new token, the batch again.
admin POST /admin/revoke_tokens '{}' >/dev/null
drive d log sensor note "after the tokens were revoked"
check "401: delivered with a new token" \
	wait_dev aa:01 '.logs[-1].entry == "after the tokens were revoked"' 20
check "401: was seen" \
	test "$(count_log '.path == "/api/v1/logs" and .status == 401')" -ge 1

# A server without the route: asked once, then not until restart.
admin POST /admin/mgmt/config '{"logs_route": false}' >/dev/null
n=$(posts)
drive d log sensor note one
# The second entry is made only after the first was refused with 404.
eventually 10 posts_above "$n"
drive d log sensor note two
e=$(run_action aa:01 rdfm.mcumgr.echo)
wait_exec "$e" '.has_result'
sleep 1.5
check "404: asked once" test "$(posts)" -eq $((n + 1))
check "404: said once" \
	test "$(grep -c 'The server has no POST /api/v1/logs' "$T/d.err")" -eq 1
check "driver stops cleanly" stop_drive d
check_servers
done_testing
