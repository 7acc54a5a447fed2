# Shell helpers for integration tests (tests/it/*.sh).  Source it:
#   . "$(dirname "$0")/../lib.sh"
# Each check prints one TAP-style line: "ok - NAME" or "not ok - NAME: why".
# Environment from tests/run: BIN (programs), SRC (repo), SHARED (../shared).
# Run by hand: BIN=build/san bash tests/it/foo.sh

: "${SRC:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${BIN:=$SRC/build}"
: "${SHARED:=$SRC/../shared}"
export SRC BIN SHARED

T=$(mktemp -d "${TMPDIR:-/tmp}/rdfm-it.XXXXXX")
# Link locks of this test's processes only (tests may run side by side).
export RDFM_MCUMGR_RUN_DIR=$T/run
_bg_pids=()
_nfail=0

_cleanup() {
	local p
	for p in "${_bg_pids[@]}"; do
		kill "$p" 2>/dev/null
	done
	sleep 0.2
	for p in "${_bg_pids[@]}"; do
		kill -9 "$p" 2>/dev/null
	done
	wait 2>/dev/null
	if [ "$_nfail" -eq 0 ] && [ -z "${KEEP_TMP:-}" ]; then
		rm -rf "$T"
	else
		echo "# temporary files kept in $T"
	fi
}
trap _cleanup EXIT

ok() { echo "ok - $1"; }
not_ok() {
	echo "not ok - $1: $2"
	_nfail=$((_nfail + 1))
}

# check NAME CMD...: ok when CMD exits 0.
check() {
	local name=$1
	shift
	if "$@"; then ok "$name"; else not_ok "$name" "command failed: $*"; fi
}

# check_fails NAME CMD...: ok when CMD exits non-zero.
check_fails() {
	local name=$1
	shift
	if "$@"; then not_ok "$name" "command succeeded: $*"; else ok "$name"; fi
}

# bg CMD...: start CMD in the background, killed at exit; sets $! as usual.
bg() {
	"$@" &
	_bg_pids+=($!)
}

# wait_for_line FILE REGEX [SECONDS]: wait until FILE has a matching line.
wait_for_line() {
	local file=$1 re=$2 limit=${3:-10} i=0
	while [ "$i" -lt $((limit * 10)) ]; do
		if [ -f "$file" ] && grep -Eq "$re" "$file"; then
			return 0
		fi
		sleep 0.1
		i=$((i + 1))
	done
	echo "# timed out waiting for /$re/ in $file" >&2
	return 1
}

# eventually SECONDS CMD...: wait until CMD exits 0, trying every 0.2 s.
# For "it happens again" checks on a poll interval: a fixed sleep of one
# interval misses a cycle that a loaded machine starts a little late.
eventually() {
	local limit=$1 i=0
	shift
	while [ "$i" -lt $((limit * 5)) ]; do
		"$@" && return 0
		sleep 0.2
		i=$((i + 1))
	done
	"$@"
}

# done_testing: exit non-zero if any check failed.
done_testing() {
	[ "$_nfail" -eq 0 ]
}
