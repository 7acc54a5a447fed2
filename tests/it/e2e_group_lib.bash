# Helpers for the group end-to-end tests (tests/it/e2e_group_*.sh); a
# .bash file so tests/run does not take it for a test.  Source after
# lib.sh and e2e-lib.sh.

# group_config OUT GLOBAL-JSON GROUP:TYPE MEMBER[:self]...: a config with
# one group whose members are the running boards named MEMBER (each
# member's image name in the artifact is "img-MEMBER").
group_config() {
	local out=$1 global=$2 gspec=$3 gname gtype spec name self tr
	local mems='[]'
	shift 3
	IFS=: read -r gname gtype <<<"$gspec"
	e2e_key "$gname"
	for spec in "$@"; do
		IFS=: read -r name self <<<"$spec"
		case ${BOARD_KIND[$name]} in
		serial) tr=$(jq -cn --arg d "${BOARD_LINK[$name]}" \
			'{type: "serial", device: $d, baud: 115200}') ;;
		udp) tr=$(jq -cn --arg a "${BOARD_LINK[$name]}" \
			'{type: "udp", address: $a}') ;;
		ble) tr=$(jq -cn --arg s "${BOARD_LINK[$name]}" --arg p "$name" \
			'{type: "ble", device_index: 0, peer_name: $p,
			  att_socket: $s}') ;;
		esac
		mems=$(jq -c --arg n "$name" --argjson tr "$tr" \
			--argjson s "$([ "$self" = self ] && echo true || echo false)" \
			'. + [{name: $n, device: ("img-" + $n), self_confirm: $s,
			       transport: $tr}]' <<<"$mems")
	done
	jq -n --arg s "$URL" --arg k "$T/keys" --arg st "$T/state" \
		--arg gn "$gname" --arg gt "$gtype" --argjson m "$mems" \
		--argjson g "$global" \
		'{server: $s, key_dir: $k, state_dir: $st, update_interval: "1s",
		  retries: 3,
		  timeouts: {request: "1s", erase: "10s", reboot: "4s",
		             confirm: "10s", stall: "10s"},
		  groups: [{name: $gn, id: ("id-" + $gn), type: $gt,
		            key: ($gn + ".key"), update_interval: "1s",
		            members: $m}]} + $g' >"$out"
}

# group_artifact OUT TYPE VERSION MEMBER=IMAGE...: a zephyr-group-image
# artifact with one image per member, named "img-MEMBER".
group_artifact() {
	local out=$1 type=$2 ver=$3 a args=()
	shift 3
	for a in "$@"; do
		args+=("img-${a%%=*}=${a#*=}")
	done
	BIN=$BIN "$SRC/tests/make-artifact.sh" group -o "$out" -t "$type" \
		-V "$ver" "${args[@]}" >/dev/null
}

# on_image BOARD HASH: slot 0 runs HASH, confirmed, nothing pending.
on_image() {
	[ "$(slot "$1" 0 hash):$(slot "$1" 0 confirmed):$(slot "$1" 1 pending)" \
		= "$2:true:false" ]
}

# group_images VERSION SEED0 BOARD...: an old and a new image per board
# ($T/BOARD.old.bin at 1.0.0, $T/BOARD.new.bin at VERSION), with
# OLD_HASH[BOARD] and NEW_HASH[BOARD].
declare -A OLD_HASH NEW_HASH
group_images() {
	local ver=$1 seed=$2 b
	shift 2
	for b in "$@"; do
		e2e_image "$T/$b.old.bin" 1.0.0 "$seed"
		e2e_image "$T/$b.new.bin" "$ver" $((seed + 1))
		OLD_HASH[$b]=$(image_hash "$T/$b.old.bin")
		NEW_HASH[$b]=$(image_hash "$T/$b.new.bin")
		seed=$((seed + 2))
	done
}

# group_board_again NAME IMAGE [SIM ARGS...]: start a stopped UDP board
# again on the address it had (the config names it), with its flash.
group_board_again() {
	local name=$1 image=$2
	shift 2
	bg "$SIMBIN" --state "$T/$name.state" --status "$T/$name.status" \
		--image "$image" --udp "${BOARD_LINK[$name]}" "$@" \
		>"$T/$name.out" 2>>"$T/$name.err"
	BOARD_PID[$name]=$!
	wait_for_line "$T/$name.out" '^READY ' 10
}

# checks_of ID: update checks the server answered for this id so far.
checks_of() {
	jq -c --arg d "$1" \
		'select(.path == "/api/v1/update/check" and .device == $d)' \
		"$SLOG" | wc -l
}
