#!/bin/bash
# The `smp` operator commands over BLE: the BLE worker's GATT client talks
# to the virtual board's ATT server through --att-socket (simulation only;
# there is no Bluetooth controller here).
. "$(dirname "$0")/../lib.sh"

CLI=$BIN/rdfm-mcumgr-client
SIM=$BIN/mcumgr-board-sim
MK=$BIN/mcuboot-mkimage

if [ ! -x "$BIN/rdfm-mcumgr-worker-ble" ]; then
	echo "ok - # SKIP no BLE worker built"
	exit 0
fi

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

"$MK" --version 1.0.0 --size 20000 --seed 51 -o "$T/old.bin" >/dev/null
"$MK" --version 1.3.0 --size 50000 --seed 52 -o "$T/new.bin" >/dev/null
old_hash=$("$MK" --print-hash "$T/old.bin")
new_hash=$("$MK" --print-hash "$T/new.bin")
new_size=$(stat -c %s "$T/new.bin")

name="rdfm-it-$$-$RANDOM"
bg "$SIM" --ble "@$name" --state "$T/b.state" --status "$T/b.status" \
	--image "$T/old.bin" >"$T/b.out" 2>"$T/b.err"
wait_for_line "$T/b.out" '^READY ' 10 || not_ok "ble simulator" "no READY"
B=(--transport ble --device-index 0 --peer-name "$name" --att-socket "@$name")

out=$("$CLI" smp "${B[@]}" echo "over ble" 2>"$T/e.err")
check "echo over BLE" [ "$out" = "over ble" ]
out=$("$CLI" smp "${B[@]}" --json params 2>/dev/null)
check "params over BLE" [ "$(jq -r .supported <<<"$out")" = true ]
"$CLI" smp "${B[@]}" --json image list >"$T/l.json" 2>/dev/null
check "image list over BLE" \
	[ "$(slot_field "$T/l.json" 0 hash)" = "$old_hash" ]
"$CLI" smp "${B[@]}" image upload "$T/new.bin" >"$T/up.out" 2>"$T/up.err"
check "image upload over BLE" grep -q "^uploaded $new_size bytes" "$T/up.out"
"$CLI" smp "${B[@]}" --json image test "$new_hash" >"$T/t.json" 2>/dev/null
check "image test over BLE" [ "$(slot_field "$T/t.json" 1 pending)" = true ]
check "reset over BLE" "$CLI" smp "${B[@]}" reset
wait_for_reset "$T/b.status" 1
for i in $(seq 1 50); do
	"$CLI" smp "${B[@]}" --timeout 300ms --retries 1 --json image list \
		>"$T/l.json" 2>/dev/null && break
	sleep 0.1
done
check "the board reconnects and runs the new image" \
	[ "$(slot_field "$T/l.json" 0 hash)" = "$new_hash" ]
"$CLI" smp "${B[@]}" --json image confirm >"$T/c.json" 2>/dev/null
check "image confirm over BLE" \
	[ "$(slot_field "$T/c.json" 0 confirmed)" = true ]

"$CLI" smp --transport ble --device-index 0 image list >/dev/null \
	2>"$T/u.err"
check "ble without --peer-name is a usage error" [ $? -eq 2 ]

out=$("$CLI" smp --peer-name "$name" --att-socket "@$name" echo implied 2>/dev/null)
check "--peer-name implies BLE" [ "$out" = implied ]
out=$("$CLI" smp --conntype ble --connstring "peer_name=$name,ctlr_name=hci0" \
	--att-socket "@$name" echo connstring 2>/dev/null)
check "--conntype ble --connstring peer_name=NAME,ctlr_name=hci0" [ "$out" = connstring ]
"$CLI" smp --conntype ble --connstring "peer_id=00:11:22:33:44:55" echo x \
	>/dev/null 2>"$T/pid.err"
check "a peer_id connstring is a usage error saying what to give" \
	grep -q "peer_id (an address) is not supported; give peer_name=NAME" "$T/pid.err"

done_testing
