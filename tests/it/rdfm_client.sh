#!/bin/bash
# The RDFM client (supervisor/rdfm.c + spool.c, driven by rdfm-poll) against
# the test server: approval, token reuse and expiry, one re-authentication
# on a 401, every fault (5xx, slow, truncated, wrong sha), resume, the spool
# cap, and many devices on the one loop sharing a download.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/rdfm_lib.bash"

GO=$SRC/tests/data/rdfm/go-client-keys
for i in 1 2 3 4 5 6 7 8; do
	openssl genrsa -out "$T/k$i.pem" 2048 2>/dev/null
done
head -c 300000 /dev/urandom >"$T/pkgA"
head -c 200000 /dev/urandom >"$T/pkgB"
head -c 250000 /dev/urandom >"$T/pkgC"
SHA_A=$(sha256sum "$T/pkgA" | cut -d' ' -f1)

# poll NAME ARGS...: rdfm-poll into $T/NAME.out (stdout) and .err.
poll() {
	local name=$1
	shift
	"$BIN/rdfm-poll" --server "$URL" --state-dir "$T/st-$name" \
		--interval-ms 200 --backoff 50:400 --timeout 60 "$@" \
		>"$T/$name.out" 2>"$T/$name.err"
}

# result NAME DEVICE REGEX: the device's output has a matching line.
has() {
	grep -Eq "^device=$2 .*$3" "$T/$1.out"
}

# --- approval, Go key ------------------------------------------------------
start_server appr --seed 1 || exit 1
add_package "$T/pkgA" 2.0.0 typeA >/dev/null
poll appr --device "d1:typeA:$T/k1.pem" --attempts 200 &
ppid=$!
if wait_for_line "$T/appr.out" 'result=unapproved' 20; then
	ok "unapproved device is told so and keeps polling"
else
	not_ok "unapproved device is told so and keeps polling" "$(cat "$T/appr.out")"
fi
sleep 0.5
admin POST /admin/approve '{"id":"d1"}' >/dev/null
wait $ppid
check "after approval the download completes" has appr d1 'result=downloaded'
check "the unapproved state is reported once" \
	test "$(grep -c 'result=unapproved' "$T/appr.out")" -eq 1
check "the INFO line about approval is logged once" \
	test "$(grep -c 'waiting for approval' "$T/appr.err")" -eq 1
check "several polls happened while waiting" \
	test "$(count_log '.path == "/api/v1/auth/device" and .status == 401')" -ge 2
check "downloaded file is the package" cmp -s "$T/pkgA" "$T/st-appr/spool/$SHA_A"
check "spool usage counts the file" grep -qx 'spool_usage=300000' "$T/appr.out"
check "spool directory is private" \
	test "$(stat -c %a "$T/st-appr/spool")" = 700
check "nothing secret in the client log" \
	sh -c "! grep -Eiq 'token=|BEGIN|signature' '$T/appr.err'"

cp "$GO/goclient-a.key" "$T/go.key"
chmod 600 "$T/go.key"
poll go --device "goclient:typeA:$T/go.key" --attempts 0 --no-download
check "Go key: first contact is pending" has go goclient 'result=unapproved'
check "Go key: the exact public-key string reached the server" \
	sh -c "curl -s $URL/admin/pending | jq -j '.[] | select(.id == \"goclient\") | .public_key' | cmp -s - '$GO/goclient-a.pub-as-sent.pem'"
admin POST /admin/approve '{"id":"goclient"}' >/dev/null
poll go2 --device "goclient:typeA:$T/go.key" --no-download
check "Go key: recognised after approval" has go2 goclient 'result=offer'

# --- tokens ----------------------------------------------------------------
start_server tok --auto-approve || exit 1
poll tok --device "t1:none:$T/k2.pem" --checks 3 --interval-ms 100
check "three checks with no update" test "$(grep -c result=no-update "$T/tok.out")" -eq 3
check "token reused: one authentication for three checks" \
	test "$(count_log '.path == "/api/v1/auth/device"')" -eq 1

poll reauth --device "t1:none:$T/k2.pem" --checks 2 --interval-ms 3000 &
ppid=$!
wait_for_line "$T/reauth.out" 'result=no-update' 20
admin POST /admin/revoke_tokens '{}' >/dev/null
wait $ppid
check "after a 401 the client re-authenticated and checked again" \
	test "$(grep -c result=no-update "$T/reauth.out")" -eq 2
check "the check saw one 401" \
	test "$(count_log '.path == "/api/v1/update/check" and .status == 401')" -eq 1

start_server exp --auto-approve --token-expiry 2 || exit 1
poll exp --device "t1:none:$T/k2.pem" --checks 3 --interval-ms 2500
check "expiring token: re-authenticated before each late check" \
	test "$(count_log '.path == "/api/v1/auth/device" and .status == 200')" -eq 3
check "no check used an expired token" \
	test "$(count_log '.path == "/api/v1/update/check" and .status == 401')" -eq 0

# --- faults ----------------------------------------------------------------
start_server flt --auto-approve --seed 42 || exit 1
add_package "$T/pkgA" 2.0.0 typeA >/dev/null

admin POST /admin/faults '{"error_rate": 0.5, "error_status": 503}' >/dev/null
poll err --device "e1:typeA:$T/k3.pem" --attempts 50
check "5xx faults: retried and then downloaded" has err e1 'result=downloaded'
check "5xx faults: retries happened with a backoff delay" \
	grep -Eq 'result=retry .*status=503 retry_ms=[1-9]' "$T/err.out"
check "5xx faults: delays stay within the bounds" \
	sh -c "! grep -o 'retry_ms=[0-9]*' '$T/err.out' | cut -d= -f2 | awk '\$1 > 400 { bad = 1 } END { exit !bad }'"
check "5xx faults: nothing logged at ERROR (transient)" \
	sh -c "! grep -q 'level=ERROR' '$T/err.err'"

admin POST /admin/faults '{"reset": true, "slow_bps": 150000}' >/dev/null
poll slow --device "s1:typeA:$T/k3.pem"
check "slow download completes" has slow s1 "result=downloaded sha256=$SHA_A"

# Shutting down mid-transfer keeps what came, for a resume.
admin POST /admin/faults '{"reset": true, "slow_bps": 40000}' >/dev/null
"$BIN/rdfm-poll" --server "$URL" --state-dir "$T/st-stop" --timeout 2 \
	--device "s2:typeA:$T/k3.pem" >"$T/stop.out" 2>"$T/stop.err"
check "stopped client: timed out mid-download" grep -q '^timeout' "$T/stop.out"
check "stopped client: the partial file stays" \
	test "$(stat -c %s "$T/st-stop/spool/$SHA_A.part" 2>/dev/null || echo 0)" -gt 0
check "stopped client: clean shutdown (no leak or sanitizer report)" \
	sh -c "! grep -Eq 'Sanitizer|runtime error' '$T/stop.err'"

admin POST /admin/faults '{"reset": true, "truncate_after": 100000}' >/dev/null
poll trunc --device "r1:typeA:$T/k3.pem"
check "truncated download: resumed and verified" has trunc r1 "result=downloaded sha256=$SHA_A"
check "truncated download: the first try was cut" \
	grep -q 'result=retry phase=download' "$T/trunc.out"
check "truncated download: the server saw a Range request" \
	test "$(count_log '.status == 206 and .range == "bytes=100000-"')" -ge 1
check "truncated download: file matches" cmp -s "$T/pkgA" "$T/st-trunc/spool/$SHA_A"

# Resume across a restart of the client: the partial file is re-hashed.
n0=$(count_log '.status == 206')
poll trunc2 --device "r2:typeA:$T/k3.pem" --attempts 0
check "interrupted run leaves a partial file" \
	test "$(stat -c %s "$T/st-trunc2/spool/$SHA_A.part" 2>/dev/null)" = 100000
admin POST /admin/faults '{"reset": true}' >/dev/null
poll trunc2 --device "r2:typeA:$T/k3.pem"
check "next run resumes the partial file" has trunc2 r2 "result=downloaded sha256=$SHA_A"
check "next run asked for the rest only" \
	test "$(count_log '.status == 206')" -eq $((n0 + 1))
check "resumed file matches" cmp -s "$T/pkgA" "$T/st-trunc2/spool/$SHA_A"

# A partial file that is already whole (stopped before the rename): the
# server answers the Range request with 416 and the file is verified as is.
mkdir -p "$T/st-whole/spool"
cp "$T/pkgA" "$T/st-whole/spool/$SHA_A.part"
n0=$(count_log '.status == 416')
poll whole --device "r3:typeA:$T/k3.pem"
check "whole partial file: verified without a new download" \
	has whole r3 "result=downloaded sha256=$SHA_A"
check "whole partial file: the server said 416" \
	test "$(count_log '.status == 416')" -eq $((n0 + 1))

admin POST /admin/faults '{"reset": true, "wrong_sha": true}' >/dev/null
poll wsha --device "w1:typeA:$T/k3.pem"
check_fails "wrong sha: rdfm-poll fails" has wsha w1 'result=downloaded'
check "wrong sha: refused as a verification failure" \
	has wsha w1 'result=verify-failed.*sha256'
check "wrong sha: no file left in the spool" \
	test -z "$(ls -A "$T/st-wsha/spool")"
check "wrong sha: spool usage back to 0" grep -qx 'spool_usage=0' "$T/wsha.out"
admin POST /admin/faults '{"reset": true}' >/dev/null

poll cap --device "c1:typeA:$T/k3.pem" --spool-max 100000
check "spool cap: download refused" has cap c1 'result=error .*spool full'
check "spool cap: nothing left behind" test -z "$(ls -A "$T/st-cap/spool")"
check "spool cap: usage back to 0" grep -qx 'spool_usage=0' "$T/cap.out"

# Files an earlier run left for an artifact nobody is offered any more (a
# download cut by a crash, a file whose boards all moved on) give way when
# the cap needs their room; files an offer still wants stay.
STALE=$(printf 'a%.0s' $(seq 64))
mkdir -p "$T/st-stale/spool"
head -c 250000 /dev/zero >"$T/st-stale/spool/$STALE.part"
poll stale --device "s1:typeA:$T/k3.pem" --spool-max 400000
check "stale spool file: the download fits once it is gone" \
	has stale s1 "result=downloaded sha256=$SHA_A"
check "stale spool file: removed" test ! -e "$T/st-stale/spool/$STALE.part"
check "stale spool file: the eviction is logged" \
	grep -q "msg=\"spool file nobody wants removed for room\".*$STALE" "$T/stale.err"
head -c 250000 /dev/zero >"$T/st-stale/spool/$STALE.part"
poll stale2 --device "s1:typeA:$T/k3.pem" --spool-max 700000
check "stale spool file: kept while there is room" \
	test -e "$T/st-stale/spool/$STALE.part"

poll rel --device "x1:typeA:$T/k3.pem" --release
check "released download: verified first" has rel x1 'result=downloaded'
check "released download: removed when no longer referenced" \
	test -z "$(ls -A "$T/st-rel/spool")"
check "released download: usage back to 0" grep -qx 'spool_usage=0' "$T/rel.out"

# A 4xx on the download is the server's answer, not a hiccup: no retry.
add_package "$T/pkgB" 9.0.0 typeGone "$URL/local_storage/no-such-package" >/dev/null
poll gone --device "g1:typeGone:$T/k3.pem"
check "download 404: reported as an error without retries" \
	sh -c "grep -q 'result=error phase=download status=404' '$T/gone.out' && ! grep -q result=retry '$T/gone.out'"
check "download 404: nothing left in the spool" test -z "$(ls -A "$T/st-gone/spool")"

# --- many devices on one loop ----------------------------------------------
start_server many --auto-approve || exit 1
add_package "$T/pkgB" 3.0.0 typeB >/dev/null
add_package "$T/pkgC" 4.0.0 typeC >/dev/null
admin POST /admin/faults '{"slow_bps": 200000}' >/dev/null
args=()
for i in 1 2 3 4; do args+=(--device "m$i:typeB:$T/k$((i + 3)).pem"); done
for i in 5 6; do args+=(--device "m$i:typeC:$T/k$((i + 2)).pem"); done
poll many "${args[@]}"
check "six devices all downloaded" test "$(grep -c result=downloaded "$T/many.out")" -eq 6
check "devices offered the same artifact shared one transfer" \
	test "$(count_log '.path | startswith("/local_storage/")')" -eq 2
check "six devices authenticated" \
	test "$(count_log '.path == "/api/v1/auth/device" and .status == 200')" -eq 6
check "both artifacts are in the one spool" \
	test "$(ls "$T/st-many/spool" | wc -l)" -eq 2
check "spool usage is the two files, counted once" \
	grep -qx "spool_usage=$(( $(stat -c %s "$T/pkgB") + $(stat -c %s "$T/pkgC") ))" "$T/many.out"

peak=$(admin GET /admin/stats | jq .downloads_peak)
check "two artifacts: downloaded side by side by default ($peak at once)" \
	test "$peak" -eq 2

# --- a fleet's share of the server (issue 17) --------------------------------
# Two artifacts and six devices with one download and two connections at
# a time: the second download waits for the first, every request shares
# the two connections, and nobody is left out.
start_server caps --auto-approve || exit 1
add_package "$T/pkgB" 3.0.0 typeB >/dev/null
add_package "$T/pkgC" 4.0.0 typeC >/dev/null
admin POST /admin/faults '{"slow_bps": 400000}' >/dev/null
poll caps "${args[@]}" --limits 2:1:1
check "capped: six devices all downloaded" \
	test "$(grep -c result=downloaded "$T/caps.out")" -eq 6
peak=$(admin GET /admin/stats | jq .downloads_peak)
check "capped: one download at a time ($peak at once)" test "$peak" -eq 1
check "capped: still one transfer per artifact" \
	test "$(count_log '.path | startswith("/local_storage/")')" -eq 2
conns=$(jq -r 'select(.path | startswith("/admin/") | not) | .peer_port' \
	"$LOG" | sort -u | wc -l)
check "capped: every request over at most two connections ($conns)" \
	test "$conns" -le 2
check "capped: six devices authenticated" \
	test "$(count_log '.path == "/api/v1/auth/device" and .status == 200')" -eq 6

check_servers
done_testing
