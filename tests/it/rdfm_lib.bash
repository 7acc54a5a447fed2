# Helpers shared by the rdfm_*/server_* integration tests (sourced, not run):
# start the test server, sign auth bodies with the openssl command.

# start_server NAME ARGS...: starts rdfm-test-server, sets URL and LOG.
start_server() {
	local name=$1
	shift
	LOG=$T/$name.log
	mkdir -p "$T/$name"
	bg "$BIN/rdfm-test-server" --listen 127.0.0.1:0 --data-dir "$T/$name" \
		--log "$LOG" "$@" >"$T/$name.out" 2>"$T/$name.err"
	SERVER_PID=$!
	_srv_names+=("$name")
	_srv_pids+=("$SERVER_PID")
	if ! wait_for_line "$T/$name.out" '^READY ' 10; then
		cat "$T/$name.err" >&2
		return 1
	fi
	URL=$(sed -n 's/^READY //p' "$T/$name.out")
}

# admin METHOD PATH [JSON]: an admin request; prints the body.
admin() {
	if [ -n "${3:-}" ]; then
		curl -sS ${CURL_CA:+--cacert "$CURL_CA"} -X "$1" \
			-H 'Content-Type: application/json' -d "$3" "$URL$2"
	else
		curl -sS ${CURL_CA:+--cacert "$CURL_CA"} -X "$1" "$URL$2"
	fi
}

# add_package FILE VERSION TYPE [URI]: prints the sha256 the server saw.
add_package() {
	admin POST /admin/packages "$(jq -cn --arg f "$1" --arg v "$2" \
		--arg t "$3" --arg u "${4:-}" \
		'{file: $f, version: $v, device_type: $t} +
		 (if $u == "" then {} else {uri: $u} end)')" | jq -r .sha256
}

# count_log JQFILTER: how many server log lines match.
count_log() {
	jq -c "select($1)" "$LOG" | wc -l
}

# check_servers: stops every server started here and checks each exited
# cleanly (status 0, no sanitizer report: leaks included).
check_servers() {
	local i rc
	for i in "${!_srv_pids[@]}"; do
		kill -TERM "${_srv_pids[$i]}" 2>/dev/null
		wait "${_srv_pids[$i]}"
		rc=$?
		if [ "$rc" -eq 0 ] &&
			! grep -Eq 'Sanitizer|runtime error' "$T/${_srv_names[$i]}.err"; then
			ok "server ${_srv_names[$i]} exits cleanly"
		else
			not_ok "server ${_srv_names[$i]} exits cleanly" \
				"status $rc: $(grep -m1 -E 'Sanitizer|runtime error' "$T/${_srv_names[$i]}.err")"
		fi
	done
}
