#!/bin/bash
# One daemon per state directory and one user per link: a second daemon on
# the same state_dir exits 1 naming the directory and the pid that holds
# it, and an `smp` command on a link the daemon uses exits 1 naming the
# daemon's pid, while links the daemon does not use stay free.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../e2e-lib.sh"

e2e_server --auto-approve || exit 1
e2e_image "$T/old.bin" 1.0.0 1
e2e_image "$T/new.bin" 2.0.0 2 200000
e2e_artifact "$T/new.rdfm" "$T/new.bin" typeL 2.0.0
e2e_package "$T/new.rdfm" 2.0.0 typeL >/dev/null
# A slow board, so the update is still running when the others start.
e2e_board lk udp "$T/old.bin" --flash-us-per-kb 20000 || exit 1
e2e_board free udp "$T/old.bin" || exit 1
e2e_config "$T/c.json" -- lk:typeL
e2e_start first -c "$T/c.json"
FIRST=$CLIENT_PID
wait_for_line "$T/first.log" 'msg="Uploading the new image"' 20 ||
	{ not_ok "set-up: the first daemon uploads" "-"; show_log "$T/first.log"; }

e2e_run second -c "$T/c.json" --once
check "a second daemon on the same state_dir exits 1" [ "$RC" -eq 1 ]
check "... naming the directory and the pid that holds it" \
	grep -q "level=ERROR msg=\"Another daemon uses this state directory\" state_dir=\"$T/state\" pid=$FIRST" \
	"$T/second.log"
check "... before it touched a board" \
	[ "$(count "$T/second.log" 'Uploading the new image')" -eq 0 ]

"$CLIENT" smp --transport udp --address "${BOARD_LINK[lk]}" echo hi \
	>"$T/smp.out" 2>"$T/smp.err"
rc=$?
check "smp on the daemon's link exits 1" [ "$rc" -eq 1 ]
check "... naming the link and the daemon's pid" \
	grep -q "udp:${BOARD_LINK[lk]} is in use: held by pid $FIRST" "$T/smp.err"
out=$("$CLIENT" smp --transport udp --address "${BOARD_LINK[free]}" echo hi \
	2>/dev/null)
check "smp on a link the daemon does not use works" [ "$out" = hi ]

check "the first daemon finishes its update" \
	wait_for_line "$T/first.log" 'msg="Update successful" device="lk"' 60
e2e_stop
out=$("$CLIENT" smp --transport udp --address "${BOARD_LINK[lk]}" echo again \
	2>/dev/null)
check "the link is free once the daemon stopped" [ "$out" = again ]
in=$(board_field lk .counters.bytes_in)
check "one image's worth of bytes went to the board, not two ($in)" \
	[ "$in" -gt 200000 -a "$in" -lt 300000 ]

done_testing
