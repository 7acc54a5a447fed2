# The real Zephyr SMP server (../shared/zephyr-peer) for the tests that
# use it as the referee; sourced after lib.sh.  It must run: a test that
# needs it fails, never skips, when it cannot (CI has ../shared beside the
# repository).
PEER_DIR=$SHARED/zephyr-peer
PEER_START=$PEER_DIR/start-smp-server.sh

# peer_start FLASH: start (or "boot" again) the board on its flash file;
# sets PEER_PID and PEER_PTY.  1 with the reason on stderr when it cannot.
peer_start() {
	local flash=$1 line
	if [ ! -x "$PEER_START" ] || [ ! -x "$PEER_DIR/zephyr.exe" ]; then
		echo "# the Zephyr peer is missing: $PEER_DIR" >&2
		return 1
	fi
	if ! line=$("$PEER_START" "$flash" 2>"$flash.start-err"); then
		echo "# the Zephyr peer did not start: $(cat "$flash.start-err")" >&2
		return 1
	fi
	PEER_PID=$(sed -n 's/^PID=\([0-9]*\) .*/\1/p' <<<"$line")
	PEER_PTY=$(sed -n 's/.* PTY=\(.*\)$/\1/p' <<<"$line")
	[ -n "$PEER_PID" ] && [ -c "$PEER_PTY" ] || {
		echo "# unexpected start line: $line" >&2
		return 1
	}
	_bg_pids+=("$PEER_PID")
}

# peer_gone [SECONDS]: until the board's process has exited (a reset).
peer_gone() {
	local i
	for i in $(seq 1 $((${1:-5} * 20))); do
		kill -0 "$PEER_PID" 2>/dev/null || return 0
		sleep 0.05
	done
	return 1
}

peer_stop() {
	kill "$PEER_PID" 2>/dev/null
	peer_gone 5
}
