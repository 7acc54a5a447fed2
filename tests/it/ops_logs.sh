#!/bin/bash
# Log lines an operator and a log shipper can follow: log_format "json"
# gives one JSON object per line (workers' lines too) with the same keys as
# the text format; a bad log_format is a config error naming the key; a
# board's normal reset does not log a WARN about its link; versions have
# one spelling (RDFM's) in every line.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../e2e-lib.sh"

e2e_server --auto-approve || exit 1
e2e_image "$T/old.bin" 1.0.0 1
e2e_image "$T/new.bin" 1.1.0+7 2 20000
e2e_artifact "$T/new.rdfm" "$T/new.bin" typeG 1.1.0+7
e2e_package "$T/new.rdfm" 1.1.0+7 typeG >/dev/null

e2e_board j udp "$T/old.bin" || exit 1
e2e_config "$T/j.json" '{"log_format": "json"}' -- j:typeG
e2e_run j -c "$T/j.json" --once
check "json: the update runs" [ "$RC" -eq 0 ]
n=$(grep -c . "$T/j.log")
parsed=$(jq -c . "$T/j.log" 2>/dev/null | wc -l)
check "json: every line is one JSON object ($parsed of $n)" \
	[ "$n" -gt 5 -a "$parsed" -eq "$n" ]
check "json: keys and typed values" \
	eval 'jq -e -s "any(.[]; .msg == \"Update successful\" and
		.device == \"j\" and .new_version == \"1.1.0+7\" and .level == \"INFO\")" \
		"$T/j.log" >/dev/null'
check "json: numbers are numbers" \
	eval 'jq -e -s "any(.[]; .msg == \"Upload finished\" and (.bytes | type) == \"number\")" \
		"$T/j.log" >/dev/null'
check "json: the worker's lines too" \
	eval 'jq -e -s "any(.[]; .proc == \"worker-udp\")" "$T/j.log" >/dev/null'

jq '.log_format = "xml"' "$T/j.json" >"$T/bad.json"
e2e_run bad -c "$T/bad.json" --once
check "a bad log_format is a config error naming the key" \
	eval '[ "$RC" -ne 0 ] && grep -q "log_format: \\\\\"xml\\\\\" is not a log format" "$T/bad.log"'

# A USB CDC-ACM board: its tty goes away on every reset.
e2e_board r serial "$T/old.bin" --reenumerate --reboot-ms 400 || exit 1
rm -rf "$T/state"
e2e_config "$T/r.json" -- r:typeG
e2e_run r -c "$T/r.json" --once
check "text: the update over a re-enumerating tty runs" [ "$RC" -eq 0 ]
check "the link dropping during the board's reset is INFO, not a WARN" \
	eval 'grep -q "level=INFO msg=\"link down while the board resets\"" "$T/r.log" &&
	! grep -q "level=WARN msg=\"link down\"" "$T/r.log"'
check "versions have one spelling: 1.1.0+7, never 1.1.0.7" \
	eval 'grep -q "1.1.0+7" "$T/r.log" && ! grep -q "1\.1\.0\.7" "$T/r.log"'

done_testing
