#!/bin/bash
# The upload window that learns the board, through `smp image upload` and
# real processes: a serial board whose UART line buffers overflow when
# more than one packet is in flight (Zephyr's two 128-byte lines, a board
# that spends 40 ms on each packet, a line paced at 115200 baud) makes the
# window settle at 1 with rewinds counted; the same board with a lossless
# pipeline keeps buf_count - 1; --window fixes it; and a worker killed
# mid-upload is replaced by one that starts from what the first learnt,
# kept by the supervisor.
. "$(dirname "$0")/../lib.sh"
. "$SRC/tests/sim/it-lib.sh"

CLI=$BIN/rdfm-mcumgr-client
"$MK" --version 1.0.0 --size 4000 --seed 41 -o "$T/old.bin" >/dev/null
"$MK" --version 2.0.0 --size 30000 --seed 42 -o "$T/new.bin" >/dev/null
"$MK" --version 3.0.0 --size 90000 --seed 43 -o "$T/big.bin" >/dev/null
new_hash=$(hash_of "$T/new.bin")
big_hash=$(hash_of "$T/big.bin")
SLOW=(--baud 115200 --proc-us 40000 --image "$T/old.bin")

slot1() {
	"$CLI" smp --transport serial --device "$1" --json image list \
		2>/dev/null | jq -r '.images[] | select(.slot == 1) | .hash'
}

# 1. Zephyr's line buffers: the window shrinks to stop-and-wait.
start_sim lines serial --serial "$T/lines" "${SLOW[@]}" || exit 1
"$CLI" smp -v --transport serial --device "$T/lines" --json image upload \
	"$T/new.bin" >"$T/lines.json" 2>"$T/lines.cli"
check "upload to a board that loses lines completes" [ $? -eq 0 ]
check "... the image is whole" [ "$(slot1 "$T/lines")" = "$new_hash" ]
check "... the board did drop lines ($(st .counters.lines_dropped))" \
	[ "$(st .counters.lines_dropped)" -gt 0 ]
check "... the window settled at 1 ($(jq -c . <"$T/lines.json"))" \
	[ "$(jq -r .window <"$T/lines.json")" = 1 ]
check "... and the rewinds are counted" [ "$(jq -r .rewinds <"$T/lines.json")" -gt 0 ]
check "... the worker logged them as they came ($(grep -c 'msg="board rewinds"' "$T/lines.cli"))" \
	[ "$(grep -c 'msg="board rewinds"' "$T/lines.cli")" -gt 0 ]
check "... found from the replies, not from request timeouts" \
	[ "$(grep -c 'msg="retransmit"' "$T/lines.cli")" = 0 ]
stop_sim

# 2. The same board with room for every line: the window stays.
start_sim free serial --serial "$T/free" "${SLOW[@]}" --line-bufs 0 || exit 1
"$CLI" smp --transport serial --device "$T/free" image upload \
	"$T/new.bin" >"$T/free.out" 2>"$T/free.cli"
check "a lossless pipeline keeps buf_count - 1 ($(head -n 1 "$T/free.out"))" \
	grep -q "^uploaded .*window 3, .*rewinds 0" "$T/free.out"
check "... without dropping a line" [ "$(st .counters.lines_dropped)" = 0 ]
stop_sim

# 3. --window fixes it, losses or not.
start_sim fixed serial --serial "$T/fixed" "${SLOW[@]}" || exit 1
"$CLI" smp -v --transport serial --device "$T/fixed" --json image upload \
	--window 2 "$T/new.bin" >"$T/fixed.json" 2>"$T/fixed.cli"
check "--window 2 on a lossy board still completes" [ $? -eq 0 ]
check "... at window 2" [ "$(jq -r .window <"$T/fixed.json")" = 2 ]
check "... the worker was told it is fixed" \
	grep -q 'msg="upload starts".*window=2 .*window_from=fixed' "$T/fixed.cli"
stop_sim

# 4. The supervisor keeps what the worker learnt: kill the worker once the
# window has shrunk; its successor starts from the hint, not from 3.
start_sim kill serial --serial "$T/kill" "${SLOW[@]}" || exit 1
"$CLI" smp -v --transport serial --device "$T/kill" image upload "$T/big.bin" \
	>"$T/kill.out" 2>"$T/kill.cli" &
cli=$!
for i in $(seq 1 300); do
	[ "$(st .counters.lines_dropped)" -gt 0 ] &&
		[ "$(st .upload.offset 2>/dev/null || echo 0)" -gt 20000 ] && break
	sleep 0.1
done
worker=$(pgrep -P "$cli" -f rdfm-mcumgr-worker-serial)
check "set-up: the first worker learnt something (lines dropped, upload under way)" \
	[ -n "$worker" ] && [ "$(st .counters.lines_dropped)" -gt 0 ]
kill -KILL $worker
wait "$cli"
check "the upload completes after the worker was killed" [ $? -eq 0 ]
check "... the image is whole" [ "$(slot1 "$T/kill")" = "$big_hash" ]
check "the first worker started from the board's parameters" \
	grep -q 'msg="upload starts".*window=3 .*window_from=params' "$T/kill.cli"
check "the second started from the supervisor's hint" \
	grep -q 'msg="upload starts".*window=1 .*window_from=hint' "$T/kill.cli"
stop_sim
done_testing
