#!/bin/bash
# The test RDFM server's device API against docs/design.md "RDFM device API", driven
# with curl and the openssl command: every status code, the signature over
# the raw body, the Go client's exact key string, tokens and their expiry,
# Range downloads, and loopback-only listening.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/rdfm_lib.bash"

GO=$SRC/tests/data/rdfm/go-client-keys

start_server api --token-expiry 2 || { not_ok "server starts" "no READY"; exit 1; }
ok "server prints READY with its URL"

# A device key and its public key in the three forms the server accepts.
openssl genrsa -out "$T/k1.pem" 2048 2>/dev/null
openssl rsa -in "$T/k1.pem" -RSAPublicKey_out 2>/dev/null |
	sed 's/RSA PUBLIC KEY/PUBLIC KEY/' >"$T/k1.gopub"
openssl rsa -in "$T/k1.pem" -pubout 2>/dev/null >"$T/k1.spki"
openssl rsa -in "$T/k1.pem" -RSAPublicKey_out 2>/dev/null >"$T/k1.pkcs1"
# The Go client's key file is PKCS#1 under a PRIVATE KEY label.
sed 's/PRIVATE KEY/RSA PRIVATE KEY/' "$GO/goclient-a.key" >"$T/go.pem"

# body ID PUBFILE [TYPE] [VERSION]: an auth body as the Go client sends it.
body() {
	jq -cn --arg id "$1" --rawfile pk "$2" --arg t "${3:-t1}" \
		--arg v "${4:-1.0.0}" '{metadata: {"rdfm.software.version": $v,
		"rdfm.hardware.devtype": $t, "rdfm.hardware.macaddr": $id},
		public_key: $pk, timestamp: (now | floor)}'
}

# auth KEY BODYFILE [CONTENT-TYPE] [SIGNED-FILE]: prints the status code.
auth() {
	local sig
	sig=$(openssl dgst -sha256 -sign "$1" "${4:-$2}" | base64 -w0)
	curl -s -o "$T/rsp" -w '%{http_code}' \
		-H "Content-Type: ${3:-application/json}" \
		-H "X-RDFM-Device-Signature: $sig" \
		--data-binary @"$2" "$URL/api/v1/auth/device"
}

# check AUTHORIZATION [BODY] [CONTENT-TYPE]: prints the status code.
check_req() {
	curl -s -o "$T/rsp" -w '%{http_code}' \
		-H "Content-Type: ${3:-application/json}" \
		${1:+-H "Authorization: $1"} \
		--data-binary "${2:-{\"rdfm.software.version\":\"1.0.0\",\"rdfm.hardware.devtype\":\"t1\",\"rdfm.hardware.macaddr\":\"d1\"\}}" \
		"$URL/api/v1/update/check"
}

# jcheck NAME FILTER FILE [JQ ARGS...]: ok when the filter holds.
jcheck() {
	local name=$1 filter=$2 file=$3
	shift 3
	if jq -e "$@" "$filter" "$file" >/dev/null; then ok "$name"; else not_ok "$name" "$filter on $(head -c 200 "$file")"; fi
}

expect() {
	local name=$1 want=$2 got=$3
	if [ "$got" = "$want" ]; then ok "$name"; else not_ok "$name" "HTTP $got, want $want: $(head -c 200 "$T/rsp")"; fi
}

body d1 "$T/k1.gopub" >"$T/b1"
expect "unknown device: 401" 401 "$(auth "$T/k1.pem" "$T/b1")"
jcheck "401 says device unauthorized" '.error == "device unauthorized"' "$T/rsp"
check "unknown device is pending" \
	sh -c "curl -s $URL/admin/pending | jq -e '.[] | select(.id == \"d1\")' >/dev/null"
expect "wrong content type: 415" 415 "$(auth "$T/k1.pem" "$T/b1" text/plain)"

# Tampered: signed one body, sent another.
body d1 "$T/k1.gopub" t1 6.6.6 >"$T/b1x"
expect "tampered body: 400" 400 "$(auth "$T/k1.pem" "$T/b1x" application/json "$T/b1")"
openssl genrsa -out "$T/other.pem" 2048 2>/dev/null
expect "signed by another key: 400" 400 "$(auth "$T/other.pem" "$T/b1")"
curl -s -o "$T/rsp" -w '%{http_code}' -H 'Content-Type: application/json' \
	--data-binary @"$T/b1" "$URL/api/v1/auth/device" >"$T/code"
expect "missing signature: 400" 400 "$(cat "$T/code")"

jq -c '. + {extra: 1}' "$T/b1" >"$T/bx"
expect "extra top-level key: 400" 400 "$(auth "$T/k1.pem" "$T/bx")"
jq -c 'del(.timestamp)' "$T/b1" >"$T/bx"
expect "missing timestamp: 400" 400 "$(auth "$T/k1.pem" "$T/bx")"
jq -c '.metadata["rdfm.hardware.devtype"] = 5' "$T/b1" >"$T/bx"
expect "non-string metadata: 400" 400 "$(auth "$T/k1.pem" "$T/bx")"
jq -c 'del(.metadata["rdfm.hardware.macaddr"])' "$T/b1" >"$T/bx"
expect "missing metadata key: 400" 400 "$(auth "$T/k1.pem" "$T/bx")"
jq -c '.timestamp = "now"' "$T/b1" >"$T/bx"
expect "string timestamp: 400" 400 "$(auth "$T/k1.pem" "$T/bx")"
printf '{"metadata": ' >"$T/bx"
expect "truncated JSON: 400" 400 "$(auth "$T/k1.pem" "$T/bx")"

check "approve d1" sh -c "curl -s -XPOST -d '{\"id\":\"d1\"}' $URL/admin/approve | jq -e '.approved == 1' >/dev/null"
expect "approved device: 200" 200 "$(auth "$T/k1.pem" "$T/b1")"
jcheck "200 carries token and expires" '(.token | length) > 10 and .expires == 2' "$T/rsp"
SHORT=$(jq -r .token "$T/rsp")
# The rest uses a token that outlives the test (a loaded machine takes
# more than 2 s over it); the short one is checked expired at the end.
admin POST /admin/mgmt/config '{"token_expiry": 300}' >/dev/null
expect "a new token after the expiry changed: 200" 200 "$(auth "$T/k1.pem" "$T/b1")"
jcheck "... for the new expiry" '.expires == 300' "$T/rsp"
TOKEN=$(jq -r .token "$T/rsp")
check "approval list no longer has d1" \
	sh -c "curl -s $URL/admin/pending | jq -e 'map(select(.id == \"d1\")) | length == 0' >/dev/null"

# Identity is id AND the exact key string: another form is a new device.
body d1 "$T/k1.spki" >"$T/b1s"
expect "same key as SPKI is pending again: 401" 401 "$(auth "$T/k1.pem" "$T/b1s")"
curl -s -XPOST -d "$(jq -cn --rawfile pk "$T/k1.spki" '{id: "d1", public_key: $pk}')" \
	"$URL/admin/approve" >/dev/null
expect "SPKI form accepted once approved" 200 "$(auth "$T/k1.pem" "$T/b1s")"
body d1 "$T/k1.pkcs1" >"$T/b1p"
expect "RSA PUBLIC KEY form is another identity: 401" 401 "$(auth "$T/k1.pem" "$T/b1p")"
curl -s -XPOST -d '{"id":"d1"}' "$URL/admin/approve" >/dev/null
expect "RSA PUBLIC KEY form accepted" 200 "$(auth "$T/k1.pem" "$T/b1p")"

# The Go client's key, with the exact string it sends.
body goclient "$GO/goclient-a.pub-as-sent.pem" >"$T/bgo"
expect "Go key: pending at first" 401 "$(auth "$T/go.pem" "$T/bgo")"
check "pending entry has the Go key string byte for byte" \
	sh -c "curl -s $URL/admin/pending | jq -j '.[] | select(.id == \"goclient\") | .public_key' | cmp -s - '$GO/goclient-a.pub-as-sent.pem'"
curl -s -XPOST -d '{"id":"goclient"}' "$URL/admin/approve" >/dev/null
expect "Go key: recognised after approval" 200 "$(auth "$T/go.pem" "$T/bgo")"

# Update check.
expect "check without token: 401" 401 "$(check_req "")"
expect "check with plain Bearer: 500" 500 "$(check_req "Bearer $TOKEN")"
expect "check with an unknown token: 401" 401 "$(check_req "Bearer token=nope")"
expect "check with wrong content type: 415" 415 \
	"$(check_req "Bearer token=$TOKEN" '' text/plain)"
expect "check without metadata: 400" 400 \
	"$(check_req "Bearer token=$TOKEN" '{"rdfm.software.version":"1.0.0"}')"
expect "check with nothing offered: 204" 204 "$(check_req "Bearer token=$TOKEN")"

head -c 200000 /dev/urandom >"$T/pkg1"
SHA=$(add_package "$T/pkg1" 2.0.0 t1)
check "package added with its sha256" test "$SHA" = "$(sha256sum "$T/pkg1" | cut -d' ' -f1)"
expect "check with a package for the type: 200" 200 "$(check_req "Bearer token=$TOKEN")"
jcheck "offer has id, created, sha256, uri" \
	'.id == 1 and .sha256 == $s and (.created | test("GMT$")) and (.uri | test("^http://127.0.0.1:[0-9]+/local_storage/"))' "$T/rsp" --arg s "$SHA"
OFFER=$(jq -r .uri "$T/rsp")
expect "check reporting the offered version: 204" 204 \
	"$(check_req "Bearer token=$TOKEN" '{"rdfm.software.version":"2.0.0","rdfm.hardware.devtype":"t1","rdfm.hardware.macaddr":"d1"}')"
expect "check for another type: 204" 204 \
	"$(check_req "Bearer token=$TOKEN" '{"rdfm.software.version":"1.0.0","rdfm.hardware.devtype":"t2","rdfm.hardware.macaddr":"d1"}')"

# Downloads with Range.
check "download is the package" sh -c "curl -s '$OFFER' | cmp -s - '$T/pkg1'"
code=$(curl -s -o "$T/part" -w '%{http_code}' -r 1000- "$OFFER")
if [ "$code" = 206 ] && cmp -s "$T/part" <(tail -c +1001 "$T/pkg1"); then
	ok "Range request: 206 with the tail"
else
	not_ok "Range request: 206 with the tail" "HTTP $code"
fi
code=$(curl -s -o /dev/null -w '%{http_code}' -r 900000- "$OFFER")
expect "Range past the end: 416" 416 "$code"
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/local_storage/nope")
expect "unknown package: 404" 404 "$code"
check "server log names the range" \
	test "$(count_log '.status == 206 and .range == "bytes=1000-"')" -eq 1
check "server log names the device" \
	test "$(count_log '.path == "/api/v1/auth/device" and .status == 200 and .device == "goclient"')" -eq 1
n=$(wc -l <"$LOG")
check "admin log is the same list" test "$(curl -s "$URL/admin/log" | jq length)" -eq "$n"

# Faults that apply to the API.
admin POST /admin/faults '{"wrong_sha": true}' >/dev/null
check_req "Bearer token=$TOKEN" >/dev/null
jcheck "wrong_sha fault changes the offered sha256" \
	'.sha256 != $s' "$T/rsp" --arg s "$SHA"
admin POST /admin/faults '{"error_rate": 1, "error_status": 502}' >/dev/null
expect "error_rate 1: every request fails" 502 "$(check_req "Bearer token=$TOKEN")"
admin POST /admin/faults '{"reset": true}' >/dev/null
expect "reset clears faults" 200 "$(check_req "Bearer token=$TOKEN")"
jcheck "reset restores the sha256" '.sha256 == $s' "$T/rsp" --arg s "$SHA"

# Token expiry (--token-expiry 2): the first token is older than that.
sleep 2.5
expect "expired token: 401" 401 "$(check_req "Bearer token=$SHORT")"
expect "... while the newer one still works" 200 "$(check_req "Bearer token=$TOKEN")"

# Loopback only.
if "$BIN/rdfm-test-server" --listen 0.0.0.0:0 --data-dir "$T/x" >"$T/x.out" 2>"$T/x.err"; then
	not_ok "refuses a non-loopback address" "it started"
else
	check "refuses a non-loopback address" grep -q loopback "$T/x.err"
fi
check_fails "refuses a missing --data-dir" "$BIN/rdfm-test-server" --listen 127.0.0.1:0 2>/dev/null

check_servers
done_testing
