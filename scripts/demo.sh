#!/bin/bash
# make demo: the whole product on one machine, no hardware.  A test RDFM
# server, three virtual boards (serial, UDP, BLE) and a group of two, a
# package for each, the devices approved through the server's admin API,
# and the client updating them all; then a summary table.
#   scripts/demo.sh [BUILD]    (BUILD: the build directory, default build)
# Exits non-zero if any board did not end on its new version.
set -u

SRC=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(cd "${1:-$SRC/build}" 2>/dev/null && pwd) || {
	echo "demo: no build directory ${1:-build}: run make first" >&2
	exit 2
}
export SRC BIN
for p in rdfm-mcumgr-client rdfm-mcumgr-worker-serial rdfm-mcumgr-worker-udp \
	rdfm-mcumgr-worker-ble rdfm-test-server mcumgr-board-sim \
	mcuboot-mkimage; do
	[ -x "$BIN/$p" ] || {
		echo "demo: $BIN/$p is missing: run make first" >&2
		exit 2
	}
done
for t in jq curl openssl mender-artifact; do
	command -v "$t" >/dev/null || {
		echo "demo: $t is needed: run scripts/install-deps" >&2
		exit 2
	}
done

# The end-to-end test helpers start and track every process (all of them
# are ended on exit) and write everything under $T.
. "$SRC/tests/lib.sh"
. "$SRC/tests/e2e-lib.sh"
. "$SRC/tests/it/e2e_group_lib.bash"

DEADLINE=${DEMO_DEADLINE:-120}
SINGLES=(serial udp ble)
MEMBERS=(group-a group-b)
GROUP=pair
declare -A TYPE=([serial]=demo-serial [udp]=demo-udp [ble]=demo-ble)
declare -A OLDV=([serial]=1.0.0 [udp]=1.0.0 [ble]=1.0.0)
declare -A NEWV=([serial]=1.1.0 [udp]=1.1.0+7 [ble]=1.2.0)
GROUP_NEW=2.0.0

if [ -t 1 ]; then
	step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
	step() { printf '\n== %s\n' "$*"; }
fi
fail() {
	echo "demo: $*" >&2
	_nfail=$((_nfail + 1))
	exit 1
}

step "Firmware images (mcuboot-mkimage) and packages (mender-artifact)"
i=1
for b in "${SINGLES[@]}"; do
	# The serial board gets a smaller image: it runs at 115200 baud.
	size=150000
	[ "$b" = serial ] && size=40000
	e2e_image "$T/$b.old.bin" "${OLDV[$b]}" $i
	e2e_image "$T/$b.new.bin" "${NEWV[$b]}" $((i + 1)) $size
	e2e_artifact "$T/$b.rdfm" "$T/$b.new.bin" "${TYPE[$b]}" "${NEWV[$b]}" ||
		fail "cannot write the $b artifact"
	printf '  %-8s %s -> %s  %s (%s bytes image)\n' "$b" "${OLDV[$b]}" \
		"${NEWV[$b]}" "$(basename "$T/$b.rdfm")" \
		"$(stat -c %s "$T/$b.new.bin")"
	i=$((i + 2))
done
group_images "$GROUP_NEW" 20 "${MEMBERS[@]}"
group_artifact "$T/$GROUP.rdfm" demo-pair "$GROUP_NEW" \
	group-a="$T/group-a.new.bin" group-b="$T/group-b.new.bin" ||
	fail "cannot write the group artifact"
printf '  %-8s 1.0.0 -> %s  %s (zephyr-group-image, 2 members)\n' \
	"$GROUP" "$GROUP_NEW" "$GROUP.rdfm"

step "Test RDFM server"
e2e_server || fail "the test server did not start"
echo "  listening on $URL"
for b in "${SINGLES[@]}"; do
	e2e_package "$T/$b.rdfm" "${NEWV[$b]}" "${TYPE[$b]}" >/dev/null
done
e2e_package "$T/$GROUP.rdfm" "$GROUP_NEW" demo-pair >/dev/null
echo "  4 packages uploaded through the admin API"

step "Virtual boards (mcumgr-board-sim)"
e2e_board serial serial "$T/serial.old.bin" --baud 115200 ||
	fail "serial board"
e2e_board udp udp "$T/udp.old.bin" --self-confirm --confirm-ms 500 ||
	fail "UDP board"
e2e_board ble ble "$T/ble.old.bin" || fail "BLE board"
e2e_board group-a serial "$T/group-a.old.bin" --baud 921600 ||
	fail "group member a"
e2e_board group-b udp "$T/group-b.old.bin" --self-confirm --confirm-ms 500 ||
	fail "group member b"
printf '  %-8s serial %s at 115200 baud, confirmed by the client\n' \
	serial "${BOARD_LINK[serial]}"
printf '  %-8s UDP %s, confirms its new image itself\n' udp \
	"${BOARD_LINK[udp]}"
printf '  %-8s BLE through the ATT socket %s, confirmed by the client\n' \
	ble "${BOARD_LINK[ble]}"
printf '  %-8s group of two: serial %s (921600 baud) and UDP %s (self-confirming)\n' \
	"$GROUP" "${BOARD_LINK[group-a]}" "${BOARD_LINK[group-b]}"

# One config: the three boards from e2e_config, the group from
# group_config.
e2e_config "$T/devices.json" '{"update_interval": "2s"}' -- \
	serial:demo-serial udp:demo-udp:self ble:demo-ble
group_config "$T/group.json" '{}' "$GROUP:demo-pair" group-a group-b:self
jq -s '.[0] + {groups: .[1].groups}' "$T/devices.json" "$T/group.json" \
	>"$T/config.json"
"$CLIENT" check-config -c "$T/config.json" >"$T/check.out" 2>&1 ||
	fail "the config is refused: $(cat "$T/check.out")"
echo "  config: $T/config.json"

step "rdfm-mcumgr-client"
T0=$(date +%s.%N)
e2e_start demo -c "$T/config.json"
L=$T/demo.log
# Follow the log: the lines a person wants to see.
(tail --pid="$CLIENT_PID" -n +1 -f "$L" 2>/dev/null |
	grep --line-buffered -E 'level=(WARN|ERROR)|msg="(waiting for approval|device approved|Update offered|Uploading the new image|Upload finished|Resetting|The board runs the new image|The group member runs the new image|Waiting for the|Update successful|Up to date)' |
	sed -u -E 's/^time=[^ ]*T([0-9:.]*)Z level=([A-Z]*) /  \1 \2 /') &
_bg_pids+=($!)

# The server records unknown keys as pending: approve the four identities.
want=$((${#SINGLES[@]} + 1))
for i in $(seq 1 $((DEADLINE * 2))); do
	n=$(admin GET /admin/pending | jq length 2>/dev/null || echo 0)
	[ "$n" -ge "$want" ] && break
	sleep 0.5
done
admin GET /admin/pending >"$T/pending.json"
[ "$(jq length "$T/pending.json")" -ge "$want" ] ||
	fail "only $(jq length "$T/pending.json") of $want devices asked to be approved"
sleep 1
echo "  -- admin: approving $(jq -r '[.[].id] | join(", ")' "$T/pending.json")"
for id in $(jq -r '.[].id' "$T/pending.json"); do
	admin POST /admin/approve "$(jq -cn --arg i "$id" '{id: $i}')" \
		>/dev/null
done

done_all() {
	local b
	for b in "${SINGLES[@]}"; do
		grep -q "msg=\"Update successful\" device=\"$b\"" "$L" ||
			return 1
	done
	grep -q "msg=\"Update successful\" group=\"$GROUP\"" "$L"
}
for i in $(seq 1 $((DEADLINE * 5))); do
	done_all && break
	kill -0 "$CLIENT_PID" 2>/dev/null || break
	sleep 0.2
done
T1=$(date +%s.%N)

step "What an RDFM operator sees (the management channel)"
. "$SRC/tests/it/mgmt_lib.bash"
for id in $(jq -r '.devices[].id, .groups[].id' "$T/config.json"); do
	mdev "$id" >"$T/mgmt-$id.json" 2>/dev/null
	printf '  %-10s %-9s progress %-28s version %s\n' "$id" \
		"$(jq -r 'if .connected then "connected" else "offline" end' "$T/mgmt-$id.json")" \
		"$(jq -r '[.progress[] | tostring] | if length > 6 then .[0:3] + ["..."] + .[-2:] else . end | join(" ")' "$T/mgmt-$id.json")" \
		"$(jq -r '.version // "-"' "$T/mgmt-$id.json")"
done
# demo_action ID ACTION: an operator runs an action; its output.
demo_action() {
	local e
	e=$(run_action "$1" "$2")
	if wait_exec "$e" '.status_code != null' 15 2>/dev/null; then
		printf '  -- %s on %s: status %s\n' "$2" "$1" \
			"$(exec_json "$e" | jq -r .status_code)"
		exec_json "$e" | jq -r .output | sed 's/^/       /'
	else
		echo "  -- $2 on $1: no answer"
	fi
}
demo_action id-udp rdfm.mcumgr.image_list
demo_action id-serial rdfm.mcumgr.echo
e2e_stop
sleep 0.2

# when DEVICE-KEY NAME MSG: unix time of the first matching log line.
when() {
	local t
	t=$(grep -m 1 "msg=\"$3\" $1=\"$2\"" "$L" |
		sed -n 's/^time=\([^ ]*\) .*/\1/p')
	[ -n "$t" ] && date -d "$t" +%s.%N
}

# row BOARD HOW KEY NAME ZEPHYR-VERSION: one line of the summary, old and
# new versions as the client reported them to the server (RDFM spelling);
# the board must run ZEPHYR-VERSION (its own spelling), confirmed.
bad=0
row() {
	local b=$1 how=$2 key=$3 name=$4 want=$5 t0 t1 dt now res old new
	now=$(slot "$b" 0 version)
	old=$(grep -m 1 "msg=\"Update offered\" $key=\"$name\"" "$L" |
		sed -n 's/.* running=\([^ ]*\).*/\1/p')
	new=$(grep -m 1 "msg=\"Update successful\" $key=\"$name\"" "$L" |
		sed -n 's/.* new_version=\([^ ]*\).*/\1/p')
	t0=$(when "$key" "$name" "Update offered")
	t1=$(when "$key" "$name" "Update successful")
	dt=-
	if [ -n "$t0" ] && [ -n "$t1" ]; then
		dt=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f s", b - a }')
	fi
	if [ "$now" = "$want" ] && [ "$(slot "$b" 0 confirmed)" = true ] &&
		[ -n "$t1" ]; then
		res=updated
	else
		res="NOT UPDATED (runs ${now:-?})"
		bad=$((bad + 1))
	fi
	printf '  %-9s %-34s %-7s -> %-8s %7s  %s\n' "$b" "$how" "${old:--}" \
		"${new:--}" "$dt" "$res"
}

step "Summary"
printf '  %-9s %-34s %-7s    %-8s %7s  %s\n' board link old new time result
row serial "serial 115200, manual confirm" device serial 1.1.0
row udp "UDP, self-confirm" device udp 1.1.0.7
row ble "BLE (ATT socket), manual confirm" device ble 1.2.0
row group-a "group $GROUP: serial 921600, manual" group "$GROUP" 2.0.0
row group-b "group $GROUP: UDP, self-confirm" group "$GROUP" 2.0.0
echo "  (time: from the server's offer to \"Update successful\"; a group's"
echo "   members are committed together)"
awk -v a="$T0" -v b="$T1" 'BEGIN { printf "  all done %.1f s after the client started\n", b - a }'
if [ "$bad" -ne 0 ]; then
	_nfail=$bad
	echo "demo: $bad board(s) did not update; the client's log is $L" >&2
	exit 1
fi
echo "  every board runs its new firmware."
