#!/bin/bash
# The `smp` commands against the real Zephyr smp_svr (../shared/zephyr-peer,
# Zephyr 3.2.99 on native_posix, SMP over its UART): the groups it has (OS,
# image, stat) answer as the commands expect, the ones it lacks give the
# one-line "not supported" with the Kconfig to turn on, and upgrade runs its
# phases up to the check, which fails as it must on a board without
# MCUboot.  The board runs on a flash file in this test's directory; a
# peer that cannot run fails the test.
. "$(dirname "$0")/../lib.sh"

CLI=$BIN/rdfm-mcumgr-client
MK=$BIN/mcuboot-mkimage
PEER=$SHARED/zephyr-peer/start-smp-server.sh

# start_peer: the board on $T/board.flash; its tty is the link $T/tty.
start_peer() {
	local out
	out=$("$PEER" "$T/board.flash" 2>"$T/peer.err") || return 1
	PEER_PID=${out#PID=}
	PEER_PID=${PEER_PID%% *}
	_bg_pids+=("$PEER_PID")
	ln -sfn "${out#* PTY=}" "$T/tty"
}

if ! start_peer; then
	not_ok "the real Zephyr peer starts" "$(cat "$T/peer.err")"
	done_testing
	exit 1
fi
ok "the real Zephyr peer starts"
P=(--device "$T/tty")
smp() { "$CLI" smp "${P[@]}" "$@"; }

"$MK" --version 2.0.0+7 --size 24000 --seed 91 -o "$T/new.bin" >/dev/null
new_hash=$("$MK" --print-hash "$T/new.bin")

# --- What it has ---
check "echo" [ "$(smp echo real 2>/dev/null)" = real ]
check "params: Zephyr's default buffers" \
	[ "$(smp --json params 2>/dev/null | jq -c '[.buf_size, .buf_count]')" = "[384,4]" ]
check "os info" [ "$(smp os info 2>/dev/null)" = Zephyr ]
check "os info a names the board" grep -q "native_posix_64" <<<"$(smp os info a 2>/dev/null)"
smp os taskstat >"$T/ts.txt" 2>"$T/ts.err"
check "os taskstat: a line per thread" [ "$(wc -l <"$T/ts.txt")" -ge 3 ]
check "... with negative priorities for cooperative threads" \
	grep -qE "^-1 +-1 " "$T/ts.txt"
check "os taskstat --json" \
	[ "$(smp --json os taskstat 2>/dev/null | jq '.tasks | length')" -ge 2 ]
smp stat list >"$T/sl.txt" 2>/dev/null
check "stat list" grep -qx smp_svr_stats "$T/sl.txt"
check "stat show" grep -qE "^ticks +[0-9]+$" <<<"$(smp stat show smp_svr_stats 2>/dev/null)"
smp stat show nosuch >/dev/null 2>"$T/st.err"
check "stat show of an unknown group: the board's rc 1, explained" \
	grep -q 'rc 1 (unknown error); is there a group "nosuch"?' "$T/st.err"

# --- What it lacks: one line naming the Kconfig ---
notsup() {
	local want=$1
	shift
	smp "$@" >/dev/null 2>"$T/ns.err"
	[ $? -eq 1 ] && [ "$(wc -l <"$T/ns.err")" -eq 1 ] &&
		grep -q "the board does not support .*$want" "$T/ns.err"
}
check "os mpstat: not supported, CONFIG_MCUMGR_GRP_OS_MPSTAT" \
	notsup CONFIG_MCUMGR_GRP_OS_MPSTAT os mpstat
check "os datetime: not supported, CONFIG_MCUMGR_GRP_OS_DATETIME" \
	notsup CONFIG_MCUMGR_GRP_OS_DATETIME os datetime
check "os bootloader: not supported, CONFIG_MCUMGR_GRP_OS_BOOTLOADER_INFO" \
	notsup CONFIG_MCUMGR_GRP_OS_BOOTLOADER_INFO os bootloader
check "shell exec: not supported, CONFIG_MCUMGR_GRP_SHELL" \
	notsup CONFIG_MCUMGR_GRP_SHELL shell exec kernel uptime
check "fs download: not supported, CONFIG_MCUMGR_GRP_FS" \
	notsup "fs download.*CONFIG_MCUMGR_GRP_FS" fs download /lfs/x "$T/x"
check "... and no file left behind" [ ! -e "$T/x" -a ! -e "$T/x.part" ]

# --- Image group ---
check "a fresh flash lists no images" [ "$(smp image list 2>/dev/null)" = "no images" ]
out=$(smp --json --window 8 image upload "$T/new.bin" 2>"$T/up.err")
check "image upload over the real UART" [ "$(jq -r .hash <<<"$out")" = "$new_hash" ]
check "... with --window capped at buf_count - 1" [ "$(jq -r .window <<<"$out")" = 3 ]
smp --json image list >"$T/l.json" 2>/dev/null
check "slot 1 holds the image, in Zephyr's version spelling" \
	[ "$(jq -r '.images[] | select(.slot == 1) | "\(.hash) \(.version)"' <"$T/l.json")" = \
		"$new_hash 2.0.0.7" ]
smp image erase >"$T/er.out" 2>"$T/er.err"
check "image erase (Zephyr 3.2 erases, then answers rc 7)" \
	grep -q "slot 1 erased" "$T/er.out"
check "... and slot 1 is empty" [ "$(smp image list 2>/dev/null)" = "no images" ]

# --- upgrade: every phase up to the check, which fails without MCUboot ---
# The board exits after a reset; it is started again on the same flash, as
# a reboot would.
"$CLI" smp "${P[@]}" --reboot-timeout 60s upgrade "$T/new.bin" \
	>"$T/upg.out" 2>"$T/upg.err" &
upg=$!
for _ in $(seq 1 600); do
	kill -0 "$PEER_PID" 2>/dev/null || break
	kill -0 "$upg" 2>/dev/null || break
	sleep 0.1
done
if ! kill -0 "$PEER_PID" 2>/dev/null; then
	start_peer || not_ok "the peer starts again" "$(cat "$T/peer.err")"
fi
wait "$upg"
rc=$?
check "upgrade on a board without MCUboot fails the check phase (exit 7)" [ "$rc" -eq 7 ]
check "... after upload, test, reset and wait" \
	[ "$(cut -d: -f1 "$T/upg.out" | tr '\n' ' ')" = "upload test reset wait " ]
check "... saying the board does not run the new image" \
	grep -q "upgrade failed at check: the board runs nothing" "$T/upg.err"
check "the board kept slot 1 pending, as Zephyr does without MCUboot" \
	[ "$(smp --json image list 2>/dev/null | jq -r '.images[] | select(.slot == 1) | .pending')" = true ]

done_testing
