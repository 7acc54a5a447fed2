#!/bin/bash
# A 1 MiB upload over a serial link with 5 % of frames corrupted.  The image
# must arrive whole: slot 1's hash equals the image's.
. "$(dirname "$0")/../lib.sh"

CLI=$BIN/rdfm-mcumgr-client
SIM=$BIN/mcumgr-board-sim
MK=$BIN/mcuboot-mkimage

start_sim() {
	local name=$1
	shift
	bg "$SIM" --state "$T/$name.state" --status "$T/$name.status" \
		--slot-size 2097152 "$@" >"$T/$name.out" 2>"$T/$name.err"
	SIM_PID=$!
	wait_for_line "$T/$name.out" '^READY ' 10 || return 1
	READY=$(sed -n 's/^READY [a-z]* //p' "$T/$name.out" | head -n 1)
}

slot1_hash() {
	"$CLI" smp "$@" --json image list 2>/dev/null |
		jq -r '.images[] | select(.slot == 1) | .hash'
}

"$MK" --version 1.0.0 --size 20000 --seed 31 -o "$T/old.bin" >/dev/null
"$MK" --version 4.5.6+7 --size 1048576 --seed 32 -o "$T/big.bin" >/dev/null
hash=$("$MK" --print-hash "$T/big.bin")

start_sim s --serial "$T/tty" --image "$T/old.bin" --seed 6 \
	--corrupt-rate 0.05 || not_ok "serial simulator" "no READY"
S=(--transport serial --device "$T/tty" --timeout 100ms --erase-timeout 1s
	--retries 20)
"$CLI" smp "${S[@]}" image upload "$T/big.bin" >"$T/s.out" 2>"$T/s.err"
check "1 MiB over serial with corrupted frames completes" [ $? -eq 0 ]
check "slot 1 hash equals the image's (corrupting serial)" \
	[ "$(slot1_hash "${S[@]}")" = "$hash" ]
grep -q "retransmits [1-9]" "$T/s.out"
check "the worker had to retransmit" [ $? -eq 0 ]

done_testing
