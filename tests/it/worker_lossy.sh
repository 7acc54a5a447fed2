#!/bin/bash
# A 1 MiB upload through the UDP worker to a board that loses 10 % of the
# requests and 10 % of the replies: retransmits and rewinds must still
# deliver the image whole.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/worker_lib.bash"

hash=$(mkimage 1048000 "$T/big.bin" 6)
start_sim b --udp 127.0.0.1:0 --slot-size 2097152 --drop-rate 0.1 \
	--drop-reply-rate 0.1 --seed 11 || {
	not_ok "simulator starts" "no READY line"
	exit 1
}
drive "$T/o1" rdfm-mcumgr-worker-udp --udp "$READY" --timeout-ms 100 \
	--retries 20 image-upload "$T/big.bin" \; image-list
check "1 MiB upload over a lossy link succeeds" \
	grep -q '^reply status=OK bytes=1048072 ' "$T/o1"
check "losses were recovered by retransmits" \
	grep -q '^reply status=OK bytes=.* retransmits=[1-9]' "$T/o1"
check "the image arrived whole" [ "$(slot_hash "$T/o1" 1)" = "$hash" ]
sed -n 's/^reply status=OK bytes=/# upload: bytes=/p' "$T/o1"

done_testing
