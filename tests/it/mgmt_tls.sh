#!/bin/bash
# Management channel over TLS: wss:// for an https:// server, verified with
# the ca_file the HTTP API uses (a server certificate from a test CA made
# here); without that CA the channel never comes up and says why, once; file
# parts and device logs go over https too.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/rdfm_lib.bash"
. "$(dirname "$0")/mgmt_lib.bash"

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=testca \
	-keyout "$T/ca.key" -out "$T/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 \
	-keyout "$T/srv.key" -out "$T/srv.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$T/ext"
openssl x509 -req -in "$T/srv.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" \
	-CAcreateserial -days 2 -extfile "$T/ext" -out "$T/srv.pem" 2>/dev/null
CURL_CA=$T/ca.pem
mgmt_server --cert "$T/srv.pem" --key "$T/srv.key" || exit 1
check "server URL is https" test "${URL#https://}" != "$URL"
board_file sensor /lfs/a.bin 20000
device_config "$T/c.json" "$(udp_dev sensor aa:01 1 '{"file_paths": ["/lfs"]}')"
jq --arg ca "$T/ca.pem" '.ca_file = $ca' "$T/c.json" >"$T/tls.json"

start_drive d "$T/tls.json" --log-flush-ms 300 || exit 1
check "wss: connected with the CA" wait_dev aa:01 .connected
e=$(run_action aa:01 rdfm.mcumgr.echo)
check "wss: an action round trip" wait_exec "$e" '.status_code == 0'
f=$(admin POST /admin/mgmt/fs '{"device": "aa:01", "file": "/lfs/a.bin", "part_size": 8000}' | jq -r .probe_id)
check "https: file parts uploaded" \
	sh -c "for i in \$(seq 100); do curl -s --cacert '$T/ca.pem' '$URL/admin/mgmt/fs?probe_id=$f' | jq -e '.state == \"done\" and .nparts == 3' >/dev/null && exit 0; sleep 0.1; done; exit 1"
drive d log sensor note "over https"
check "https: device logs" wait_dev aa:01 '.logs[-1].entry == "over https"'
check "driver stops cleanly" stop_drive d

# Without the CA: TLS verification fails; nothing reaches the server.
n=$(count_log '.path == "/api/v1/devices/ws"')
start_drive d2 "$T/c.json" --backoff 100:300:500 --down-log-ms 1500 || exit 1
# The down line after 1.5 s, then a second more of retries to be sure it
# is said once.
eventually 15 grep -q 'level=WARN msg="Management channel down"' "$T/d2.err"
sleep 1
check "no CA: never connected" test "$(count_log '.path == "/api/v1/devices/ws"')" -eq "$n"
check "no CA: said once" \
	test "$(grep -c 'level=WARN msg="Management channel down"' "$T/d2.err")" -eq 1
check "no CA: the device could not even authenticate (the same CA)" \
	grep -q 'Management channel down.*no token' "$T/d2.err"
check "driver stops cleanly" stop_drive d2
check_servers
done_testing
