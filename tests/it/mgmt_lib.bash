# Helpers for the management channel tests (tests/it/mgmt_*.sh), sourced
# after lib.sh and rdfm_lib.bash: the test server with its management
# endpoint, mgmt-drive (the channel's modules with fake boards) fed commands
# through a FIFO, and polling of the server's admin side.

# mgmt_server [ARGS...]: the test server, auto-approving, pinging every 2 s.
mgmt_server() {
	start_server srv --auto-approve --ws-ping "${WS_PING:-2}" "$@"
}

# mgmt_key NAME: an RSA key for a device (2048 bits: quick to make).
mgmt_key() {
	mkdir -p "$T/keys"
	[ -f "$T/keys/$1.pem" ] ||
		openssl genrsa -out "$T/keys/$1.pem" 2048 2>/dev/null
}

# board_file BOARD PATH BYTES: a file on a fake board.
board_file() {
	mkdir -p "$(dirname "$T/boards/$1$2")"
	head -c "$3" /dev/urandom >"$T/boards/$1$2"
}

# start_drive NAME CONFIG [ARGS...]: mgmt-drive in the background; its
# stdin is the FIFO $T/NAME.in (write with drive NAME CMD), its stdout
# $T/NAME.out and stderr $T/NAME.err.  Sets DRIVE_PID.
start_drive() {
	local name=$1 cfg=$2
	shift 2
	local fdvar="_fd_$name"
	rm -f "$T/$name.in"
	mkfifo "$T/$name.in"
	# Opened for reading and writing, so neither end waits for the other.
	eval "exec {$fdvar}<>\"$T/$name.in\""
	# Not through bg: an asynchronous command's stdin would be /dev/null.
	"$BIN/mgmt-drive" -c "$cfg" --board-dir "$T/boards" -v "$@" \
		<&"${!fdvar}" >>"$T/$name.out" 2>>"$T/$name.err" &
	DRIVE_PID=$!
	eval "_pid_$name=$DRIVE_PID"
	_bg_pids+=("$DRIVE_PID")
	wait_for_line "$T/$name.out" '^READY' 20
}

# drive NAME COMMAND...: one command to a running mgmt-drive.
drive() {
	local name=$1 fdvar
	shift
	fdvar="_fd_$name"
	echo "$*" >&"${!fdvar}"
}

# stop_drive NAME: quit and wait; fails unless it exits 0 without a
# sanitizer report.
stop_drive() {
	local name=$1 fdvar pidvar rc
	fdvar="_fd_$name"
	pidvar="_pid_$name"
	echo quit >&"${!fdvar}"
	eval "exec ${!fdvar}>&-"
	wait "${!pidvar}"
	rc=$?
	[ "$rc" -eq 0 ] && ! grep -Eq 'Sanitizer|runtime error' "$T/$name.err"
}

# mdev ID: the server's view of a device (JSON).
mdev() {
	admin GET "/admin/mgmt/devices?id=$1"
}

# wait_dev ID JQ [SECONDS]: until the device's JSON satisfies JQ.
wait_dev() {
	local id=$1 filter=$2 limit=${3:-20} i=0
	while [ "$i" -lt $((limit * 10)) ]; do
		if mdev "$id" 2>/dev/null | jq -e "$filter" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
		i=$((i + 1))
	done
	echo "# timed out waiting for $filter on $id: $(mdev "$id" | jq -c 'del(.messages)')" >&2
	return 1
}

# run_action DEV ACTION [EXECID]: asks for an action; prints the id.
run_action() {
	local body
	body=$(jq -cn --arg d "$1" --arg a "$2" --arg e "${3:-}" \
		'{device: $d, action_id: $a} +
		 (if $e == "" then {} else {execution_id: $e} end)')
	admin POST /admin/mgmt/exec "$body" | jq -r .execution_id
}

# wait_exec ID JQ [SECONDS]: until the execution's JSON satisfies JQ.
wait_exec() {
	local id=$1 filter=$2 limit=${3:-20} i=0
	while [ "$i" -lt $((limit * 10)) ]; do
		if admin GET "/admin/mgmt/exec?id=$id" 2>/dev/null |
			jq -e "$filter" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
		i=$((i + 1))
	done
	echo "# timed out waiting for $filter on execution $id: $(admin GET "/admin/mgmt/exec?id=$id")" >&2
	return 1
}

# exec_json ID: the execution as the server holds it.
exec_json() {
	admin GET "/admin/mgmt/exec?id=$1"
}

# send_raw DEV JSON-BODY-EXTRA: a message the test crafts (admin send).
send_raw() {
	admin POST /admin/mgmt/send "$(jq -cn --arg d "$1" --argjson x "$2" \
		'{device: $d} + $x')" >/dev/null
}

# count_board NAME REGEX: how many board operations matched.
count_board() {
	grep -Ec "^BOARD .*$2" "$T/$1.out"
}

# device_config FILE DEV_JSON...: a config with these device objects.
device_config() {
	local file=$1
	shift
	local devs
	devs=$(printf '%s,' "$@")
	devs="[${devs%,}]"
	jq -n --arg s "$URL" --arg k "$T/keys" --argjson d "$devs" \
		'{server: $s, key_dir: $k, devices: $d}' >"$file"
}

# udp_dev NAME ID PORT [EXTRA-JSON]: a device object on a dummy UDP link.
udp_dev() {
	local extra=${4:-'{}'}
	mgmt_key "$1"
	jq -cn --arg n "$1" --arg i "$2" --arg p "127.0.0.1:$3" \
		--argjson x "$extra" \
		'{name: $n, id: $i, dev_type: "t", key: ($n + ".pem"),
		  transport: {type: "udp", address: $p}} + $x'
}
