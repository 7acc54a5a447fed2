#!/bin/bash
# Management channel, configuration through the real binary: check-config
# shows what each device and group offers, how many descriptors the fleet
# needs with the channel on, and refuses a bad key naming it.
. "$(dirname "$0")/../lib.sh"

cat >"$T/c.json" <<JSON
{"server": "http://127.0.0.1:5000", "key_dir": "$T/keys",
 "upload_hosts": ["s3.example.com"], "file_max_bytes": 1000000,
 "devices": [{"name": "sensor", "id": "aa:01", "dev_type": "t", "key": "s.pem",
   "shell": true, "file_paths": ["/lfs/logs"],
   "transport": {"type": "udp", "address": "127.0.0.1:1"},
   "actions": [{"id": "uptime", "command": ["kernel", "uptime"], "timeout": "5s"}]}],
 "groups": [{"name": "pair", "id": "g", "type": "gt", "key": "g.pem",
   "actions": [{"id": "up", "member": "left", "command": ["kernel", "uptime"]}],
   "members": [{"name": "left", "device": "l", "shell": true,
     "transport": {"type": "udp", "address": "127.0.0.1:2"}},
     {"name": "right", "device": "r",
     "transport": {"type": "udp", "address": "127.0.0.1:3"}}]}]}
JSON
"$BIN/rdfm-mcumgr-client" check-config -c "$T/c.json" >"$T/out" 2>"$T/err"
check "check-config accepts the management keys" test $? -eq 0
has() { grep -qF -- "$2" "$1"; }
check "a device's shell and file paths" has "$T/out" "  management: shell on, files under /lfs/logs"
check "a device's action" has "$T/out" "  action uptime: shell kernel uptime (timeout 5000 ms)"
check "a group's action names its member" has "$T/out" "  action up on left: shell kernel uptime"
check "a member's shell" has "$T/out" "    management: shell on, files off"
check "the channel's summary" \
	has "$T/out" "management: on, file_max_bytes 1000000, upload_hosts s3.example.com"
# 24 for the daemon + 1 worker for the 3 UDP boards + 8 x 3 + 2 for the
# server = 51; + 7 x 2 entries for the channel = 65.
check "descriptors with and without the channel" \
	has "$T/out" "descriptors: up to 65 with the management channel (51 without)"
jq '.management = false' "$T/c.json" >"$T/off.json"
"$BIN/rdfm-mcumgr-client" check-config -c "$T/off.json" >"$T/out" 2>&1
check "management false: said" has "$T/out" "management: off"
check "management false: fewer descriptors" has "$T/out" "descriptors: up to 51,"
jq '.devices[0].file_paths = ["/lfs/../etc"]' "$T/c.json" >"$T/bad.json"
"$BIN/rdfm-mcumgr-client" check-config -c "$T/bad.json" >"$T/out" 2>&1
rc=$?
check "a bad file path: refused" test "$rc" -ne 0
check "a bad file path: the key path and the reason" \
	has "$T/out" 'devices[0].file_paths[0]: "/lfs/../etc": the path has a "." or ".." component'
jq '.groups[0].actions[0].member = "nobody"' "$T/c.json" >"$T/bad2.json"
"$BIN/rdfm-mcumgr-client" check-config -c "$T/bad2.json" >"$T/out" 2>&1
check "an action on no member: refused with the key path" \
	has "$T/out" 'groups[0].actions[0].member: "nobody" is not a member of this group'
# Serial boards cost the most: a worker socket and a tty each.
check "the unit's LimitNOFILE covers the documented 5000 devices" \
	sh -c "grep -q '^LimitNOFILE=1024:65536' '$SRC/etc/rdfm-mcumgr-client.service' &&
	  [ \$((24 + 26 + 17 + 2 * 5000 + 7 * 5000)) -le 65536 ]"
done_testing
