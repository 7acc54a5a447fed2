#!/bin/bash
# Fault injection of the virtual board, seeded: lost requests, lost
# replies (the request still applied), a board that hangs or dies part way
# through an upload (flash and progress kept for a restart).
. "$(dirname "$0")/../lib.sh"
. "$SRC/tests/sim/it-lib.sh"

"$MK" --version 1.0.0 --size 20000 --seed 1 -o "$T/old.bin" >/dev/null
"$MK" --version 1.1.0 --size 60000 --seed 2 -o "$T/new.bin" >/dev/null
new_hash=$(hash_of "$T/new.bin")
total=$(stat -c %s "$T/new.bin")

# --drop-rate 1: nothing reaches the board.
start_sim d udp --udp 127.0.0.1:0 --drop-rate 1 || exit 1
out=$(cl --timeout-ms 500 echo x)
check "--drop-rate 1: no reply" [ "$out" = timeout ]
check "... the board never saw the request" \
	[ "$(st .counters.requests)/$(st .counters.dropped)" = 0/1 ]
stop_sim

# --drop-reply-rate 1: the request is applied, the reply lost.
start_sim r udp --udp 127.0.0.1:0 --image "$T/old.bin" --drop-reply-rate 1 || exit 1
out=$(cl --timeout-ms 500 chunk "$T/new.bin" 0 200 first)
check "--drop-reply-rate 1: no reply" grep -qx timeout <<<"$out"
check "... but the chunk was written" [ "$(st .upload.offset)" = 200 ]
stop_sim

# --drop-rate 0.5 with a seed: some lost, some not, the same every run.
runs=()
for i in 1 2; do
	start_sim h$i udp --udp 127.0.0.1:0 --drop-rate 0.5 --seed 42 --proc-us 20000 || exit 1
	out=$(cl --timeout-ms 400 burst 4 x)
	runs+=("$(grep '^hdr' <<<"$out" | sed 's/.*seq=\([0-9]*\).*/\1/' | tr '\n' ,)")
	stop_sim
done
check "seeded drops: the same requests are lost in both runs (${runs[0]})" \
	[ "${runs[0]}" = "${runs[1]}" ]
check "seeded drops: some but not all lost" \
	[ -n "${runs[0]}" -a "${runs[0]}" != "0,1,2,3," ]

# --hang-after: stops answering mid-upload, for good.
start_sim g udp --udp 127.0.0.1:0 --image "$T/old.bin" --hang-after 10000 || exit 1
out=$(cl --timeout-ms 300 upload "$T/new.bin" 250)
check "--hang-after: the upload stalls" grep -qx timeout <<<"$out"
check "... at the given byte count" [ "$(st .upload.offset)" = 10000 ]
check "... and the board stays silent" [ "$(cl --timeout-ms 300 echo x)" = timeout ]
check "status says hung" [ "$(st .state)" = hung ]
stop_sim

# --die-after: exits mid-upload; a restart keeps flash and progress, and
# the same first packet resumes.
start_sim k udp --udp 127.0.0.1:0 --image "$T/old.bin" --die-after 25000 || exit 1
port=${READY##*:}
cl --timeout-ms 300 upload "$T/new.bin" 250 >/dev/null
wait "$SIM_PID"
check "--die-after: the simulator exits" [ $? -eq 0 ]
check "... having written 25000 bytes" [ "$(st .upload.offset)" = 25000 ]
start_sim k2 udp --udp "127.0.0.1:$port" --state "$T/k.state" || exit 1
out=$(cl chunk "$T/new.bin" 0 250 first)
check "after a restart the upload resumes at 25000" [ "$(rfield .off <<<"$out")" = 25000 ]
out=$(cl upload "$T/new.bin" 250)
check "and completes" grep -qx "off $total" <<<"$out"
out=$(cl state)
check "slot 1 holds the whole image" [ "$(rfield '.images[1].hash' <<<"$out")" = "$new_hash" ]
stop_sim

done_testing
