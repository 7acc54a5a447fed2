#!/bin/bash
# Management channel, file download (issue 15 items 6 and 8): probe, then
# parts read from the board and PUT to the upload URLs with their ETags
# (quoted ones kept as they are); a file over the limit is refused; the
# path rules hold on the probe and again on the download; the upload URLs
# must be as many as the parts, http(s), not redirected and on the
# server's host or a configured one; an update that starts ends a
# transfer; boards without file_paths or the fs group get nothing.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/rdfm_lib.bash"
. "$(dirname "$0")/mgmt_lib.bash"

mgmt_server || exit 1
mgmt_key grp
board_file sensor /lfs/logs/small.txt 3000
board_file sensor /lfs/logs/multi.bin 150000
board_file sensor /lfs/logs/big.bin 250000
board_file sensor /lfs/logs/empty.txt 0
board_file sensor /lfs/secret.txt 100
board_file sensor /lfs/logsX/a.txt 100
board_file left /data/x.bin 5000
device_config "$T/c.json" \
	"$(udp_dev sensor aa:01 1 '{"file_paths": ["/lfs/logs"], "file_max_bytes": 200000}')" \
	"$(udp_dev plain aa:02 2)"
jq '.groups = [{name: "pair", id: "gg:01", type: "gt", key: "grp.pem",
    members: [
      {name: "left", device: "l", file_paths: ["/data"],
       transport: {type: "udp", address: "127.0.0.1:3"}},
      {name: "right", device: "r",
       transport: {type: "udp", address: "127.0.0.1:4"}}]}]' \
	"$T/c.json" >"$T/c2.json"
start_drive d "$T/c2.json" || exit 1
wait_dev aa:01 .connected && wait_dev aa:02 .connected && wait_dev gg:01 .connected

# fetch DEV FILE [EXTRA-JSON]: asks for a file; prints the probe id.
fetch() {
	admin POST /admin/mgmt/fs "$(jq -cn --arg d "$1" --arg f "$2" \
		--argjson x "${3:-{\}}" '{device: $d, file: $f} + $x')" | jq -r .probe_id
}
wait_fs() {
	local id=$1 filter=$2 i=0
	while [ "$i" -lt 200 ]; do
		admin GET "/admin/mgmt/fs?probe_id=$id" | jq -e "$filter" >/dev/null && return 0
		sleep 0.1
		i=$((i + 1))
	done
	echo "# file request $id: $(admin GET "/admin/mgmt/fs?probe_id=$id")" >&2
	return 1
}
sha() { sha256sum "$1" | cut -d' ' -f1; }
reads() { count_board d "op=fs-read path=$1"; }

check "capabilities: filesystem where file_paths are set" \
	wait_dev aa:01 '.capabilities.filesystem'
check "capabilities: no filesystem without file_paths" \
	wait_dev aa:02 '.capabilities.filesystem == false'

f=$(fetch aa:01 /lfs/logs/small.txt)
check "small file: probed, one part, ETag back, assembled" \
	wait_fs "$f" ".state == \"done\" and .size == 3000 and .nparts == 1 and
	  .sha256 == \"$(sha "$T/boards/sensor/lfs/logs/small.txt")\""
check "small file: read from the board in SMP-sized chunks" \
	test "$(reads /lfs/logs/small.txt)" -eq 6

f=$(fetch aa:01 /lfs/logs/multi.bin '{"part_size": 64000, "quoted": true}')
check "three parts, quoted ETags returned exactly, file intact" \
	wait_fs "$f" ".state == \"done\" and .nparts == 3 and .etags_match and
	  (.etags | all(startswith(\"\\\"\"))) and
	  .sha256 == \"$(sha "$T/boards/sensor/lfs/logs/multi.bin")\""
check "each part went to its own URL" \
	test "$(count_log '.method == "OTHER" and (.path | test("/parts/q"))')" -eq 3

f=$(fetch aa:01 /lfs/logs/nothere.txt)
check "a file that is not there: status 1" \
	wait_fs "$f" '.state == "failed" and .probe_status == 1'
f=$(fetch aa:01 /lfs/logs/empty.txt)
check "an empty file: probed as 0 bytes, not fetched" \
	wait_fs "$f" '.state == "failed" and .probe_status == 0 and .size == 0'
f=$(fetch aa:01 /lfs/logs/big.bin)
check "over file_max_bytes: refused at the probe" \
	wait_fs "$f" '.state == "failed" and .probe_status == 1'
check "over file_max_bytes: said so" grep -q 'larger than file_max_bytes' "$T/d.err"
check "over file_max_bytes: no byte read" test "$(reads /lfs/logs/big.bin)" -eq 0

# The path rules, before anything reaches the board.
n=$(count_board d 'op=fs')
for p in /lfs/secret.txt /lfs/logsX/a.txt /lfs/logs/../secret.txt \
	/lfs//logs/small.txt /lfs/logs/./small.txt lfs/logs/small.txt \
	/lfs/logs/ '' "/lfs/logs/$(printf 'a\tb')"; do
	f=$(fetch aa:01 "$p")
	check "path \"$p\": status 1" wait_fs "$f" '.probe_status == 1'
done
check "refused paths: nothing reached the board" \
	test "$(count_board d 'op=fs')" -eq "$n"
check "refused paths: said once" \
	test "$(grep -c 'WARN.*outside file_paths; refused' "$T/d.err")" -eq 1
check "refused paths: the bad path said once too" \
	test "$(grep -c 'WARN.*a file request with a bad path; refused' "$T/d.err")" -eq 1

# The path again on the download: the probe named an allowed file.
f=$(fetch aa:01 /lfs/logs/small.txt '{"download_file": "/lfs/secret.txt"}')
check "download names another path: status 1" \
	wait_fs "$f" '.probe_status == 0 and .download_status == 1'
check "download names another path: no byte of it read" \
	test "$(reads /lfs/secret.txt)" -eq 0

# The URLs.
for x in '{"nurls_delta": 1}' '{"nurls_delta": -1}' \
	'{"urls": ["file:///etc/passwd"]}' '{"urls": ["ftp://127.0.0.1/x"]}' \
	"{\"urls\": [\"${URL/127.0.0.1/localhost}/local_storage_multipart/parts/x\"]}" \
	'{"urls": ["http://u:p@127.0.0.1/x"]}' \
	"{\"urls\": [\"${URL}/local_storage_multipart/parts/redirect-stolen\"]}"; do
	n=$(reads /lfs/logs/small.txt)
	f=$(fetch aa:01 /lfs/logs/small.txt "$x")
	check "upload URLs $x: status 1" wait_fs "$f" '.download_status == 1'
done
check "a redirect was not followed" \
	test "$(count_log '.path | test("/parts/stolen")')" -eq 0
check "a URL to another host was not used" \
	test "$(count_log '.path == "/local_storage_multipart/parts/x"')" -eq 0
check "the URL rules said why" grep -q 'neither the server.s nor in upload_hosts' "$T/d.err"

# An update that starts ends the transfer (status 1); busy refuses.
check "driver stops cleanly" stop_drive d
start_drive d "$T/c2.json" --op-delay-ms 100 || exit 1
wait_dev aa:01 '.connected and .connections == 2'
f=$(fetch aa:01 /lfs/logs/multi.bin '{"part_size": 64000}')
wait_fs "$f" '.state == "downloading"'
sleep 1
drive d started sensor
check "update started: the download ends with status 1" \
	wait_fs "$f" '.download_status == 1'
n=$(reads /lfs/logs/multi.bin)
sleep 1
check "update started: no more reads" test "$(reads /lfs/logs/multi.bin)" -eq "$n"
drive d busy sensor on
f=$(fetch aa:01 /lfs/logs/small.txt)
check "busy: the probe is refused" wait_fs "$f" '.probe_status == 1'
drive d busy sensor off

# Devices and boards without files.
f=$(fetch aa:02 /lfs/logs/small.txt)
check "no file_paths: status 1" wait_fs "$f" '.probe_status == 1'
f=$(fetch gg:01 left:/data/x.bin)
check "group: member:path fetched" \
	wait_fs "$f" ".state == \"done\" and .sha256 == \"$(sha "$T/boards/left/data/x.bin")\""
drive d unsupported pair 0 fs
check "the daemon says a member lacks the fs group: the group's capability goes" \
	wait_dev gg:01 '.capabilities.filesystem == false'
f=$(fetch gg:01 left:/data/x.bin)
check "and its files are refused" wait_fs "$f" '.probe_status == 1'
f=$(fetch gg:01 right:/data/x.bin)
check "group: a member without file_paths: status 1" wait_fs "$f" '.probe_status == 1'
f=$(fetch gg:01 /data/x.bin)
check "group: no member named: status 1" wait_fs "$f" '.probe_status == 1'
touch "$T/boards/sensor/.nofs"
f=$(fetch aa:01 /lfs/logs/small.txt)
check "no fs group on the board: status 1" wait_fs "$f" '.probe_status == 1'
check "no fs group: the capability goes" wait_dev aa:01 '.capabilities.filesystem == false'
check "driver stops cleanly" stop_drive d

# Another host, when the config names it.
jq '.upload_hosts = ["LocalHost"]' "$T/c2.json" >"$T/c3.json"
rm -f "$T/boards/sensor/.nofs"
start_drive d "$T/c3.json" || exit 1
wait_dev aa:01 '.connected and .connections == 3'
f=$(fetch aa:01 /lfs/logs/small.txt "{\"urls\": [\"${URL/127.0.0.1/localhost}/local_storage_multipart/parts/hostpart\"]}")
check "upload_hosts: the named host is used" \
	wait_fs "$f" '.download_status == 0'
check "driver stops cleanly" stop_drive d
check_servers
done_testing
