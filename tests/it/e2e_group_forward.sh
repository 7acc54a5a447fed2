#!/bin/bash
# End to end, after the commit point a group rolls forward: the supervisor
# dies right at the commit (crash injection), one member's board dies too;
# the restarted supervisor confirms the others, reports the dead member
# unreachable (and reports no group version while the members disagree),
# and confirms it when it answers again.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../e2e-lib.sh"
. "$(dirname "$0")/e2e_group_lib.bash"

e2e_server --auto-approve || exit 1
group_images 2.0.0 10 u v w
group_artifact "$T/g.rdfm" gfw 2.0.0 u="$T/u.new.bin" v="$T/v.new.bin" \
	w="$T/w.new.bin"
e2e_package "$T/g.rdfm" 2.0.0 gfw >/dev/null
e2e_board u udp "$T/u.old.bin" || exit 1
e2e_board v udp "$T/v.old.bin" --self-confirm --confirm-ms 100 || exit 1
e2e_board w udp "$T/w.old.bin" || exit 1
group_config "$T/c.json" \
	'{"timeouts": {"request": "500ms", "erase": "10s", "reboot": "2s",
	  "confirm": "10s", "stall": "10s"}}' fw:gfw u v:self w
J=$T/state/journal/group-id-fw.json

RDFM_CRASH_AT=group-committed e2e_run crash -c "$T/c.json" --once
check "the supervisor died at the commit point" \
	grep -q 'msg="crash injection" point=group-committed' "$T/crash.log"
check "the journal says committed" [ "$(jq -r .phase "$J")" = committed ]
check "u and w run the new image, not yet confirmed" \
	[ "$(slot u 0 hash):$(slot u 0 confirmed):$(slot w 0 hash):$(slot w 0 confirmed)" = \
		"${NEW_HASH[u]}:false:${NEW_HASH[w]}:false" ]
e2e_board_stop w
nchecks=$(checks_of id-fw)

e2e_start fw -c "$T/c.json"
L=$T/fw.log
check "restart: the update left in flight is rolled forward" \
	wait_for_line "$L" 'msg="Rolling the group update left in flight forward" group="fw" phase=committed' 10
check "restart: w is reported unreachable" \
	wait_for_line "$L" 'level=ERROR msg="Group member not rolled forward" group="fw" member="w" reason="unreachable: ' 20
check "restart: u is confirmed on the new image" on_image u "${NEW_HASH[u]}"
check "restart: v (self-confirmed) is on the new image" \
	on_image v "${NEW_HASH[v]}"
check "restart: the journal still has w to do" \
	[ "$(jq -r '.phase + " " + (.members[] | select(.name == "w") | .phase) + " " + (.members[] | select(.name == "u") | .phase)' "$J")" = \
		"committed committed done" ]
sleep 1
check "restart: no group version went to the server meanwhile" \
	[ "$(checks_of id-fw)" -eq "$nchecks" ]
check "restart: no success yet" [ "$(count "$L" 'Update successful')" -eq 0 ]

# w comes back (still test-booted on the new image): confirmed.
group_board_again w "$T/w.old.bin" || exit 1
if wait_for_line "$L" 'msg="Update successful" group="fw" members=3 new_version=2.0.0' 20; then
	ok "w back: the group completes"
else
	not_ok "w back: the group completes" "no success line"
	show_log "$L"
fi
check "w back: w runs its new image, confirmed" on_image w "${NEW_HASH[w]}"
check "w back: u and v still on theirs" \
	eval 'on_image u "${NEW_HASH[u]}" && on_image v "${NEW_HASH[v]}"'
# w's counters start again with its simulator: no reset since.
check "w back: no member was reset again" \
	[ "$(board_field u .counters.resets):$(board_field v .counters.resets):$(board_field w .counters.resets)" = 1:1:0 ]
for i in $(seq 1 50); do
	[ "$(jq -c 'select(.device == "id-fw" and .status == 204)' "$SLOG" | wc -l)" -ge 1 ] && break
	sleep 0.2
done
e2e_stop
check "w back: the group reports 2.0.0 and is up to date" \
	[ "$(jq -c 'select(.device == "id-fw" and .status == 204)' "$SLOG" | wc -l)" -ge 1 ]
check "SIGTERM: clean exit" [ "$STOP_RC" -eq 0 ]

# A member that was reset after the commit point reverted to its old
# image (its new one back in slot 1): rolled forward by marking the new
# image permanent and resetting it.
for b in u v w; do
	e2e_board_stop $b
	rm -f "$T/$b.state"
done
rm -rf "$T/state"
e2e_board u udp "$T/u.old.bin" || exit 1
e2e_board v udp "$T/v.old.bin" --self-confirm --confirm-ms 100 || exit 1
e2e_board w udp "$T/w.old.bin" || exit 1
group_config "$T/c2.json" '{}' fw:gfw u v:self w
RDFM_CRASH_AT=group-committed e2e_run crash2 -c "$T/c2.json" --once
"$CLIENT" smp --transport udp --address "${BOARD_LINK[w]}" reset \
	>/dev/null 2>&1
for i in $(seq 1 50); do
	[ "$(slot w 0 hash)" = "${OLD_HASH[w]}" ] && break
	sleep 0.1
done
check "reverted: w reverted to its old image after a reset" \
	[ "$(slot w 0 hash):$(slot w 1 hash)" = "${OLD_HASH[w]}:${NEW_HASH[w]}" ]
e2e_run fw2 -c "$T/c2.json" --once
L=$T/fw2.log
check "reverted: --once exits 0" [ "$RC" -eq 0 ]
check "reverted: w was switched over to the new image" \
	grep -q 'msg="Group member is not on the new image; switching it over" group="fw" member="w"' "$L"
for b in u v w; do
	check "reverted: member $b runs its new image, confirmed" \
		on_image $b "${NEW_HASH[$b]}"
done
check "reverted: w's new image is permanent, its old one in slot 1" \
	[ "$(slot w 1 hash)" = "${OLD_HASH[w]}" ]
[ "$RC" -eq 0 ] || show_log "$L"

done_testing
