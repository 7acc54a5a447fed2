#!/bin/bash
# make bench (issues 8 and 12): upload speed against the serial link's
# ceiling, UDP throughput against the pipeline window, where the time of a
# serial upload goes, supervisor memory against artifact size and a fleet
# of UDP boards, all against mcumgr-board-sim; the learning window against
# window 1 on simulated boards that lose lines or packets; and the real
# Zephyr board (../shared/zephyr-peer) behind a line paced at 115200 baud
# and unpaced.  Prints the tables and writes bench/results.md,
# bench/data/*.tsv and bench/*.png (gnuplot).
#
#   bench/run.sh [BUILD]        BUILD: the build directory (default build)
# Environment: BENCH_REPS (runs per figure, default 3), BENCH_OUT (where
# results go, default bench/), BENCH_ONLY (space-separated subset of
# "serial udp where adaptive peer memory fleet mgmt").
set -u

SRC=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(cd "${1:-$SRC/build}" && pwd) || exit 2
OUT=${BENCH_OUT:-$SRC/bench}
REPS=${BENCH_REPS:-3}
ONLY=${BENCH_ONLY:-serial udp where adaptive peer memory fleet mgmt}
CLI=$BIN/rdfm-mcumgr-client
SIM=$BIN/mcumgr-board-sim
MK=$BIN/mcuboot-mkimage
CEIL=$BIN/bench-ceiling
PACED=$BIN/paced-line
PEER=$SRC/../shared/zephyr-peer/start-smp-server.sh

for p in "$CLI" "$SIM" "$MK" "$CEIL" "$PACED"; do
	[ -x "$p" ] || {
		echo "bench: $p is missing: run make first" >&2
		exit 2
	}
done
for t in jq gnuplot /usr/bin/time; do
	command -v "$t" >/dev/null || {
		echo "bench: $t is needed (scripts/install-deps)" >&2
		exit 2
	}
done

# Every process we start writes its pid to $PIDS; the exit ends those only.
. "$SRC/bench/lib.sh"
bench_workspace rdfm-bench

mkdir -p "$OUT/data"
# run PART: whether PART was asked for; the load average noted with its
# figures is the one when it starts.
run() {
	case " $ONLY " in
	*" $1 "*)
		LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
		return 0
		;;
	esac
	return 1
}

# sim_start NAME ARGS...: a virtual board; sets SIM_PID and SIM_ADDR (the
# link from its READY line).
sim_start() {
	local name=$1 i
	shift
	"$SIM" "$@" >"$W/$name.out" 2>"$W/$name.err" &
	SIM_PID=$!
	echo "$SIM_PID" >>"$PIDS"
	for i in $(seq 1 100); do
		grep -q '^READY ' "$W/$name.out" 2>/dev/null && break
		sleep 0.05
	done
	SIM_ADDR=$(sed -n 's/^READY [a-z]* //p' "$W/$name.out" | head -n 1)
	[ -n "$SIM_ADDR" ] || {
		say "bench: board $name did not start: $(cat "$W/$name.err")"
		return 1
	}
}

sim_stop() {
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

# upload NAME IMAGE LINK...: one `smp image upload`; prints
# "bytes_per_s elapsed_ms window chunk retransmits wall_s user_s sys_s
# rewinds" (CPU of the client and its worker together, the worker being
# reaped by the client; window: where the learning window settled).
upload() {
	local name=$1 img=$2 j
	shift 2
	if ! /usr/bin/time -o "$W/$name.time" -f '%e %U %S' \
		"$CLI" smp "$@" --json image upload "$img" \
		>"$W/$name.json" 2>"$W/$name.log"; then
		say "bench: upload $name failed: $(tail -n 3 "$W/$name.log")"
		echo "0 0 0 0 0 0 0 0 0"
		return 1
	fi
	j=$(jq -r '"\(.bytes_per_s) \(.elapsed_ms) \(.window) \(.chunk) \(.retransmits)"' \
		<"$W/$name.json")
	echo "$j $(tail -n 1 "$W/$name.time") $(jq -r '.rewinds // 0' <"$W/$name.json")"
}

START=$(date +%s)
MACHINE="$(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo |
	head -n 1), Linux $(uname -r)"
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
COMMIT=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo unknown)
say "bench: $MACHINE; load $LOAD; $REPS runs per figure"

"$MK" --version 0.9.0 --size 1000 --seed 2 -o "$W/old.bin" >/dev/null
# Image files of exactly 256 KiB and 1 MiB: 0x200 header, body, 40 bytes
# of TLVs.
"$MK" --version 1.0.0 --size $((262144 - 552)) --seed 3 \
	-o "$W/img256k.bin" >/dev/null
"$MK" --version 1.0.0 --size $((1048576 - 552)) --seed 4 \
	-o "$W/img1m.bin" >/dev/null

BAUDS="115200 921600"
BUFSIZES="384 1024 2048"
BUFCOUNTS="2 3 4"

# serial_one BAUD BS BC REP: one serial upload, one line of serial.tsv.
serial_one() {
	local baud=$1 bs=$2 bc=$3 rep=$4 name pid r
	name=s-$baud-$bs-$bc-$rep
	sim_start "$name" --serial "$W/$name.tty" --baud "$baud" \
		--image "$W/old.bin" --buf-size "$bs" --buf-count "$bc" ||
		return 1
	pid=$SIM_PID
	r=$(upload "$name" "$W/img256k.bin" --transport serial \
		--device "$W/$name.tty" --baud "$baud")
	sim_stop "$pid"
	echo "$baud $bs $bc $rep $r"
}

if run serial; then
	say "bench: serial link ceilings"
	: >"$OUT/data/ceiling.tsv"
	for baud in $BAUDS; do
		for bs in $BUFSIZES; do
			"$CEIL" --baud "$baud" --buf-size "$bs" --tsv \
				>>"$OUT/data/ceiling.tsv"
		done
	done
	# baud bs bc rep bytes_per_s elapsed_ms window chunk retransmits
	# wall user sys
	: >"$W/serial.tsv"
	for rep in $(seq 1 "$REPS"); do
		# At 115200 an upload takes half a minute and almost no CPU:
		# the three buf_counts of one buf_size run side by side, each
		# on its own pseudo-terminal.  Not all nine at once: on two
		# CPUs 27 processes waking every millisecond delay the
		# simulators' pacers past their 10 ms of banked line time,
		# which cost 5 % of the measured rate.
		for bs in $BUFSIZES; do
			say "bench: serial 115200 baud, buf_size $bs, run $rep of $REPS (3 boards at once)"
			for bc in $BUFCOUNTS; do
				serial_one 115200 "$bs" "$bc" "$rep" \
					>"$W/par-$bs-$bc" &
			done
			wait
		done
		cat "$W"/par-* >>"$W/serial.tsv"
		rm -f "$W"/par-*
		say "bench: serial 921600 baud, run $rep of $REPS"
		for bs in $BUFSIZES; do
			for bc in $BUFCOUNTS; do
				serial_one 921600 "$bs" "$bc" "$rep" \
					>>"$W/serial.tsv"
			done
		done
	done
	sort -n -k1,1 -k2,2 -k3,3 -k4,4 "$W/serial.tsv" >"$OUT/data/serial.tsv"

	# One summary line per configuration.
	# baud bs bc window ceiling median min max ratio
	: >"$OUT/data/serial-summary.tsv"
	for baud in $BAUDS; do
		for bs in $BUFSIZES; do
			ceil=$(awk -v b="$baud" -v s="$bs" \
				'$1 == b && $3 == s { print $9 }' \
				"$OUT/data/ceiling.tsv")
			for bc in $BUFCOUNTS; do
				read -r med min max n < <(stats 5 \
					"$OUT/data/serial.tsv" \
					"\$1 == $baud && \$2 == $bs && \$3 == $bc")
				win=$(awk -v b="$baud" -v s="$bs" -v c="$bc" \
					'$1 == b && $2 == s && $3 == c { print $7; exit }' \
					"$OUT/data/serial.tsv")
				echo "$baud $bs $bc $win $ceil $med $min $max" |
					awk '{ printf "%s %s %s %s %s %s %s %s %.4f %.4f %.4f\n",
						$1, $2, $3, $4, $5, $6, $7, $8,
						$6 / $5, $7 / $5, $8 / $5 }' \
					>>"$OUT/data/serial-summary.tsv"
			done
		done
	done
	meta serial
fi

if run udp; then
	# baud is not a thing here: window rate against latency.
	# bc rep bytes_per_s elapsed_ms window chunk retransmits wall user sys
	: >"$W/udp.tsv"
	for rep in $(seq 1 "$REPS"); do
		for bc in 2 3 5 9; do
			say "bench: UDP 1 MiB, 20 ms latency, buf_count $bc, run $rep of $REPS"
			name=u-$bc-$rep
			sim_start "$name" --udp 127.0.0.1:0 --latency-ms 20 \
				--slot-size 2097152 --image "$W/old.bin" \
				--buf-size 1024 --buf-count "$bc" || continue
			pid=$SIM_PID
			r=$(upload "$name" "$W/img1m.bin" --transport udp \
				--address "$SIM_ADDR")
			sim_stop "$pid"
			echo "$bc $rep $r" >>"$W/udp.tsv"
		done
	done
	sort -n -k1,1 -k2,2 "$W/udp.tsv" >"$OUT/data/udp.tsv"
	# bc window median min max speedup target(0.8 w)
	: >"$OUT/data/udp-summary.tsv"
	read -r base _ < <(stats 3 "$OUT/data/udp.tsv" '$1 == 2')
	for bc in 2 3 5 9; do
		read -r med min max n < <(stats 3 "$OUT/data/udp.tsv" "\$1 == $bc")
		win=$((bc - 1))
		awk -v c="$bc" -v w="$win" -v m="$med" -v lo="$min" -v hi="$max" \
			-v b="$base" 'BEGIN { printf "%d %d %s %s %s %.2f %.2f\n",
				c, w, m, lo, hi, (b > 0 ? m / b : 0), 0.8 * w }' \
			>>"$OUT/data/udp-summary.tsv"
	done
	meta udp
fi

if run where; then
	# Where the time of one 115200-baud upload goes (buf_size 384), for
	# the stop-and-wait window (buf_count 2) and the default (4).
	: >"$W/where.tsv"
	for rep in $(seq 1 "$REPS"); do
		for bc in 2 4; do
			say "bench: where the time goes, buf_count $bc, run $rep of $REPS"
			serial_one 115200 384 "$bc" "$rep" >>"$W/where.tsv" &
		done
		wait
	done
	sort -n -k3,3 -k4,4 "$W/where.tsv" >"$OUT/data/where.tsv"
	"$CEIL" --baud 115200 --buf-size 384 --tsv >"$OUT/data/where-ceiling.tsv"
	meta where
fi

# The learning window against window 1 (--window 1, stop-and-wait as the
# Go client uploads) on the same simulated board, 256 KiB each:
# config name, then the simulator's arguments.
ADAPTIVE_CONFIGS=(
	"serial-115200|--baud 115200"
	"serial-921600|--baud 921600"
	"serial-115200-slow|--baud 115200 --proc-us 40000"
	"udp-20ms|--udp --latency-ms 20 --buf-size 1024"
	"udp-drop-5%|--udp --drop-rate 0.05"
)

# adaptive_one CONFIG SIMARGS MODE REP: one line of adaptive.tsv.
adaptive_one() {
	local cfg=$1 mode=$3 rep=$4 name link args=() win=() r
	read -ra args <<<"$2"
	name=a-${cfg//%/}-$mode-$rep
	if [ "${args[0]}" = --udp ]; then
		args=(--udp 127.0.0.1:0 "${args[@]:1}" --seed "$rep")
	else
		args=(--serial "$W/$name.tty" "${args[@]}")
	fi
	sim_start "$name" "${args[@]}" --image "$W/old.bin" || return 1
	if [ "${args[0]}" = --udp ]; then
		link=(--transport udp --address "$SIM_ADDR")
	else
		link=(--transport serial --device "$W/$name.tty" \
			--baud "$(sed -n 's/.*--baud \([0-9]*\).*/\1/p' <<<"$2")")
	fi
	[ "$mode" = w1 ] && win=(--window 1)
	r=$(upload "$name" "$W/img256k.bin" "${link[@]}" "${win[@]}")
	sim_stop "$SIM_PID"
	echo "$cfg $mode $rep $r"
}

if run adaptive; then
	# config mode rep bytes_per_s elapsed_ms window chunk retransmits
	# wall user sys rewinds
	: >"$W/adaptive.tsv"
	for rep in $(seq 1 "$REPS"); do
		for c in "${ADAPTIVE_CONFIGS[@]}"; do
			for mode in adaptive w1; do
				say "bench: ${c%%|*}, $mode, run $rep of $REPS"
				adaptive_one "${c%%|*}" "${c#*|}" "$mode" "$rep" \
					>>"$W/adaptive.tsv"
			done
		done
	done
	sort -k1,1 -k2,2 -k3,3n "$W/adaptive.tsv" >"$OUT/data/adaptive.tsv"
	: >"$OUT/data/adaptive-ceiling.tsv"
	for baud in 115200 921600; do
		"$CEIL" --baud "$baud" --buf-size 384 --tsv \
			>>"$OUT/data/adaptive-ceiling.tsv"
	done
	meta adaptive
fi

# The real Zephyr board: a flash file of its own per run whose slot 0
# holds the running image (tests/it/peer_lib.bash: slot 0 at 0xc000).
peer_flash() {
	head -c 2097152 /dev/zero | tr '\0' '\377' >"$1" &&
		dd if="$2" of="$1" bs=4096 seek=12 conv=notrunc status=none
}

# peer_one LINE MODE REP: one upload to a fresh peer, unpaced or behind
# paced-line at 115200 baud; one line of peer.tsv.
peer_one() {
	local line=$1 mode=$2 rep=$3 name start pid pty dev win=() r lp
	name=p-$line-$mode-$rep
	peer_flash "$W/$name.flash" "$W/old.bin" || return 1
	if ! start=$("$PEER" "$W/$name.flash" 2>"$W/$name.start-err"); then
		say "bench: the Zephyr peer did not start: $(cat "$W/$name.start-err")"
		return 1
	fi
	pid=$(sed -n 's/^PID=\([0-9]*\) .*/\1/p' <<<"$start")
	pty=$(sed -n 's/.* PTY=\(.*\)$/\1/p' <<<"$start")
	echo "$pid" >>"$PIDS"
	dev=$pty
	if [ "$line" = paced ]; then
		"$PACED" --board "$pty" --link "$W/$name.line" --baud 115200 \
			>"$W/$name.paced" 2>&1 &
		lp=$!
		echo "$lp" >>"$PIDS"
		for _ in $(seq 1 100); do
			grep -q '^READY' "$W/$name.paced" 2>/dev/null && break
			sleep 0.05
		done
		dev=$W/$name.line
	fi
	[ "$mode" = w1 ] && win=(--window 1)
	r=$(upload "$name" "$W/img256k.bin" --transport serial --device "$dev" \
		--baud 115200 "${win[@]}")
	[ -n "${lp:-}" ] && kill "$lp" 2>/dev/null
	kill "$pid" 2>/dev/null
	wait 2>/dev/null
	echo "$line $mode $rep $r"
}

# line_rate BAUD: "baud down up" in bytes/s, paced-line between two
# line-meter pseudo-terminals, about five seconds of bytes both ways.
line_rate() {
	local baud=$1 pty lm
	"$BIN/line-meter" --link "$W/line-$baud" --bytes $((baud / 2)) \
		--limit 60 >"$W/lm-$baud.out" 2>"$W/lm-$baud.err" &
	lm=$!
	echo "$lm" >>"$PIDS"
	for _ in $(seq 100); do
		grep -q '^PTY ' "$W/lm-$baud.out" 2>/dev/null && break
		sleep 0.1
	done
	pty=$(sed -n 's/^PTY //p' "$W/lm-$baud.out")
	"$PACED" --board "$pty" --link "$W/line-$baud" --baud "$baud" \
		>/dev/null 2>"$W/pl-$baud.err" &
	echo "$!" >>"$PIDS"
	if wait "$lm"; then
		awk -v b="$baud" '/^down / { print b "\t" $2 "\t" $4 }' \
			"$W/lm-$baud.out"
	else
		say "bench: line-meter failed: $(cat "$W/lm-$baud.err")"
	fi
}

if run peer; then
	if [ ! -x "$PEER" ]; then
		say "bench: $PEER is missing: the real board's figures need ../shared"
	else
		# line mode rep bytes_per_s elapsed_ms window chunk retransmits
		# wall user sys rewinds
		: >"$W/peer.tsv"
		for rep in $(seq 1 "$REPS"); do
			for line in paced unpaced; do
				for mode in adaptive w1; do
					say "bench: real Zephyr board, $line line, $mode, run $rep of $REPS"
					peer_one "$line" "$mode" "$rep" >>"$W/peer.tsv"
				done
			done
		done
		sort -k1,1 -k2,2 -k3,3n "$W/peer.tsv" >"$OUT/data/peer.tsv"
		"$CEIL" --baud 115200 --buf-size 384 --tsv \
			>"$OUT/data/peer-ceiling.tsv"
		# The paced line itself, measured the way its test does (the
		# test only bounds it; the figure belongs here).
		say "bench: paced-line at 115200 baud, measured by line-meter"
		line_rate 115200 >"$OUT/data/paced-line.tsv"
		meta peer
	fi
fi

# The benchmarks of the whole daemon (memory, fleet) run in their own
# process: they use the end-to-end test helpers, which own their exit trap.
export SRC BIN OUT REPS ONLY MACHINE LOAD COMMIT
if run memory; then
	bash "$SRC/bench/daemon.sh" || say "bench: daemon benchmarks failed"
fi
if run fleet; then
	bash "$SRC/bench/fleet.sh" || say "bench: fleet benchmark failed"
fi

# The management channel: 1000 idle devices over ws:// and wss://.
if run mgmt; then
	BENCH_OUT=$OUT bash "$SRC/bench/mgmt.sh" "$BIN" ||
		say "bench: management channel benchmarks failed"
fi

ELAPSED=$(($(date +%s) - START))
. "$SRC/bench/report.sh"
say "bench: done in ${ELAPSED} s; results in $OUT/results.md"
