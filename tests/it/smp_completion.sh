#!/bin/bash
# Bash completion (etc/rdfm-mcumgr-client.bash, installed by make install):
# the commands, the smp words at each level, option values, image files,
# and --board names from the config.
. "$(dirname "$0")/../lib.sh"

export PATH=$BIN:$PATH
# shellcheck disable=SC1091
. "$SRC/etc/rdfm-mcumgr-client.bash"

# comp WORD...: what completing the last word offers, sorted, one line.
comp() {
	COMP_WORDS=(rdfm-mcumgr-client "$@")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMPREPLY=()
	_rdfm_mcumgr_client rdfm-mcumgr-client
	[ ${#COMPREPLY[@]} -eq 0 ] || printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' '
}

check "the commands" [ "$(comp "")" = "artifact check-config smp " ]
check "complete -F is registered" bash -c \
	". '$SRC/etc/rdfm-mcumgr-client.bash'; complete -p rdfm-mcumgr-client | grep -q _rdfm_mcumgr_client"
check "smp's first words" \
	[ "$(comp smp "")" = "echo fs image os params reset shell stat upgrade " ]
check "image's words, after link options" \
	[ "$(comp smp --device /dev/ttyACM0 image "")" = "confirm erase list test upload " ]
check "a prefix" [ "$(comp smp os ta)" = "taskstat " ]
check "fs's words" [ "$(comp smp fs "")" = "download hash stat upload " ]
check "--transport's values" [ "$(comp smp --transport "")" = "ble serial udp " ]
check "--conntype's values" [ "$(comp smp --conntype "")" = "ble serial udp " ]
check "--type's values" [ "$(comp smp fs hash --type "")" = "crc32 sha256 " ]
check "smp options" grep -q -- "--window " <<<"$(comp smp --w)"
check "nothing after shell exec: the board's command line" \
	[ "$(comp smp shell exec "")" = "" ]
touch "$T/a.bin" "$T/b.hex" "$T/c.txt"
check "image upload offers images" \
	[ "$(comp smp image upload "$T/")" = "$T/a.bin $T/b.hex " ]
check "upgrade offers images" [ "$(comp smp upgrade "$T/")" = "$T/a.bin $T/b.hex " ]
check "os datetime set now" [ "$(comp smp os datetime set "")" = "now " ]

mkdir -p "$T/keys"
cat >"$T/cfg.json" <<CFG
{"server": "http://127.0.0.1:1", "key_dir": "$T/keys",
 "devices": [{"name": "lab1", "id": "d1", "dev_type": "t", "key": "d1.key",
   "transport": {"type": "udp", "address": "127.0.0.1:1337"}}],
 "groups": [{"name": "rack", "id": "g1", "type": "t", "key": "g1.key",
   "members": [{"name": "left", "device": "a",
     "transport": {"type": "udp", "address": "127.0.0.1:1338"}}]}]}
CFG
check "--board offers the config's boards" \
	[ "$(comp -c "$T/cfg.json" smp --board "")" = "lab1 left rack/left " ]
check "... with -c after smp too" \
	[ "$(comp smp -c "$T/cfg.json" --board l)" = "lab1 left " ]

done_testing
