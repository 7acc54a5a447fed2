# The real Zephyr SMP server (../shared/zephyr-peer) for the tests that
# use it as the referee; sourced after lib.sh.  It must run: a test that
# needs it fails, never skips, when it cannot (CI has ../shared beside the
# repository).
PEER_DIR=$SHARED/zephyr-peer
PEER_START=$PEER_DIR/start-smp-server.sh
# Every peer process started, also from subshells (the keeper): the exit
# trap ends them all, as the peer leaves its shell (setsid).
PEER_PIDS=$T/peer.pids
: >"$PEER_PIDS"
peer_reap() {
	local p
	while read -r p; do kill "$p" 2>/dev/null; done <"$PEER_PIDS"
}
trap 'peer_reap; _cleanup' EXIT

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
	[ -n "$PEER_PID" ] && echo "$PEER_PID" >>"$PEER_PIDS"
	[ -n "$PEER_PID" ] && [ -c "$PEER_PTY" ] || {
		echo "# unexpected start line: $line" >&2
		return 1
	}
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

# peer_flash FLASH IMAGE: a new flash file whose slot 0 holds IMAGE, so the
# peer runs it as a board would (it has no MCUboot to put it there).  The
# layout is the peer build's: 2 MiB, slot 0 at 0xc000 and slot 1 at
# 0x75000, 0x69000 bytes each (an upload lands in slot 1 at 0x75000).
peer_flash() {
	head -c 2097152 /dev/zero | tr '\0' '\377' >"$1" &&
		dd if="$2" of="$1" bs=4096 seek=12 conv=notrunc status=none
}

# peer_keeper FLASH LINK: in the background, keep the peer running as a
# board that reboots: whenever its process exits (a reset), start it
# again on FLASH and point the symlink LINK at its new pseudo-terminal.
# Start it with `peer_keeper ... &`; the exit trap ends the peers.
peer_keeper() {
	local flash=$1 link=$2
	trap - EXIT
	peer_start "$flash" || exit 1
	ln -sfn "$PEER_PTY" "$link"
	while :; do
		if ! kill -0 "$PEER_PID" 2>/dev/null; then
			sleep 0.3 # a reboot takes a moment
			peer_start "$flash" || exit 1
			ln -sfn "$PEER_PTY" "$link"
		fi
		sleep 0.1
	done
}
