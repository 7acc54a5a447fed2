#!/bin/bash
# `smp upgrade FILE` against the virtual board: every phase on its line, a
# re-enumerating serial board, the upload skipped when slot 1 holds the
# image, a board already running it, a self-confirming and a self-rejecting
# firmware, and an exit status naming the phase that failed.
. "$(dirname "$0")/../lib.sh"
. "$SRC/tests/sim/it-lib.sh"

CLI=$BIN/rdfm-mcumgr-client

"$MK" --version 1.0.0 --size 20000 --seed 81 -o "$T/old.bin" >/dev/null
"$MK" --version 2.0.0+7 --size 60000 --seed 82 -o "$T/new.bin" >/dev/null
"$MK" --version 2.1.0 --size 50000 --seed 83 -o "$T/new2.bin" >/dev/null
old_hash=$(hash_of "$T/old.bin")
new_hash=$(hash_of "$T/new.bin")
new2_hash=$(hash_of "$T/new2.bin")

slot0() {
	"$CLI" smp "$@" --json image list 2>/dev/null |
		jq -r '.images[] | select(.slot == 0) | "\(.hash) \(.confirmed)"'
}

# A USB CDC-ACM board: the reset takes its tty away for a while.
start_sim s serial --serial "$T/tty" --reenumerate --reboot-ms 500 \
	--image "$T/old.bin" || exit 1
S=(--device "$T/tty")
"$CLI" smp "${S[@]}" upgrade "$T/new.bin" >"$T/up.out" 2>"$T/up.err"
rc=$?
check "upgrade over a re-enumerating serial board succeeds" [ "$rc" -eq 0 ]
check "... one line per phase, in order" \
	[ "$(cut -d: -f1 "$T/up.out" | tr '\n' ' ')" = "upload test reset wait check confirm upgraded to 2.0.0+7 " ]
check "... the board runs the new image, confirmed" \
	[ "$(slot0 "${S[@]}")" = "$new_hash true" ]
in=$(st .counters.bytes_in)
"$CLI" smp "${S[@]}" upgrade "$T/new.bin" >"$T/again.out" 2>&1
check "upgrade to what the board runs does nothing" \
	[ $? -eq 0 -a "$(tail -n 1 "$T/again.out")" = "already running 2.0.0+7" ]
check "... sending no image" [ $(($(st .counters.bytes_in) - in)) -lt 2000 ]
stop_sim

# UDP; slot 1 already holds the image: no upload.  Intel HEX input; --json.
start_sim u udp --udp 127.0.0.1:0 --image "$T/old.bin" || exit 1
U=(--address "$READY")
"$CLI" smp "${U[@]}" image upload "$T/new.bin" >/dev/null 2>&1
in=$(st .counters.bytes_in)
"$CLI" smp "${U[@]}" upgrade "$T/new.bin" >"$T/skip.out" 2>&1
check "upgrade skips the upload when slot 1 holds the image" \
	grep -q "^upload: skipped, slot 1 already holds 2.0.0+7$" "$T/skip.out"
check "... sending no image" [ $(($(st .counters.bytes_in) - in)) -lt 2000 ]
check "... and upgrades" [ "$(slot0 "${U[@]}")" = "$new_hash true" ]
objcopy -I binary -O ihex "$T/new2.bin" "$T/new2.hex"
"$CLI" smp "${U[@]}" --json upgrade "$T/new2.hex" >"$T/up.json" 2>/dev/null
check "upgrade from Intel HEX, --json" \
	[ "$(jq -r '.result, .version, (.phases | map(.phase) | join(","))' <"$T/up.json" | tr '\n' ' ')" = \
		"upgraded to 2.1.0 upload,test,reset,wait,check,confirm " ]
check "... the board runs it" [ "$(slot0 "${U[@]}")" = "$new2_hash true" ]
# A board running the new image unconfirmed: only the confirm is left.
"$CLI" smp "${U[@]}" image upload "$T/new.bin" >/dev/null 2>&1
"$CLI" smp "${U[@]}" image test "$new_hash" >/dev/null 2>&1
"$CLI" smp "${U[@]}" reset >/dev/null 2>&1
sleep 1
"$CLI" smp "${U[@]}" upgrade "$T/new.bin" >"$T/unconf.out" 2>&1
check "a board running the image unconfirmed only gets the confirm" \
	[ "$(cut -d: -f1 "$T/unconf.out" | tr '\n' ' ')" = "check confirm upgraded to 2.0.0+7 " ]
stop_sim

# A firmware that confirms itself, and one that gives up on itself.
start_sim c udp --udp 127.0.0.1:0 --image "$T/old.bin" --self-confirm \
	--confirm-ms 3000 || exit 1
"$CLI" smp --address "$READY" upgrade --self-confirm "$T/new.bin" >"$T/sc.out" 2>&1
check "upgrade --self-confirm waits for the board's own confirm" \
	grep -q "^confirm: the board confirmed it itself after" "$T/sc.out"
stop_sim
start_sim r udp --udp 127.0.0.1:0 --image "$T/old.bin" --self-reject \
	--confirm-ms 3000 || exit 1
"$CLI" smp --address "$READY" upgrade --self-confirm --confirm-timeout 30s \
	"$T/new.bin" >"$T/sr.out" 2>"$T/sr.err"
check "a self-rejecting firmware fails the confirm phase (exit 8)" [ $? -eq 8 ]
check "... saying it went back" \
	grep -q "upgrade failed at confirm: the board went back to 1.0.0" "$T/sr.err"
stop_sim

# Exit statuses of the other phases.
start_sim j udp --udp 127.0.0.1:0 --image "$T/old.bin" --reject-new || exit 1
"$CLI" smp --address "$READY" upgrade "$T/new.bin" >/dev/null 2>"$T/rj.err"
check "MCUboot refusing the image fails the check phase (exit 7)" [ $? -eq 7 ]
check "... naming what the board runs" \
	grep -q "at check: the board runs 1.0.0 (hash ${old_hash:0:16}...), not 2.0.0+7" "$T/rj.err"
stop_sim
start_sim n udp --udp 127.0.0.1:0 --image "$T/old.bin" --no-boot || exit 1
"$CLI" smp --address "$READY" --json upgrade --reboot-timeout 3s "$T/new.bin" \
	>"$T/nb.json" 2>/dev/null
check "a board that does not come back fails the wait phase (exit 6)" [ $? -eq 6 ]
check "... and --json says which phase" \
	[ "$(jq -r '.failed_phase, .exit' <"$T/nb.json" | tr '\n' ' ')" = "wait 6 " ]
stop_sim
start_sim k udp --udp 127.0.0.1:0 --image "$T/old.bin" --stuck-upload || exit 1
"$CLI" smp --address "$READY" upgrade --stall 2s "$T/new.bin" >/dev/null 2>&1
check "an upload that does not progress fails the upload phase (exit 3)" [ $? -eq 3 ]
head -c 3000 /dev/urandom >"$T/junk.bin"
"$CLI" smp --address "$READY" upgrade "$T/junk.bin" >/dev/null 2>&1
check "a file that is not an image fails before any phase (exit 1)" [ $? -eq 1 ]
stop_sim

done_testing
