#!/bin/bash
# Management channel, update progress and version (issue 15 item 3):
# whole percent while the image uploads, a percentage sent once, 100 when
# the update ends (kept until a connection takes it), the new version at
# once and retried across reconnections, a drop in the middle of an
# update, and a group's progress under the group's identity.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/rdfm_lib.bash"
. "$(dirname "$0")/mgmt_lib.bash"

mgmt_server || exit 1
mgmt_key grp
device_config "$T/c.json" "$(udp_dev sensor aa:01 1)"
jq --arg k "$T/keys" '.groups = [{name: "pair", id: "gg:01", type: "gt",
    key: "grp.pem", members: [
      {name: "left", device: "l", transport: {type: "udp", address: "127.0.0.1:2"}},
      {name: "right", device: "r", transport: {type: "udp", address: "127.0.0.1:3"}}]}]' \
	"$T/c.json" >"$T/c2.json"
start_drive d "$T/c2.json" --backoff 100:500:1000 || exit 1
check "device and group connect" \
	sh -c "$(declare -f mdev wait_dev admin); URL=$URL; wait_dev aa:01 .connected && wait_dev gg:01 .connected"

for p in "0 1000" "5 1000" "10 1000" "19 1000" "505 1000" "506 1000" "999 1000"; do
	drive d progress sensor $p
done
drive d ended sensor
check "progress: whole percent, each change once, 100 at the end" \
	wait_dev aa:01 '.progress == [0, 1, 50, 99, 100]'
drive d version sensor 1.1.0
check "version: the new one at once" wait_dev aa:01 '.version == "1.1.0"'

# A drop in the middle of an update: progress goes on over the next
# connection; what comes while the device is away is not kept, except 100
# and the version.
drive d progress sensor 30 100
wait_dev aa:01 '.progress[-1] == 30'
admin POST /admin/mgmt/config '{"refuse_ws": 503}' >/dev/null
admin POST /admin/mgmt/drop '{"device": "aa:01"}' >/dev/null
wait_dev aa:01 '.connected == false' 5
drive d progress sensor 60 100
drive d ended sensor
drive d version sensor 1.2.0
sleep 1
admin POST /admin/mgmt/config '{"refuse_ws": 0}' >/dev/null
check "drop mid-update: reconnected" wait_dev aa:01 '.connected and .connections == 2' 15
check "drop mid-update: 100 and the version came over the new connection" \
	wait_dev aa:01 '.progress[-1] == 100 and .version == "1.2.0"'
check "drop mid-update: progress made while away was not replayed" \
	test "$(mdev aa:01 | jq '[.progress[] | select(. == 60)] | length')" -eq 0
check "versions reported, in order" \
	wait_dev aa:01 '.versions == ["1.1.0", "1.2.0"]'

# After the rollback of a group: the version every member runs.
for p in "0 300" "150 300" "300 300"; do
	drive d progress pair $p
done
drive d ended pair
drive d version pair 2.0.0
check "group: progress and version under the group's id" \
	wait_dev gg:01 '.progress == [0, 50, 99, 100] and .version == "2.0.0"'
check "group: nothing under the members' names" \
	test "$(admin GET /admin/mgmt/devices | jq 'keys | length')" -eq 2
check "driver stops cleanly" stop_drive d
check_servers
done_testing
