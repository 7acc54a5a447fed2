#!/bin/bash
# The management channel (issue 15) for a fleet of idle devices, through
# mgmt-drive (the channel's modules as the daemon runs them, fake boards)
# against the test server: memory per connected device over ws:// and
# wss:// (RSS with every device authenticated and the channel on, minus
# the same without the channel), CPU while idle (the server pinging every
# 25 s, as RDFM's does), and how long a progress report takes to reach the
# server.  Writes bench/data/mgmt.tsv and bench/data/mgmt.md, and puts the
# latter into bench/results.md as its own section.
#
#   bench/mgmt.sh [BUILD]
# Environment: MGMT_DEVICES (1000), MGMT_IDLE_S (60), BENCH_OUT (bench/).
set -u

SRC=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(cd "${1:-$SRC/build}" && pwd) || exit 2
OUT=${BENCH_OUT:-$SRC/bench}
N=${MGMT_DEVICES:-1000}
IDLE_S=${MGMT_IDLE_S:-60}
for p in "$BIN/mgmt-drive" "$BIN/rdfm-test-server"; do
	[ -x "$p" ] || {
		echo "bench: $p is missing: run make first" >&2
		exit 2
	}
done

. "$SRC/bench/lib.sh"
bench_workspace rdfm-bench-mgmt
ulimit -n "$(ulimit -Hn)" 2>/dev/null

# One key for every device (the server tells devices apart by id); a
# thousand RSA keys would take minutes to make.
mkdir -p "$W/keys"
openssl genrsa -out "$W/key.pem" 2048 2>/dev/null
for i in $(seq 0 $((N - 1))); do cp "$W/key.pem" "$W/keys/d$i.pem"; done

# server NAME [ARGS]: sets URL.
server() {
	local name=$1
	shift
	"$BIN/rdfm-test-server" --listen 127.0.0.1:0 --data-dir "$W/$name" \
		--auto-approve --ws-ping 25 "$@" >"$W/$name.out" 2>"$W/$name.err" &
	echo $! >>"$PIDS"
	SRV_PID=$!
	for _ in $(seq 100); do
		grep -q '^READY' "$W/$name.out" 2>/dev/null && break
		sleep 0.1
	done
	URL=$(sed -n 's/^READY //p' "$W/$name.out")
}

# config FILE MANAGEMENT [CA]
config() {
	jq -n --arg s "$URL" --arg k "$W/keys" --argjson n "$N" \
		--argjson m "$2" --arg ca "${3:-}" '
	  {server: $s, key_dir: $k, management: $m,
	   devices: [range($n) | {name: "d\(.)", id: "bench:\(.)",
	     dev_type: "t", key: "d\(.).pem",
	     transport: {type: "udp", address: "127.0.0.1:\(10000 + .)"}}]}
	  + (if $ca == "" then {} else {ca_file: $ca} end)' >"$1"
}

rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# drive CONFIG WAIT-REGEX: mgmt-drive until its line matches; sets DPID.
drive() {
	"$BIN/mgmt-drive" -c "$1" --auth --wait-connected "$N" --no-stdin \
		>"$W/drive.out" 2>"$W/drive.err" &
	DPID=$!
	echo "$DPID" >>"$PIDS"
	for _ in $(seq 1200); do
		grep -Eq "$2" "$W/drive.out" && return 0
		sleep 0.1
	done
	say "bench: mgmt-drive never printed /$2/"
	return 1
}

stop() {
	kill -TERM "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

# measure SCHEME [CA]: prints "scheme rss_off rss_on per_device cpu_pct".
measure() {
	local scheme=$1 ca=${2:-} off on t0 t1 cpu
	config "$W/off.json" false "$ca"
	config "$W/on.json" true "$ca"
	say "bench: $scheme: $N devices authenticated, no channel"
	drive "$W/off.json" "^AUTHED $N" || return 1
	sleep 5
	off=$(rss_kib "$DPID")
	stop "$DPID"
	say "bench: $scheme: $N devices with the channel up"
	drive "$W/on.json" "^ALL-CONNECTED" || return 1
	sleep 10
	on=$(rss_kib "$DPID")
	say "bench: $scheme: idle for $IDLE_S s"
	t0=$(cpu_ticks "$DPID")
	sleep "$IDLE_S"
	t1=$(cpu_ticks "$DPID")
	cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$(getconf CLK_TCK)" -v s="$IDLE_S" \
		'BEGIN { printf "%.3f", (b - a) / hz / s * 100 }')
	if ! curl -s ${ca:+--cacert "$ca"} "$URL/admin/mgmt/stats" |
		jq -e ".connected == $N" >/dev/null; then
		say "bench: $scheme: not every device stayed connected"
	fi
	stop "$DPID"
	printf '%s\t%s\t%s\t%s\t%s\n' "$scheme" "$off" "$on" \
		"$(awk -v a="$off" -v b="$on" -v n="$N" 'BEGIN { printf "%.1f", (b - a) / n }')" \
		"$cpu"
}

# latency: progress reports of one device, command to the server's record.
latency() {
	local i t0
	jq '.devices |= .[:1]' "$W/on.json" >"$W/one.json"
	mkfifo "$W/lat.in"
	"$BIN/mgmt-drive" -c "$W/one.json" <"$W/lat.in" >"$W/lat.out" \
		2>"$W/lat.err" &
	DPID=$!
	echo "$DPID" >>"$PIDS"
	exec 9>"$W/lat.in"
	for _ in $(seq 100); do
		curl -s "$URL/admin/mgmt/devices?id=bench:0" | jq -e .connected \
			>/dev/null 2>&1 && break
		sleep 0.1
	done
	: >"$W/lat.tsv"
	for i in $(seq 1 20); do
		t0=$(date +%s.%N)
		echo "progress d0 $i 100" >&9
		sleep 0.3
		echo "$t0" >>"$W/lat.t0"
	done
	sleep 1
	curl -s "$URL/admin/mgmt/devices?id=bench:0" |
		jq -r '[.messages[] | select(.data | fromjson | .method ==
		  "update_progress") | .time] | .[]' >"$W/lat.t1"
	paste "$W/lat.t0" "$W/lat.t1" | awk '{ printf "%.1f\n", ($2 - $1) * 1000 }' |
		sort -g >"$W/lat.ms"
	exec 9>&-
	stop "$DPID"
	awk '{ v[NR] = $1 } END { printf "%s\t%s\t%s\n", v[int((NR + 1) / 2)], v[1], v[NR] }' "$W/lat.ms"
}

mkdir -p "$OUT/data"
: >"$W/mgmt.tsv"
server plain
measure ws >>"$W/mgmt.tsv" || exit 1
lat=$(latency)
stop "$SRV_PID"

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=benchca \
	-keyout "$W/ca.key" -out "$W/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 \
	-keyout "$W/srv.key" -out "$W/srv.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$W/ext"
openssl x509 -req -in "$W/srv.csr" -CA "$W/ca.pem" -CAkey "$W/ca.key" \
	-CAcreateserial -days 2 -extfile "$W/ext" -out "$W/srv.pem" 2>/dev/null
server tls --cert "$W/srv.pem" --key "$W/srv.key"
measure wss "$W/ca.pem" >>"$W/mgmt.tsv" || exit 1
stop "$SRV_PID"

cp "$W/mgmt.tsv" "$OUT/data/mgmt.tsv"
MACHINE="$(nproc) CPUs, $(uname -sr)"
{
	echo "## Management channel: $N idle devices"
	echo
	echo "Measured by \`bench/mgmt.sh\` on $(date -u '+%Y-%m-%d') ($MACHINE):"
	echo "\`mgmt-drive\` runs the channel's modules for $N devices against"
	echo "the test server, which pings each connection every 25 s as RDFM's"
	echo "does.  Memory: RSS with all $N devices authenticated and connected"
	echo "minus RSS with all authenticated and the channel off.  CPU: the"
	echo "process over $IDLE_S s of idle."
	echo
	echo "| scheme | RSS without (KiB) | RSS with (KiB) | per device (KiB) | target | CPU idle (% of a core) | target |"
	echo "|---|---|---|---|---|---|---|"
	awk -F'\t' '{ t = $1 == "ws" ? 16 : 64;
	  printf "| %s:// | %s | %s | %.1f | < %d | %s | < 1 |\n", $1, $2, $3, $4, t, $5 }' "$W/mgmt.tsv"
	echo
	set -- $lat
	echo "Progress reports of one device, from the command to the server's"
	echo "record (20 reports): median $1 ms, min $2 ms, max $3 ms (target"
	echo "< 1000 ms)."
} >"$OUT/data/mgmt.md"
# Our section of results.md, replaced in place (or added at the end).
R=$OUT/results.md
touch "$R"
awk -v f="$OUT/data/mgmt.md" '
  BEGIN { while ((getline l < f) > 0) sec = sec l "\n" }
  /^<!-- mgmt begin -->/ { skip = 1; printf "<!-- mgmt begin -->\n%s<!-- mgmt end -->\n", sec; done = 1; next }
  /^<!-- mgmt end -->/ { skip = 0; next }
  !skip { print }
  END { if (!done) printf "\n<!-- mgmt begin -->\n%s<!-- mgmt end -->\n", sec }' \
	"$R" >"$W/results.md" && cp "$W/results.md" "$R"
cat "$OUT/data/mgmt.md"
