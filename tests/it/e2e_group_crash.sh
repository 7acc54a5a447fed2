#!/bin/bash
# End to end, crash injection at every group journal point: the supervisor
# kills itself right after writing the record (RDFM_CRASH_AT), a second
# --once run reads the journal and the members, and the group ends on one
# version: before the commit point it is rolled back and updated again,
# after it rolled forward; a crash while rolling back still rolls back.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../e2e-lib.sh"
. "$(dirname "$0")/e2e_group_lib.bash"

e2e_server --auto-approve || exit 1
group_images 2.0.0 10 a b c
group_artifact "$T/g.rdfm" gcr 2.0.0 a="$T/a.new.bin" b="$T/b.new.bin" \
	c="$T/c.new.bin"
e2e_package "$T/g.rdfm" 2.0.0 gcr >/dev/null

# crash_case POINT END [C-ARGS...]: fresh boards a (ours to confirm), b
# (self-confirming), c (C-ARGS; member spec C_SPEC), a crash at POINT, then a clean run; END
# is "new" or "old", the image every member must end on.
crash_case() {
	local point=$1 want=$2 b n=$1 ok_all=1 h rc1
	shift 2
	for b in a b c; do
		BOARD_PID[$b]=
		rm -f "$T/$b.state"
	done
	e2e_board a udp "$T/a.old.bin" || return 1
	e2e_board b udp "$T/b.old.bin" --self-confirm --confirm-ms 200 || return 1
	e2e_board c udp "$T/c.old.bin" "$@" || return 1
	rm -rf "$T/state"
	group_config "$T/$n.json" '{}' cr:gcr a b:self "${C_SPEC:-c}"
	RDFM_CRASH_AT=$point e2e_run "$n-1" -c "$T/$n.json" --once
	rc1=$RC
	check "$point: the supervisor killed itself there" \
		eval '[ "$rc1" -eq 137 ] &&
		grep -q "msg=\"crash injection\" point=$point" "$T/$n-1.log"'
	e2e_run "$n-2" -c "$T/$n.json" --once
	for b in a b c; do
		if [ "$want" = new ]; then h=${NEW_HASH[$b]}; else h=${OLD_HASH[$b]}; fi
		on_image $b "$h" || ok_all=0
	done
	if [ "$ok_all" -eq 1 ]; then
		ok "$point: after the restart every member runs its $want image, confirmed"
	else
		not_ok "$point: after the restart every member runs its $want image, confirmed" \
			"a=$(slot a 0 version)/$(slot a 0 confirmed) b=$(slot b 0 version)/$(slot b 0 confirmed) c=$(slot c 0 version)/$(slot c 0 confirmed)"
		show_log "$T/$n-2.log"
	fi
	for b in a b c; do e2e_board_stop $b; done
	[ "$ok_all" -eq 1 ]
}

for p in group-uploading group-pending group-resetting group-confirming; do
	crash_case $p new
	check "$p: the restart rolled back first, then updated" \
		eval "grep -q 'msg=\"Rolling the group update left in flight back\"' '$T/$p-2.log' &&
		grep -q 'msg=\"Update successful\" group=\"cr\" members=3 new_version=2.0.0' '$T/$p-2.log'"
	check "$p: the restart exits 0" [ "$RC" -eq 0 ]
done

crash_case group-committed new
check "group-committed: the restart rolled forward without a new upload" \
	eval "grep -q 'msg=\"Rolling the group update left in flight forward\"' '$T/group-committed-2.log' &&
	[ \$(count '$T/group-committed-2.log' 'Uploading the new image') -eq 0 ]"
check "group-committed: each member reset once in all" \
	[ "$(board_field a .counters.resets):$(board_field b .counters.resets):$(board_field c .counters.resets)" = 1:1:1 ]
check "group-committed: the restart exits 0" [ "$RC" -eq 0 ]

crash_case group-done new
check "group-done: the restart finds the group up to date" \
	grep -q 'msg="Up to date" group="cr" version=2.0.0' "$T/group-done-2.log"
check "group-done: the restart exits 0" [ "$RC" -eq 0 ]

# c fails its self test: the crash hits the rollback's first record.
C_SPEC=c:self crash_case group-rolling-back old --self-reject \
	--confirm-ms 600
check "group-rolling-back: the restart finished the rollback" \
	grep -q 'msg="Rolling the group update left in flight back"' \
		"$T/group-rolling-back-2.log"
check "group-rolling-back: ... and reports the failure again" \
	grep -q 'level=ERROR msg="Update failed" group="cr"' \
		"$T/group-rolling-back-2.log"

done_testing
