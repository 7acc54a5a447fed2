#!/bin/bash
# make bench, part "fleet" (issue 17): a thousand boards on one proxy.
# 100, 300 and 1000 virtual UDP boards, each taking a 64 KiB image, are
# updated by one supervisor with --once under a soft open-file limit of
# 1024 (the client may raise it to the hard limit, as under systemd); the
# same runs with the client as it was before issue 17 (FLEET_BASELINE,
# built here from git) give "today", with the limit raised by hand as
# that client needs, and once at 1000 boards under 1024 as a service
# would run it.  Then the largest fleet, up to date, polls every 10 s
# while the supervisor's CPU is counted.
#
# Figures per run: wall time, boards updated, the supervisor's peak RSS
# (VmHWM) and largest PSS, the workers' summed PSS, the supervisor's
# descriptors at the peak (sampled every 100 ms), workers at once.
# Writes $OUT/data/fleet*.tsv, $OUT/fleet.md (its section of results.md)
# and $OUT/fleet.png (memory against board count).
#
#   bench/fleet.sh [BUILD]     (run.sh calls it for BENCH_ONLY=fleet)
# Environment: FLEET_SIZES (default "100 300 1000"), FLEET_REPS (default
# $BENCH_REPS or 3), FLEET_BASELINE (a commit; default the main branch
# before issue 17; "none" skips it), FLEET_IDLE_S (default 60),
# FLEET_BOARDS_PER_SIM (virtual boards per simulator process, when the
# simulator can serve several; default 50).
set -u

SRC=${SRC:-$(cd "$(dirname "$0")/.." && pwd)}
BIN=${BIN:-$(cd "${1:-$SRC/build}" && pwd)}
OUT=${OUT:-${BENCH_OUT:-$SRC/bench}}
REPS=${FLEET_REPS:-${BENCH_REPS:-3}}
SIZES=${FLEET_SIZES:-100 300 1000}
BASELINE=${FLEET_BASELINE:-becbdc8}
IDLE_S=${FLEET_IDLE_S:-60}
PER_SIM=${FLEET_BOARDS_PER_SIM:-50}
SOFT=1024
export SRC BIN
. "$SRC/tests/lib.sh"
. "$SRC/tests/e2e-lib.sh"
. "$SRC/bench/lib.sh"
: "${MACHINE:=$(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), Linux $(uname -r)}"
: "${LOAD:=$(cut -d' ' -f1-3 /proc/loadavg)}"
: "${COMMIT:=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo unknown)}"
D=$OUT/data
mkdir -p "$D"
export E2E_NO_STATUS=1

for t in jq gnuplot /usr/bin/time; do
	command -v "$t" >/dev/null || {
		say "bench: $t is needed (scripts/install-deps)"
		exit 2
	}
done

# Boards come from tests/e2e-lib.sh (e2e_fleet): several per simulator
# process when the simulator can serve several (FLEET_BOARDS_PER_SIM).
export E2E_BOARDS_PER_SIM=$PER_SIM

# --- sampling ---------------------------------------------------------------
alive() {
	[ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' \
		"/proc/$1/status" 2>/dev/null
}

# pss PID...: summed Pss (KiB) of the processes, and how many were read.
pss() {
	local p f=()
	for p in "$@"; do f+=("/proc/$p/smaps_rollup"); done
	[ ${#f[@]} -gt 0 ] || { echo "0 0"; return; }
	cat "${f[@]}" 2>/dev/null | awk '/^Pss:/ { s += $2; n++ }
		END { print s + 0, n + 0 }'
}

# sample TIMEPID: while the client under /usr/bin/time runs, its
# supervisor's descriptors every 100 ms, memory every 500 ms.  Sets S_FDS,
# S_HWM, S_SPSS, S_WPSS, S_TPSS (KiB) and S_NW (workers at once).
sample() {
	local tp=$1 sup='' i=0 n v sp wp nw kids
	S_FDS=0 S_HWM=0 S_SPSS=0 S_WPSS=0 S_TPSS=0 S_NW=0
	while alive "$tp"; do
		[ -n "$sup" ] || sup=$(awk '{ print $1 }' \
			"/proc/$tp/task/$tp/children" 2>/dev/null)
		if [ -n "$sup" ] && alive "$sup"; then
			n=$(ls "/proc/$sup/fd" 2>/dev/null | wc -l)
			[ "$n" -gt "$S_FDS" ] && S_FDS=$n
			if [ $((i % 5)) -eq 0 ]; then
				v=$(awk '/^VmHWM:/ { print $2 }' \
					"/proc/$sup/status" 2>/dev/null)
				[ -n "$v" ] && [ "$v" -gt "$S_HWM" ] && S_HWM=$v
				read -r sp _ < <(pss "$sup")
				kids=$(cat /proc/"$sup"/task/*/children 2>/dev/null)
				# shellcheck disable=SC2086
				read -r wp nw < <(pss $kids)
				[ "$sp" -gt "$S_SPSS" ] && S_SPSS=$sp
				[ "$wp" -gt "$S_WPSS" ] && S_WPSS=$wp
				[ $((sp + wp)) -gt "$S_TPSS" ] && S_TPSS=$((sp + wp))
				[ "$nw" -gt "$S_NW" ] && S_NW=$nw
			fi
		fi
		i=$((i + 1))
		sleep 0.1
	done
}

# cpu PID: user + system clock ticks of a live process.
ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }

# --- the clients --------------------------------------------------------------
# The baseline client, built once from git into build/ (cached by commit).
baseline_build() {
	local sha dir
	[ "$BASELINE" = none ] && return 1
	sha=$(git -C "$SRC" rev-parse --short "$BASELINE^{commit}" 2>/dev/null) ||
		{ say "bench: fleet: no commit $BASELINE"; return 1; }
	dir=$SRC/build/bench-baseline-$sha
	if [ ! -x "$dir/build/rdfm-mcumgr-client" ]; then
		say "bench: fleet: building the baseline client ($sha)"
		rm -rf "$dir"
		mkdir -p "$dir"
		git -C "$SRC" archive "$sha" | tar -x -C "$dir" &&
			make -C "$dir" -j2 BUILD=build \
				build/rdfm-mcumgr-client \
				build/rdfm-mcumgr-worker-udp >"$dir/make.log" 2>&1 ||
			{ say "bench: fleet: baseline build failed (see $dir/make.log)"; return 1; }
	fi
	BASE_BIN=$dir/build
	BASE_SHA=$sha
}

# run_once CLIENT N REP LIMIT: one --once update of N fresh boards, a line
# of fleet.tsv: client n rep limit wall user sys updated fds hwm spss wpss
# tpss workers.
run_once() {
	local who=$1 n=$2 rep=$3 lim=$4 cli name wall user sys ok
	cli=$BIN/rdfm-mcumgr-client
	[ "$who" = baseline ] && cli=$BASE_BIN/rdfm-mcumgr-client
	name=$who-$n-$rep-$lim
	e2e_fleet "$n" "$T/old.bin" "$name" --slot-size 131072 || {
		say "bench: fleet: $n boards did not start: $(tail -n 2 "$T/$name.err")"
		e2e_fleet_stop
		return 1
	}
	e2e_fleet_config "$T/$name.json" "$T/$name.addrs" "$T/st-$name"
	(
		ulimit -Sn "$lim" || exit 2
		exec /usr/bin/time -o "$T/$name.time" -f '%e %U %S' \
			"$cli" -c "$T/$name.json" --once
	) >"$T/$name.stdout" 2>"$T/$name.log" &
	local tp=$!
	sample "$tp"
	wait "$tp"
	e2e_fleet_stop
	# (time says "Command exited with non-zero status" first on failure)
	read -r wall user sys < <(tail -n 1 "$T/$name.time")
	ok=$(grep -c 'msg="Update successful"' "$T/$name.log")
	printf '%s %d %d %s %s %s %s %d %d %d %d %d %d %d\n' "$who" "$n" "$rep" \
		"$lim" "$wall" "$user" "$sys" "$ok" "$S_FDS" "$S_HWM" \
		"$S_SPSS" "$S_WPSS" "$S_TPSS" "$S_NW" >>"$T/fleet.tsv"
	say "bench: fleet: $who, $n boards (soft limit $lim): ${wall}s, $ok updated, $S_FDS descriptors, supervisor RSS ${S_HWM} KiB, PSS ${S_SPSS}+${S_WPSS} KiB"
	rm -rf "$T/st-$name" "$T/$name".*.state "$T/$name".*.out
}

# idle CLIENT N: N up-to-date boards polling every 10 s; one line of
# fleet-idle.tsv: client n seconds supervisor_ticks checks hz.
idle() {
	local who=$1 n=$2 cli sup c0 c1 k0 k1 name=idle-$1
	cli=$BIN/rdfm-mcumgr-client
	[ "$who" = baseline ] && cli=$BASE_BIN/rdfm-mcumgr-client
	e2e_fleet "$n" "$T/f.bin" "$name" --slot-size 131072 ||
		{ e2e_fleet_stop; return 1; }
	e2e_fleet_config "$T/$name.json" "$T/$name.addrs" "$T/st-$name"
	(
		ulimit -Sn "$(ulimit -Hn)"
		exec "$cli" -c "$T/$name.json"
	) >"$T/$name.stdout" 2>"$T/$name.log" &
	sup=$!
	# Keys, and the first cycles spread over up to 10 s.
	sleep 20
	c0=$(ticks "$sup")
	k0=$(grep -c '"/api/v1/update/check"' "$SLOG")
	sleep "$IDLE_S"
	c1=$(ticks "$sup")
	k1=$(grep -c '"/api/v1/update/check"' "$SLOG")
	kill -TERM "$sup"
	wait "$sup"
	e2e_fleet_stop
	echo "$who $n $IDLE_S $((c1 - c0)) $((k1 - k0)) $(getconf CLK_TCK)" \
		>>"$T/fleet-idle.tsv"
	say "bench: fleet: $who idle, $n boards: $((c1 - c0)) ticks in ${IDLE_S}s, $((k1 - k0)) checks"
	rm -rf "$T/st-$name"
}

# --- the runs -----------------------------------------------------------------
say "bench: fleet: boards of sizes $SIZES, $REPS runs each"
e2e_server --auto-approve >/dev/null || exit 1
e2e_image "$T/old.bin" 1.0.0 1 2000
e2e_image "$T/f.bin" 2.0.0 9 $((65536 - 552))
e2e_artifact "$T/f.rdfm" "$T/f.bin" fleet 2.0.0
e2e_package "$T/f.rdfm" 2.0.0 fleet >/dev/null
: >"$T/fleet.tsv"
: >"$T/fleet-idle.tsv"
HARD=$(ulimit -Hn)
BASE_SHA=none
baseline_build || BASE_SHA=none
LARGEST=$(tr ' ' '\n' <<<"$SIZES" | sort -n | tail -n 1)
for rep in $(seq 1 "$REPS"); do
	for n in $SIZES; do
		run_once current "$n" "$rep" "$SOFT"
		[ "$BASE_SHA" = none ] || run_once baseline "$n" "$rep" "$HARD"
	done
done
[ "$BASE_SHA" = none ] || run_once baseline "$LARGEST" 1 "$SOFT"
idle current "$LARGEST"
[ "$BASE_SHA" = none ] || idle baseline "$LARGEST"
sort -k1,1 -k2,2n -k3,3n "$T/fleet.tsv" >"$D/fleet.tsv"
cp "$T/fleet-idle.tsv" "$D/fleet-idle.tsv"
printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(now)" "$MACHINE" "$LOAD" "$COMMIT" \
	"$REPS" "$BASE_SHA" "$HARD" >"$D/meta-fleet.tsv"
. "$SRC/bench/fleet-report.sh"
done_testing
