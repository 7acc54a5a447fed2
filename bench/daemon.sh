#!/bin/bash
# Benchmarks of the whole daemon, run by bench/run.sh (issue 8 item 4):
# supervisor peak memory for a full update from a 1 MiB and a 64 MiB
# artifact.  (The fleet of UDP boards is bench/fleet.sh.)  Uses the
# end-to-end test helpers (tests/e2e-lib.sh), which start, track and end
# every process.  Environment from run.sh: SRC, BIN, OUT, REPS, ONLY,
# MACHINE, LOAD, COMMIT.
. "$SRC/tests/lib.sh"
. "$SRC/tests/e2e-lib.sh"
. "$SRC/bench/lib.sh"

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

done_testing
