#!/bin/bash
# The BLE worker as a real process (through ipc-drive) against the virtual
# board's ATT server on an abstract socket: discovery, every operation,
# upload, reconnect after the board resets; and the one clear error where
# there is no Bluetooth controller.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/worker_lib.bash"

W=rdfm-mcumgr-worker-ble
name=rdfm-w-$$
hash=$(mkimage 60000 "$T/new.bin" 7)

start_sim b --ble "@$name" --reboot-ms 300 || {
	not_ok "simulator starts" "no READY line"
	exit 1
}
drive "$T/o1" $W --ble-att "@$name" --peer "$name" echo "over gatt" \; \
	params \; image-upload "$T/new.bin" \; image-list \; \
	image-test "$hash" \; reset \; wait-up \; image-list
check "echo over GATT" grep -q '^reply status=OK echo="over gatt"' "$T/o1"
check "params over GATT" grep -q '^reply status=OK supported=1' "$T/o1"
check "upload over GATT" grep -q '^reply status=OK bytes=60072 ' "$T/o1"
check "slot 1 holds the image" [ "$(slot_hash "$T/o1" 1)" = "$hash" ]
check "the reset drops the connection" grep -q '^linkstate up=0' "$T/o1"
check "the worker reconnects by itself" \
	[ "$(grep -c '^linkstate up=1' "$T/o1")" -ge 2 ]
check "the new image runs after the reset" \
	[ "$(slot_hash "$T/o1" 0)" = "$hash" ]
check "MTU exchanged with the board" grep -q 'mtu=498' "$T/o1.err"

# No controller, no simulator: one clear error, for every request.
check_fails "without a controller the request fails" \
	drive "$T/o2" $W --ble-att "" --peer "$name" echo never
check "the reason names the missing controller" \
	grep -q '^reply status=LINK_DOWN .*no Bluetooth controller hci0' \
	"$T/o2"

done_testing
