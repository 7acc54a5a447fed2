#!/bin/bash
# About 1100 idle connections to the metrics port of a running daemon (as
# a hostile local process would open them), with the daemon held to the
# usual limit of 1024 descriptors: it keeps at most its connection limit
# open, spends next to no CPU, goes on checking for updates without "Too
# many open files", and serves /status again once the flood is gone.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../e2e-lib.sh"

e2e_server --auto-approve || exit 1
e2e_image "$T/v1.bin" 1.0.0 1
e2e_board a udp "$T/v1.bin" || exit 1
e2e_config "$T/c.json" '{"metrics": "127.0.0.1:0"}' -- a:typeA
e2e_start d -c "$T/c.json"
if ! wait_for_line "$T/d.log" 'msg="Serving /metrics and /status"' 20; then
	not_ok "the daemon serves metrics" "$(show_log "$T/d.log")"
	done_testing
	exit
fi
PORT=$(sed -n 's/.*msg="Serving \/metrics and \/status".* port=\([0-9]*\).*/\1/p' "$T/d.log")
prlimit --pid "$CLIENT_PID" --nofile=1024:1024
# Wait until it has checked with the server once: its descriptors settle.
for _ in $(seq 100); do
	[ "$(jq -c 'select(.path == "/api/v1/update/check")' "$SLOG" | wc -l)" -ge 1 ] && break
	sleep 0.1
done
fds() { ls "/proc/$CLIENT_PID/fd" | wc -l; }
ticks() { awk '{ print $14 + $15 }' "/proc/$CLIENT_PID/stat"; }
checks() { jq -c 'select(.path == "/api/v1/update/check")' "$SLOG" | wc -l; }
base_fds=$(fds)
echo "# daemon: $base_fds descriptors before the flood"

HOLD=8
t0=$(date +%s%N)
c0=$(ticks)
k0=$(checks)
bg "$BIN/conn-flood" --port "$PORT" --count 1100 --hold "$HOLD" >"$T/flood.out" 2>&1
FPID=$!
wait_for_line "$T/flood.out" '^opened=1100' 10 >/dev/null
sleep 3
during=$(fds)
echo "# daemon: $during descriptors during the flood"
check "the flood holds at most the connection limit open (16, +4)" \
	test "$during" -le $((base_fds + 16 + 4))
wait "$FPID"
c1=$(ticks)
wall=$((($(date +%s%N) - t0) / 10000000)) # in 1/100 s, as ticks
k1=$(checks)
cat "$T/flood.out" | sed 's/^/# /'
echo "# daemon CPU during the flood: $((c1 - c0)) ticks of $wall"
check "the daemon stays idle under the flood (CPU < 25 % of the time)" \
	test $((c1 - c0)) -lt $((wall / 4))
check "it went on checking for updates meanwhile" test "$k1" -gt "$k0"
check "no descriptor ran out" \
	sh -c "! grep -q 'Too many open files' '$T/d.log'"
check "the limit was logged, once" \
	test "$(grep -c 'connection limit reached' "$T/d.log")" -eq 1
got=
for _ in $(seq 150); do
	if curl -s -m 2 -o "$T/status.json" "http://127.0.0.1:$PORT/status" &&
		jq -e '.devices[0].name == "a"' "$T/status.json" >/dev/null 2>&1; then
		got=1
		break
	fi
	sleep 0.2
done
check "/status answers once the flood is gone" test -n "$got"
# What the kernel still queued is taken in and dropped, a batch at a time.
for _ in $(seq 150); do
	after=$(fds)
	[ "$after" -le $((base_fds + 2)) ] && break
	sleep 0.2
done
check "the descriptors are back ($after)" test "$after" -le $((base_fds + 2))
e2e_stop
check "the daemon stops cleanly" test "$STOP_RC" -eq 0
check "no sanitizer report" sh -c "! grep -Eq 'Sanitizer|runtime error' '$T/d.log'"

done_testing
