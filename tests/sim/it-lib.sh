# Helpers for the simulator's integration tests (tests/it/sim_*.sh); kept
# here so tests/run does not take it for a test.  Source after lib.sh.
SIM=$BIN/mcumgr-board-sim
CL=$BIN/sim-client
MK=$BIN/mcuboot-mkimage

# start_sim NAME LINKKIND ARGS...: start a board; sets SIM_PID, READY (its
# address), ST (status file), L (sim-client link arguments).
start_sim() {
	local name=$1 kind=$2
	shift 2
	ST=$T/$name.status
	bg "$SIM" --state "$T/$name.state" --status "$ST" "$@" \
		>"$T/$name.out" 2>"$T/$name.err"
	SIM_PID=$!
	wait_for_line "$T/$name.out" '^READY ' 10 || return 1
	READY=$(sed -n 's/^READY [a-z]* //p' "$T/$name.out" | head -n 1)
	L=("--$kind" "$READY")
}

stop_sim() {
	kill "$SIM_PID" 2>/dev/null
	wait "$SIM_PID" 2>/dev/null
}

# cl ARGS...: sim-client on the current board's link.
cl() { "$CL" "${L[@]}" "$@"; }

# The reply's JSON, hex, or one jq field of it, from sim-client output.
rjson() { sed -n 's/^json //p' | tail -n 1; }
rhex() { sed -n 's/^hex //p' | tail -n 1; }
rfield() { sed -n 's/^json //p' | tail -n 1 | jq -r "$1"; }

# st JQ: a field of the status file.
st() { jq -r "$1" <"$ST"; }

# wait_status JQ [SECONDS]: until the status file makes JQ true.
wait_status() {
	local i=0 limit=${2:-10}
	while [ "$i" -lt $((limit * 20)) ]; do
		if [ -f "$ST" ] && jq -e "$1" <"$ST" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.05
		i=$((i + 1))
	done
	echo "# timed out waiting for status $1" >&2
	return 1
}

# echo_pkt LEN [SEQ]: hex of a v1 echo request whose text is LEN bytes
# (256..65535), so the whole packet is LEN + 14 bytes.
echo_pkt() {
	local n=$1 seq=${2:-0}
	printf '0200%04x0000%02x00a1616479%04x' $((n + 6)) "$seq" "$n"
	head -c "$n" /dev/zero | tr '\0' 'a' | xxd -p | tr -d '\n'
}

# hash_of FILE: the image's TLV hash as the board reports it.
hash_of() { "$MK" --print-hash "$1"; }
