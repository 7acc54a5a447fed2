#!/bin/bash
# The `smp` operator commands over a serial link (the simulator's
# pseudo-terminal): the supervisor opens the tty and hands it to the serial
# worker.  Includes a board that re-enumerates (a new tty) on reset.
. "$(dirname "$0")/../lib.sh"

CLI=$BIN/rdfm-mcumgr-client
SIM=$BIN/mcumgr-board-sim
MK=$BIN/mcuboot-mkimage

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

slot_field() {
	jq -r --argjson s "$2" ".images[] | select(.slot == \$s) | .$3" <"$1"
}

# wait_board ARGS...: until `image list` answers (after a reset).
wait_board() {
	local i
	for i in $(seq 1 50); do
		"$CLI" smp "$@" --timeout 200ms --retries 1 --json image list \
			>"$T/list.json" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

"$MK" --version 1.0.0 --size 20000 --seed 11 -o "$T/old.bin" >/dev/null
"$MK" --version 2.0.0+7 --size 40000 --seed 12 -o "$T/new.bin" >/dev/null
old_hash=$("$MK" --print-hash "$T/old.bin")
new_hash=$("$MK" --print-hash "$T/new.bin")
new_size=$(stat -c %s "$T/new.bin")

start_sim s --serial "$T/tty" --image "$T/old.bin" || {
	not_ok "simulator starts" "no READY line"
	exit 1
}
L=(--transport serial --device "$T/tty" --baud 115200)

out=$("$CLI" smp "${L[@]}" echo "over serial" 2>/dev/null)
check "echo over serial" [ "$out" = "over serial" ]
out=$("$CLI" smp "${L[@]}" --json params 2>/dev/null)
check "params over serial" [ "$(jq -r .buf_size <<<"$out")" = 384 ]
"$CLI" smp "${L[@]}" --json image list >"$T/l.json" 2>/dev/null
check "image list over serial" \
	[ "$(slot_field "$T/l.json" 0 hash)" = "$old_hash" ]
check "version in Zephyr spelling" \
	[ "$(slot_field "$T/l.json" 0 version)" = "1.0.0" ]

"$CLI" smp "${L[@]}" image upload "$T/new.bin" >"$T/up.txt" 2>"$T/up.err"
check "image upload over serial" grep -q "^uploaded $new_size bytes" "$T/up.txt"
"$CLI" smp "${L[@]}" --json image list >"$T/l.json" 2>/dev/null
check "slot 1 hash equals the image's" \
	[ "$(slot_field "$T/l.json" 1 hash)" = "$new_hash" ]
"$CLI" smp "${L[@]}" --mtu 128 --window 2 image upload "$T/new.bin" \
	>"$T/up2.txt" 2>/dev/null
check "upload with --mtu 128 --window 2" \
	grep -q "^uploaded $new_size bytes.*window 2" "$T/up2.txt"

"$CLI" smp "${L[@]}" image test "$new_hash" >/dev/null 2>&1
check "image test over serial" [ $? -eq 0 ]
check "reset over serial" "$CLI" smp "${L[@]}" reset
wait_for_reset "$T/s.status" 1
wait_board "${L[@]}"
check "the board boots the tested image" \
	[ "$(slot_field "$T/list.json" 0 hash)" = "$new_hash" ]
"$CLI" smp "${L[@]}" --json image confirm "$new_hash" >"$T/c.json" 2>/dev/null
check "image confirm HASH over serial" \
	[ "$(slot_field "$T/c.json" 0 'confirmed')" = true ]

"$CLI" smp --transport serial --device "$T/absent" echo x \
	>/dev/null 2>"$T/absent.err"
check "a missing device fails" [ $? -ne 0 ]
check "... naming it" grep -q "$T/absent" "$T/absent.err"

# Two commands on one tty at once: the second must not share it.  It runs
# after the first, or stops at once naming the first one's pid.
"$CLI" smp "${L[@]}" echo one >"$T/one.out" 2>"$T/one.err" &
p1=$!
"$CLI" smp "${L[@]}" echo two >"$T/two.out" 2>"$T/two.err" &
p2=$!
wait $p1
r1=$?
wait $p2
r2=$?
if [ "$r1" -eq 0 ] && [ "$r2" -eq 0 ]; then
	ok "concurrent commands on one tty: one after the other"
elif [ "$r1" -eq 0 ] && [ "$r2" -eq 1 ] &&
	grep -Eq "is in use(: held by pid| by process) $p1" "$T/two.err"; then
	ok "concurrent commands on one tty: the second names the first's pid"
elif [ "$r2" -eq 0 ] && [ "$r1" -eq 1 ] &&
	grep -Eq "is in use(: held by pid| by process) $p2" "$T/one.err"; then
	ok "concurrent commands on one tty: the first names the second's pid"
else
	not_ok "concurrent commands on one tty" "exits $r1 and $r2: $(cat "$T/one.err" "$T/two.err")"
fi

kill "$SIM_PID"
wait "$SIM_PID" 2>/dev/null

# A USB CDC-ACM board: reset closes the tty and a new one appears later.
start_sim r --serial "$T/acm" --reenumerate --reboot-ms 500 \
	--image "$T/old.bin" || not_ok "re-enumerating simulator" "no READY"
A=(--transport serial --device "$T/acm")
before=$(readlink "$T/acm")
check "reset of a re-enumerating board" "$CLI" smp "${A[@]}" reset
wait_for_reset "$T/r.status" 1
wait_board "${A[@]}"
check "the board answers on its new tty" \
	[ "$(slot_field "$T/list.json" 0 hash)" = "$old_hash" ]
after=$(readlink "$T/acm")
check "the tty really changed" [ "$before" != "$after" ]

done_testing
