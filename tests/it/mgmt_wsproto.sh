#!/bin/bash
# Our WebSocket client against a server we did not write the framing of:
# tests/server/wsproto_server.py on Debian's python3-wsproto (the library
# under RDFM's server).  Handshake, a ping answered, a message in three
# fragments, compression (our client does not offer permessage-deflate, so
# the server must send plain frames and we must read them), and close 4002
# followed by a reconnection.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/mgmt_lib.bash"

if ! /usr/bin/python3 -c 'import wsproto' 2>/dev/null; then
	not_ok "python3-wsproto is installed" "run scripts/install-deps"
	done_testing
	exit
fi
LOG=$T/wsproto.log
bg /usr/bin/python3 "$SRC/tests/server/wsproto_server.py" --log "$LOG" \
	>"$T/py.out" 2>"$T/py.err"
wait_for_line "$T/py.out" '^READY ' 10 || exit 1
URL=$(sed -n 's/^READY //p' "$T/py.out")
ev() { jq -c "select($1)" "$LOG" | wc -l; }
wait_ev() {
	local i=0
	while [ "$i" -lt 150 ]; do
		[ "$(ev "$1")" -ge "${2:-1}" ] && return 0
		sleep 0.1
		i=$((i + 1))
	done
	echo "# no event $1 in: $(cat "$LOG")" >&2
	return 1
}

device_config "$T/c.json" "$(udp_dev sensor aa:01 1)"
start_drive d "$T/c.json" --backoff 100:500:1000 || exit 1

check "wsproto accepted our handshake with the token" \
	wait_ev '.event == "handshake" and .connection == 1 and .authorization_ok'
check "we offered no compression" \
	test "$(ev '.event == "handshake" and .offered_deflate')" -eq 0
check "our answer to wsproto's ping" \
	wait_ev '.event == "pong" and .payload == "are-you-there"'
check "the capability report came first" \
	test "$(jq -r 'select(.event == "message") | .method' "$LOG" | head -1)" = capability_report
check "the fragmented action_list_query was reassembled and answered" \
	wait_ev '.event == "message" and .method == "action_list_update"'
check "the server sent the next message uncompressed, as we did not offer" \
	wait_ev '.event == "sent_exec" and .compressed == false'
check "and we read it: the action ran" \
	wait_ev '.event == "message" and .method == "action_exec_result" and
	  .message.execution_id == "wsproto-1" and .message.status_code == 0'
check "our answer to close 4002 carried 4002" \
	wait_ev '.event == "close_received" and .connection == 1 and .code == 4002'
check "the client saw 4002" \
	wait_for_line "$T/d.err" 'closed with code 4002: duplicate connections not allowed' 10
check "and came back" \
	wait_ev '.event == "handshake" and .connection == 2'
check "no error on the server's side" test "$(ev '.event == "error"')" -eq 0
check "driver stops cleanly" stop_drive d
done_testing
