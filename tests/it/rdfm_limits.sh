#!/bin/bash
# Limits on what the RDFM server sends, through the real client code
# (rdfm-poll) and the real test server: a server that drips the artifact at
# 2 bytes/s is given up on by the download deadline (grace + size / minimum
# rate) with a message saying so, keeping what came for a resume; a server
# fast enough is not; and after an update the client authenticates again at
# once, so the server stores the new version without waiting for the
# cached token to expire.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/rdfm_lib.bash"

openssl genrsa -out "$T/k1.pem" 2048 2>/dev/null
openssl genrsa -out "$T/k2.pem" 2048 2>/dev/null
head -c 6000 /dev/urandom >"$T/pkg"
SHA=$(sha256sum "$T/pkg" | cut -d' ' -f1)

# poll NAME ARGS...: rdfm-poll into $T/NAME.out and .err.
poll() {
	local name=$1
	shift
	"$BIN/rdfm-poll" --server "$URL" --state-dir "$T/st-$name" \
		--interval-ms 200 --backoff 50:400 "$@" \
		>"$T/$name.out" 2>"$T/$name.err"
}

start_server lim --auto-approve || exit 1
add_package "$T/pkg" 2.0.0 typeA >/dev/null

# --- a drip: 2 bytes/s of 6000 bytes, at least 1000 bytes/s after 2 s -------
# The deadline is 2 s + 6000 / 1000 s = 8 s after the transfer starts.
admin POST /admin/faults '{"slow_bps": 2}' >/dev/null
t0=$(date +%s%N)
poll drip --device "d1:typeA:$T/k1.pem" --attempts 0 --timeout 60 \
	--min-rate 1000 --grace-ms 2000
secs=$((($(date +%s%N) - t0) / 1000000000))
echo "# drip given up after ${secs}s"
check "a dripping server is given up on" \
	grep -q 'result=gave-up' "$T/drip.out"
check "with a message naming the deadline and its settings" \
	grep -Eq 'phase=download .*error="download too slow: [0-9]+ of 6000 bytes in [0-9]+s; a download must average 1000 bytes/s after 2s \(download_min_rate, download_grace\)"' \
	"$T/drip.out"
check "not before the deadline, not long after (8 s; < 40 s)" \
	eval '[ $secs -ge 7 ] && [ $secs -lt 40 ]'
part=$(stat -c %s "$T/st-drip/spool/$SHA.part" 2>/dev/null || echo 0)
check "what came is kept for a resume ($part bytes)" \
	eval '[ $part -gt 0 ] && [ $part -lt 6000 ]'

# --- the resume gets a deadline of its own, and a fast server is not slow -----
admin POST /admin/faults '{"reset": true, "slow_bps": 3000}' >/dev/null
poll drip --device "d1:typeA:$T/k1.pem" --attempts 2 --timeout 60 \
	--min-rate 1000 --grace-ms 2000
check "the resumed download at 3000 bytes/s completes" \
	grep -q "result=downloaded sha256=$SHA" "$T/drip.out"
check "from where the drip stopped" \
	test "$(count_log ".status == 206 and .range == \"bytes=$part-\"")" -eq 1
check "the file matches" cmp -s "$T/pkg" "$T/st-drip/spool/$SHA"

# The defaults (1024 bytes/s after 60 s) leave a slow but steady server be.
admin POST /admin/faults '{"reset": true, "slow_bps": 2000}' >/dev/null
poll steady --device "d1:typeA:$T/k1.pem" --attempts 0 --timeout 60
check "defaults: a 2000 bytes/s download completes" \
	grep -q "result=downloaded sha256=$SHA" "$T/steady.out"
admin POST /admin/faults '{"reset": true}' >/dev/null

# --- the server learns the new version at once --------------------------------
poll rep --device "d2:typeA:$T/k2.pem:1.0.0" --report-version 2.0.0 \
	--attempts 3 --timeout 60
check "after the update the device reports its new version" \
	grep -q 'device=d2 result=reported version=2.0.0' "$T/rep.out"
check "the server stores it now" \
	eval 'admin GET /admin/devices | jq -e ".[] | select(.id == \"d2\") | .software_version == \"2.0.0\"" >/dev/null'
last=$(jq -c 'select(.path | startswith("/admin/") | not)' "$LOG" | tail -n 1)
check "by a second authentication, right after the download" \
	eval '[ $(count_log ".device == \"d2\" and .path == \"/api/v1/auth/device\"") -eq 2 ] &&
	jq -e ".path == \"/api/v1/auth/device\" and .device == \"d2\"" <<<"$last" >/dev/null'

check_servers
done_testing
