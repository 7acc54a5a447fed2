#!/bin/bash
# Privilege separation of the workers: a running worker has no_new_privs
# and a seccomp filter (and, as root, runs as nobody inside the empty
# chroot); a worker made to create a file inside the sandbox is killed.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/worker_lib.bash"

start_sim b --udp 127.0.0.1:0 || {
	not_ok "simulator starts" "no READY line"
	exit 1
}

for w in rdfm-mcumgr-worker-udp rdfm-mcumgr-worker-serial \
	rdfm-mcumgr-worker-ble; do
	if [ $w = rdfm-mcumgr-worker-serial ]; then
		start_sim s --serial "$T/tty0" || exit 1
		link=(--serial "$T/tty0")
	elif [ $w = rdfm-mcumgr-worker-ble ]; then
		start_sim g --ble "@rdfm-p-$$" || exit 1
		link=(--ble-att "@rdfm-p-$$" --peer "rdfm-p-$$")
	else
		link=(--udp "$READY")
	fi
	bg timeout -k 5 60 "$DRIVE" --chroot "$EMPTY" --hold 3 "$BIN/$w" \
		"${link[@]}" echo up >"$T/$w.out" 2>"$T/$w.err"
	wait_for_line "$T/$w.out" '^reply status=OK' 20 || true
	pid=$(sed -n 's/^hello .* pid=\([0-9]*\)/\1/p' "$T/$w.out")
	st=$(cat "/proc/$pid/status" 2>/dev/null)
	check "$w: no_new_privs set" grep -q '^NoNewPrivs:[[:space:]]*1' \
		<<<"$st"
	check "$w: seccomp filter on" grep -q '^Seccomp:[[:space:]]*2' <<<"$st"
	if [ "$(id -u)" -eq 0 ]; then
		check "$w: runs as nobody" \
			grep -q "^Uid:[[:space:]]*$(id -u nobody)[[:space:]]" \
			<<<"$st"
		check "$w: chrooted into the empty directory" \
			[ "$(readlink "/proc/$pid/root")" = "$EMPTY" ]
	else
		check "$w: warns that it cannot switch user" \
			grep -q 'not started as root' "$T/$w.err"
	fi

	RDFM_WORKER_TEST_FORBIDDEN=open drive "$T/$w.forbid" $w \
		"${link[@]}" echo never
	check "$w: creating a file kills the worker (SIGSYS)" \
		grep -q '^worker signal=31' "$T/$w.forbid"
	check "$w: no file was created" [ ! -e "$EMPTY/rdfm-sandbox-test" ]
done

done_testing
