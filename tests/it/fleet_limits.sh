#!/bin/bash
# A fleet within the open-file limit a service gets (issue 17): 300 UDP
# boards updated by one supervisor with --once under `ulimit -n 1024` (soft
# and hard), every one of them, the artifact downloaded once for all, the
# server's connections capped; a fleet the limit cannot hold is refused
# whole, at start and by check-config, with the number it needs.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../e2e-lib.sh"

N=${FLEET_TEST_BOARDS:-300}
export E2E_NO_STATUS=1
e2e_server --auto-approve >/dev/null || exit 1
e2e_image "$T/old.bin" 1.0.0 1 2000
e2e_image "$T/new.bin" 2.0.0 2 8000
e2e_artifact "$T/new.rdfm" "$T/new.bin" fleet 2.0.0
e2e_package "$T/new.rdfm" 2.0.0 fleet >/dev/null
# Slots just large enough for the image: a thousand boards of 512 KiB
# slots would make the simulators, not the client, fill the memory.
e2e_fleet "$N" "$T/old.bin" f --slot-size 65536 || {
	not_ok "set-up: $N boards start" "$(tail -n 3 "$T/f.err")"
	done_testing
	exit
}
# A loaded machine: generous deadlines, no retry needed by design.
e2e_fleet_config "$T/c.json" "$T/f.addrs" "$T/st" \
	'{"server_connections": 4, "timeouts": {"request": "10s",
	  "erase": "60s", "reboot": "60s", "confirm": "60s", "stall": "60s"}}'

(
	ulimit -n 1024 || exit 99
	exec "$CLIENT" -c "$T/c.json" --once -v
) >"$T/run.out" 2>"$T/run.log"
rc=$?
check "the --once run under ulimit -n 1024 succeeds (status $rc)" [ "$rc" -eq 0 ]
ok_n=$(count "$T/run.log" 'msg="Update successful"')
check "all $N boards updated ($ok_n)" [ "$ok_n" -eq "$N" ]
check "nothing ran out of descriptors" \
	[ "$(count "$T/run.log" 'Too many open files|EMFILE')" -eq 0 ]
dl=$(jq -c 'select(.path | startswith("/local_storage/"))' "$SLOG" | wc -l)
check "the artifact was downloaded once for all $N boards ($dl)" [ "$dl" -eq 1 ]
conns=$(jq -r 'select(.path | startswith("/admin/") | not) | .peer_port' \
	"$SLOG" | sort -u | wc -l)
check "every request went over at most 4 connections ($conns)" \
	[ "$conns" -le 4 ]
auth=$(jq -c 'select(.path == "/api/v1/auth/device" and .status == 200)' \
	"$SLOG" | wc -l)
check "every board authenticated ($auth)" [ "$auth" -ge "$N" ]
e2e_fleet_stop

# Too many boards for the limit: refused whole, before any board or the
# server is touched.  The boards need not exist: nothing reaches them.
# With a worker per board 1100 do not fit in 1024 descriptors; sharing
# workers (32 boards each, the default) they do.
seq 1 1100 | awk '{ printf "127.0.0.1:%d\n", 20000 + $1 }' >"$T/big.addrs"
e2e_fleet_config "$T/shared.json" "$T/big.addrs" "$T/st-big"
(
	ulimit -n 1024 || exit 99
	exec "$CLIENT" check-config -c "$T/shared.json"
) >"$T/shared.out" 2>"$T/shared.err"
rc=$?
need=$(sed -n 's/^descriptors: up to \([0-9]*\),.*/\1/p' "$T/shared.out")
check "1100 boards sharing workers fit in 1024 descriptors (status $rc, $need needed)" \
	test "$rc" -eq 0 -a "${need:-9999}" -lt 200
e2e_fleet_config "$T/big.json" "$T/big.addrs" "$T/st-big" \
	'{"boards_per_worker": 1}'
(
	ulimit -n 1024 || exit 99
	exec "$CLIENT" check-config -c "$T/big.json"
) >"$T/cc.out" 2>"$T/cc.err"
rc=$?
check "check-config refuses 1100 boards under 1024 descriptors (status $rc)" \
	[ "$rc" -eq 1 ]
check "... saying how many descriptors they need and the limit" \
	grep -Eq '1100 boards need [0-9]+ open files, more than the limit of 1024' \
	"$T/cc.err"
check "... and what to change" grep -q 'LimitNOFILE=' "$T/cc.err"
check "check-config's plan shows what the fleet needs" \
	grep -Eq '^descriptors: up to [0-9]+, the limit is 1024$' \
	"$T/cc.out"
# The daemon raises a soft limit of 256 to the hard 1024 first, and
# counts against that.
before=$(wc -l <"$SLOG")
(
	ulimit -Sn 256 && ulimit -Hn 1024 || exit 99
	exec "$CLIENT" -c "$T/big.json" --once -v
) >"$T/big.out" 2>"$T/big.log"
rc=$?
check "the daemon raised its soft limit to the hard one, and said so" \
	grep -q 'level=DEBUG msg="Raised the open-file limit to the hard limit" from=256 to=1024' \
	"$T/big.log"
check "the daemon refuses to start with them (status $rc)" [ "$rc" -eq 1 ]
check "... naming the number it needs" \
	grep -Eq 'level=ERROR msg="Invalid configuration" .*1100 boards need [0-9]+ open files' \
	"$T/big.log"
check "... before it started anything" \
	[ "$(count "$T/big.log" 'Daemon started|Loaded key')" -eq 0 ]
check "... and before it asked the server anything" [ "$(wc -l <"$SLOG")" -eq "$before" ]

done_testing
