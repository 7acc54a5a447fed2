#!/bin/bash
# The daemon's single-board update against the real Zephyr smp_svr
# (../shared/zephyr-peer) on a serial link, up to the reset and after it:
# the board runs 1.0.0 (slot 0 of its flash), the test RDFM server offers
# 1.1.0; the daemon uploads (the learning window, its figures in the log
# and /metrics), marks slot 1 pending, resets the board and waits for it.
# The peer's process exits at the reset and is started again on the same
# flash behind the same device path (a board rebooting).  It has no
# MCUboot, so the board comes back still running 1.0.0 with 1.1.0
# pending: the daemon must see that and fail the update as rejected,
# naming the version the board runs.  The peer must run: without it the
# test fails.
. "$(dirname "$0")/../lib.sh"
. "$SRC/tests/e2e-lib.sh"
. "$SRC/tests/it/peer_lib.bash"

e2e_image "$T/old.bin" 1.0.0 71 20000
e2e_image "$T/new.bin" 1.1.0 72 60000
new_hash=$(image_hash "$T/new.bin")
new_size=$(stat -c %s "$T/new.bin")
peer_flash "$T/board.flash" "$T/old.bin"
peer_keeper "$T/board.flash" "$T/board.tty" &
_bg_pids+=($!)
for i in $(seq 1 100); do [ -L "$T/board.tty" ] && break; sleep 0.1; done
if [ ! -L "$T/board.tty" ]; then
	not_ok "the real Zephyr peer runs" "../shared/zephyr-peer is required"
	exit 1
fi
BOARD_KIND[peer]=serial
BOARD_LINK[peer]=$T/board.tty

e2e_server --auto-approve || exit 1
e2e_artifact "$T/new.rdfm" "$T/new.bin" zephyr-peer 1.1.0
e2e_package "$T/new.rdfm" 1.1.0 zephyr-peer >/dev/null
e2e_config "$T/config.json" '{"retries": 1}' -- peer:zephyr-peer
e2e_run d -c "$T/config.json" --once -v

log=$T/d.log
check "the daemon read the board's version from slot 0: 1.0.0" \
	grep -Eq 'device="peer".* (version|running)=1\.0\.0' "$T/d.log"
check "the server offered the update" \
	grep -q '"path":"/api/v1/update/check","status":200,"device":"id-peer"' "$SLOG"
check "the daemon uploaded the image" \
	grep -Eq "msg=\"Upload finished\" .*device=\"peer\".* bytes=$new_size " "$log"
check "... its window and rewinds are logged" \
	grep -Eq 'msg="Upload finished" .*device="peer".* window=[1-3] rewinds=[0-9]+' "$log"
check "... the worker learnt from the board's parameters" \
	grep -q 'msg="upload starts".* window_max=3 window_from=params' "$log"
check "the daemon reset the board into the new image" \
	grep -Eq 'msg="Resetting the [a-z]+ into the new image".*device="peer"' "$log"
check "the peer exited at the reset and was started again" \
	[ "$(wc -l <"$PEER_PIDS")" -ge 2 ]
check "the worker came back on the rebooted board" \
	grep -q 'msg="link up again"' "$log"
check "without MCUboot the board still runs 1.0.0: the update is rejected" \
	grep -Eq 'rejected: after the reset the [a-z]+ still runs (version )?1\.0\.0' "$log"
check "--once reports the failure" [ "$RC" -ne 0 ]
# What the daemon left on the board, read from the rebooted peer.
"$CLIENT" smp --transport serial --device "$T/board.tty" --json image list \
	>"$T/list.json" 2>/dev/null
check "slot 1 holds the new image (as uploaded)" \
	[ "$(jq -r '.images[] | select(.slot == 1) | .hash' "$T/list.json")" = "$new_hash" ]
check "... pending (tested, never swapped)" \
	[ "$(jq -r '.images[] | select(.slot == 1) | .pending' "$T/list.json")" = true ]
[ "$_nfail" -eq 0 ] || show_log "$log" 40
done_testing
