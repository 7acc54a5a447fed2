#!/bin/bash
# Benchmarks of the whole daemon, run by bench/run.sh (issue 8 items 4 and
# 3): supervisor peak memory for a full update from a 1 MiB and a 64 MiB
# artifact, and a fleet of UDP boards updated at once by one supervisor,
# then left polling.  Uses the end-to-end test helpers (tests/e2e-lib.sh),
# which start, track and end every process.  Environment from run.sh: SRC,
# BIN, OUT, REPS, ONLY, MACHINE, LOAD, COMMIT; FLEET_SIZE (default 100).
. "$SRC/tests/lib.sh"
. "$SRC/tests/e2e-lib.sh"
. "$SRC/bench/lib.sh"

FLEET=${FLEET_SIZE:-100}
# The boards write no status file: its rewrite after every request would
# make the simulators, not the client, what these figures measure.
export E2E_NO_STATUS=1
run() { case " $ONLY " in *" $1 "*) return 0 ;; esac; return 1; }

# hwm PID...: VmHWM (peak RSS, KiB) of each live process, one per line.
hwm() {
	local p f=()
	for p in "$@"; do f+=("/proc/$p/status"); done
	[ ${#f[@]} -gt 0 ] && awk '/^VmHWM:/ { print $2 }' "${f[@]}" 2>/dev/null
}

# cpu PID: user + system seconds of a live process so far.
cpu() {
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' \
		"/proc/$1/stat" 2>/dev/null
}

alive() {
	[ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' \
		"/proc/$1/status" 2>/dev/null
}

# sample TIMEPID INTERVAL: while the client started under /usr/bin/time
# (TIMEPID) runs, sample its peak RSS, its workers' (its children) and its
# CPU time.  Sets SUP_HWM, WK_HWM (the largest worker), SUP_CPU, NWORKERS.
sample() {
	local tp=$1 iv=$2 sup= kids v
	SUP_HWM=0 WK_HWM=0 SUP_CPU=0 NWORKERS=0
	while alive "$tp"; do
		[ -n "$sup" ] || sup=$(cat "/proc/$tp/task/$tp/children" 2>/dev/null |
			awk '{ print $1 }')
		if [ -n "$sup" ] && alive "$sup"; then
			v=$(hwm "$sup")
			[ -n "$v" ] && [ "$v" -gt "$SUP_HWM" ] && SUP_HWM=$v
			v=$(cpu "$sup")
			[ -n "$v" ] && SUP_CPU=$v
			kids=$(cat /proc/"$sup"/task/*/children 2>/dev/null)
			if [ -n "$kids" ]; then
				# shellcheck disable=SC2086
				v=$(hwm $kids | sort -n | tail -n 1)
				[ -n "$v" ] && [ "$v" -gt "$WK_HWM" ] && WK_HWM=$v
				v=$(wc -w <<<"$kids")
				[ "$v" -gt "$NWORKERS" ] && NWORKERS=$v
			fi
		fi
		sleep "$iv"
	done
}

# client NAME CONFIG [ARGS...]: the client under /usr/bin/time, in the
# background; TIME_PID.
client() {
	local name=$1 cfg=$2
	shift 2
	bg /usr/bin/time -o "$T/$name.time" -f '%e %U %S %M' \
		"$CLIENT" -c "$cfg" "$@" >"$T/$name.stdout" 2>"$T/$name.log"
	TIME_PID=$!
}

e2e_server --auto-approve >/dev/null || exit 1
e2e_image "$T/old.bin" 1.0.0 1 2000

if run memory; then
	: >"$T/memory.tsv"
	for sz in 1 64; do
		say "bench: memory: building the ${sz} MiB artifact"
		e2e_image "$T/m$sz.bin" 2.0.0 7 $((sz * 1048576 - 552))
		e2e_artifact "$T/m$sz.rdfm" "$T/m$sz.bin" "mem$sz" 2.0.0
		e2e_package "$T/m$sz.rdfm" 2.0.0 "mem$sz" >/dev/null
		rm -f "$T/m$sz.bin"
	done
	for rep in $(seq 1 "$REPS"); do
		for sz in 1 64; do
			say "bench: memory: ${sz} MiB update, run $rep of $REPS"
			name=m$sz-$rep
			e2e_board "$name" udp "$T/old.bin" \
				--slot-size $(((sz + 1) * 1048576)) \
				--buf-size 2048 --buf-count 9 || exit 1
			e2e_config "$T/$name.json" \
				"{\"state_dir\": \"$T/st-$name\"}" -- "$name:mem$sz"
			client "$name" "$T/$name.json" --once
			sample "$TIME_PID" 0.05
			wait "$TIME_PID"
			if ! grep -q 'msg="Update successful"' "$T/$name.log"; then
				say "bench: memory run $name failed: $(grep -m 3 level=ERROR "$T/$name.log")"
				e2e_board_stop "$name"
				continue
			fi
			read -r wall _ <"$T/$name.time"
			echo "$sz $rep $SUP_HWM $WK_HWM $wall $SUP_CPU" >>"$T/memory.tsv"
			e2e_board_stop "$name"
			rm -rf "$T/st-$name" "$T/$name.state"
		done
	done
	sort -n -k1,1 -k2,2 "$T/memory.tsv" >"$OUT/data/memory.tsv"
	meta memory
fi

if run fleet; then
	say "bench: fleet: $FLEET UDP boards and keys"
	e2e_image "$T/f.bin" 2.0.0 9 65000
	e2e_artifact "$T/f.rdfm" "$T/f.bin" fleet 2.0.0
	e2e_package "$T/f.rdfm" 2.0.0 fleet >/dev/null
	# One key for all: the test server tells devices apart by id and key
	# together, and 100 RSA key generations would dominate the run.
	e2e_key fleet
	: >"$T/fleet.tsv"
	# Two cores serve a hundred boards: deadlines for a busy machine.
	fleet_global() {
		jq -cn --arg st "$1" '{state_dir: $st, timeouts: {request: "5s",
			erase: "30s", reboot: "30s", confirm: "30s", stall: "30s"}}'
	}
	# fleet_run N REP: N boards updated by one supervisor.
	fleet_run() {
		local n=$1 rep=$2 name specs=() i b
		name=f$n-$rep
		for i in $(seq 1 "$n"); do
			b=$name-b$i
			e2e_board "$b" udp "$T/old.bin" || return 1
			cp "$T/keys/fleet.key" "$T/keys/$b.key"
			specs+=("$b:fleet")
		done
		e2e_config "$T/$name.json" "$(fleet_global "$T/st-$name")" -- \
			"${specs[@]}"
		client "$name" "$T/$name.json" --once
		sample "$TIME_PID" 0.2
		wait "$TIME_PID"
		read -r wall user sys maxrss <"$T/$name.time"
		ok=$(grep -c 'msg="Update successful"' "$T/$name.log")
		echo "$n $rep $wall $user $sys $SUP_HWM $WK_HWM $SUP_CPU $ok $NWORKERS" \
			>>"$T/fleet.tsv"
		for i in $(seq 1 "$n"); do e2e_board_stop "$name-b$i"; done
		rm -rf "$T/st-$name" "$T"/"$name"-b*.state
	}
	for rep in $(seq 1 "$REPS"); do
		say "bench: fleet: one board, run $rep of $REPS"
		fleet_run 1 "$rep"
	done
	for rep in $(seq 1 "$REPS"); do
		say "bench: fleet: $FLEET boards at once, run $rep of $REPS"
		fleet_run "$FLEET" "$rep"
	done
	# n rep wall user sys sup_hwm wk_hwm sup_cpu updated workers
	sort -n -k1,1 -k2,2 "$T/fleet.tsv" >"$OUT/data/fleet.tsv"

	# Idle: the same boards polling every 10 s for 60 s, up to date.
	say "bench: fleet: $FLEET boards idle, polling every 10 s for 60 s"
	specs=()
	for i in $(seq 1 "$FLEET"); do
		b=idle-b$i
		e2e_board "$b" udp "$T/f.bin" || exit 1
		cp "$T/keys/fleet.key" "$T/keys/$b.key"
		specs+=("$b:fleet")
	done
	E2E_DEVICE_JSON='{"update_interval": "10s"}' \
		e2e_config "$T/idle.json" "$(fleet_global "$T/st-idle")" -- \
		"${specs[@]}"
	client idle "$T/idle.json"
	sleep 5 # start-up: keys, the first round of checks
	sup=$(awk '{ print $1 }' "/proc/$TIME_PID/task/$TIME_PID/children")
	c0=$(cpu "$sup")
	k0=$(grep -c '"/api/v1/update/check"' "$SLOG")
	sleep 60
	c1=$(cpu "$sup")
	checks=$(($(grep -c '"/api/v1/update/check"' "$SLOG") - k0))
	kill -TERM "$sup"
	wait "$TIME_PID"
	awk -v a="$c0" -v b="$c1" -v n="$FLEET" -v k="$checks" 'BEGIN {
		printf "%d %.3f %.3f %d\n", n, b - a, 100 * (b - a) / 60, k }' \
		>"$OUT/data/fleet-idle.tsv"
	meta fleet
fi
done_testing
