#!/bin/bash
# End to end, this host's own trouble: a journal record that cannot be
# written stops the update before the step it announces (the board is not
# touched), and a disk that fills up while the artifact is extracted is a
# transient failure that uses up no attempt and is retried once there is
# room again.  The file size limit (RLIMIT_FSIZE, set with prlimit) makes
# every file write of the daemon fail the way a full disk does; its log
# goes through a pipe, which the limit does not cover.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../e2e-lib.sh"
. "$(dirname "$0")/e2e_group_lib.bash"

# limited_run NAME FSIZE ARGS...: a --once run under a file size limit.
limited_run() {
	local name=$1 fsize=$2
	shift 2
	{ prlimit --fsize="$fsize" -- "$CLIENT" "$@" 2>&1 >"$T/$name.stdout" |
		cat >"$T/$name.log"; } 2>/dev/null
	RC=${PIPESTATUS[0]}
}

e2e_server --auto-approve || exit 1

# --- a single board: the record before its reset cannot be written ------------
# The daemon dies right before the reset; the restart must write the record
# again before it resets the board, and cannot.
e2e_image "$T/old.bin" 1.0.0 1
e2e_image "$T/new.bin" 2.0.0 2 30000
old_hash=$(image_hash "$T/old.bin")
new_hash=$(image_hash "$T/new.bin")
e2e_artifact "$T/new.rdfm" "$T/new.bin" typeJ 2.0.0
e2e_package "$T/new.rdfm" 2.0.0 typeJ >/dev/null
e2e_board one udp "$T/old.bin" || exit 1
e2e_config "$T/one.json" -- one:typeJ
RDFM_CRASH_AT=resetting e2e_run one1 -c "$T/one.json" --once
check "single: set-up: the daemon died before the reset, slot 1 pending" \
	[ "$RC" -eq 137 -a "$(slot one 1 pending)" = true ]
limited_run one2 0 -c "$T/one.json" --once
check "single, journal unwritable: --once fails" [ "$RC" -ne 0 ]
check "single, journal unwritable: the reason names the journal" \
	grep -q 'level=ERROR msg="Update failed" device="one" phase=[a-z]* reason="the journal cannot be written' \
	"$T/one2.log"
check "single, journal unwritable: no attempt was counted" \
	eval '! grep -q "device=\"one\".*attempt=" "$T/one2.log"'
check "single, journal unwritable: the board was not reset" \
	[ "$(board_field one .counters.resets)" = 0 ]
e2e_run one3 -c "$T/one.json" --once
check "single, journal back: the update completes" \
	[ "$RC" -eq 0 -a "$(slot one 0 hash):$(slot one 0 confirmed)" = "$new_hash:true" ]
e2e_board_stop one

# --- a group: crash at the confirm point, then no journal --------------------------
# a is ours to confirm, b fails its self test after the crash.
group_images 2.0.0 20 a b
group_artifact "$T/g.rdfm" gjr 2.0.0 a="$T/a.new.bin" b="$T/b.new.bin"
e2e_package "$T/g.rdfm" 2.0.0 gjr >/dev/null
rm -rf "$T/state"
e2e_board a udp "$T/a.old.bin" || exit 1
e2e_board b udp "$T/b.old.bin" --self-reject --confirm-ms 1500 || exit 1
group_config "$T/g.json" '{}' jr:gjr a b:self
RDFM_CRASH_AT=group-confirming e2e_run g1 -c "$T/g.json" --once
check "group: the daemon died at the confirm point" [ "$RC" -eq 137 ]
for i in $(seq 1 60); do
	[ "$(slot b 0 hash)" = "${OLD_HASH[b]}" ] && break
	sleep 0.1
done
check "group: set-up: b rejected the new image on its own, a runs it" \
	[ "$(slot b 0 hash):$(slot a 0 hash)" = "${OLD_HASH[b]}:${NEW_HASH[a]}" ]
resets_a=$(board_field a .counters.resets)
resets_b=$(board_field b .counters.resets)
limited_run g2 0 -c "$T/g.json" --once
check "group, journal unwritable: the run fails naming the journal" \
	eval '[ "$RC" -ne 0 ] && grep -q "Cannot write the journal\" group=\"jr\"" "$T/g2.log"'
check "group, journal unwritable: no member was reset" \
	[ "$(board_field a .counters.resets):$(board_field b .counters.resets)" = "$resets_a:$resets_b" ]
check "group, journal unwritable: the journal still says confirming" \
	[ "$(jq -r .phase "$T/state/journal/group-id-jr.json")" = confirming ]
e2e_run g3 -c "$T/g.json" --once
check "group, journal back: every member ends on its old image" \
	eval 'on_image a "${OLD_HASH[a]}" && on_image b "${OLD_HASH[b]}"'
check "group, journal back: the rollback was reported" \
	grep -q 'Rolling the group update left in flight back" group="jr"' \
	"$T/g3.log"
e2e_board_stop a
e2e_board_stop b

# --- the disk fills up while the artifact is extracted ------------------------------
# A 300 KB image of zeros compresses to a small artifact: the download fits
# under the limit, the extracted image does not.
head -c 300000 /dev/zero >"$T/zeros"
"$MKIMG" --version 3.0.0 --body "$T/zeros" -o "$T/big.bin" >/dev/null
big_hash=$(image_hash "$T/big.bin")
BIN=$BIN "$SRC/tests/make-artifact.sh" single -o "$T/big.rdfm" \
	-f "$T/big.bin" -t typeX -V 3.0.0 -c gzip >/dev/null
e2e_package "$T/big.rdfm" 3.0.0 typeX >/dev/null
art_size=$(stat -c %s "$T/big.rdfm")
check "disk full: set-up: the artifact is small ($art_size bytes)" \
	[ "$art_size" -lt 100000 ]
rm -rf "$T/state"
e2e_board full udp "$T/old.bin" || exit 1
e2e_config "$T/full.json" '{"retries": 1, "metrics": "127.0.0.1:0"}' -- full:typeX
bg prlimit --fsize=150000:unlimited -- "$CLIENT" -c "$T/full.json" 2> >(cat >"$T/full.log")
CLIENT_PID=$!
check "disk full: the extraction fails on this host" \
	wait_for_line "$T/full.log" 'reason="cannot extract the artifact on this host' 20
sleep 2.5
check "disk full: not blamed on the artifact, no attempt used" \
	eval '! grep -Eq "artifact refused|attempt=|Giving up" "$T/full.log"'
port=$(sed -n 's/.*Serving \/metrics and \/status.* port=\([0-9]*\).*/\1/p' "$T/full.log")
check "disk full: /status names the reason" \
	eval 'curl -sf "http://127.0.0.1:$port/status" |
		jq -e ".devices[] | select(.name == \"full\") |
		       (.last_error | test(\"cannot extract\")) and .local_failures >= 1" >/dev/null'
check "disk full: /metrics counts local failures" \
	eval 'curl -sf "http://127.0.0.1:$port/metrics" |
		grep -Eq "^rdfm_mcumgr_local_failures_total\{.*name=\"full\".*\} [1-9]"'
prlimit --pid "$CLIENT_PID" --fsize=unlimited:unlimited
if wait_for_line "$T/full.log" 'msg="Update successful" device="full"' 30; then
	ok "disk full: updated once there is room again"
else
	not_ok "disk full: updated once there is room again" "-"
	show_log "$T/full.log"
fi
e2e_stop
check "disk full: the board runs the new image, confirmed" \
	[ "$(slot full 0 hash):$(slot full 0 confirmed)" = "$big_hash:true" ]

done_testing
