# Helpers for the worker tests (tests/it/worker_*.sh): run one transport
# worker as a real process through ipc-drive against mcumgr-board-sim.
# Sourced after tests/lib.sh.

SIM=$BIN/mcumgr-board-sim
DRIVE=$BIN/ipc-drive
EMPTY=$T/empty
mkdir -p "$EMPTY"

# mkimage SIZE OUT SEED: an MCUboot image (header, body, SHA-256 TLV);
# prints its hash.  Python's standard library only.
mkimage() {
	python3 - "$@" <<'PY'
import hashlib, random, struct, sys
size, out, seed = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
rnd = random.Random(seed)
body = bytes(rnd.getrandbits(8) for _ in range(size))
hdr = struct.pack('<IIHHIIBBHII', 0x96f3b83d, 0, 32, 0, size, 0,
                  1, 2, 3, seed, 0)
h = hashlib.sha256(hdr + body).digest()
tlv = struct.pack('<HHBBH', 0x6907, 40, 0x10, 0, 32) + h
open(out, 'wb').write(hdr + body + tlv)
print(h.hex())
PY
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
