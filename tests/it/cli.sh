#!/bin/bash
# The real rdfm-mcumgr-client binary: flags as the Go client takes them,
# usage errors (exit 2, one line), check-config on good and broken configs,
# and the daemon's start-up loading or generating every key.
. "$(dirname "$0")/../lib.sh"

C=$BIN/rdfm-mcumgr-client
GO=$SRC/tests/data/config/go-example.json

# run NAME: run $C with the rest of the arguments, keep rc/stdout/stderr.
run() {
	"$C" "$@" >"$T/out" 2>"$T/err" </dev/null
	rc=$?
}

# usage_error NAME WANT ARGS...: exit 2 and one stderr line containing WANT.
usage_error() {
	local name=$1 want=$2
	shift 2
	run "$@"
	if [ "$rc" -ne 2 ]; then
		not_ok "$name" "exit $rc, want 2 (stderr: $(head -c 300 "$T/err"))"
	elif [ "$(wc -l <"$T/err")" -ne 1 ]; then
		not_ok "$name" "want one line, got: $(cat "$T/err")"
	elif ! grep -qF -- "$want" "$T/err"; then
		not_ok "$name" "stderr lacks '$want': $(cat "$T/err")"
	else
		ok "$name"
	fi
}

has() { grep -qF -- "$2" "$1"; }

run --help
check "--help exits 0 and lists flags and commands" \
	eval '[ $rc -eq 0 ] && has $T/out --key-dir && has $T/out check-config && has $T/out --interval'
run -h
check "-h is --help" eval '[ $rc -eq 0 ] && has $T/out --state-dir'
run --version
check "--version prints the version" \
	eval '[ $rc -eq 0 ] && grep -Eq "^rdfm-mcumgr-client [0-9]+\.[0-9]+\.[0-9]+$" $T/out'

usage_error "unknown long flag" "unknown flag --bogus" --bogus
usage_error "unknown shorthand flag" "unknown shorthand flag 'x'" -x
usage_error "bad -i value" "-i/--interval" -i 10x
usage_error "bad --interval= value" "not a duration" --interval=1d
usage_error "negative -r" "-r/--retries" -r -1
usage_error "non-numeric --retries" "\"abc\" is not a whole number" --retries abc
usage_error "missing flag value" "-c/--config needs a value" -c
usage_error "bad --server" "not an http:// or https:// URL" -s ftp://x
usage_error "unknown command" "unknown command \"frobnicate\"" frobnicate
usage_error "check-config takes no arguments" "unexpected argument" check-config extra
usage_error "unknown flag after check-config" "unknown flag --nope" check-config --nope

run check-config -c "$SRC/etc/config.json"
# The example names the workers' user, which the install creates.
if [ "$(id -u)" -ne 0 ] || getent passwd rdfm-mcumgr >/dev/null; then
	check "check-config accepts etc/config.json" \
		eval '[ $rc -eq 0 ] && has $T/out "config OK: 2 devices, 1 groups"'
else
	check "check-config on etc/config.json: only the missing user" \
		eval '[ $rc -eq 1 ] && [ $(wc -l <$T/err | tr -d " ") -ge 1 ] &&
		[ $(grep -vc "level=WARN" $T/err) -eq 1 ] &&
		grep -q "etc/config.json: user: no user \"rdfm-mcumgr\"" $T/err'
fi
check "check-config prints members, transports and timeouts" \
	eval 'has $T/out "member right: image \"ctrl-right\", self-confirming" &&
	has $T/out "transport: udp [fd00::3]:1337" &&
	has $T/out "timeouts: request 5s, erase 1m0s, reboot 2m0s"'

mkdir -p "$T/work"
cd "$T/work" || exit 1
run check-config -c "$GO"
check "check-config accepts the Go client's example (trailing comma)" \
	eval '[ $rc -eq 0 ] && has $T/out "config OK: 2 devices, 1 groups"'
check "check-config says which keys will be generated" \
	eval 'has $T/out "key: $T/work/keys/ble.key (missing: an RSA-3072 key will be generated"'
check "check-config generates no key" test ! -e "$T/work/keys"

# Flags before or after the command, in every cobra spelling, beat the file.
run -s https://flag.test check-config --config="$GO" -i 1h30m -r=0 --state-dir /srv/x
check "flags override the file" \
	eval '[ $rc -eq 0 ] && has $T/out "server: https://flag.test" &&
	has $T/out "update_interval: 1h30m0s" && has $T/out "retries: unlimited" &&
	has $T/out "state_dir: /srv/x" && has $T/out "device zephyr-serial: id 22:22:22:22:22:22, type zeph-ser, every 1h30m0s"'
run check-config -c"$GO" -k /elsewhere/k
check "-cFILE and -k" eval '[ $rc -eq 0 ] && has $T/out "key: /elsewhere/k/serial.key"'

# Search order: ./config.json before $HOME/.config/rdfm-mcumgr/config.json.
mkdir -p "$T/home/.config/rdfm-mcumgr"
sed 's/zephyr-ble/from-home/' "$GO" >"$T/home/.config/rdfm-mcumgr/config.json"
HOME=$T/home run check-config
check "config found in \$HOME/.config/rdfm-mcumgr" \
	eval '[ $rc -eq 0 ] && has $T/out "device from-home:"'
sed 's/zephyr-ble/from-cwd/' "$GO" >config.json
HOME=$T/home run check-config
check "./config.json wins" eval '[ $rc -eq 0 ] && has $T/out "device from-cwd:"'
rm config.json

# A broken config: non-zero, file and key path named, nothing generated.
sed 's/"baud": 115200/"baud": 115201/' "$GO" >"$T/broken.json"
run check-config -c "$T/broken.json"
check "broken config is refused with its key path" \
	eval '[ $rc -ne 0 ] && has $T/err "$T/broken.json: devices[1].transport.baud: 115201 is not a standard serial rate"'
run -c "$T/broken.json" -k "$T/k-broken"
check "daemon refuses a broken config before generating keys" \
	eval '[ $rc -ne 0 ] && has $T/err "devices[1].transport.baud" && [ ! -e $T/k-broken ]'

sed 's/"retries": 3,/"retries": 3, "colour": "blue",/' "$GO" >"$T/unknown.json"
run check-config -c "$T/unknown.json"
check "unknown key is a warning naming it" \
	eval '[ $rc -eq 0 ] && grep -q "level=WARN.*key=\"colour\"" $T/err'

# The daemon loads or generates every key before anything else.  Nothing
# answers at the server or the boards: each --once run reads the boards,
# fails quickly (short request timeout) and exits non-zero.
cat >"$T/small.json" <<JSON
{
  "server": "http://127.0.0.1:9",
  "key_dir": "keys",
  "state_dir": "$T/state",
  "timeouts": {"request": "200ms"},
  "devices": [{"name": "d", "id": "1", "dev_type": "t", "key": "d.key",
    "transport": {"type": "udp", "address": "127.0.0.1:9"}}],
  "groups": [{"name": "g", "id": "2", "type": "t", "key": "g.key",
    "members": [{"name": "m", "device": "m",
      "transport": {"type": "udp", "address": "127.0.0.1:19"}}]}]
}
JSON
run -c "$T/small.json" --once
check "daemon start-up generates every key" \
	eval '[ -f keys/d.key ] && [ -f keys/g.key ] &&
	[ $(grep -c "msg=\"Generated new key\"" $T/err) -eq 2 ]'
check "generated keys are 0600 in a 0700 directory" \
	eval '[ $(stat -c %a keys/d.key) = 600 ] && [ $(stat -c %a keys/g.key) = 600 ] && [ $(stat -c %a keys) = 700 ]'
check "generated key is RSA-3072" \
	eval 'openssl rsa -in keys/d.key -noout -text 2>/dev/null | grep -q "3072 bit"'
check "keys come before the daemon starts" \
	eval '[ $(grep -n "Generated new key" $T/err | tail -n 1 | cut -d: -f1) -lt $(grep -n "Daemon started" $T/err | cut -d: -f1) ]'
check "--once with unreachable boards exits non-zero, naming the read" \
	eval '[ $rc -eq 1 ] && grep -q "Update failed.*device=\"d\" phase=read" $T/err'
cp keys/d.key "$T/d.key.before"
run -c "$T/small.json" --once
check "second start reuses the keys" \
	eval '[ $(grep -c "msg=\"Loaded key\"" $T/err) -eq 2 ] && cmp -s keys/d.key $T/d.key.before'
run check-config -c "$T/small.json"
check "check-config reports present keys" has "$T/out" "(present, RSA-3072)"

cp "$SRC/tests/data/keys/ec-p256.pem" keys/g.key
run -c "$T/small.json" --once
check "daemon refuses a non-RSA key" \
	eval '[ $rc -ne 0 ] && has $T/err "expected PKCS#1 or PKCS#8 PEM" && has $T/err "keys/g.key" && ! has $T/err "Daemon started"'
run check-config -c "$T/small.json"
check "check-config refuses a non-RSA key" eval '[ $rc -ne 0 ] && has $T/out UNUSABLE'

cp "$SHARED/fixtures/go-client-keys/goclient-a.key" keys/g.key 2>/dev/null ||
	cp "$SRC/tests/data/keys/goclient-a.key" keys/g.key
chmod 644 keys/g.key
run -c "$T/small.json" --once
check "the Go client's key loads, with a permission warning" \
	eval 'has $T/err "Daemon started" && grep -q "level=WARN.*readable by group or others.*keys/g.key" $T/err'

done_testing
