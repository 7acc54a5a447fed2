#!/bin/bash
# The running daemon as an operator sees it: readiness and stopping on a
# NOTIFY_SOCKET of our own (no systemd here), /metrics and /status on the
# loopback endpoint after a real update, the status in the log on SIGUSR1,
# a killed worker counted as a restart, and a metrics address off loopback
# refused at start-up.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../e2e-lib.sh"

e2e_server --auto-approve || exit 1
e2e_image "$T/old.bin" 1.0.0 1
e2e_image "$T/new.bin" 2.0.0 2 30000
new_size=$(stat -c %s "$T/new.bin")
e2e_artifact "$T/a.rdfm" "$T/new.bin" typeA 2.0.0
e2e_package "$T/a.rdfm" 2.0.0 typeA >/dev/null

e2e_board a udp "$T/old.bin" || exit 1
e2e_config "$T/c.json" '{"metrics": "127.0.0.1:0"}' -- a:typeA
# The daemon generates this key (RSA-3072, most of a second): readiness
# sent too early would be seen before the key is there.
rm -f "$T/keys/a.key"

# --- readiness ---------------------------------------------------------------
bg "$BIN/notify-listen" "$T/notify.sock" >"$T/notify.out" 2>"$T/notify.err"
for i in $(seq 1 50); do [ -S "$T/notify.sock" ] && break; sleep 0.1; done
NOTIFY_SOCKET=$T/notify.sock e2e_start d -c "$T/c.json"
if wait_for_line "$T/notify.out" 'READY=1' 20; then
	# The log as it stood when readiness arrived.
	cp "$T/d.log" "$T/at-ready.log"
	ok "READY=1 reaches the notification socket"
else
	not_ok "READY=1 reaches the notification socket" "$(cat "$T/notify.out")"
fi
check "READY=1 comes from the daemon's own pid" \
	grep -q "^$CLIENT_PID READY=1" "$T/notify.out"
check "readiness follows the key's generation and the daemon's start" \
	eval 'grep -q "msg=\"Generated new key\" device=\"a\"" $T/at-ready.log &&
	grep -q "msg=\"Daemon started\"" $T/at-ready.log'
check "readiness carries a status line" \
	grep -q "^$CLIENT_PID STATUS=Updating 1 device and 0 groups" \
	"$T/notify.out"

# --- metrics and status after an update ---------------------------------------
wait_for_line "$T/d.log" 'Serving /metrics' 10
PORT=$(sed -n 's/.*msg="Serving \/metrics and \/status".* port=\([0-9]*\).*/\1/p' \
	"$T/d.log")
check "the endpoint's port is logged" [ -n "$PORT" ]
M=http://127.0.0.1:$PORT
if ! wait_for_line "$T/d.log" 'msg="Update successful" device="a"' 30; then
	show_log "$T/d.log"
fi
# The next check (1 s later) finds the board up to date.
for i in $(seq 1 50); do
	curl -s "$M/metrics" >"$T/metrics.txt"
	grep -q 'rdfm_mcumgr_last_check_result{kind="device",name="a",result="up-to-date"} 1' \
		"$T/metrics.txt" && break
	sleep 0.2
done
metric() { grep -F "$1" "$T/metrics.txt" | awk '{ print $NF }'; }
check "/metrics: one attempt and one success" \
	[ "$(metric 'rdfm_mcumgr_update_attempts_total{kind="device",name="a"}'):$(metric 'rdfm_mcumgr_update_successes_total{kind="device",name="a"}')" = 1:1 ]
check "/metrics: the bytes uploaded are the image's size" \
	[ "$(metric 'rdfm_mcumgr_uploaded_bytes_total{kind="device",name="a"}')" = "$new_size" ]
check "/metrics: a last upload rate above zero" \
	awk -v r="$(metric 'rdfm_mcumgr_last_upload_rate_bytes_per_second{kind="device",name="a"}')" \
	'BEGIN { exit !(r > 0) }'
check "/metrics: the running version is the new one" \
	grep -qF 'rdfm_mcumgr_running_version_info{kind="device",name="a",version="2.0.0"} 1' \
	"$T/metrics.txt"
check "/metrics: the last check found it up to date" \
	grep -qF 'rdfm_mcumgr_last_check_result{kind="device",name="a",result="up-to-date"} 1' \
	"$T/metrics.txt"
check "/metrics: the last check time is recent" \
	awk -v t="$(metric 'rdfm_mcumgr_last_check_timestamp_seconds{kind="device",name="a"}')" \
	-v now="$(date +%s)" 'BEGIN { exit !(now - t < 30 && t <= now) }'
check "/metrics: no failures, no worker restarts" \
	eval '! grep -q "^rdfm_mcumgr_update_failures_total{" $T/metrics.txt &&
	[ "$(metric "rdfm_mcumgr_worker_restarts_total{kind=\"device\",name=\"a\"}")" = 0 ]'
check "/metrics is Prometheus text" \
	eval 'curl -s -o /dev/null -w "%{content_type}" "$M/metrics" | grep -q "^text/plain; version=0.0.4"'

curl -s "$M/status" >"$T/status.json"
check "/status: JSON with the device, its version and counters" \
	jq -en 'input | .devices[] | select(.name == "a" and .kind == "device" and
		.running_version == "2.0.0" and .successes == 1 and
		.attempts == 1 and .bytes_uploaded == '"$new_size"')' \
	"$T/status.json" >/dev/null
# (libevent answers a method it was told not to allow with 501)
check "/status: other methods are refused" \
	[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$M/status")" = 501 ]

# --- SIGUSR1 ---------------------------------------------------------------
kill -USR1 "$CLIENT_PID"
if wait_for_line "$T/d.log" 'msg="Status" device="a"' 10; then
	ok "SIGUSR1 writes the status to the log"
else
	not_ok "SIGUSR1 writes the status to the log" "-"
fi
check "the status line names version and counters" \
	grep -q 'msg="Status" device="a" state=[a-z-]* running_version="2.0.0" .*successes=1 .*bytes_uploaded='"$new_size" \
	"$T/d.log"

# --- a killed worker is restarted and counted --------------------------------
wpid=$(pgrep -P "$CLIENT_PID" -f rdfm-mcumgr-worker-udp | head -n 1)
check "set-up: the UDP worker runs" [ -n "$wpid" ]
kill -KILL "$wpid"
for i in $(seq 1 100); do
	curl -s "$M/metrics" >"$T/metrics.txt"
	[ "$(metric 'rdfm_mcumgr_worker_restarts_total{kind="device",name="a"}')" = 1 ] && break
	sleep 0.1
done
check "/metrics counts the worker restart" \
	[ "$(metric 'rdfm_mcumgr_worker_restarts_total{kind="device",name="a"}')" = 1 ]
check "the restarted worker is a new process" \
	eval 'n=$(pgrep -P $CLIENT_PID -f rdfm-mcumgr-worker-udp); [ -n "$n" ] && [ "$n" != "$wpid" ]'

# --- stopping ----------------------------------------------------------------
e2e_stop
check "SIGTERM: exit 0" [ "$STOP_RC" -eq 0 ]
check "SIGTERM: STOPPING=1 reaches the notification socket" \
	grep -q "^$CLIENT_PID STOPPING=1" "$T/notify.out"
check "the endpoint is gone with the daemon" \
	eval '! curl -s -m 2 "$M/metrics" >/dev/null'

# --- refusals ------------------------------------------------------------------
jq '.metrics = "0.0.0.0:9"' "$T/c.json" >"$T/open.json"
e2e_run open -c "$T/open.json" --once
check "a metrics address off loopback stops the daemon before any board" \
	eval '[ $RC -ne 0 ] && grep -q "not a loopback address" $T/open.log &&
	! grep -q "Update offered" $T/open.log'
# Without NOTIFY_SOCKET nothing is sent and nothing fails.
e2e_run plain -c "$T/c.json" --once
check "without NOTIFY_SOCKET the daemon runs the same" [ "$RC" -eq 0 ]

done_testing
