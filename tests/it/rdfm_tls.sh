#!/bin/bash
# The RDFM client over HTTPS: the test server with a certificate from a test
# CA made here by the openssl command (and a refusal without that CA: TLS
# verification is always on), and downloads from Debian's nginx, a server
# we did not write, with Range resume over TLS.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/rdfm_lib.bash"

# A test CA, a server certificate for 127.0.0.1 signed by it, and a second
# CA that signed nothing of ours.
mkca() {
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$1" \
		-keyout "$T/$1.key" -out "$T/$1.pem" 2>/dev/null
}
mkca testca && mkca otherca
openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 \
	-keyout "$T/srv.key" -out "$T/srv.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$T/ext"
openssl x509 -req -in "$T/srv.csr" -CA "$T/testca.pem" -CAkey "$T/testca.key" \
	-CAcreateserial -days 2 -extfile "$T/ext" -out "$T/srv.pem" 2>/dev/null
check "test CA issued a server certificate" \
	sh -c "openssl verify -CAfile '$T/testca.pem' '$T/srv.pem' >/dev/null"

openssl genrsa -out "$T/k1.pem" 2048 2>/dev/null
openssl genrsa -out "$T/k2.pem" 2048 2>/dev/null
head -c 400000 /dev/urandom >"$T/pkg"
SHA=$(sha256sum "$T/pkg" | cut -d' ' -f1)

poll() {
	local name=$1
	shift
	"$BIN/rdfm-poll" --server "$URL" --state-dir "$T/st-$name" \
		--interval-ms 200 --backoff 50:400 --timeout 60 "$@" \
		>"$T/$name.out" 2>"$T/$name.err"
}

# --- the test server over HTTPS ----------------------------------------------
CURL_CA=$T/testca.pem
start_server tls --auto-approve --cert "$T/srv.pem" --key "$T/srv.key" || exit 1
check "server URL is https" test "${URL#https://}" != "$URL"
add_package "$T/pkg" 2.0.0 typeA >/dev/null
admin POST /admin/faults '{"truncate_after": 150000}' >/dev/null

poll https --ca "$T/testca.pem" --device "d1:typeA:$T/k1.pem"
check "HTTPS with the test CA: downloaded" \
	grep -q "result=downloaded sha256=$SHA" "$T/https.out"
check "HTTPS: the truncated transfer was resumed with Range" \
	test "$(count_log '.status == 206 and .range == "bytes=150000-"')" -eq 1
check "HTTPS: file matches" cmp -s "$T/pkg" "$T/st-https/spool/$SHA"

n=$(count_log '.path == "/api/v1/auth/device"')
poll noca --device "d1:typeA:$T/k1.pem" --attempts 1
check_fails "HTTPS without the CA: refused" grep -q result=downloaded "$T/noca.out"
check "HTTPS without the CA: a certificate error" \
	grep -Eiq 'certificate|SSL' "$T/noca.out"
check "HTTPS without the CA: no request reached the server" \
	test "$(count_log '.path == "/api/v1/auth/device"')" -eq "$n"
poll wrongca --ca "$T/otherca.pem" --device "d1:typeA:$T/k1.pem" --attempts 1
check_fails "HTTPS with another CA: refused" grep -q result=downloaded "$T/wrongca.out"
# libcurl's error buffer names the cause, not only "was not OK".
check "another CA: the error names the unknown issuer" \
	grep -q 'error=".*SSL certificate problem: unable to get local issuer certificate' "$T/wrongca.out"
# The same server by a name its certificate does not carry.
TLS_URL=$URL
URL=${TLS_URL/127.0.0.1/localhost}
poll wrongname --ca "$T/testca.pem" --device "d1:typeA:$T/k1.pem" --attempts 1
URL=$TLS_URL
check "a host name mismatch: the error says so" \
	grep -q "error=\".*no alternative certificate subject name matches target host name 'localhost'" "$T/wrongname.out"

# An expired certificate from the right CA: openssl ca sets past dates.
mkdir -p "$T/ca"
: >"$T/ca/index.txt"
echo 01 >"$T/ca/serial"
cat >"$T/ca.cnf" <<CNF
[ca]
default_ca = t
[t]
database = $T/ca/index.txt
serial = $T/ca/serial
new_certs_dir = $T/ca
policy = p
default_md = sha256
copy_extensions = copy
[p]
commonName = supplied
CNF
openssl req -new -key "$T/srv.key" -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 -out "$T/old.csr" 2>/dev/null
openssl ca -batch -config "$T/ca.cnf" -cert "$T/testca.pem" \
	-keyfile "$T/testca.key" -startdate 20200101000000Z \
	-enddate 20200102000000Z -in "$T/old.csr" -out "$T/old.pem" \
	>/dev/null 2>&1
check "an expired certificate was made" \
	sh -c "! openssl x509 -in '$T/old.pem' -checkend 0 >/dev/null"
start_server expired --auto-approve --cert "$T/old.pem" --key "$T/srv.key" || exit 1
poll expired --ca "$T/testca.pem" --device "d1:typeA:$T/k1.pem" --attempts 1
check "an expired certificate: the error says so" \
	grep -q 'error=".*SSL certificate problem: certificate has expired' "$T/expired.out"
URL=$TLS_URL
LOG=$T/tls.log
check_fails "a missing ca_file is an error" \
	"$BIN/rdfm-poll" --server "$URL" --state-dir "$T/st-x" --ca "$T/nope.pem" \
	--device "d1:typeA:$T/k1.pem" 2>/dev/null

# --- nginx serving the same files with Range and TLS ------------------------
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
	not_ok "nginx is installed" "install Debian's nginx (scripts/install-deps)"
	done_testing
	exit
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
mkdir -p "$T/www" "$T/ngx"
cp "$T/pkg" "$T/www/pkg.bin"
ngx_start() {
	local port
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		port=$((20000 + RANDOM % 40000))
		cat >"$T/ngx/nginx.conf" <<NGX
daemon off;
master_process off;
pid $T/ngx/nginx.pid;
error_log $T/ngx/error.log;
events { worker_connections 64; }
http {
	log_format rng '\$status "\$http_range" \$body_bytes_sent \$request_uri';
	access_log $T/ngx/access.log rng;
	client_body_temp_path $T/ngx/body;
	proxy_temp_path $T/ngx/proxy;
	fastcgi_temp_path $T/ngx/fastcgi;
	uwsgi_temp_path $T/ngx/uwsgi;
	scgi_temp_path $T/ngx/scgi;
	server {
		listen 127.0.0.1:$port ssl;
		ssl_certificate $T/srv.pem;
		ssl_certificate_key $T/srv.key;
		root $T/www;
	}
}
NGX
		bg "$NGINX" -p "$T/ngx" -e "$T/ngx/error.log" -c "$T/ngx/nginx.conf"
		NGX_PID=$!
		for _ in $(seq 50); do
			if curl -s --cacert "$T/testca.pem" -o /dev/null "https://127.0.0.1:$port/"; then
				NGX_URL=https://127.0.0.1:$port
				return 0
			fi
			kill -0 "$NGX_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill "$NGX_PID" 2>/dev/null
	done
	return 1
}
if ! ngx_start; then
	not_ok "nginx starts on a loopback port" "$(tail -3 "$T/ngx/error.log")"
	done_testing
	exit
fi
ok "nginx starts on a loopback port"

admin POST /admin/faults '{"reset": true}' >/dev/null
add_package "$T/pkg" 3.0.0 typeN "$NGX_URL/pkg.bin" >/dev/null
poll ngx --ca "$T/testca.pem" --device "n1:typeN:$T/k1.pem" --device "n2:typeN:$T/k2.pem"
check "nginx: both devices downloaded" \
	test "$(grep -c "result=downloaded sha256=$SHA" "$T/ngx.out")" -eq 2
check "nginx: one shared transfer" \
	test "$(grep -c '^200 ' "$T/ngx/access.log")" -eq 1
check "nginx: file matches" cmp -s "$T/pkg" "$T/st-ngx/spool/$SHA"

# An interrupted download left in the spool is resumed from nginx.
mkdir -p "$T/st-ngxr/spool"
chmod 700 "$T/st-ngxr" "$T/st-ngxr/spool"
head -c 123456 "$T/pkg" >"$T/st-ngxr/spool/$SHA.part"
poll ngxr --ca "$T/testca.pem" --device "n1:typeN:$T/k1.pem"
check "nginx: resumed download verified" \
	grep -q "result=downloaded sha256=$SHA" "$T/ngxr.out"
check "nginx: answered the Range request with 206" \
	grep -q '^206 "bytes=123456-"' "$T/ngx/access.log"
check "nginx: resumed file matches" cmp -s "$T/pkg" "$T/st-ngxr/spool/$SHA"

# A corrupted partial file cannot sneak through: the whole file is hashed.
mkdir -p "$T/st-ngxc/spool"
head -c 123456 /dev/zero >"$T/st-ngxc/spool/$SHA.part"
poll ngxc --ca "$T/testca.pem" --device "n1:typeN:$T/k1.pem"
check "nginx: a corrupt partial file fails verification" \
	grep -q 'result=verify-failed' "$T/ngxc.out"
check "nginx: and is removed" test -z "$(ls -A "$T/st-ngxc/spool")"

poll ngxnoca --device "n1:typeN:$T/k1.pem" --attempts 1 --ca "$T/otherca.pem"
check_fails "nginx with another CA: refused" grep -q result=downloaded "$T/ngxnoca.out"

# A download whose server does not match its certificate: the download's
# error names the cause too.
add_package "$T/pkg" 4.0.0 typeM "${NGX_URL/127.0.0.1/localhost}/pkg.bin" >/dev/null
poll ngxname --ca "$T/testca.pem" --device "m1:typeM:$T/k1.pem" --attempts 0
check "a download from a mismatched host: the error says so" \
	grep -q "phase=download .*no alternative certificate subject name matches target host name 'localhost'" \
	"$T/ngxname.out"

check_servers
done_testing
