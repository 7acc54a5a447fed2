#!/bin/bash
# End to end, crashes: the daemon killed at each journal point
# (RDFM_CRASH_AT; the points are listed in supervisor/daemon.h) restarts and
# completes the update with the board consistent, for a board we confirm
# and one that confirms itself; a corrupt journal is reported and the board
# read instead.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../e2e-lib.sh"

e2e_server --auto-approve || exit 1
e2e_image "$T/old.bin" 1.0.0 1
e2e_image "$T/small.bin" 2.0.0 2 20000
old_hash=$(image_hash "$T/old.bin")
small_hash=$(image_hash "$T/small.bin")
e2e_artifact "$T/small.rdfm" "$T/small.bin" typeU 2.0.0
e2e_package "$T/small.rdfm" 2.0.0 typeU >/dev/null

# --- crash injection at each journal point -------------------------------------
for point in uploading pending resetting confirming done; do
	for mode in manual self; do
		b=cp-$point-$mode
		if [ $mode = self ]; then
			e2e_board "$b" udp "$T/old.bin" --self-confirm \
				--confirm-ms 300 || exit 1
			e2e_config "$T/$b.json" -- "$b:typeU:self"
		else
			e2e_board "$b" udp "$T/old.bin" || exit 1
			e2e_config "$T/$b.json" -- "$b:typeU"
		fi
		RDFM_CRASH_AT=$point e2e_run "$b-1" -c "$T/$b.json" --once
		crashed=$RC
		jphase=$(jq -r "select(.id == \"id-$b\") | .phase" \
			"$T/state/journal/"* 2>/dev/null)
		check "crash at $point ($mode confirm): the journal was written first" \
			[ "$jphase" = "$point" ]
		e2e_run "$b-2" -c "$T/$b.json" --once
		if [ "$crashed" -eq 137 ] && [ "$RC" -eq 0 ] &&
			[ "$(slot "$b" 0 hash)" = "$small_hash" ] &&
			[ "$(slot "$b" 0 confirmed)" = true ] &&
			[ "$(slot "$b" 1 hash)" = "$old_hash" ]; then
			ok "crash at $point ($mode confirm): restart completes, board consistent"
		else
			not_ok "crash at $point ($mode confirm): restart completes, board consistent" \
				"first run $crashed, second $RC, slot 0 $(slot "$b" 0 version) confirmed=$(slot "$b" 0 confirmed)"
			show_log "$T/$b-2.log"
		fi
		e2e_board_stop "$b"
	done
done

# --- a corrupt journal ------------------------------------------------------
e2e_board cj udp "$T/old.bin" || exit 1
e2e_config "$T/cj.json" -- cj:typeU
RDFM_CRASH_AT=confirming e2e_run cj-1 -c "$T/cj.json" --once
for f in "$T/state/journal/"*; do
	grep -q '"id-cj"' "$f" && echo '{"format": 1, "garbage' >"$f"
done
e2e_run cj-2 -c "$T/cj.json" --once
check "corrupt journal: reported" \
	grep -q 'level=ERROR msg="The journal entry is unreadable; reading the board instead" device="cj"' \
	"$T/cj-2.log"
check "corrupt journal: the board is read and ends consistent" \
	[ "$RC" -eq 0 -a "$(slot cj 0 confirmed)" = true ]

done_testing
