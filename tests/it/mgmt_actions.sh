#!/bin/bash
# Management channel, actions (issue 15 items 2 and 4): the capability
# report and action list a device sends, built-in and configured actions
# run on the (fake) board with their output, status and the control
# message, refusals while an update holds the board, a full queue, and
# deduplication by execution id, including an action queued while the
# device was offline and sent again at every reconnection.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/rdfm_lib.bash"
. "$(dirname "$0")/mgmt_lib.bash"

mgmt_server || exit 1
device_config "$T/c.json" \
	"$(udp_dev sensor aa:01 1 '{"shell": true, "file_paths": ["/lfs"],
	   "actions": [
	     {"id": "uptime", "name": "Uptime", "description": "How long",
	      "command": ["echo", "up", "42"], "timeout": "3s"},
	     {"id": "broken", "command": ["fail"]},
	     {"id": "slow", "command": ["sleep", "1500"], "timeout": "10s"}]}')"
start_drive d "$T/c.json" || exit 1

check "device connects and reports capabilities" \
	wait_dev aa:01 '.connected and .capabilities ==
	  {action: true, shell: true, filesystem: true, update_progress: true}'
check "action list: built-ins and the configured ones" \
	wait_dev aa:01 '[.actions[].action_id] == [
	  "rdfm.builtins.trigger_update_check", "rdfm.mcumgr.reset",
	  "rdfm.mcumgr.confirm", "rdfm.mcumgr.image_list", "rdfm.mcumgr.echo",
	  "uptime", "broken", "slow"]'
check "a configured action shows its command and timeout" \
	wait_dev aa:01 '.actions[5] == {action_id: "uptime", action_name:
	  "Uptime", description: "How long", command: ["echo", "up", "42"],
	  timeout: 3}'
first=$(mdev aa:01 | jq -r '.messages[0].data | fromjson | .method')
check "first message is capability_report" test "$first" = capability_report

# Each built-in and configured action: "ok" at once, then its result.
e=$(run_action aa:01 rdfm.mcumgr.echo)
check "echo: control ok and status 0" \
	wait_exec "$e" '.control == "ok" and .status_code == 0'
check "echo: output is the board's reply" \
	wait_exec "$e" '.output == "rdfm-mcumgr-client"'
e=$(run_action aa:01 uptime)
check "configured action: status 0, output of the shell command" \
	wait_exec "$e" '.status_code == 0 and .output == "up 42"'
check "configured action ran as SMP shell exec with its argv and timeout" \
	grep -q '^BOARD dev=sensor board=sensor op=shell argv=echo,up,42 timeout_ms=3000' "$T/d.out"
e=$(run_action aa:01 broken)
check "failing command: its return value is the status" \
	wait_exec "$e" '.status_code == 3 and .output == "it failed\n"'
for a in reset confirm image_list; do
	e=$(run_action aa:01 "rdfm.mcumgr.$a")
	check "$a: status 0" wait_exec "$e" '.status_code == 0'
done
check "reset, confirm and image list reached the board once each" \
	test "$(count_board d 'op=(reset|confirm|image-list)')" -eq 3
e=$(run_action aa:01 rdfm.builtins.trigger_update_check)
check "update check: status 0" wait_exec "$e" '.status_code == 0'
check "update check: the daemon was asked" \
	wait_for_line "$T/d.out" '^CHECK-NOW dev=sensor' 5

# Busy: a journal entry exists, nothing reaches the board.
n=$(count_board d .)
drive d busy sensor on
wait_for_line "$T/d.out" '^OK busy' 5
e=$(run_action aa:01 uptime)
check "busy: refused with the output the issue names" \
	wait_exec "$e" '.control == "ok" and .status_code == -1 and
	  .output == "busy: update in progress"'
check "busy: no board operation" test "$(count_board d .)" -eq "$n"
drive d busy sensor off

# A queue of 4 per board: the fifth gets "full" and never runs.
ids=()
for i in 1 2 3 4 5 6; do
	ids+=("$(run_action aa:01 slow)")
done
check "queue full: the excess gets \"full\"" \
	wait_exec "${ids[5]}" '.control == "full"'
check "queue: the first ones are accepted" \
	wait_exec "${ids[0]}" '.control == "ok"'
check "queue: accepted ones finish in order" \
	wait_exec "${ids[3]}" '.status_code == 0' 30
check "queue: a refused one never ran" \
	test "$(exec_json "${ids[5]}" | jq .has_result)" = false

# The same execution id twice while it runs: one run, one result.
n=$(count_board d 'argv=sleep')
e=$(run_action aa:01 slow)
run_action aa:01 slow "$e" >/dev/null
check "duplicate execution id: one result" \
	wait_exec "$e" '.status_code == 0 and .results == 1 and .controls == 2'
check "duplicate execution id: ran once on the board" \
	test "$(count_board d 'argv=sleep')" -eq $((n + 1))

# Offline: queued on the server, sent at the next connection (after the
# capability report and action list), sent again at every reconnection
# until a result comes, and run once.
check "driver stops cleanly" stop_drive d
wait_dev aa:01 '.connected == false' 10
n=$(count_board d 'argv=sleep')
e=$(run_action aa:01 slow)
check "offline action is queued (202)" \
	test "$(exec_json "$e" | jq .offline)" = true
start_drive d "$T/c.json" || exit 1
wait_exec "$e" '.sent >= 1' 20
# Drop the connection while the action runs: the server sends it again.
admin POST /admin/mgmt/drop '{"device": "aa:01"}' >/dev/null
check "offline action: sent again after the reconnection" \
	wait_exec "$e" '.sent >= 2' 20
check "offline action: one result, status 0" \
	wait_exec "$e" '.has_result and .status_code == 0 and .results >= 1' 30
check "offline action: ran once on the board" \
	test "$(count_board d 'argv=sleep')" -eq $((n + 1))
check "driver stops cleanly" stop_drive d
check_servers
done_testing
