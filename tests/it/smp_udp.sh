#!/bin/bash
# Every `smp` operator command against the virtual board over UDP, through
# the supervisor and the UDP worker: echo, params, image list (text and
# JSON), upload, test, reset, confirm, and the failures an operator sees.
. "$(dirname "$0")/../lib.sh"

CLI=$BIN/rdfm-mcumgr-client
SIM=$BIN/mcumgr-board-sim
MK=$BIN/mcuboot-mkimage

# start_sim NAME ARGS...: a board; READY holds its address.
start_sim() {
	local name=$1
	shift
	bg "$SIM" --state "$T/$name.state" --status "$T/$name.status" "$@" \
		>"$T/$name.out" 2>"$T/$name.err"
	SIM_PID=$!
	wait_for_line "$T/$name.out" '^READY ' 10 || return 1
	READY=$(sed -n 's/^READY [a-z]* //p' "$T/$name.out" | head -n 1)
}

# wait_for_reset STATUS N: until the board has reset N times.
wait_for_reset() {
	local i
	for i in $(seq 1 100); do
		[ "$(jq -r .counters.resets <"$1" 2>/dev/null)" -ge "$2" ] 2>/dev/null &&
			return 0
		sleep 0.05
	done
	return 1
}

# slot_field JSON SLOT KEY: one field of one slot from `image list --json`.
slot_field() {
	jq -r --argjson s "$2" ".images[] | select(.slot == \$s) | .$3" <"$1"
}

"$MK" --version 1.0.0+1 --size 20000 --seed 1 -o "$T/old.bin" >/dev/null
"$MK" --version 1.2.3+4 --size 65536 --seed 2 -o "$T/new.bin" >/dev/null
old_hash=$("$MK" --print-hash "$T/old.bin")
new_hash=$("$MK" --print-hash "$T/new.bin")
new_size=$(stat -c %s "$T/new.bin")

start_sim b --udp 127.0.0.1:0 --image "$T/old.bin" || {
	not_ok "simulator starts" "no READY line"
	exit 1
}
L=(--transport udp --address "$READY")

out=$("$CLI" smp "${L[@]}" echo "hello board" 2>"$T/echo.err")
check "echo answers with the text" [ "$out" = "hello board" ]
out=$("$CLI" smp "${L[@]}" --json echo "q\"uote" 2>/dev/null)
check "echo --json" [ "$(jq -r .echo <<<"$out")" = 'q"uote' ]

out=$("$CLI" smp "${L[@]}" params 2>/dev/null)
check "params prints the board's buffers" \
	grep -qx "buf_size: 384" <<<"$out"
out=$("$CLI" smp "${L[@]}" --json params 2>/dev/null)
check "params --json" [ "$(jq -r .buf_count <<<"$out")" = 4 ]

"$CLI" smp "${L[@]}" image list >"$T/list.txt" 2>/dev/null
check "image list shows slot 0 with its hash" \
	grep -q "hash: $old_hash" "$T/list.txt"
"$CLI" smp "${L[@]}" --json image list >"$T/list.json" 2>/dev/null
check "image list --json: slot 0 hash" \
	[ "$(slot_field "$T/list.json" 0 hash)" = "$old_hash" ]
check "image list --json: slot 0 version" \
	[ "$(slot_field "$T/list.json" 0 version)" = "1.0.0.1" ]
check "image list --json: slot 0 active and confirmed" \
	[ "$(slot_field "$T/list.json" 0 'active and .confirmed and .bootable')" = true ]
check "image list --json: only the documented keys" \
	[ "$(jq -c '.images[0] | keys' <"$T/list.json")" = \
	'["active","bootable","confirmed","hash","pending","permanent","slot","version"]' ]

"$CLI" smp "${L[@]}" image upload "$T/new.bin" >"$T/up.txt" 2>"$T/up.err"
check "image upload succeeds" grep -q "^uploaded $new_size bytes" "$T/up.txt"
check "image upload prints the image hash" \
	grep -q "^image hash: $new_hash" "$T/up.txt"
check "no progress bar when stderr is not a terminal" \
	bash -c "! grep -q 'B/s' '$T/up.err'"
"$CLI" smp "${L[@]}" --json image list >"$T/list.json" 2>/dev/null
check "slot 1 holds the uploaded image" \
	[ "$(slot_field "$T/list.json" 1 hash)" = "$new_hash" ]

# Upload again with a window of 1 and JSON output: same result.
out=$("$CLI" smp "${L[@]}" --json --window 1 image upload "$T/new.bin" 2>/dev/null)
check "image upload --json --window 1" \
	[ "$(jq -r --argjson n "$new_size" '.bytes == $n and .window == 1' <<<"$out")" = true ]

"$CLI" smp "${L[@]}" --json image test "$new_hash" >"$T/test.json" 2>/dev/null
check "image test marks slot 1 pending" \
	[ "$(slot_field "$T/test.json" 1 pending)" = true ]

out=$("$CLI" smp "${L[@]}" reset 2>/dev/null)
check "reset" [ "$out" = reset ]
# The board answers, then resets; once it has, ask until it answers.
wait_for_reset "$T/b.status" 1
for i in $(seq 1 50); do
	"$CLI" smp "${L[@]}" --timeout 200ms --retries 1 --json image list \
		>"$T/list.json" 2>/dev/null && break
	sleep 0.1
done
check "after reset slot 0 runs the new image" \
	[ "$(slot_field "$T/list.json" 0 hash)" = "$new_hash" ]
check "the new image is not confirmed yet" \
	[ "$(slot_field "$T/list.json" 0 confirmed)" = false ]

"$CLI" smp "${L[@]}" --json image confirm >"$T/conf.json" 2>/dev/null
check "image confirm confirms the running image" \
	[ "$(slot_field "$T/conf.json" 0 confirmed)" = true ]
"$CLI" smp "${L[@]}" image confirm "$new_hash" >/dev/null 2>&1
check "image confirm HASH succeeds" [ $? -eq 0 ]

# Failures: non-zero exit and the reason.
"$CLI" smp "${L[@]}" image test 0000000000000000000000000000000000000000000000000000000000000000 \
	>/dev/null 2>"$T/bad.err"
rc=$?
check "image test with an unknown hash fails" [ "$rc" -ne 0 ]
check "... and says the board refused it" \
	grep -q "the board refused: rc 3 (invalid value): hash not found" "$T/bad.err"

"$CLI" smp "${L[@]}" image test nothex >/dev/null 2>"$T/usage.err"
check "a malformed hash is a usage error" [ $? -eq 2 ]
check "... naming the hash" grep -q "not a SHA-256 hash" "$T/usage.err"

head -c 5000 /dev/urandom >"$T/junk.bin"
"$CLI" smp "${L[@]}" image upload "$T/junk.bin" >/dev/null 2>"$T/junk.err"
check "a file that is not an MCUboot image is refused" [ $? -ne 0 ]
check "... with the reason" grep -q "not a valid MCUboot image" "$T/junk.err"

"$CLI" smp --transport udp image list >/dev/null 2>"$T/noaddr.err"
check "udp without --address is a usage error" [ $? -eq 2 ]

"$CLI" smp --transport udp --address 127.0.0.1:9 --timeout 100ms \
	--retries 1 echo hi >/dev/null 2>"$T/dead.err"
check "a board that does not answer fails the command" [ $? -ne 0 ]
check "... with a timeout" grep -q "timeout" "$T/dead.err"

"$CLI" smp "${L[@]}" --json --timeout 100ms --retries 0 echo hi \
	>"$T/ok.json" 2>/dev/null
check "json error path is only used on failure" \
	[ "$(jq -r .echo <"$T/ok.json")" = hi ]

done_testing
