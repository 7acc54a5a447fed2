#!/bin/bash
# check-config and the daemon use one set of checks: every config the
# daemon refuses at start (a missing user, a CA file that is a directory or
# not PEM, a state_dir that is a file, a serial device that is not a
# terminal, too many group members, a key outside key_dir, a key that
# disappeared...) check-config refuses too, with the same line; every
# error of a config in one run; --json; "did you mean"; $XDG_CONFIG_HOME;
# the per-user state directory of a client that is not root.
. "$(dirname "$0")/../lib.sh"

C=$BIN/rdfm-mcumgr-client
cd "$T" || exit 1
mkdir -p keys
openssl genrsa -out keys/a.key 2048 2>/dev/null
chmod 600 keys/a.key

# cfg FILE JQ-EXPR: a one-device config (UDP to a port nobody answers)
# with the jq expression applied.
cfg() {
	jq -n --arg t "$T" '{server: "http://127.0.0.1:9", key_dir: "keys",
		state_dir: ($t + "/state"), timeouts: {request: "200ms"},
		devices: [{name: "a", id: "1", dev_type: "t", key: "a.key",
		  transport: {type: "udp", address: "127.0.0.1:9"}}]}' |
		jq --arg t "$T" "$2" >"$1"
}

# run_cc FILE: check-config; rc in CC_RC, output in $T/cc.out/.err.
run_cc() {
	"$C" check-config -c "$1" >"$T/cc.out" 2>"$T/cc.err" </dev/null
	CC_RC=$?
}

# run_daemon FILE: one --once start; rc in D_RC, log in $T/d.log.
run_daemon() {
	timeout 60 "$C" -c "$1" --once >/dev/null 2>"$T/d.log" </dev/null
	D_RC=$?
}

# refused NAME FILE WANT: the daemon does not start and logs WANT;
# check-config exits 1 with WANT on stderr, one line per error.
refused() {
	local name=$1 file=$2 want=$3
	run_daemon "$file"
	# The log quotes the message: its " are \".
	if [ "$D_RC" -ne 0 ] && ! grep -q 'Daemon started' "$T/d.log" &&
		grep -qF -- "${want//\"/\\\"}" "$T/d.log"; then
		ok "daemon refuses: $name"
	else
		not_ok "daemon refuses: $name" \
			"rc $D_RC: $(grep -E 'ERROR|Daemon started' "$T/d.log" | head -3)"
	fi
	run_cc "$file"
	if [ "$CC_RC" -eq 1 ] && grep -qF -- "$file: " "$T/cc.err" &&
		grep -F -- "$file: " "$T/cc.err" | grep -qF -- "$want"; then
		ok "check-config refuses: $name"
	else
		not_ok "check-config refuses: $name" \
			"rc $CC_RC: $(head -c 600 "$T/cc.err")"
	fi
}

# --- a good config: both accept ---------------------------------------------
cfg good.json .
run_cc good.json
check "check-config accepts a good config" \
	eval '[ $CC_RC -eq 0 ] && grep -q "config OK: 1 devices" $T/cc.out'
run_daemon good.json
check "the daemon starts with it" grep -q 'Daemon started' "$T/d.log"

# --- what the daemon refuses, check-config refuses ---------------------------
if [ "$(id -u)" -eq 0 ]; then
	cfg user.json '. + {user: "no-such-user-rdfm"}'
	refused "unknown user" user.json 'user: no user "no-such-user-rdfm"'
fi
mkdir -p cadir
cfg cadir.json '. + {ca_file: "cadir"}'
refused "ca_file is a directory" cadir.json 'ca_file: "'"$T"'/cadir" is a directory'
echo "not a certificate" >notpem.pem
cfg notpem.json '. + {ca_file: "notpem.pem"}'
refused "ca_file is not PEM" notpem.json 'holds no PEM certificate'
touch statefile
cfg statefile.json '.state_dir = "statefile"'
refused "state_dir is a regular file" statefile.json 'state_dir: "'"$T"'/statefile" is a regular file'
cfg devnull.json '.devices[0].transport = {type: "serial", device: "/dev/null"}'
refused "serial device /dev/null" devnull.json 'transport.device: "/dev/null" is a mem device'
cfg regfile.json '.devices[0].transport = {type: "serial", device: "statefile"}'
refused "serial device is a regular file" regfile.json 'is a regular file, not a serial device'
cfg big.json '.devices = [] | .groups = [{name: "g", id: "g", type: "t",
	key: "g.key", members: [range(33) | {name: "m\(.)", device: "d\(.)",
	transport: {type: "udp", address: "127.0.0.\(. + 1):1337"}}]}]'
refused "a group of 33 members" big.json 'groups[0].members: 33 members: at most 32'
cfg escape.json '.key_dir = "kdeep/keys" | .devices[0].key = "../../x.key"'
refused "a key outside key_dir" escape.json 'devices[0].key: "../../x.key" is not a file name'
check "no key was written outside key_dir" test ! -e "$T/x.key"
cfg verify.json '. + {artifact_verify_key: "notpem.pem"}'
refused "artifact_verify_key is not a key" verify.json 'no PEM public or private key'
cfg metrics.json '. + {metrics: "192.0.2.1:9464"}'
refused "metrics off loopback" metrics.json 'is not a loopback address'
cfg keydir.json '.key_dir = "statefile"'
refused "key_dir is a regular file" keydir.json 'key_dir: "'"$T"'/statefile" is a regular file'

# --- every error in one run, one line each ----------------------------------
cfg many.json '. + {ca_file: "cadir", state_dir: "statefile"} |
	.devices[0].transport = {type: "serial", device: "/dev/null", baud: 115201} |
	.devices += [{name: "b", id: "2", dev_type: "t", key: "b/k",
	  transport: {type: "udp", address: "127.0.0.1"}}]'
run_cc many.json
n=$(grep -c "^many.json: " "$T/cc.err")
check "every error listed in one run (6), exit 1" \
	eval '[ $CC_RC -eq 1 ] && [ $n -eq 6 ]'
check "each names the file and the key path" \
	eval 'grep -q "^many.json: devices\[0\].transport.baud: 115201 is not a standard serial rate (expected one of 9600" $T/cc.err &&
	grep -q "^many.json: devices\[1\].key: " $T/cc.err &&
	grep -q "^many.json: devices\[1\].transport.address: \"127.0.0.1\" has no port" $T/cc.err &&
	grep -q "^many.json: ca_file: " $T/cc.err &&
	grep -q "^many.json: state_dir: " $T/cc.err &&
	grep -q "^many.json: devices\[0\].transport.device: \"/dev/null\" is a mem device" $T/cc.err'
check "and says the daemon would refuse it" \
	grep -q "6 errors; the daemon would refuse to start" "$T/cc.out"
run_daemon many.json
check "the daemon logs the same six" \
	eval '[ $(grep -c "msg=\"Invalid configuration\"" $T/d.log) -eq 6 ]'

# --- --json -------------------------------------------------------------------
"$C" check-config --json -c many.json >"$T/j.out" 2>"$T/j.err"
rc=$?
check "--json: one object, exit 1, ok false, the six errors" \
	eval '[ $rc -eq 1 ] && jq -e ".ok == false and (.errors | length) == 6 and
	  (.errors | map(.key)) == [\"devices[0].transport.baud\", \"devices[1].key\",
	  \"devices[1].transport.address\", \"ca_file\", \"state_dir\",
	  \"devices[0].transport.device\"] and .plan == null" $T/j.out >/dev/null'
"$C" check-config -c good.json --json >"$T/j.out" 2>"$T/j.err"
rc=$?
check "--json on a good config: ok, the plan, the key's state" \
	eval '[ $rc -eq 0 ] && jq -e ".ok and .plan.devices[0].name == \"a\" and
	  .plan.devices[0].key.state == \"present\" and .plan.devices[0].key.bits == 2048 and
	  .plan.devices[0].transport.port == 9 and .plan.download_min_rate == 1024" $T/j.out >/dev/null'

# --- did you mean -------------------------------------------------------------
cfg typo.json '.devices[0].transport = {type: "serial", device: "/dev/ttyNONE",
	baudrate: 9600} | . + {update_intervall: "1m"}'
run_cc typo.json
check "an unknown key suggests the nearest known one" \
	eval '[ $CC_RC -eq 0 ] &&
	grep -q "key=\"devices\[0\].transport.baudrate\" hint=\"unknown key, ignored (did you mean \\\\\"baud\\\\\"?)\"" $T/cc.err &&
	grep -q "update_intervall.*did you mean .*update_interval" $T/cc.err'

# --- a key that disappears while the daemon runs -----------------------------
mkdir -p kd
cfg disappear.json '.key_dir = "kd" | .update_interval = "1h"'
"$C" -c disappear.json >"$T/run.log" 2>&1 &
dpid=$!
_bg_pids+=("$dpid")
wait_for_line "$T/run.log" 'Daemon started' 30 >/dev/null
check "first start generates the key" \
	eval 'grep -q "msg=\"Generated new key\"" $T/run.log && [ -f kd/a.key ]'
rm -rf kd
kill -HUP "$dpid"
if wait_for_line "$T/run.log" 'Reload refused' 30; then
	ok "the reload with the key gone is refused"
else
	not_ok "the reload with the key gone is refused" "$(tail -n 5 "$T/run.log")"
fi
check "the log says the key disappeared and how to recover" \
	grep -q 'has disappeared; restore it from a backup' "$T/run.log"
check "no new key was written" test ! -e kd/a.key
check "only the first start generated a key" \
	test "$(grep -c 'msg="Generated new key"' "$T/run.log")" -eq 1
kill -TERM "$dpid"
wait "$dpid"
run_daemon disappear.json
check "a restart refuses the device whose key disappeared" \
	eval '[ $D_RC -ne 0 ] && grep -q "has disappeared" $T/d.log && [ ! -e kd/a.key ]'
run_cc disappear.json
check "check-config says so too" \
	eval '[ $CC_RC -eq 1 ] && grep -q "disappear.json: devices\[0\].key: .*has disappeared" $T/cc.err &&
	grep -q "DISAPPEARED" $T/cc.out'

# Without a reload: the device's next cycle stops on it, naming the file.
rm -rf kd "$T/state"
mkdir -p kd
cfg disappear2.json '.key_dir = "kd" | .update_interval = "1s"'
"$C" -c disappear2.json >"$T/run2.log" 2>&1 &
dpid=$!
_bg_pids+=("$dpid")
wait_for_line "$T/run2.log" 'Daemon started' 30 >/dev/null
rm -rf kd
check "a running device whose key vanished stops, naming the file" \
	wait_for_line "$T/run2.log" 'msg="Update failed" device="a" phase=read reason="the key file .*kd/a.key has disappeared' 20
check "... and no new key is written" test ! -e kd/a.key
kill -TERM "$dpid"
wait "$dpid"

# --- $XDG_CONFIG_HOME, as the Go client's os.UserConfigDir() -------------------
mkdir -p xdg/rdfm-mcumgr empty
cfg xdg/rdfm-mcumgr/config.json '.devices[0].name = "from-xdg" | .key_dir = "'"$T"'/keys"'
(cd empty && XDG_CONFIG_HOME=$T/xdg HOME=$T/nohome "$C" check-config >"$T/x.out" 2>"$T/x.err")
check "config found in \$XDG_CONFIG_HOME/rdfm-mcumgr" \
	grep -q "device from-xdg:" "$T/x.out"

# --- not root, no --state-dir, no /var/lib/rdfm-mcumgr: a per-user one ----------
if [ "$(id -u)" -eq 0 ] && [ ! -e /var/lib/rdfm-mcumgr ]; then
	U=$T/user
	mkdir -p "$U/home" "$U/keys"
	cp keys/a.key "$U/keys/"
	jq -n '{server: "http://127.0.0.1:9", key_dir: "keys",
		timeouts: {request: "200ms"},
		devices: [{name: "a", id: "1", dev_type: "t", key: "a.key",
		  transport: {type: "udp", address: "127.0.0.1:9"}}]}' >"$U/c.json"
	chmod 711 "$T"
	chown -R 65534:65534 "$U"
	as_nobody() {
		(cd "$U" && env -i PATH=/usr/bin:/bin HOME="$U/home" "$@" \
			setpriv --reuid=65534 --regid=65534 --clear-groups \
			"$C" "${ARGS[@]}")
	}
	ARGS=(-c c.json check-config)
	as_nobody >"$T/u.out" 2>"$T/u.err"
	check "check-config as a user: the per-user state directory" \
		grep -q "state_dir: $U/home/.local/state/rdfm-mcumgr (per-user" "$T/u.out"
	ARGS=(-c c.json check-config)
	as_nobody XDG_STATE_HOME="$U/xdgstate" >"$T/u.out" 2>"$T/u.err"
	check "\$XDG_STATE_HOME wins" \
		grep -q "state_dir: $U/xdgstate/rdfm-mcumgr (per-user" "$T/u.out"
	ARGS=(-c c.json --once)
	timeout 60 bash -c "$(declare -f as_nobody); C=$C U=$U ARGS=(${ARGS[*]}); as_nobody" \
		>/dev/null 2>"$T/u.log"
	check "the daemon as a user runs with it, saying so once" \
		eval 'grep -q "Daemon started" $T/u.log &&
		[ $(grep -c "using a per-user state directory" $T/u.log) -eq 1 ] &&
		[ -d $U/home/.local/state/rdfm-mcumgr/journal ]'
	check "and did not create /var/lib/rdfm-mcumgr" test ! -e /var/lib/rdfm-mcumgr
	ARGS=(-c c.json --state-dir "$U/given" check-config)
	as_nobody >"$T/u.out" 2>"$T/u.err"
	check "--state-dir wins over the per-user directory" \
		eval 'grep -q "^state_dir: $U/given$" $T/u.out'
else
	echo "# skipped the per-user state directory: not root or /var/lib/rdfm-mcumgr exists"
fi

done_testing
