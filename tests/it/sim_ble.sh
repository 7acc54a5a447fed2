#!/bin/bash
# The virtual board's BLE link: the ATT server on an abstract SOCK_SEQPACKET
# socket, golden PDUs for MTU exchange, service and characteristic
# discovery, CCCD and errors; SMP by write-without-response and
# notifications (fragmented at the MTU), the receive-buffer limit, and a
# reset that drops the connection until the board is back.
. "$(dirname "$0")/../lib.sh"
. "$SRC/tests/sim/it-lib.sh"

"$MK" --version 1.0.0 --size 20000 --seed 1 -o "$T/old.bin" >/dev/null
"$MK" --version 2.0.0+7 --size 30000 --seed 2 -o "$T/new.bin" >/dev/null
new_hash=$(hash_of "$T/new.bin")
name="rdfm-sim-it-$$-$RANDOM"

start_sim b ble --ble "@$name" --image "$T/old.bin" --reboot-ms 800 || {
	not_ok "simulator starts" "no READY line"
	exit 1
}
check "READY names the abstract socket" grep -qx "READY ble @$name" "$T/b.out"
att() { cl --no-setup att "$@"; }
out=$(att 02f700)
check "MTU exchange: the board answers 498" [ "$out" = "att 03f201" ]
out=$(att 100100ffff0028 100400ffff0028 101400ffff0028)
check "primary services: GAP (16-bit), then SMP (128-bit, LE), then none" \
	[ "$(tr '\n' ' ' <<<"$out")" = "att 1106010003000018 att 11141000130084aa6074528a8b86d34cb71d1ddc538d att 011014000a " ]
out=$(att 08100013000328)
check "characteristic: write-without-response + notify, value handle 0x12" \
	[ "$out" = "att 09151100141200487c997411269eae014ecefb28782eda" ]
out=$(att 041300ffff)
check "find information: the CCCD at 0x13" [ "$out" = "att 050113000229" ]
out=$(att 0a0300 04130013 1203000000)
check "errors: unsupported request, malformed PDU, write not permitted" \
	[ "$(tr '\n' ' ' <<<"$out")" = "att 010a000006 att 0104000004 att 0112030003 " ]
out=$(att 5212000200000600000000a16164626869)
check "no notification before the CCCD is written" [ -z "$out" ]
out=$(att 1213000100 5212000200000600000000a16164626869)
check "CCCD on, then an echo written: golden notification" \
	[ "$(tr '\n' ' ' <<<"$out")" = "att 13 att 1b12000300000700000000bf6172626869ff " ]
# At the default MTU 23 a 53-byte request takes 3 writes, and its 54-byte
# reply 3 notifications.
req=0200002d00000100a1616478$(printf '28%.0s' 1)$(printf 'x%.0s' {1..40} | xxd -p | tr -d '\n')
out=$(att 1213000100 521200"${req:0:40}" 521200"${req:40:40}" 521200"${req:80}")
n=$(grep -c '^att 1b1200' <<<"$out")
check "requests and replies larger than MTU - 3 are fragmented ($n notifications)" [ "$n" = 3 ]
check "... and the reassembled reply is the echo" \
	[ "$(sed -n 's/^att 1b1200//p' <<<"$out" | tr -d '\n')" = 0300002e00000100bf617278$(printf 28)$(printf 'x%.0s' {1..40} | xxd -p | tr -d '\n')ff ]

out=$(cl echo "over ble")
check "sim-client: discovery and echo" [ "$(rfield .r <<<"$out")" = "over ble" ]
out=$(cl --mtu 100 raw "$(echo_pkt 370)")
check "a 384-byte request (buf_size) is answered" grep -q '^hdr ' <<<"$out"
out=$(cl --mtu 100 --timeout-ms 700 raw "$(echo_pkt 371)")
check "a 385-byte request is dropped" grep -qx timeout <<<"$out"
out=$(cl upload "$T/new.bin" 200)
check "upload over BLE" grep -q "^upload stopped at $(stat -c %s "$T/new.bin") " <<<"$out"
out=$(cl test "$new_hash")
check "test over BLE" [ "$(rfield '.images[1].pending' <<<"$out")" = true ]

# A reset: the reply, then the connection drops, then nobody listens.
reset_pkt=$(printf '0200000000000005')
out=$(att 1213000100 521200$reset_pkt)
check "reset: the reply comes, then the board drops the connection" \
	[ "$(tr '\n' ' ' <<<"$out")" = "att 13 att 1b12000300000200000005bfff closed " ]
wait_status '.state == "down"' 5
check_fails "while resetting nobody accepts connections" \
	bash -c '"$0" --ble "$1" --no-setup att 02f700 2>/dev/null' "$CL" "@$name"
wait_status '.state == "up"' 10
out=$(cl state)
check "after the reboot the board is reachable and runs the new image" \
	[ "$(rfield '.images[0].version' <<<"$out")" = 2.0.0.7 ]
stop_sim

done_testing
