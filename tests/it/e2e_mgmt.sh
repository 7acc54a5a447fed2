#!/bin/bash
# End to end, what an RDFM operator sees on the management channel while
# the daemon updates real (virtual) boards: the progress of a single board
# and of a group climbing to 100, the new version right after the update,
# built-in and configured actions run on the boards with their output, an
# action refused while an update holds the board, a shell line run over SMP,
# and a file fetched from a board's file system.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../e2e-lib.sh"
. "$(dirname "$0")/e2e_group_lib.bash"
. "$(dirname "$0")/mgmt_lib.bash"

e2e_server --auto-approve --ws-ping 2 || exit 1
e2e_image "$T/old.bin" 1.0.0 1
e2e_image "$T/new.bin" 2.0.0 2 120000
e2e_artifact "$T/new.rdfm" "$T/new.bin" typeM 2.0.0
e2e_package "$T/new.rdfm" 2.0.0 typeM >/dev/null
group_images 2.0.0 40 g1 g2
group_artifact "$T/g.rdfm" gmt 2.0.0 g1="$T/g1.new.bin" g2="$T/g2.new.bin"
e2e_package "$T/g.rdfm" 2.0.0 gmt >/dev/null

# A slow board, so that the update is still running when an action comes,
# with a file on its flash file system (put there before the daemon holds
# the link).
e2e_board a udp "$T/old.bin" --flash-us-per-kb 15000 || exit 1
head -c 5000 /dev/urandom >"$T/log.txt"
"$CLIENT" smp --address "${BOARD_LINK[a]}" fs upload "$T/log.txt" \
	/lfs/log.txt >/dev/null 2>&1
e2e_board g1 udp "$T/g1.old.bin" || exit 1
e2e_board g2 udp "$T/g2.old.bin" || exit 1

E2E_DEVICE_JSON='{"shell": true, "file_paths": ["/lfs"],
  "update_interval": "2s",
  "actions": [{"id": "uptime", "name": "Uptime", "description": "How long",
               "command": ["kernel", "uptime"], "timeout": "5s"}]}' \
	e2e_config "$T/a.json" -- a:typeM
group_config "$T/g.json" '{}' gm:gmt g1 g2
jq -s '.[0] + {groups: .[1].groups}' "$T/a.json" "$T/g.json" >"$T/c.json"
e2e_start d -c "$T/c.json"
L=$T/d.log

check "the device's channel comes up, with its capabilities" \
	wait_dev id-a '.connected and .capabilities.action and .capabilities.shell and .capabilities.filesystem' 20
check "the group's channel comes up" wait_dev id-gm '.connected' 20

# While the upload runs: an action must not reach the board.
wait_for_line "$L" 'msg="Uploading the new image" device="a"' 20
e=$(run_action id-a rdfm.mcumgr.echo)
check "an action during the update is refused: busy" \
	wait_exec "$e" '.output == "busy: update in progress"' 10

check "single board: progress climbs to 100" \
	wait_dev id-a '(.progress | length) >= 4 and .progress[-1] == 100 and
	  ([.progress[] | select(. > 0 and . < 100)] | length) >= 2' 60
check "single board: the new version right after the update" \
	wait_dev id-a '.version == "2.0.0"' 10
check "... which the log says succeeded" \
	grep -q 'msg="Update successful" device="a"' "$L"
check "... and the server's device record holds it (update_version)" \
	eval 'admin GET /admin/devices |
		jq -e ".[] | select(.id == \"id-a\") | .software_version == \"2.0.0\"" >/dev/null'
check "group: progress over both members climbs to 100" \
	wait_dev id-gm '.progress[-1] == 100' 60
check "group: the version every member runs" \
	wait_dev id-gm '.version == "2.0.0"' 10

# Between cycles, the boards are the channel's.
e=$(run_action id-a rdfm.mcumgr.echo)
check "built-in action (echo): status 0, the board's reply" \
	wait_exec "$e" '.status_code == 0 and .output == "rdfm-mcumgr-client"'
e=$(run_action id-a uptime)
check "configured action: the board's shell command ran" \
	wait_exec "$e" '.status_code == 0 and (.output | test("[0-9]"))'
e=$(run_action id-a rdfm.mcumgr.image_list)
check "image list action: the board's slots" \
	wait_exec "$e" '.status_code == 0 and (.output | test("slot 0 version 2.0.0"))'
e=$(run_action id-gm "rdfm.mcumgr.echo@g2")
check "a group member's action names the member" \
	wait_exec "$e" '.status_code == 0'

u=$(admin POST /admin/mgmt/shell '{"device": "id-a"}' | jq -r .uuid)
# shell_has TEXT: the session's output holds TEXT (within 10 s).
shell_has() {
	local i
	for i in $(seq 1 100); do
		[[ "$(admin GET "/admin/mgmt/shell?uuid=$u" | jq -r .output)" == *"$1"* ]] &&
			return 0
		sleep 0.1
	done
	return 1
}
check "shell: the session opens with the board's prompt" shell_has 'a$ '
admin POST /admin/mgmt/shell/input \
	"$(jq -cn --arg u "$u" '{uuid: $u, keys: "echo hello board\r"}')" >/dev/null
check "shell: a line runs on the board and its output comes back" \
	shell_has $'hello board\r\na$ '
admin POST /admin/mgmt/shell/close "{\"uuid\": \"$u\"}" >/dev/null

f=$(admin POST /admin/mgmt/fs '{"device": "id-a", "file": "/lfs/log.txt"}' |
	jq -r .probe_id)
ok_fs=0
for i in $(seq 1 200); do
	admin GET "/admin/mgmt/fs?probe_id=$f" | jq -e '.state == "done"' >/dev/null &&
		{ ok_fs=1; break; }
	sleep 0.1
done
check "file: fetched whole from the board" \
	eval '[ "$ok_fs" -eq 1 ] && [ "$(admin GET "/admin/mgmt/fs?probe_id=$f" | jq -r .sha256)" = "$(sha256sum "$T/log.txt" | cut -d" " -f1)" ]'

e=$(run_action id-a rdfm.builtins.trigger_update_check)
check "update check action: the daemon checks at once" \
	wait_exec "$e" '.status_code == 0'
e2e_stop
check "the daemon stops cleanly" [ "$STOP_RC" -eq 0 ]
check "no error in the daemon's log" \
	eval '! grep -q "level=ERROR" "$L"'

done_testing
