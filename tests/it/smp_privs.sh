#!/bin/bash
# The workers the `smp` command starts run sandboxed: no_new_privs set and a
# seccomp filter installed (read from /proc/<pid>/status while one works),
# the IPC socket on fd 3, and when started as root another user and a
# chroot.
. "$(dirname "$0")/../lib.sh"

CLI=$BIN/rdfm-mcumgr-client
SIM=$BIN/mcumgr-board-sim
MK=$BIN/mcuboot-mkimage

start_sim() {
	local name=$1
	shift
	bg "$SIM" --state "$T/$name.state" --status "$T/$name.status" "$@" \
		>"$T/$name.out" 2>"$T/$name.err"
	SIM_PID=$!
	wait_for_line "$T/$name.out" '^READY ' 10 || return 1
	READY=$(sed -n 's/^READY [a-z]* //p' "$T/$name.out" | head -n 1)
}

# worker_of CLI_PID KIND: the worker the command started, once it is there.
worker_of() {
	local i p
	for i in $(seq 1 100); do
		p=$(pgrep -P "$1" -f "rdfm-mcumgr-worker-$2")
		[ -n "$p" ] && { echo "$p"; return 0; }
		sleep 0.05
	done
	return 1
}

# check_sandbox NAME PID
check_sandbox() {
	local st
	st=$(cat "/proc/$2/status" 2>/dev/null)
	check "$1 worker has NoNewPrivs" grep -q $'^NoNewPrivs:\t1$' <<<"$st"
	check "$1 worker is in seccomp filter mode" \
		grep -q $'^Seccomp:\t2$' <<<"$st"
	check "$1 worker holds its IPC socket on fd 3" \
		bash -c "readlink /proc/$2/fd/3 | grep -q '^socket:'"
	if [ "$(id -u)" -eq 0 ]; then
		check "$1 worker dropped root" \
			[ "$(awk '/^Uid:/ {print $2 $3 $4 $5}' <<<"$st")" != 0000 ]
		check "$1 worker is chrooted" \
			[ "$(readlink "/proc/$2/root")" != / ]
	fi
	check "$1 worker's parent is the smp command" \
		[ "$(awk '/^PPid:/ {print $2}' "/proc/$2/status")" = "$3" ]
}

"$MK" --version 1.0.0 --size 20000 --seed 41 -o "$T/old.bin" >/dev/null
"$MK" --version 1.1.0 --size 200000 --seed 42 -o "$T/new.bin" >/dev/null

# A slow board keeps the worker busy long enough to look at it.
start_sim u --udp 127.0.0.1:0 --image "$T/old.bin" --flash-us-per-kb 5000 ||
	not_ok "udp simulator" "no READY"
"$CLI" smp --transport udp --address "$READY" image upload "$T/new.bin" \
	>/dev/null 2>"$T/u.err" &
cli=$!
w=$(worker_of $cli udp)
check "the udp worker runs" [ -n "$w" ]
sleep 0.3
[ -n "$w" ] && check_sandbox udp "$w" "$cli"
wait $cli
check "the sandboxed udp worker finished the upload" [ $? -eq 0 ]
kill "$SIM_PID" 2>/dev/null

start_sim s --serial "$T/tty" --image "$T/old.bin" --flash-us-per-kb 5000 ||
	not_ok "serial simulator" "no READY"
"$CLI" smp --transport serial --device "$T/tty" image upload "$T/new.bin" \
	>/dev/null 2>"$T/s.err" &
cli=$!
w=$(worker_of $cli serial)
check "the serial worker runs" [ -n "$w" ]
sleep 0.3
[ -n "$w" ] && check_sandbox serial "$w" "$cli"
check "the serial worker holds the tty it was handed" \
	bash -c "ls -l /proc/$w/fd | grep -q '/dev/pts/'"
wait $cli
check "the sandboxed serial worker finished the upload" [ $? -eq 0 ]

done_testing
