#!/bin/bash
# A 1 MiB upload over a bad UDP link: 10 % of requests and 10 % of replies
# lost.  The image must arrive whole: slot 1's hash equals the image's.
# Timeouts are short because loopback answers in well under a millisecond
# and each loss costs one timeout (the first packet's is the erase timeout).
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

start_sim u --udp 127.0.0.1:0 --image "$T/old.bin" --seed 5 \
	--drop-rate 0.1 --drop-reply-rate 0.1 || not_ok "udp simulator" "no READY"
U=(--transport udp --address "$READY" --timeout 50ms --erase-timeout 1s
	--retries 20)
"$CLI" smp "${U[@]}" image upload "$T/big.bin" >"$T/u.out" 2>"$T/u.err"
check "1 MiB over lossy UDP completes" [ $? -eq 0 ]
check "slot 1 hash equals the image's (lossy UDP)" \
	[ "$(slot1_hash "${U[@]}")" = "$hash" ]
dropped=$(jq -r .counters.dropped <"$T/u.status")
check "the board really dropped packets ($dropped)" [ "$dropped" -gt 50 ]


done_testing
