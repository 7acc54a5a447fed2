#!/bin/bash
# End to end, group failures before the commit point roll every member
# back: a group of three where one member rejects the new image in its
# self test (another had already confirmed it: switched back through slot
# 1); a member that never boots again (the others rolled back, the failure
# and the unreachable member reported and journalled, and the member
# brought in line when it answers again).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../e2e-lib.sh"
. "$(dirname "$0")/e2e_group_lib.bash"

e2e_server --auto-approve || exit 1

# --- x confirmed by us, y confirms itself quickly, z fails its self test ---
group_images 2.0.0 10 x y z
group_artifact "$T/g.rdfm" grej 2.0.0 x="$T/x.new.bin" y="$T/y.new.bin" \
	z="$T/z.new.bin"
e2e_package "$T/g.rdfm" 2.0.0 grej >/dev/null
e2e_board x udp "$T/x.old.bin" || exit 1
e2e_board y udp "$T/y.old.bin" --self-confirm --confirm-ms 100 || exit 1
e2e_board z udp "$T/z.old.bin" --self-reject --confirm-ms 1500 || exit 1
group_config "$T/rej.json" '{}' rej:grej x y:self z:self
e2e_run rej -c "$T/rej.json" --once
L=$T/rej.log
check "self-reject: --once exits non-zero" [ "$RC" -ne 0 ]
check "self-reject: the failure names the group, the member and why" \
	grep -q 'level=ERROR msg="Update failed" group="rej" phase=confirm reason="member z: rejected: .*; every member rolled back" attempt=1/3' "$L"
for b in x y z; do
	check "self-reject: member $b back on its old image, confirmed" \
		on_image $b "${OLD_HASH[$b]}"
done
check "self-reject: y had confirmed the new image and was switched back" \
	grep -q 'msg="Group member confirmed the new image; switching it back to the old one" group="rej" member="y"' "$L"
check "self-reject: nothing was committed (no confirm of ours)" \
	[ "$(count "$L" 'committing')" -eq 0 ]
check "self-reject: the journal has no update in flight" \
	[ "$(jq -r .phase "$T/state/journal/group-id-rej.json")" = idle ]
[ "$RC" -ne 0 ] || show_log "$L"
for b in x y z; do e2e_board_stop $b; done

# --- r never boots after the reset ---
group_images 2.0.0 20 p q r
group_artifact "$T/nb.rdfm" gnb 2.0.0 p="$T/p.new.bin" q="$T/q.new.bin" \
	r="$T/r.new.bin"
e2e_package "$T/nb.rdfm" 2.0.0 gnb >/dev/null
e2e_board p udp "$T/p.old.bin" || exit 1
e2e_board q udp "$T/q.old.bin" --self-confirm --confirm-ms 100 || exit 1
e2e_board r udp "$T/r.old.bin" --no-boot || exit 1
group_config "$T/nb.json" \
	'{"timeouts": {"request": "500ms", "erase": "10s", "reboot": "2s",
	  "confirm": "10s", "stall": "10s"}}' nb:gnb p q:self r
e2e_run nb -c "$T/nb.json" --once
L=$T/nb.log
check "no boot: --once exits non-zero" [ "$RC" -ne 0 ]
check "no boot: the reboot deadline names the member" \
	grep -q 'level=ERROR msg="Group member failed" group="nb" member="r" phase=reboot reason="the board did not answer within 2000 ms' "$L"
check "no boot: the member is reported unreachable" \
	grep -q 'level=ERROR msg="Group member not rolled back" group="nb" member="r" reason="unreachable: ' "$L"
check "no boot: the group's failure is reported" \
	grep -q 'level=ERROR msg="Update failed" group="nb" phase=reboot reason="member r: .*rolled back, except 1 member' "$L"
check "no boot: member p back on its old image, confirmed" \
	on_image p "${OLD_HASH[p]}"
check "no boot: member q back on its old image, confirmed" \
	on_image q "${OLD_HASH[q]}"
check "no boot: the journal keeps the rollback of r" \
	[ "$(jq -r '.phase + " " + (.members[] | select(.name == "r") | .phase) + " " + (.members[] | select(.name == "p") | .phase)' \
		"$T/state/journal/group-id-nb.json")" = "rolling_back rolling_back idle" ]
[ "$RC" -ne 0 ] || show_log "$L"

# r answers again (it runs the new image as a test boot): the next run
# rolls it back first, then the group takes the update together.
e2e_board_stop r
e2e_board r udp "$T/r.old.bin" || exit 1
group_config "$T/nb.json" '{}' nb:gnb p q:self r
e2e_run nb2 -c "$T/nb.json" --once
L=$T/nb2.log
check "r back: the update left in flight is rolled back first" \
	grep -q 'msg="Rolling the group update left in flight back" group="nb" phase=rolling_back' "$L"
check "r back: r reverted to its old image" \
	grep -q 'msg="Group member back on its old image" group="nb" member="r"' "$L"
check "r back: then the group was updated together" \
	grep -q 'msg="Update successful" group="nb" members=3 new_version=2.0.0' "$L"
check "r back: --once exits 0" [ "$RC" -eq 0 ]
for b in p q r; do
	check "r back: member $b runs its new image, confirmed" \
		on_image $b "${NEW_HASH[$b]}"
done
[ "$RC" -eq 0 ] || show_log "$L"

done_testing
