#!/bin/bash
# The simulator answers like Zephyr: one list of requests (every command
# the client uses, and the error cases around them) goes to the real
# Zephyr 3.2 smp_svr (../shared/zephyr-peer, on a fresh flash file) and to
# `mcumgr-board-sim --zephyr-3` (blank slots too), and every reply must
# agree: header (op, version, group, command), CBOR shape (keys, their
# order, types, definite or indefinite maps and arrays) and values, except
# the values a step marks as not deterministic (os info's build strings).
# Where the real peer cannot show what a board does (it has no MCUboot:
# nothing swaps at reset) the difference is recorded below with its reason
# and checked to be that one; every other difference fails.
. "$(dirname "$0")/../lib.sh"
. "$SRC/tests/it/peer_lib.bash"

SIM=$BIN/mcumgr-board-sim
CL=$BIN/sim-client
MK=$BIN/mcuboot-mkimage

"$MK" --version 1.2.3+4 --size 5000 --seed 9 -o "$T/img.bin" >/dev/null
head -c 5000 /dev/zero | tr '\0' 'j' >"$T/junk.bin"
H=$("$MK" --print-hash "$T/img.bin")
Z=0000000000000000000000000000000000000000000000000000000000000000

# req OP FLAGS GROUP ID CBORHEX: a raw request, sequence number 0.
req() {
	printf '%02x%02x%04x%04x00%02x%s' "$1" "$2" $((${#5} / 2)) "$3" "$4" "$5"
}
# cbor_text S: a CBOR text string (shorter than 24 bytes).
cbor_text() { printf '%02x%s' $((0x60 + ${#1})) "$(printf %s "$1" | xxd -p)"; }

# The steps: NAME|CHECK|sim-client arguments.  CHECK is "all" (header,
# shape and values) or "shape" (header and shape only).
steps() {
	cat <<STEPS
echo|all|echo hello
echo-v2-header|all|--v2 echo hello
params|all|params
params-v2-header|all|--v2 params
os-info|all|raw $(req 0 0 0 7 a0)
os-info-kernel|all|raw $(req 0 0 0 7 "a1$(cbor_text format)$(cbor_text s)")
os-info-all|shape|raw $(req 0 0 0 7 "a1$(cbor_text format)$(cbor_text a)")
os-info-bad-format|all|raw $(req 0 0 0 7 "a1$(cbor_text format)$(cbor_text q)")
unknown-group|all|raw $(req 0 0 99 0 a0)
unknown-group-write|all|raw $(req 2 0 99 0 a0)
unknown-os-command|all|raw $(req 0 0 0 99 a0)
unknown-image-command|all|raw $(req 0 0 1 99 a0)
list-blank|all|state
list-blank-v2-header|all|--v2 state
erase-blank|all|erase
test-unknown-hash|all|test $Z
test-unknown-hash-v2-header|all|--v2 test $Z
confirm-unknown-hash|all|confirm $Z
test-short-hash|all|raw $(req 2 0 1 0 "a2$(cbor_text hash)50$(head -c 16 /dev/zero | xxd -p)$(cbor_text confirm)f4")
confirm-short-hash|all|raw $(req 2 0 1 0 "a2$(cbor_text hash)50$(head -c 16 /dev/zero | xxd -p)$(cbor_text confirm)f5")
permanent-unknown-hash|all|permanent $Z
confirm-running-blank|all|confirm
upload-first|all|chunk $T/img.bin 0 200 first
upload-next|all|chunk $T/img.bin 200 200
upload-gap|all|chunk $T/img.bin 600 100
upload-resume|all|chunk $T/img.bin 0 200 first
upload-bad-magic|all|chunk $T/junk.bin 0 200 first
upload-after-bad-first|all|chunk $T/img.bin 400 200
list-mid-upload|all|state
erase-mid-upload|all|erase
upload-after-erase|all|chunk $T/img.bin 600 100
upload-restart|all|chunk $T/img.bin 0 200 first
upload-rest|all|upload $T/img.bin 300
upload-past-end|all|chunk $T/img.bin 5000 10
list-uploaded|all|state
test-unknown-hash-uploaded|all|test $Z
confirm-running-uploaded|all|confirm
test-slot1|all|test $H
test-slot1-again|all|test $H
upload-while-pending|all|chunk $T/img.bin 0 200 first
erase-while-pending|all|erase
confirm-slot1|all|confirm $H
list-pending|all|state
reset|all|reset
@reboot
echo-after-reboot|all|echo again
list-after-reboot|all|state
upload-after-reboot|all|chunk $T/img.bin 0 200 first
confirm-after-reboot|all|confirm
STEPS
}

# Recorded differences: NAME|reason.  None may be left that the peer can
# show; each is checked to differ (else the record is stale).
known() {
	cat <<KNOWN
list-after-reboot|the peer has no MCUboot: nothing swaps at reset, so slot 1 stays pending there while the simulator's MCUboot test-boots it into slot 0
confirm-after-reboot|the same swap: the simulator confirms the image it now runs, the peer still runs nothing from slot 0
KNOWN
}

# run BOARD DEV OUT: every step against one board ("peer" or "sim"); per
# reply one line "NAME<TAB>hdr op=.. ver=.. group=.. id=..<TAB>shape<TAB>
# json" (a step without reply writes "timeout").  At "@reboot" the board
# has reset: the peer's process exits and is started again on its flash
# file (a new pseudo-terminal), the simulator comes back by itself.
run() {
	local board=$1 dev=$2 out=$3 name check args r
	: >"$out"
	while IFS='|' read -r name check args; do
		if [ "$name" = @reboot ]; then
			# (not in a subshell: the peer's new pid must stay known)
			reboot_"$board" || {
				printf '@reboot\tfailed\n' >>"$out"
				return 1
			}
			dev=$REBOOTED
			continue
		fi
		# shellcheck disable=SC2086 # args are words on purpose
		r=$("$CL" --serial "$dev" --timeout-ms 3000 $args 2>/dev/null)
		if ! grep -q '^hdr ' <<<"$r"; then
			printf '%s\ttimeout\n' "$name" >>"$out"
			continue
		fi
		paste <(grep '^hdr ' <<<"$r" | sed 's/ seq=[0-9]*//; s/ len=[0-9]*//') \
			<(grep '^shape ' <<<"$r" | cut -c7-) \
			<(grep '^json ' <<<"$r" | cut -c6-) |
			while IFS= read -r line; do
				if [ "$check" = shape ]; then
					line=$(cut -f1,2 <<<"$line")
				fi
				printf '%s\t%s\n' "$name" "$line"
			done >>"$out"
	done < <(steps)
}

# reboot_peer, reboot_sim: until the board is back; REBOOTED: its link.
reboot_peer() {
	peer_gone 5 || return 1
	peer_start "$T/peer.flash" || return 1
	REBOOTED=$PEER_PTY
}

reboot_sim() {
	local i
	for i in $(seq 1 100); do
		jq -e '.counters.resets == 1 and .state == "up"' \
			<"$T/sim.status" >/dev/null 2>&1 && break
		sleep 0.1
	done
	REBOOTED=$T/sim
}

if ! peer_start "$T/peer.flash"; then
	not_ok "the real Zephyr peer runs" "see above; ../shared/zephyr-peer is required"
	exit 1
fi
run peer "$PEER_PTY" "$T/peer.txt"
check "the peer exited at its reset and started again on its flash" \
	bash -c "! grep -q '^@reboot' '$T/peer.txt'"

bg "$SIM" --serial "$T/sim" --zephyr-3 --state "$T/sim.state" \
	--status "$T/sim.status" \
	>"$T/sim.out" 2>"$T/sim.err"
wait_for_line "$T/sim.out" '^READY ' 10 || {
	not_ok "the simulator starts" "$(cat "$T/sim.err")"
	exit 1
}
run sim "$T/sim" "$T/sim.txt"

check "every step was answered by the peer" \
	bash -c "! grep -q '	timeout\$' '$T/peer.txt'"
while IFS='|' read -r name _ _; do
	[ "$name" = @reboot ] && continue
	p=$(grep -P "^\Q$name\E\t" "$T/peer.txt")
	s=$(grep -P "^\Q$name\E\t" "$T/sim.txt")
	why=$(known | sed -n "s/^$name|//p")
	if [ "$p" = "$s" ]; then
		if [ -n "$why" ]; then
			not_ok "$name" "recorded as differing ($why) but the replies agree: drop the record"
		else
			ok "$name"
		fi
	elif [ -n "$why" ]; then
		ok "$name differs as recorded: $why"
	else
		not_ok "$name" "peer and simulator disagree"
		diff <(echo "$p") <(echo "$s") | sed 's/^/#   /'
	fi
done < <(steps)
done_testing
