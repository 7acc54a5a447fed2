#!/bin/bash
# The `smp` command line as operators use it: links from --device,
# --address, mcumgr's --conntype/--connstring and --board NAME of the
# config; arguments checked with the config's own words; fast, explained
# failures for a held tty, a silent board and a stalled upload; Intel HEX
# and hints for unsigned images; the progress bar on its own line, -q,
# --json after a resume and --window's cap; --help for every command.
. "$(dirname "$0")/../lib.sh"
. "$SRC/tests/sim/it-lib.sh"

CLI=$BIN/rdfm-mcumgr-client

"$MK" --version 1.0.0 --size 20000 --seed 61 -o "$T/old.bin" >/dev/null
"$MK" --version 2.1.0+3 --size 120000 --seed 62 -o "$T/new.bin" >/dev/null
new_hash=$(hash_of "$T/new.bin")
new_size=$(stat -c %s "$T/new.bin")

start_sim u udp --udp 127.0.0.1:0 --image "$T/old.bin" || exit 1
U=$READY
U_PID=$SIM_PID
U_ST=$ST
start_sim s serial --serial "$T/tty" --image "$T/old.bin" || exit 1
S_PID=$SIM_PID

# --- Links ---
out=$("$CLI" smp --address "$U" echo implied 2>"$T/e1")
check "--address implies UDP" [ "$out" = implied ]
out=$("$CLI" smp --device "$T/tty" echo implied 2>"$T/e2")
check "--device implies serial" [ "$out" = implied ]
out=$("$CLI" smp --conntype udp --connstring "$U" echo cs 2>/dev/null)
check "--conntype udp --connstring HOST:PORT" [ "$out" = cs ]
out=$("$CLI" smp --conntype serial \
	--connstring "dev=$T/tty,baud=115200,mtu=128" echo cs 2>/dev/null)
check "--conntype serial --connstring dev=...,baud=...,mtu=..." [ "$out" = cs ]
"$CLI" smp --conntype serial --connstring "dev=$T/tty,speed=9" echo x \
	>/dev/null 2>"$T/cs.err"
check "an unknown connstring key is a usage error" [ $? -eq 2 ]
check "... naming the key and the valid ones" \
	grep -q 'unknown key "speed" for a serial link (keys: dev, baud, mtu)' "$T/cs.err"
"$CLI" smp --device "$T/tty" --address "$U" echo x >/dev/null 2>"$T/two.err"
check "two links are a usage error" [ $? -eq 2 ]
"$CLI" smp --transport udp --device "$T/tty" echo x >/dev/null 2>"$T/mix.err"
check "--transport that contradicts the link is a usage error" [ $? -eq 2 ]
check "... saying so" grep -q "does not go with --device (serial)" "$T/mix.err"
"$CLI" smp echo x >/dev/null 2>"$T/none.err"
check "no link is a usage error naming the choices" \
	grep -q -- "--device PATH (serial), --address HOST:PORT (UDP)" "$T/none.err"

# --board: a device and group members of the config.
mkdir -p "$T/keys"
cat >"$T/cfg.json" <<EOF
{
  "server": "http://127.0.0.1:1",
  "key_dir": "$T/keys",
  "state_dir": "$T/state",
  "timeouts": {"stall": "2s"},
  "devices": [
    {"name": "lab-udp", "id": "d1", "dev_type": "t", "key": "d1.key",
     "transport": {"type": "udp", "address": "$U"}}
  ],
  "groups": [
    {"name": "rack", "id": "g1", "type": "t", "key": "g1.key",
     "members": [
       {"name": "left", "device": "a",
        "transport": {"type": "serial", "device": "$T/tty"}},
       {"name": "twin", "device": "b",
        "transport": {"type": "udp", "address": "127.0.0.1:9"}}]},
    {"name": "shelf", "id": "g2", "type": "t", "key": "g2.key",
     "members": [
       {"name": "twin", "device": "a",
        "transport": {"type": "udp", "address": "127.0.0.1:7"}}]}
  ]
}
EOF
out=$("$CLI" smp -c "$T/cfg.json" --board lab-udp echo dev 2>/dev/null)
check "--board takes a device of the config" [ "$out" = dev ]
out=$("$CLI" -c "$T/cfg.json" smp --board left echo member 2>/dev/null)
check "--board takes a group member (config from the global -c)" \
	[ "$out" = member ]
out=$("$CLI" smp -c "$T/cfg.json" --board rack/left echo qualified 2>/dev/null)
check "--board GROUP/MEMBER" [ "$out" = qualified ]
"$CLI" smp -c "$T/cfg.json" --board twin echo x >/dev/null 2>"$T/amb.err"
check "an ambiguous member name is a usage error" [ $? -eq 2 ]
check "... asking for GROUP/MEMBER" grep -q "say GROUP/MEMBER" "$T/amb.err"
"$CLI" smp -c "$T/cfg.json" --board nosuch echo x >/dev/null 2>"$T/nf.err"
check "an unknown board name lists the known ones" \
	grep -q "devices: lab-udp; members: rack/left rack/twin shelf/twin" "$T/nf.err"
"$CLI" smp -c "$T/cfg.json" --board lab-udp --device "$T/tty" echo x \
	>/dev/null 2>&1
check "--board with link flags is a usage error" [ $? -eq 2 ]

# --- Arguments checked as the config checks them (issue 14) ---
sed 's/"address": "127.0.0.1:9"/"address": "127.0.0.1"/' "$T/cfg.json" >"$T/badaddr.json"
"$CLI" check-config -c "$T/badaddr.json" >/dev/null 2>"$T/cc-addr.err"
"$CLI" smp --address 127.0.0.1 echo x >/dev/null 2>"$T/addr.err"
check "--address without a port is a usage error" [ $? -eq 2 ]
want=$(sed -n 's/.*transport\.address: //p' "$T/cc-addr.err")
check "... with the config's own message ($want)" \
	grep -qF -- "--address: $want" "$T/addr.err"
cat >"$T/badbaud.json" <<EOF
{"server": "http://127.0.0.1:1", "key_dir": "$T/keys",
 "devices": [{"name": "b", "id": "b", "dev_type": "t", "key": "b.key",
   "transport": {"type": "serial", "device": "$T/tty", "baud": 115201}}]}
EOF
"$CLI" check-config -c "$T/badbaud.json" >/dev/null 2>"$T/cc-baud.err"
"$CLI" smp --device "$T/tty" --baud 115201 echo x >/dev/null 2>"$T/baud.err"
check "--baud 115201 is a usage error" [ $? -eq 2 ]
want=$(sed -n 's/.*transport\.baud: //p' "$T/cc-baud.err")
check "... with the config's own message ($want)" \
	grep -qF -- "--baud: $want" "$T/baud.err"

# --- A tty another process holds fails at once, naming it ---
# The lock outlives flock(1): the subshell, become sleep, keeps it.
(flock -x 9 && exec sleep 60) 9<"$T/tty" &
holder=$!
_bg_pids+=($holder)
sleep 0.5
t0=$(date +%s)
timeout 30 "$CLI" smp --device "$T/tty" echo x >/dev/null 2>"$T/busy.err"
rc=$?
t1=$(date +%s)
check "a held tty fails the command" [ "$rc" -eq 1 ]
check "... within a few seconds ($((t1 - t0)) s)" [ $((t1 - t0)) -le 5 ]
check "... naming the holder's pid ($holder)" \
	grep -q "in use by process $holder (sleep)" "$T/busy.err"
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null

# --- A silent board fails in a few seconds, saying what to check ---
kill -STOP "$S_PID"
t0=$(date +%s)
timeout 60 "$CLI" smp --device "$T/tty" echo x >/dev/null 2>"$T/silent.err"
rc=$?
t1=$(date +%s)
kill -CONT "$S_PID"
check "a silent serial board fails" [ "$rc" -eq 1 ]
check "... by default within the connect timeout ($((t1 - t0)) s)" \
	[ $((t1 - t0)) -le 15 ]
check "... with the baud rate, SMP on the UART and the buffer to check" \
	grep -q "at 115200 baud (--baud).*CONFIG_MCUMGR_TRANSPORT_UART.*--mtu 128" "$T/silent.err"
kill -STOP "$U_PID"
timeout 60 "$CLI" smp --address "$U" echo x >/dev/null 2>"$T/silent-udp.err"
rc=$?
kill -CONT "$U_PID"
check "a silent UDP board fails with the UDP hint" \
	grep -q "CONFIG_MCUMGR_TRANSPORT_UDP" "$T/silent-udp.err"

# --- Output: -q, worker logs only with -v, the bar on its own line ---
out=$("$CLI" smp --address "$U" -q image upload "$T/new.bin" 2>"$T/q.err")
check "-q prints the result" grep -q "^uploaded $new_size bytes" <<<"$out"
check "... and nothing else" [ "$(wc -l <<<"$out")" -eq 1 -a ! -s "$T/q.err" ]
"$CLI" smp --address "$U" image upload "$T/new.bin" >/dev/null 2>"$T/nolog.err"
check "without -v no worker log lines" [ "$(grep -c 'proc=worker' "$T/nolog.err")" -eq 0 ]
"$CLI" smp --address "$U" -v image upload "$T/new.bin" >/dev/null 2>"$T/log.err"
check "with -v the worker's log lines" grep -q 'proc=worker-udp' "$T/log.err"
# On a terminal: what each line finally shows (after its last \r).
TERM=dumb script -qec "$CLI smp --address $U -v image upload $T/new.bin" \
	/dev/null </dev/null >"$T/tty.out" 2>&1
tr -d '\033' <"$T/tty.out" | sed 's/\[K//g; s/.*\r//' >"$T/tty.lines"
check "the bar shows elapsed time, ETA, KiB/s and the window" \
	grep -qE '\] 100\.0% .* KiB/s [0-9]+:[0-9]{2} ETA .* win [0-9]+' "$T/tty.out"
check "log lines never share the bar's line" \
	[ "$(grep -c 'level=.*KiB/s\|KiB/s.*level=' "$T/tty.lines")" -eq 0 ]
check "... and each starts its own line" \
	[ "$(grep 'level=' "$T/tty.lines" | grep -vc '^time=')" -eq 0 ]

# --- --window: capped at what the board allows, with a warning ---
out=$("$CLI" smp --address "$U" --json --window 8 image upload "$T/new.bin" 2>"$T/w.err")
check "--window 8 on a board with buf_count 4 uploads with 3" \
	[ "$(jq -r .window <<<"$out")" = 3 ]
check "... and says so" grep -q -- "--window 8 is more than the board allows (buf_count 4: 3 packets in flight); using 3" "$T/w.err"
"$CLI" smp image upload --help >"$T/help.txt"
check "--window 0 and absent are documented as adaptive" \
	grep -q "absent or 0: adaptive" "$T/help.txt"

# --- --json after a resumed upload (issue 16) ---
port=${U##*:}
stop_sim_u() { kill "$U_PID" 2>/dev/null; wait "$U_PID" 2>/dev/null; }
stop_sim_u
start_sim d udp --udp "127.0.0.1:$port" --image "$T/old.bin" \
	--die-after 40000 || exit 1
"$CLI" smp --address "$U" --timeout 300ms --retries 1 image erase >/dev/null 2>&1
"$CLI" smp --address "$U" --timeout 300ms --retries 1 image upload "$T/new.bin" \
	>/dev/null 2>&1
wait "$SIM_PID" 2>/dev/null
had=$(st .upload.offset)
start_sim d2 udp --udp "127.0.0.1:$port" --state "$T/d.state" || exit 1
U_PID=$SIM_PID
out=$("$CLI" smp --address "$U" --json image upload "$T/new.bin" 2>/dev/null)
check "--json counts the resume ($out)" [ "$(jq -r .resumes <<<"$out")" -ge 1 ]
check "... from the board's offset ($had)" \
	[ "$(jq -r .resumed_from <<<"$out")" -gt 0 ]
check "... bytes_sent is what this run sent" \
	[ "$(jq -r '.bytes_sent == .bytes - .resumed_from' <<<"$out")" = true ]
check "... and bytes_per_s is over those bytes" \
	[ "$(jq -r '(.bytes_sent * 1000 / .elapsed_ms | floor) - .bytes_per_s | fabs < 2' <<<"$out")" = true ]

# --- The stall limit (the daemon's timeouts.stall) ---
stop_sim_u
start_sim k udp --udp "127.0.0.1:$port" --image "$T/old.bin" --stuck-upload || exit 1
U_PID=$SIM_PID
t0=$(date +%s)
timeout 60 "$CLI" smp --address "$U" --stall 2s image upload "$T/new.bin" \
	>/dev/null 2>"$T/stall.err"
rc=$?
t1=$(date +%s)
check "a board stuck at offset 0 fails the upload" [ "$rc" -eq 1 ]
check "... after the stall limit ($((t1 - t0)) s)" [ $((t1 - t0)) -le 20 ]
check "... saying so" grep -q "no progress for 2.0 s (the board stays at offset 0" "$T/stall.err"
timeout 60 "$CLI" smp -c "$T/cfg.json" --board lab-udp image upload "$T/new.bin" \
	>/dev/null 2>"$T/stall2.err"
check "--board takes timeouts.stall from the config" \
	grep -q "no progress for 2.0 s" "$T/stall2.err"

# --- Images as people have them ---
stop_sim_u
start_sim h udp --udp "127.0.0.1:$port" --image "$T/old.bin" || exit 1
U_PID=$SIM_PID
objcopy -I binary -O ihex --change-addresses 0xc000 "$T/new.bin" "$T/new.hex"
"$CLI" smp --address "$U" image upload "$T/new.hex" >"$T/hex.out" 2>"$T/hex.err"
check "an Intel HEX image uploads" [ $? -eq 0 ]
"$CLI" smp --address "$U" --json image list >"$T/l.json" 2>/dev/null
check "... and slot 1 holds the image it contains" \
	[ "$(jq -r '.images[] | select(.slot == 1) | .hash' <"$T/l.json")" = "$new_hash" ]
printf '\x00\x10\x00\x20\x01\x04\x00\x00' >"$T/zephyr.bin"
head -c 4000 /dev/urandom >>"$T/zephyr.bin"
"$CLI" smp --address "$U" image upload "$T/zephyr.bin" >/dev/null 2>"$T/uns.err"
check "an unsigned Zephyr binary is refused with a hint" \
	grep -q "looks like an unsigned Zephyr binary.*sign it" "$T/uns.err"
objcopy -I binary -O ihex "$T/zephyr.bin" "$T/zephyr.hex"
"$CLI" smp --address "$U" image upload "$T/zephyr.hex" >/dev/null 2>"$T/unshex.err"
check "... and so is an unsigned zephyr.hex" \
	grep -q "unsigned Zephyr zephyr.hex.*zephyr.signed.hex" "$T/unshex.err"
cp /bin/true "$T/zephyr.elf"
"$CLI" smp --address "$U" image upload "$T/zephyr.elf" >/dev/null 2>"$T/elf.err"
check "an ELF file is refused naming the signed files" \
	grep -q "is an ELF file.*zephyr.signed.bin" "$T/elf.err"

# --- --help for every command ---
"$CLI" smp --help >"$T/smp-help.txt"
missing=
while read -r w1 w2; do
	"$CLI" smp $w1 $w2 --help >"$T/h.txt" 2>&1 || missing="$missing [$w1 $w2: exit]"
	grep -q "^usage: rdfm-mcumgr-client smp LINK \[options\] $w1${w2:+ $w2}" "$T/h.txt" ||
		missing="$missing [$w1 $w2]"
	grep -q "^  $w1${w2:+ $w2}" "$T/smp-help.txt" || missing="$missing [list: $w1 $w2]"
	grep -q "^\.It Cm $w1${w2:+ $w2}" "$SRC/docs/rdfm-mcumgr-client.1" ||
		missing="$missing [man: $w1 $w2]"
done <<'EOF'
echo
params
reset
upgrade
image list
image upload
image test
image confirm
image erase
os info
os taskstat
os mpstat
os datetime
os bootloader
stat list
stat show
shell exec
fs upload
fs download
fs stat
fs hash
EOF
check "every command has --help, a line in smp --help and in the man page${missing:+:$missing}" \
	[ -z "$missing" ]

done_testing
