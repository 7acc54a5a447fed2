# Helpers for end-to-end tests (tests/it/e2e_*.sh): the real client and its
# workers against the test RDFM server and virtual boards.  Source after
# lib.sh:
#   . "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/../e2e-lib.sh"
# Boards are named; each has $T/NAME.status (the simulator's JSON state).

CLIENT=$BIN/rdfm-mcumgr-client
SIMBIN=$BIN/mcumgr-board-sim
MKIMG=$BIN/mcuboot-mkimage
declare -A BOARD_PID BOARD_LINK BOARD_KIND

# e2e_server [ARGS...]: start rdfm-test-server; sets URL, SLOG (its JSON
# request log) and SERVER_PID.
e2e_server() {
	SLOG=$T/server.log
	mkdir -p "$T/server"
	bg "$BIN/rdfm-test-server" --listen 127.0.0.1:0 --data-dir "$T/server" \
		--log "$SLOG" "$@" >"$T/server.out" 2>"$T/server.err"
	SERVER_PID=$!
	if ! wait_for_line "$T/server.out" '^READY ' 10; then
		cat "$T/server.err" >&2
		return 1
	fi
	URL=$(sed -n 's/^READY //p' "$T/server.out")
}

# admin METHOD PATH [JSON]: an admin request to the test server.
admin() {
	if [ -n "${3:-}" ]; then
		curl -sS -X "$1" -H 'Content-Type: application/json' -d "$3" \
			"$URL$2"
	else
		curl -sS -X "$1" "$URL$2"
	fi
}

# e2e_image OUT VERSION SEED [SIZE]: an MCUboot image (imgtool spelling).
e2e_image() {
	"$MKIMG" --version "$2" --size "${4:-20000}" --seed "$3" -o "$1" \
		>/dev/null
}

# image_hash FILE: the TLV hash a board reports for the image.
image_hash() { "$MKIMG" --print-hash "$1"; }

# e2e_artifact OUT IMAGE TYPE VERSION: a zephyr-image artifact.
e2e_artifact() {
	BIN=$BIN "$SRC/tests/make-artifact.sh" single -o "$1" -f "$2" -t "$3" \
		-V "$4" >/dev/null
}

# e2e_package FILE VERSION TYPE: offer FILE to devices of TYPE; prints the
# sha256 the server computed.
e2e_package() {
	admin POST /admin/packages "$(jq -cn --arg f "$1" --arg v "$2" \
		--arg t "$3" '{file: $f, version: $v, device_type: $t}')" |
		jq -r .sha256
}

# e2e_board NAME serial|udp|ble IMAGE [SIM ARGS...]: start a virtual board
# running IMAGE (confirmed); its state survives restarts of the board.
# E2E_NO_STATUS=1: no status file (benchmarks: rewriting it after every
# request costs the simulator more than the board it models).
e2e_board() {
	local name=$1 kind=$2 image=$3 link status=()
	shift 3
	[ -n "${E2E_NO_STATUS:-}" ] || status=(--status "$T/$name.status")
	case $kind in
	serial) link=(--serial "$T/$name.tty") ;;
	udp) link=(--udp 127.0.0.1:0) ;;
	ble) link=(--ble "@rdfm-e2e-$$-$name") ;;
	esac
	rm -f "$T/$name.status"
	bg "$SIMBIN" --state "$T/$name.state" "${status[@]}" \
		--image "$image" "${link[@]}" "$@" \
		>"$T/$name.out" 2>>"$T/$name.err"
	BOARD_PID[$name]=$!
	BOARD_KIND[$name]=$kind
	wait_for_line "$T/$name.out" '^READY ' 10 || return 1
	BOARD_LINK[$name]=$(sed -n 's/^READY [a-z]* //p' "$T/$name.out" |
		tail -n 1)
	: >"$T/$name.out"
}

# e2e_board_stop NAME: kill the board (its flash stays in NAME.state).
e2e_board_stop() {
	kill "${BOARD_PID[$1]}" 2>/dev/null
	wait "${BOARD_PID[$1]}" 2>/dev/null
}

# e2e_key NAME: a 2048-bit device key (quicker than letting the client
# generate RSA-3072 ones).
e2e_key() {
	mkdir -p "$T/keys"
	[ -f "$T/keys/$1.key" ] ||
		openssl genrsa -out "$T/keys/$1.key" 2048 2>/dev/null
	chmod 600 "$T/keys/$1.key"
}

# e2e_config OUT [GLOBAL-JSON] -- DEVICE...: write a config.  Each DEVICE
# is "NAME:TYPE[:self]"; its transport comes from the running board NAME.
# GLOBAL-JSON is merged into the top level (e.g. '{"retries": 2}').
# Intervals and timeouts are short by default: override in GLOBAL-JSON or
# with E2E_DEVICE_JSON (merged into every device).
e2e_config() {
	local out=$1 global='{}' spec name type self tr devs='[]'
	shift
	if [ "${1:-}" != -- ]; then
		global=$1
		shift
	fi
	shift
	for spec in "$@"; do
		IFS=: read -r name type self <<<"$spec"
		e2e_key "$name"
		case ${BOARD_KIND[$name]} in
		serial) tr=$(jq -cn --arg d "${BOARD_LINK[$name]}" \
			'{type: "serial", device: $d, baud: 115200}') ;;
		udp) tr=$(jq -cn --arg a "${BOARD_LINK[$name]}" \
			'{type: "udp", address: $a}') ;;
		ble) tr=$(jq -cn --arg s "${BOARD_LINK[$name]}" --arg p "$name" \
			'{type: "ble", device_index: 0, peer_name: $p,
			  att_socket: $s}') ;;
		esac
		devs=$(jq -c --arg n "$name" --arg t "$type" \
			--argjson s "$([ "$self" = self ] && echo true || echo false)" \
			--argjson tr "$tr" --argjson extra "${E2E_DEVICE_JSON:-{\}}" \
			'. + [{name: $n, id: ("id-" + $n), dev_type: $t,
			       key: ($n + ".key"), self_confirm: $s,
			       update_interval: "1s", transport: $tr} + $extra]' \
			<<<"$devs")
	done
	jq -n --arg s "$URL" --arg k "$T/keys" --arg st "$T/state" \
		--argjson d "$devs" --argjson g "$global" \
		'{server: $s, key_dir: $k, state_dir: $st, update_interval: "1s",
		  retries: 3,
		  timeouts: {request: "1s", erase: "10s", reboot: "10s",
		             confirm: "10s", stall: "10s"},
		  devices: $d} + $g' >"$out"
}

# e2e_run NAME [ARGS...]: run the client to completion (--once callers);
# log in $T/NAME.log, exit status in RC.
e2e_run() {
	local name=$1
	shift
	# (the braces keep bash's "Killed" notice of crash tests quiet)
	{ "$CLIENT" "$@" >"$T/$name.stdout" 2>"$T/$name.log"; } 2>/dev/null
	RC=$?
}

# e2e_start NAME [ARGS...]: run the client in the background; CLIENT_PID,
# log in $T/NAME.log.
e2e_start() {
	local name=$1
	shift
	bg "$CLIENT" "$@" >"$T/$name.stdout" 2>"$T/$name.log"
	CLIENT_PID=$!
}

# e2e_stop: SIGTERM the background client and wait; STOP_RC its status.
e2e_stop() {
	kill -TERM "$CLIENT_PID" 2>/dev/null
	wait "$CLIENT_PID"
	STOP_RC=$?
}

# slot NAME SLOT FIELD: a field of a slot in the board's status file
# (hash, version, pending, confirmed, active, permanent).
slot() {
	jq -r --argjson s "$2" ".slots[] | select(.slot == \$s) | .$3" \
		<"$T/$1.status" 2>/dev/null
}

# board_field NAME JQ: any field of the board's status file.
board_field() { jq -r "$2" <"$T/$1.status" 2>/dev/null; }

# count LOGFILE REGEX: matching lines.
count() { grep -Ec "$2" "$1"; }

# show_log FILE: the last lines of a log, as TAP comments (on failure).
show_log() { tail -n "${2:-30}" "$1" | sed 's/^/# /'; }

# --- fleets (many UDP boards at once) ---------------------------------------
FLEET_PIDS=()

# e2e_fleet N IMAGE NAME [SIM ARGS...]: N virtual UDP boards running IMAGE,
# started side by side (several per simulator process when the simulator
# can: E2E_BOARDS_PER_SIM, default 50); their addresses, one per line, in
# $T/NAME.addrs.
e2e_fleet() {
	local n=$1 img=$2 name=$3 per=1 left=$1 k=0 i want
	shift 3
	"$SIMBIN" --help 2>&1 | grep -q -- '--boards' &&
		per=${E2E_BOARDS_PER_SIM:-50}
	rm -f "$T/$name".*.out "$T/$name".*.state
	while [ "$left" -gt 0 ]; do
		k=$((k + 1))
		i=$((left < per ? left : per))
		if [ "$per" -gt 1 ]; then
			"$SIMBIN" --boards "$i" --state "$T/$name.$k.state" \
				--image "$img" --udp 127.0.0.1:0 "$@" \
				>"$T/$name.$k.out" 2>>"$T/$name.err" &
		else
			"$SIMBIN" --state "$T/$name.$k.state" --image "$img" \
				--udp 127.0.0.1:0 "$@" \
				>"$T/$name.$k.out" 2>>"$T/$name.err" &
		fi
		FLEET_PIDS+=($!)
		_bg_pids+=($!)
		left=$((left - i))
	done
	: >"$T/$name.addrs"
	for i in $(seq 1 "$k"); do
		want=$per
		[ "$i" -eq "$k" ] && want=$((n - (k - 1) * per))
		wait_for_line "$T/$name.$i.out" '^READY ' 60 || return 1
		while [ "$(grep -c '^READY ' "$T/$name.$i.out")" -lt "$want" ]; do
			sleep 0.1
		done
		sed -n 's/^READY [a-z]* //p' "$T/$name.$i.out" >>"$T/$name.addrs"
	done
	[ "$(wc -l <"$T/$name.addrs")" -eq "$n" ]
}

# e2e_fleet_stop: ends every fleet board and forgets their pids (a bench
# that starts thousands must not kill reused pids at exit).
e2e_fleet_stop() {
	local p keep=() f=" ${FLEET_PIDS[*]} "
	for p in "${FLEET_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${FLEET_PIDS[@]}"; do wait "$p" 2>/dev/null; done
	for p in "${_bg_pids[@]}"; do
		[[ $f == *" $p "* ]] || keep+=("$p")
	done
	_bg_pids=("${keep[@]}")
	FLEET_PIDS=()
}

# e2e_fleet_config OUT ADDRS STATE_DIR [GLOBAL-JSON]: a config with one
# device per address (b1, b2...), every key a link to keys/fleet.key (the
# test server tells devices apart by id), checks every 10 s, no management
# channel (fleets are measured without it).
e2e_fleet_config() {
	local i=0 a
	e2e_key fleet
	while read -r a; do
		i=$((i + 1))
		ln -sf fleet.key "$T/keys/b$i.key"
		printf 'b%d\t%s\n' "$i" "$a"
	done <"$2" | jq -R -s --arg s "$URL" --arg k "$T/keys" --arg st "$3" \
		--argjson x "${4:-{\}}" '
		[split("\n")[] | select(length > 0) | split("\t") |
		 {name: .[0], id: ("id-" + .[0]), dev_type: "fleet",
		  key: (.[0] + ".key"), update_interval: "10s",
		  transport: {type: "udp", address: .[1]}}] as $d |
		{server: $s, key_dir: $k, state_dir: $st, update_interval: "10s",
		 retries: 3, management: false,
		 timeouts: {request: "5s", erase: "30s", reboot: "30s",
		            confirm: "30s", stall: "30s"},
		 devices: $d} + $x' >"$1"
}
