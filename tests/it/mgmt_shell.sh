#!/bin/bash
# Management channel, shell (issue 15 item 5): a session opens the second
# WebSocket, keystrokes are edited into lines, each line runs as one SMP
# shell exec with its output and a prompt; resize frames are accepted;
# sessions on one board run their lines one after another; busy boards
# refuse; Ctrl-C and Ctrl-D; a group's session switches members; boards
# without "shell": true, or without the shell group, get no session.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/rdfm_lib.bash"
. "$(dirname "$0")/mgmt_lib.bash"

mgmt_server || exit 1
mgmt_key grp
device_config "$T/c.json" "$(udp_dev sensor aa:01 1 '{"shell": true}')" \
	"$(udp_dev plain aa:02 2)"
jq '.groups = [{name: "pair", id: "gg:01", type: "gt", key: "grp.pem",
    members: [
      {name: "left", device: "l", shell: true,
       transport: {type: "udp", address: "127.0.0.1:3"}},
      {name: "right", device: "r",
       transport: {type: "udp", address: "127.0.0.1:4"}}]}]' \
	"$T/c.json" >"$T/c2.json"
start_drive d "$T/c2.json" --op-delay-ms 20 || exit 1
wait_dev aa:01 .connected && wait_dev aa:02 .connected && wait_dev gg:01 .connected

shell_open() { admin POST /admin/mgmt/shell "{\"device\": \"$1\"}" | jq -r .uuid; }
keys() { admin POST /admin/mgmt/shell/input "$(jq -cn --arg u "$1" --arg k "$2" '{uuid: $u, keys: $k}')" >/dev/null; }
text() { admin POST /admin/mgmt/shell/input "$(jq -cn --arg u "$1" --arg k "$2" '{uuid: $u, text: $k}')" >/dev/null; }
shell_out() { admin GET "/admin/mgmt/shell?uuid=$1" | jq -r .output; }
wait_out() {
	local u=$1 want=$2 i=0 out
	while [ "$i" -lt 200 ]; do
		out=$(shell_out "$u")
		[[ "$out" == *"$want"* ]] && return 0
		sleep 0.1
		i=$((i + 1))
	done
	echo "# output of $u so far: $(shell_out "$u" | od -c | tail -5)" >&2
	return 1
}

check "capabilities: shell only where configured" \
	sh -c "$(declare -f mdev admin); URL=$URL;
	  mdev aa:01 | jq -e '.capabilities.shell' &&
	  mdev aa:02 | jq -e '.capabilities.shell == false'" >/dev/null

u=$(shell_open aa:01)
check "session: the device attached the second socket" \
	wait_out "$u" 'sensor$ '
check "session: attached to the session's path" \
	test "$(admin GET "/admin/mgmt/shell?uuid=$u" | jq -r .path)" = "/api/v1/devices/aa%3A01/shell/attach/$u"
text "$u" "resize 24 80"
keys "$u" $'echo hello   world\r'
check "a line runs: echo, output, prompt" \
	wait_out "$u" $'echo hello   world\r\nhello world\r\nsensor$ '
check "the line was one SMP shell exec with its words" \
	grep -q '^BOARD dev=sensor board=sensor op=shell argv=echo,hello,world timeout_ms=' "$T/d.out"
keys "$u" $'ecx\x7fho fixed\r'
check "backspace edits the line" wait_out "$u" $'fixed\r\nsensor$ '
keys "$u" $'lines\r'
check "output lines end in CR LF" wait_out "$u" $'one\r\ntwo\r\nthree\r\n'
keys "$u" $'fail\r'
check "a failing command shows its return value" wait_out "$u" $'it failed\r\n[exit 3]\r\n'
keys "$u" $'nosuch x\r'
check "an unknown command: the board's words" \
	wait_out "$u" $'nosuch: command not found\r\n[exit -8]'
n=$(count_board d 'op=shell')
keys "$u" $'abc\x03'
check "Ctrl-C drops the line" wait_out "$u" $'abc^C\r\nsensor$ '
keys "$u" $'\x1b[A\r'
sleep 0.5
check "Ctrl-C and an arrow key: nothing reached the board" \
	test "$(count_board d 'op=shell')" -eq "$n"
check "resize frames are taken quietly" \
	test "$(count_board d 'argv=resize')" -eq 0

# Typed ahead while a line runs: kept, run after it, in order.
keys "$u" $'sleep 600\recho next\r'
check "typed ahead: runs after the first line" wait_out "$u" $'slept\r\nsensor$ echo next\r\nnext\r\n'

# Two sessions on one board: their lines take turns on the link.
v=$(shell_open aa:01)
wait_out "$v" 'sensor$ '
keys "$u" $'sleep 1500\r'
# The board has the first line before the second session types its own.
board_has() { [ "$(count_board d "$1")" -ge 1 ]; }
eventually 10 board_has 'argv=sleep,1500'
keys "$v" $'echo from-v\r'
check "second session: its line ran" wait_out "$v" $'\r\nfrom-v\r\nsensor$ '
check "second session: after the first session's line, not beside it" \
	sh -c "grep '^BOARD dev=sensor' '$T/d.out' | tail -2 |
	  awk 'NR==1 && /argv=sleep,1500/ {a=1} NR==2 && /argv=echo,from-v/ {b=1} END {exit !(a && b)}'"
check "first session: its line finished" \
	test "$(shell_out "$u" | grep -c slept)" -eq 2

# Busy: an update holds the board.
n=$(count_board d 'op=shell')
drive d busy sensor on
keys "$v" $'echo nope\r'
check "busy: refused in the terminal" wait_out "$v" $'busy: update in progress\r\nsensor$ '
check "busy: nothing reached the board" test "$(count_board d 'op=shell')" -eq "$n"
drive d busy sensor off

# Ctrl-D ends a session; the server closing one ends it too.
keys "$v" $'\x04'
check "Ctrl-D: the device closed the session" \
	sh -c "for i in \$(seq 100); do curl -s '$URL/admin/mgmt/shell?uuid=$v' | jq -e .ended >/dev/null && exit 0; sleep 0.1; done; exit 1"
admin POST /admin/mgmt/shell/close "{\"uuid\": \"$u\"}" >/dev/null
check "closed by the server: the device let it go" \
	wait_for_line "$T/d.err" "Shell session closed.*uuid=$u" 10

# At most 4 sessions per device.
for i in 1 2 3 4 5; do s[$i]=$(shell_open aa:01); done
wait_out "${s[4]}" 'sensor$ '
eventually 10 grep -q 'too many shell sessions' "$T/d.err"
check "a fifth session is refused" \
	test "$(admin GET "/admin/mgmt/shell?uuid=${s[5]}" | jq .attached)" = false
check "and said so once" grep -q 'too many shell sessions' "$T/d.err"
for i in 1 2 3 4; do admin POST /admin/mgmt/shell/close "{\"uuid\": \"${s[$i]}\"}" >/dev/null; done

# A device without "shell": true: no session, no board operation.
a=$(admin GET /admin/mgmt/stats | jq .shell_attaches)
p=$(shell_open aa:02)
sleep 1
eventually 10 grep -qF 'no board has \"shell\": true' "$T/d.err"
check "shell off: no second socket" \
	test "$(admin GET /admin/mgmt/stats | jq .shell_attaches)" -eq "$a"
check "shell off: said why" grep -qF 'no board has \"shell\": true' "$T/d.err"

# A group: the member with the shell first; "@member" switches.
g=$(shell_open gg:01)
check "group: starts on the member with the shell" wait_out "$g" 'left$ '
keys "$g" $'@right\r'
check "group: a member without the shell is refused" \
	wait_out "$g" $'no shell on that member\r\nleft$ '
keys "$g" $'echo on-left\r'
check "group: the line ran on the member" \
	wait_for_line "$T/d.out" '^BOARD dev=pair board=left op=shell argv=echo,on-left' 10
keys "$g" $'@nobody\r'
check "group: an unknown member" wait_out "$g" 'no such member'

# A board without the SMP shell group: the capability goes.
mkdir -p "$T/boards/sensor" && touch "$T/boards/sensor/.noshell"
w=$(shell_open aa:01)
wait_out "$w" 'sensor$ '
keys "$w" $'echo x\r'
check "no shell group: said in the terminal" wait_out "$w" 'the board has no SMP shell'
check "no shell group: the capability report drops shell" \
	wait_dev aa:01 '.capabilities.shell == false'
check "driver stops cleanly" stop_drive d
check_servers
done_testing
