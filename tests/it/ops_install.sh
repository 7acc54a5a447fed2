#!/bin/bash
# The user guide's steps: `make`, then `make install PREFIX=/usr` (into a
# DESTDIR here) lays out every file with its mode and the installed paths
# in the unit (WorkingDirectory the state directory); the installed client
# runs from there and finds its installed workers, though it was built for
# /usr/local; the unit passes systemd-analyze verify (man pages included);
# the man pages render without groff warnings; make uninstall removes
# everything it placed and keeps the operator's config.
. "$(dirname "$0")/../lib.sh"

R=$T/root
# A build of its own, as an operator or packager makes it: $BIN may be a
# sanitizer build whose objects a plain make would relink without the
# sanitizer runtime.
MK=(make -s -j"$(nproc)" -C "$SRC" BUILD="$T/build")
UNIT=$R/usr/lib/systemd/system/rdfm-mcumgr-client.service

# As the guide says: make (the default PREFIX, /usr/local), then install
# for /usr.
if "${MK[@]}" all >"$T/build.log" 2>&1 &&
	"${MK[@]}" DESTDIR="$R" PREFIX=/usr install >"$T/install.log" 2>&1; then
	ok "make, then make install DESTDIR PREFIX=/usr"
else
	not_ok "make, then make install DESTDIR PREFIX=/usr" \
		"$(tail -n 20 "$T/build.log" "$T/install.log")"
fi

# want_file PATH MODE: installed, regular, with that mode.
want_file() {
	local mode
	if [ ! -f "$R$1" ]; then
		not_ok "installed $1" "missing"
		return
	fi
	mode=$(stat -c %a "$R$1")
	if [ "$mode" = "$2" ]; then
		ok "installed $1 ($2)"
	else
		not_ok "installed $1" "mode $mode, want $2"
	fi
}

want_file /usr/bin/rdfm-mcumgr-client 755
for w in serial udp ble; do
	want_file /usr/libexec/rdfm-mcumgr/rdfm-mcumgr-worker-$w 755
done
want_file /etc/rdfm-mcumgr/config.json.example 644
want_file /usr/lib/systemd/system/rdfm-mcumgr-client.service 644
want_file /usr/lib/sysusers.d/rdfm-mcumgr.conf 644
want_file /usr/share/man/man1/rdfm-mcumgr-client.1 644
want_file /usr/share/man/man5/rdfm-mcumgr-client.json.5 644
want_file /usr/share/doc/rdfm-mcumgr-client/user-guide.md 644

# Nothing else: test tools stay in the build tree.
extra=$(cd "$R" && find . -type f | sort | grep -v -E \
	'^\./usr/bin/rdfm-mcumgr-client$|^\./usr/libexec/rdfm-mcumgr/rdfm-mcumgr-worker-(serial|udp|ble)$|^\./etc/rdfm-mcumgr/config\.json\.example$|^\./usr/lib/systemd/system/rdfm-mcumgr-client\.service$|^\./usr/lib/sysusers\.d/rdfm-mcumgr\.conf$|^\./usr/share/man/man[15]/|^\./usr/share/doc/rdfm-mcumgr-client/')
if [ -z "$extra" ]; then
	ok "no stray files installed"
else
	not_ok "no stray files installed" "$(echo $extra)"
fi

if grep -qx 'ExecStart=/usr/bin/rdfm-mcumgr-client --config /etc/rdfm-mcumgr/config.json --state-dir /var/lib/rdfm-mcumgr' "$UNIT" &&
	! grep -q '@[A-Z]*@' "$UNIT"; then
	ok "unit names the installed binary and config"
else
	not_ok "unit names the installed binary and config" \
		"$(grep -n 'ExecStart\|@' "$UNIT")"
fi

check "installed client runs" bash -c "\"\$0\" --version >/dev/null" "$R/usr/bin/rdfm-mcumgr-client"
check "the unit runs in the state directory" \
	grep -qx 'WorkingDirectory=/var/lib/rdfm-mcumgr' "$UNIT"

# --- the installed client runs from the staged root -----------------------------
# Built for /usr/local, installed under $R/usr: the workers are found from
# the client's own place, with no help from the environment.
"$T/build/mcuboot-mkimage" --version 1.0.0 --size 4000 --seed 1 \
	-o "$T/img.bin" >/dev/null
bg "$T/build/mcumgr-board-sim" --udp 127.0.0.1:0 --image "$T/img.bin" \
	>"$T/sim.out" 2>"$T/sim.err"
wait_for_line "$T/sim.out" '^READY ' 10 >/dev/null
ADDR=$(sed -n 's/^READY udp //p' "$T/sim.out")
out=$(env -u RDFM_MCUMGR_WORKER_DIR "$R/usr/bin/rdfm-mcumgr-client" smp \
	--transport udp --address "$ADDR" echo "from the staged root" 2>"$T/smp.err")
check "the installed client talks to a board through its installed worker" \
	[ "$out" = "from the staged root" ]
mkdir -p "$T/run"
jq -n --arg a "$ADDR" '{server: "http://127.0.0.1:9", key_dir: "keys",
	state_dir: "state", devices: [{name: "a", id: "1", dev_type: "t",
	key: "a.key", transport: {type: "udp", address: $a}}]}' >"$T/run/c.json"
(cd "$T/run" && env -u RDFM_MCUMGR_WORKER_DIR \
	"$R/usr/bin/rdfm-mcumgr-client" -c c.json check-config >"$T/cc.out" 2>"$T/cc.err")
check "installed check-config finds the workers; relative paths from the working directory" \
	eval 'grep -q "config OK" $T/cc.out && grep -qx "key_dir: $T/run/keys (missing: will be created, mode 0700)" $T/cc.out'
mv "$R/usr/libexec/rdfm-mcumgr/rdfm-mcumgr-worker-udp" "$T/w.bak"
(cd "$T/run" && env -u RDFM_MCUMGR_WORKER_DIR \
	"$R/usr/bin/rdfm-mcumgr-client" -c c.json check-config >"$T/cc.out" 2>"$T/cc.err")
rc=$?
mv "$T/w.bak" "$R/usr/libexec/rdfm-mcumgr/rdfm-mcumgr-worker-udp"
check "a missing worker is a check-config error naming where it looked" \
	eval '[ $rc -eq 1 ] && grep -q "c.json: devices\[0\].transport.type: worker executable rdfm-mcumgr-worker-udp not found next to $R/usr/bin, in $R/usr/bin/../libexec/rdfm-mcumgr nor in /usr/local/libexec/rdfm-mcumgr" $T/cc.err'

# systemd-analyze verify resolves ExecStart, ExecReload and the targets
# inside --root, so the staged tree gets what a real system has: the
# targets and /bin/kill, in a copy the uninstall check never sees.
V=$T/vroot
cp -a "$R" "$V"
mkdir -p "$V/bin" "$V/usr/lib/systemd/system"
cp /bin/kill "$V/bin/"
find /usr/lib/systemd/system /lib/systemd/system -maxdepth 1 -type f \
	-name '*.target' -exec cp -n {} "$V/usr/lib/systemd/system/" \; 2>/dev/null
if MANPATH=$V/usr/share/man systemd-analyze verify --root="$V" \
	/usr/lib/systemd/system/rdfm-mcumgr-client.service >"$T/verify.log" 2>&1 &&
	! grep -q . "$T/verify.log"; then
	ok "systemd-analyze verify on the installed unit, man pages included"
else
	not_ok "systemd-analyze verify on the installed unit" "$(cat "$T/verify.log")"
fi
# The check can fail: a unit without its man pages does not verify.
rm "$V/usr/share/man/man5/rdfm-mcumgr-client.json.5"
if MANPATH=$V/usr/share/man systemd-analyze verify --root="$V" \
	/usr/lib/systemd/system/rdfm-mcumgr-client.service >"$T/verify2.log" 2>&1; then
	not_ok "verify notices a missing man page" "it passed"
else
	ok "verify notices a missing man page"
fi

systemd-analyze security --offline=true --root="$V" \
	rdfm-mcumgr-client.service >"$T/security.log" 2>&1
score=$(sed -n 's/.*Overall exposure level for rdfm-mcumgr-client.service: \([0-9.]*\).*/\1/p' "$T/security.log")
echo "# systemd-analyze security: exposure $score"
if [ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s < 4.0) }'; then
	ok "security exposure below 4.0 ($score)"
else
	not_ok "security exposure below 4.0" "got '$score': $(tail -n 3 "$T/security.log")"
fi

for page in man1/rdfm-mcumgr-client.1 man5/rdfm-mcumgr-client.json.5; do
	if groff -mandoc -Tutf8 -ww -z "$R/usr/share/man/$page" >"$T/groff.log" 2>&1 &&
		! grep -q . "$T/groff.log" &&
		MANWIDTH=80 man -l "$R/usr/share/man/$page" 2>/dev/null | grep -q '^NAME'; then
		ok "$page renders without warnings"
	else
		not_ok "$page renders without warnings" "$(head -n 5 "$T/groff.log")"
	fi
done

# The operator's own config survives an uninstall.
echo '{}' >"$R/etc/rdfm-mcumgr/config.json"
if "${MK[@]}" DESTDIR="$R" PREFIX=/usr uninstall >"$T/uninstall.log" 2>&1; then
	ok "make uninstall"
else
	not_ok "make uninstall" "$(tail -n 20 "$T/uninstall.log")"
fi
left=$(cd "$R" && find . -type f | sort)
if [ "$left" = "./etc/rdfm-mcumgr/config.json" ]; then
	ok "uninstall removed every installed file, kept config.json"
else
	not_ok "uninstall removed every installed file, kept config.json" \
		"left: $(echo $left)"
fi
for d in usr/libexec/rdfm-mcumgr usr/share/doc/rdfm-mcumgr-client; do
	if [ -d "$R/$d" ]; then
		not_ok "uninstall removed $d" "still there"
	else
		ok "uninstall removed $d"
	fi
done

done_testing
