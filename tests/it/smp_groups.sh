#!/bin/bash
# The `smp` commands beyond the update path against the virtual board: OS
# info, taskstat, mpstat, datetime and bootloader, stat, shell exec and the
# fs group (chunked, resumed, verified), image erase, their --json, and
# the one-line "not supported" message naming the Kconfig to turn on.
. "$(dirname "$0")/../lib.sh"
. "$SRC/tests/sim/it-lib.sh"

CLI=$BIN/rdfm-mcumgr-client

"$MK" --version 1.0.0 --size 20000 --seed 71 -o "$T/old.bin" >/dev/null
"$MK" --version 1.1.0 --size 30000 --seed 72 -o "$T/new.bin" >/dev/null

start_sim u udp --udp 127.0.0.1:0 --image "$T/old.bin" || exit 1
A=(--address "$READY")
smp() { "$CLI" smp "${A[@]}" "$@"; }

# --- OS group ---
out=$(smp os info 2>/dev/null)
check "os info: the kernel name by default" [ "$out" = Zephyr ]
out=$(smp os info a 2>/dev/null)
check "os info a: everything" grep -q "^Zephyr sim .* board_sim Zephyr$" <<<"$out"
smp os info q >/dev/null 2>"$T/fmt.err"
check "os info with a bad format letter is refused by the board" \
	grep -q "os info: the board refused: rc 3" "$T/fmt.err"
out=$(smp --smp-v2 os info q 2>&1 >/dev/null)
check "... in SMP v2 with the group's own reason" \
	grep -q "os group rc 2 .*(invalid format)" <<<"$out"

smp os taskstat >"$T/ts.txt" 2>/dev/null
check "os taskstat: a header and a line per task" [ "$(wc -l <"$T/ts.txt")" -eq 5 ]
check "... with priority, state and stack use" \
	grep -qE "^sysworkq +-1 +2 +128 +700/2048$" "$T/ts.txt"
smp --json os taskstat >"$T/ts.json" 2>/dev/null
check "os taskstat --json: the board's map of tasks" \
	[ "$(jq -r '.tasks.main.stksiz' <"$T/ts.json")" = 1024 ]

out=$(smp os mpstat 2>/dev/null)
check "os mpstat: the pools" grep -qE "^heap +1 +16384 +9000 +7100$" <<<"$out"

smp os datetime >/dev/null 2>"$T/dt.err"
check "os datetime before the clock was set says how to set it" \
	grep -q "the board's clock is not set (\"smp os datetime set now\" sets it)" "$T/dt.err"
out=$(smp os datetime set 2024-05-01T12:00:00 2>/dev/null)
check "os datetime set TIME" [ "$out" = "datetime set to 2024-05-01T12:00:00" ]
out=$(smp os datetime 2>/dev/null)
check "os datetime reads it back" grep -q "^2024-05-01T12:00:0[0-9]$" <<<"$out"
smp os datetime set 2024-05-01 >/dev/null 2>"$T/dtbad.err"
check "os datetime set with a bad time is a usage error" [ $? -eq 2 ]
out=$(smp --json os datetime set now 2>/dev/null)
check "os datetime set now --json" \
	[ "$(jq -r .datetime <<<"$out" | cut -c1-4)" = "$(date -u +%Y)" ]

out=$(smp os bootloader 2>/dev/null)
check "os bootloader" [ "$out" = MCUboot ]
out=$(smp os bootloader mode 2>/dev/null)
check "os bootloader mode" [ "$out" = "mode: 1 (swap using scratch)" ]

# --- stat group ---
out=$(smp stat list 2>/dev/null)
check "stat list" [ "$out" = "$(printf 'smp_svr_stats\nsim_link')" ]
out=$(smp stat show sim_link 2>/dev/null)
check "stat show NAME: the counters" grep -qE "^requests +[0-9]+$" <<<"$out"
out=$(smp --json stat show smp_svr_stats 2>/dev/null)
check "stat show --json" [ "$(jq -r '.fields | keys | join(",")' <<<"$out")" = "s1,ticks" ]
smp stat show nosuch >/dev/null 2>"$T/st.err"
check "stat show of an unknown group fails with the board's code" \
	grep -q "stat show: the board refused: rc 1" "$T/st.err"

# --- shell group ---
out=$(smp shell exec echo -n two words 2>/dev/null)
check "shell exec: options after 'shell exec' belong to the command" \
	[ "$out" = "-n two words" ]
smp shell exec fail 3 >"$T/sh.out" 2>"$T/sh.err"
check "shell exec: a command returning non-zero fails" [ $? -eq 1 ]
check "... saying what it returned" grep -q "the command returned 3" "$T/sh.err"
check "... after printing its output" grep -q "failing with 3" "$T/sh.out"
out=$(smp --json shell exec nosuch 2>/dev/null)
check "shell exec --json: output and return code" \
	[ "$(jq -r '.ret' <<<"$out")" = -8 ]

# --- fs group ---
head -c 70000 /dev/urandom >"$T/data.bin"
smp fs upload "$T/data.bin" /lfs/data.bin >"$T/up.out" 2>"$T/up.err"
check "fs upload" [ $? -eq 0 ]
check "... verified with the board's hash" grep -q "verified with the board's SHA-256" "$T/up.out"
out=$(smp fs stat /lfs/data.bin 2>/dev/null)
check "fs stat" [ "$out" = "/lfs/data.bin: 70000 bytes" ]
out=$(smp fs hash /lfs/data.bin 2>/dev/null)
check "fs hash: the SHA-256 by default" \
	[ "$out" = "sha256 $(sha256sum <"$T/data.bin" | cut -d' ' -f1)  /lfs/data.bin" ]
out=$(smp fs hash --type crc32 /lfs/data.bin 2>/dev/null)
want=$(gzip -c <"$T/data.bin" | tail -c 8 | od -An -tx4 -N4 | tr -d ' ')
check "fs hash --type crc32 ($want)" [ "$out" = "crc32 0x$want  /lfs/data.bin" ]
smp fs download /lfs/data.bin "$T/back.bin" >/dev/null 2>&1
check "fs download gives the same bytes" cmp -s "$T/data.bin" "$T/back.bin"
check "... and leaves no .part behind" [ ! -e "$T/back.bin.part" ]

# Resumes: the board has the first 30000 bytes; an upload goes on from there.
head -c 30000 "$T/data.bin" >"$T/half.bin"
head -c 90000 /dev/urandom >"$T/other.bin"
smp fs upload "$T/half.bin" /lfs/r.bin >/dev/null 2>&1
out=$(smp --json fs upload "$T/data.bin" /lfs/r.bin 2>/dev/null)
check "fs upload resumes after the part the board has" \
	[ "$(jq -r '.resumed_from, .bytes_sent' <<<"$out" | tr '\n' ' ')" = "30000 40000 " ]
smp fs download /lfs/r.bin "$T/r.bin" >/dev/null 2>&1
check "... and the file is whole" cmp -s "$T/data.bin" "$T/r.bin"
smp fs upload "$T/other.bin" /lfs/r.bin >/dev/null 2>&1
out=$(smp --json fs upload "$T/data.bin" /lfs/r.bin 2>/dev/null)
check "a file that is not a prefix starts over" \
	[ "$(jq -r '.resumed_from' <<<"$out")" = 0 ]
out=$(smp --json --no-resume fs upload "$T/data.bin" /lfs/r.bin 2>/dev/null)
check "--no-resume starts over" [ "$(jq -r '.bytes_sent' <<<"$out")" = 70000 ]
# A download interrupted earlier: the .part has the first 20000 bytes.
head -c 20000 "$T/data.bin" >"$T/d.bin.part"
out=$(smp --json fs download /lfs/data.bin "$T/d.bin" 2>/dev/null)
check "fs download resumes from LOCAL.part" \
	[ "$(jq -r '.resumed_from' <<<"$out")" = 20000 ]
check "... and the file is whole" cmp -s "$T/data.bin" "$T/d.bin"
head -c 20000 "$T/other.bin" >"$T/e.bin.part"
smp fs download /lfs/data.bin "$T/e.bin" >/dev/null 2>&1
check "a .part of another file is not resumed from" cmp -s "$T/data.bin" "$T/e.bin"
smp fs download /lfs/nosuch "$T/n.bin" >/dev/null 2>"$T/nf.err"
check "fs download of a missing file fails with the board's reason" \
	grep -q "rc 5 (no such entry)" "$T/nf.err"
smp --smp-v2 fs download /lfs/nosuch "$T/n.bin" >/dev/null 2>"$T/nf2.err"
check "... (SMP v2: the fs group's own code)" grep -q "(file not found)" "$T/nf2.err"
check "... and leaves no file" [ ! -e "$T/n.bin" ]
: >"$T/empty.bin"
smp fs upload "$T/empty.bin" /lfs/empty >/dev/null 2>&1
check "an empty file uploads" [ "$(smp fs stat /lfs/empty 2>/dev/null)" = "/lfs/empty: 0 bytes" ]

# --- image erase ---
smp image upload "$T/new.bin" >/dev/null 2>&1
smp image erase >"$T/er.out" 2>&1
check "image erase" grep -q "slot 1 erased" "$T/er.out"
check "... and slot 1 is empty" \
	[ "$(smp --json image list 2>/dev/null | jq '[.images[] | select(.slot == 1)] | length')" = 0 ]
smp image upload "$T/new.bin" >/dev/null 2>&1
smp image test "$(hash_of "$T/new.bin")" >/dev/null 2>&1
smp image erase >/dev/null 2>"$T/er2.err"
check "image erase of a pending slot is refused by the board" \
	grep -q "image erase: the board refused" "$T/er2.err"
stop_sim

# --- Boards without the groups: one line naming the Kconfig ---
start_sim n udp --udp 127.0.0.1:0 --image "$T/old.bin" \
	--without taskstat,mpstat,datetime,info,bootloader,stat,shell,fs || exit 1
A=(--address "$READY")
notsup() {
	local want=$1
	shift
	smp "$@" >/dev/null 2>"$T/ns.err"
	[ $? -eq 1 ] && [ "$(wc -l <"$T/ns.err")" -eq 1 ] &&
		grep -q "the board does not support .*$want" "$T/ns.err"
}
check "os taskstat not supported: CONFIG_MCUMGR_GRP_OS_TASKSTAT" \
	notsup CONFIG_MCUMGR_GRP_OS_TASKSTAT os taskstat
check "os mpstat: CONFIG_MCUMGR_GRP_OS_MPSTAT" notsup CONFIG_MCUMGR_GRP_OS_MPSTAT os mpstat
check "os datetime: CONFIG_MCUMGR_GRP_OS_DATETIME" notsup CONFIG_MCUMGR_GRP_OS_DATETIME os datetime
check "os info: CONFIG_MCUMGR_GRP_OS_INFO" notsup CONFIG_MCUMGR_GRP_OS_INFO os info
check "os bootloader: CONFIG_MCUMGR_GRP_OS_BOOTLOADER_INFO" \
	notsup CONFIG_MCUMGR_GRP_OS_BOOTLOADER_INFO os bootloader
check "stat list: CONFIG_MCUMGR_GRP_STAT" notsup CONFIG_MCUMGR_GRP_STAT stat list
check "shell exec: CONFIG_MCUMGR_GRP_SHELL" notsup CONFIG_MCUMGR_GRP_SHELL shell exec ls
check "fs stat: CONFIG_MCUMGR_GRP_FS" notsup "fs stat.*CONFIG_MCUMGR_GRP_FS" fs stat /x
check "fs upload: CONFIG_MCUMGR_GRP_FS" notsup "fs upload.*CONFIG_MCUMGR_GRP_FS" \
	fs upload "$T/data.bin" /lfs/x
smp --json os taskstat >"$T/ns.json" 2>/dev/null
check "... and with --json as an error object" \
	grep -q '"error":"the board does not support os taskstat' "$T/ns.json"
stop_sim

# A file system without fs hash: uploads work, unverified; no resume.
start_sim h udp --udp 127.0.0.1:0 --without fs-hash || exit 1
A=(--address "$READY")
smp fs upload "$T/half.bin" /lfs/r.bin >/dev/null 2>&1
smp fs upload "$T/data.bin" /lfs/r.bin >"$T/nh.out" 2>"$T/nh.err"
check "without fs hash an upload starts over, saying why" \
	grep -q "cannot hash them (no fs hash): starting over" "$T/nh.err"
check "... and says it is not verified" grep -q "not verified" "$T/nh.out"
stop_sim

# A legacy shell ("rc" for the command's code) over serial.
start_sim l serial --serial "$T/tty" --shell-legacy-rc || exit 1
out=$("$CLI" smp --device "$T/tty" shell exec fail 2 2>"$T/lg.err")
check "shell exec on a legacy build: the output" [ "$out" = "failing with 2" ]
check "... and its rc as the command's code, not a refusal" \
	grep -q "the command returned 2" "$T/lg.err"
out=$("$CLI" smp --device "$T/tty" shell exec echo ok 2>/dev/null)
check "... and a command returning 0 succeeds" [ "$out" = ok ]

done_testing
