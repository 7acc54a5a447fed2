# Helpers for the worker tests (tests/it/worker_*.sh): run one transport
# worker as a real process through ipc-drive against mcumgr-board-sim.
# Sourced after tests/lib.sh.

SIM=$BIN/mcumgr-board-sim
DRIVE=$BIN/ipc-drive
EMPTY=$T/empty
mkdir -p "$EMPTY"

# mkimage SIZE OUT SEED: an MCUboot image from the project's image writer,
# a 32-byte header, SIZE seeded bytes and 40 bytes of TLV (the file is
# SIZE + 72 bytes); prints its hash.
mkimage() {
	"$BIN/mcuboot-mkimage" --version "1.2.3+$3" --hdr-size 32 --size "$1" \
		--seed "$3" -o "$2" >/dev/null &&
		"$BIN/mcuboot-mkimage" --print-hash "$2"
}

# start_sim NAME ARGS...: a board; READY holds its address or path.
start_sim() {
	local name=$1
	shift
	bg "$SIM" "$@" >"$T/$name.out" 2>"$T/$name.err"
	SIM_PID=$!
	wait_for_line "$T/$name.out" '^READY ' 10 || return 1
	READY=$(sed -n 's/^READY [a-z]* //p' "$T/$name.out" | head -n 1)
}

# drive OUT WORKER ARGS...: ipc-drive with the worker chrooted in $EMPTY;
# its stdout in OUT, stderr in OUT.err.
drive() {
	local out=$1 worker=$2
	shift 2
	timeout -k 5 120 "$DRIVE" --chroot "$EMPTY" "$BIN/$worker" "$@" \
		>"$out" 2>"$out.err"
}

# slot_hash OUT SLOT: the hash ipc-drive printed for SLOT.
slot_hash() {
	sed -n "s/^image=0 slot=$2 .*hash=\([0-9a-f]*\).*/\1/p" "$1" | head -n 1
}
