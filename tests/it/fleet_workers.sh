#!/bin/bash
# UDP boards sharing worker processes (issue 17).  Seven boards, three per
# worker, make three workers.  The worker of three boards is killed while
# all three upload: it is restarted alone, and every one of its uploads
# resumes from the board's offset (no image byte written twice) while the
# other workers' boards go on untouched.  A board that does not answer
# fails alone: the two boards sharing its worker are updated.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../e2e-lib.sh"

e2e_server --auto-approve >/dev/null || exit 1
e2e_image "$T/old.bin" 1.0.0 1
e2e_image "$T/new.bin" 2.0.0 2 120000
new_hash=$(image_hash "$T/new.bin")
size=$(stat -c %s "$T/new.bin")
e2e_artifact "$T/w.rdfm" "$T/new.bin" typeW 2.0.0
e2e_package "$T/w.rdfm" 2.0.0 typeW >/dev/null
# Slow flash: each upload takes a few seconds, long enough to kill a
# worker in the middle of three.
for b in w1 w2 w3 w4 w5 w6; do
	e2e_board "$b" udp "$T/old.bin" --flash-us-per-kb 20000 || exit 1
done
# Nothing listens there: every request to it goes unanswered.
BOARD_KIND[dead]=udp
BOARD_LINK[dead]=127.0.0.1:9
# Devices take workers in config order: dead, w1, w2 | w3, w4, w5 | w6.
e2e_config "$T/c.json" '{"boards_per_worker": 3, "retries": 1}' -- \
	dead:typeW w1:typeW w2:typeW w3:typeW w4:typeW w5:typeW w6:typeW
e2e_start run -c "$T/c.json" --once -v
L=$T/run.log
for b in w3 w4 w5; do
	wait_for_line "$L" "msg=\"Uploading the new image\" device=\"$b\"" 30 ||
		not_ok "set-up: $b uploads" "-"
done
sleep 0.5
pid=$(sed -n 's/.*msg="worker started" worker=udp#2 pid=\([0-9]*\).*/\1/p' \
	"$L" | head -n 1)
check "the boards w3, w4 and w5 share a worker, udp#2 (pid ${pid:-none})" \
	[ -n "$pid" ]
check "... a child of the supervisor, running" \
	[ "$(awk '{ print $4 }' "/proc/${pid:-0}/stat" 2>/dev/null)" = "$CLIENT_PID" ]
[ -n "$pid" ] && kill -KILL "$pid"
wait "$CLIENT_PID"
rc=$?

check "three workers for seven boards" \
	[ "$(sed -n 's/.*msg="worker started" worker=\(udp#[0-9]*\) .*/\1/p' \
		"$L" | sort -u | tr '\n' ' ')" = "udp#1 udp#2 udp#3 " ]
check "... the killed one restarted, alone" \
	[ "$(grep -c 'msg="restarting worker"' "$L"):$(grep -c 'msg="restarting worker" worker=udp#2 ' "$L")" = 1:1 ]
check "its three uploads resumed after it died" \
	[ "$(count "$L" 'msg="upload interrupted, resuming"')" -eq 3 ]
check "... from the boards' offsets" \
	[ "$(grep 'msg="upload resumes"' "$L" | grep -vc 'offset=0$')" -eq 3 ]
for b in w1 w2 w3 w4 w5 w6; do
	check "$b updated" \
		grep -q "msg=\"Update successful\" device=\"$b\"" "$L"
	check "$b runs the new image, confirmed" \
		[ "$(slot "$b" 0 hash):$(slot "$b" 0 confirmed)" = "$new_hash:true" ]
	w=$(board_field "$b" .counters.upload_written)
	check "$b had every image byte written once ($w of $size)" \
		[ "$w" = "$size" ]
done
check "the board that does not answer failed" \
	grep -Eq 'level=ERROR msg="Update failed".* device="dead"' "$L"
check "--once says a device was not brought up to date (status $rc)" \
	[ "$rc" -eq 1 ]

done_testing
