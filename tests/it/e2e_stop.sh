#!/bin/bash
# End to end, a stop is not a failure: SIGTERM to the whole service (as
# systemd sends it to every process of the unit, workers included) or
# SIGINT from a terminal during an upload ends the step at a packet
# boundary with an INFO line, no error and no attempt counted, for a single
# board and for a group; the next start resumes the upload where the board
# left off.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../e2e-lib.sh"
. "$(dirname "$0")/e2e_group_lib.bash"

e2e_server --auto-approve || exit 1
e2e_image "$T/old.bin" 1.0.0 1
e2e_image "$T/new.bin" 2.0.0 2 150000
new_hash=$(image_hash "$T/new.bin")
e2e_artifact "$T/new.rdfm" "$T/new.bin" typeT 2.0.0
e2e_package "$T/new.rdfm" 2.0.0 typeT >/dev/null
group_images 2.0.0 30 g h
group_artifact "$T/g.rdfm" gst 2.0.0 g="$T/g.new.bin" h="$T/h.new.bin"
e2e_package "$T/g.rdfm" 2.0.0 gst >/dev/null

# stop_case NAME SIGNAL CONFIG WHO: the daemon in a process group of its
# own, SIGNAL to the whole group once the upload runs.
stop_case() {
	local sc=$1 sig=$2 cfg=$3 who=$4 pid rc
	bg setsid "$CLIENT" -c "$cfg" >"$T/$sc.stdout" 2>"$T/$sc.log"
	pid=$!
	if ! wait_for_line "$T/$sc.log" 'msg="Uploading the new image"' 30; then
		not_ok "$sc: set-up: the upload runs" "-"
		show_log "$T/$sc.log"
		return
	fi
	sleep 1.5
	kill -"$sig" -- -"$pid"
	wait "$pid"
	rc=$?
	check "$sc: SIG$sig to every process: exit 0" [ "$rc" -eq 0 ]
	check "$sc: the stop is an INFO line" \
		grep -q "level=INFO msg=\"Upload stopped; it resumes at the next start\" $who" \
		"$T/$sc.log"
	check "$sc: no error, no attempt counted" \
		eval '! grep -Eq "level=ERROR|attempt=" "$T/$sc.log"'
}

e2e_board s udp "$T/old.bin" --flash-us-per-kb 40000 || exit 1
e2e_config "$T/s.json" -- s:typeT
stop_case single TERM "$T/s.json" 'device="s"'
e2e_run s2 -c "$T/s.json" --once
check "single: the next start resumes the upload and completes" \
	eval '[ "$RC" -eq 0 ] && grep -q "upload resumes" "$T/s2.log" &&
	[ "$(slot s 0 hash)" = "$new_hash" ]'

rm -rf "$T/state"
e2e_board g udp "$T/g.old.bin" --flash-us-per-kb 200000 || exit 1
e2e_board h udp "$T/h.old.bin" || exit 1
group_config "$T/g.json" '{}' st:gst g h
stop_case group INT "$T/g.json" 'group="st" member="g"'
e2e_run g2 -c "$T/g.json" --once
check "group: the next start completes the update" \
	eval '[ "$RC" -eq 0 ] && on_image g "${NEW_HASH[g]}" &&
	on_image h "${NEW_HASH[h]}"'

done_testing
