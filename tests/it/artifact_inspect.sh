#!/bin/bash
# `artifact inspect` against artifacts Debian's mender-artifact writes (no
# compression, gzip, xz; single and group; two device types; RSA and ECDSA
# signatures) and against broken variants assembled here with tar, gzip and
# zstd: each must be rejected with the reason named.
. "$(dirname "$0")/../lib.sh"

MK="$SRC/tests/make-artifact.sh"
if [ -x "$BIN/rdfm-mcumgr-client" ]; then
	INSPECT=("$BIN/rdfm-mcumgr-client" artifact inspect)
else
	INSPECT=("$BIN/artifact-inspect" inspect)
fi
if ! command -v mender-artifact >/dev/null; then
	not_ok "mender-artifact installed" "run scripts/install-deps"
	done_testing
	exit
fi

cd "$T" || exit 1
# mender-artifact stamps entries with the current time; quiet tar about it.
export TAR_OPTIONS=--warning=no-timestamp

# accept NAME ARTIFACT [ARGS...]: inspect must exit 0.
accept() {
	local name=$1 art=$2
	shift 2
	if "${INSPECT[@]}" "$art" "$@" >"$T/out" 2>"$T/err"; then
		ok "$name"
	else
		not_ok "$name" "rejected: $(cat "$T/err")"
	fi
}

# reject NAME ARTIFACT REASON [ARGS...]: inspect must exit 1 and say REASON.
reject() {
	local name=$1 art=$2 reason=$3 rc
	shift 3
	"${INSPECT[@]}" "$art" "$@" >"$T/out" 2>"$T/err"
	rc=$?
	if [ "$rc" -ne 1 ]; then
		not_ok "$name" "exit $rc, want 1: $(cat "$T/err")"
	elif ! grep -qF -- "$reason" "$T/err"; then
		not_ok "$name" "reason '$(cat "$T/err")' lacks '$reason'"
	else
		ok "$name"
	fi
}

# jq-free JSON field checks: has KEY:VALUE (as json-c prints it) in out.
has() {
	grep -qF -- "$1" "$T/out"
}

sha() { sha256sum "$1" | cut -d' ' -f1; }
# The TLV hash of an image written by make-artifact.sh: as mcuboot-mkimage
# reads it, or (its own writer) the SHA-256 of all but the 40-byte TLV area.
tlvhash() {
	if [ -x "$BIN/mcuboot-mkimage" ]; then
		"$BIN/mcuboot-mkimage" --print-hash "$1"
	else
		head -c $(($(stat -c %s "$1") - 40)) "$1" | sha256sum | cut -d' ' -f1
	fi
}

# unpack ART DIR: the outer tar into DIR, inner tars as DIR/h/ and DIR/d/.
unpack() {
	rm -rf "$2"
	mkdir -p "$2/h" "$2/d"
	tar -xf "$1" -C "$2"
	tar -xf "$2/header.tar" -C "$2/h"
	tar -xf "$2/data/0000.tar" -C "$2/d"
}

# pack_header DIR: header.tar again from DIR/h (header-info first).
pack_header() {
	(cd "$1/h" && tar --format=ustar -cf ../header.tar header-info \
		$(find headers -type f | sort))
}

# pack_data DIR FILE...: data/0000.tar again from DIR/d.
pack_data() {
	local dir=$1
	shift
	(cd "$dir/d" && tar --format=ustar -cf ../data/0000.tar "$@")
}

# remanifest DIR: recompute every line of the manifest.
remanifest() {
	local dir=$1 f
	(
		cd "$dir" || exit 1
		sha256sum version header.tar
		cd d && for f in *; do
			echo "$(sha256sum "$f" | cut -d' ' -f1)  data/0000/$f"
		done
	) | sed 's/ \*/  /' | sort -k2 >"$dir/manifest"
}

# remanifest_hdr DIR: recompute the header line only (any compression).
remanifest_hdr() {
	local h
	h=$(cd "$1" && ls header.tar*)
	grep -v '  header\.tar' "$1/manifest" >"$1/manifest.new"
	(cd "$1" && sha256sum "$h") | sed 's/ \*/  /' >>"$1/manifest.new"
	sort -k2 "$1/manifest.new" >"$1/manifest" && rm "$1/manifest.new"
}

# pack DIR OUT [ENTRY...]: the outer tar (default order and entries).
pack() {
	local dir=$1 out=$2
	shift 2
	[ $# -gt 0 ] || set -- version manifest header.tar data/0000.tar
	tar -C "$dir" --format=ustar -cf "$out" "$@"
}

# Images: two versions of one board image and two group members.
"$MK" image -o img.bin -V 1.2.3+4 -s 5000 -S 1
"$MK" image -o left.bin -V 2.0.0 -s 3000 -S 2
"$MK" image -o right.bin -V 2.0.0 -s 7000 -S 3
"$MK" image -o badhash.bin -V 1.2.3+4 -s 5000 -S 1 --bad-hash
head -c 5000 /dev/urandom >notimage.bin

# --- what mender-artifact writes --------------------------------------
for c in none gzip lzma; do
	"$MK" single -o single-$c.rdfm -f img.bin -t board-a -t board-b \
		-n fw-$c -V 1.2.3+4 -c $c
	accept "single, compression $c" single-$c.rdfm --json
	if has '"type":"zephyr-image"' && has '"version":"1.2.3+4"' &&
		has '"device_types":["board-a","board-b"]' &&
		has "\"sha256\":\"$(sha img.bin)\"" &&
		has "\"hash\":\"$(tlvhash img.bin)\"" &&
		has "\"size\":$(stat -c %s img.bin)" && has '"signed":false'; then
		ok "single, compression $c: JSON describes the image"
	else
		not_ok "single, compression $c: JSON" "$(cat "$T/out")"
	fi
	"$MK" group -o group-$c.rdfm -t grp-a -t grp-b -n grp-$c -V 2.0.0 \
		-c $c left=left.bin right=right.bin
	accept "group, compression $c" group-$c.rdfm --json
	if has '"type":"zephyr-group-image"' && has '"version":"2.0.0"' &&
		has "\"target\":\"left\",\"file\":\"left\",\"version\":\"2.0.0\",\"size\":$(stat -c %s left.bin),\"sha256\":\"$(sha left.bin)\",\"hash\":\"$(tlvhash left.bin)\"" &&
		has "\"target\":\"right\",\"file\":\"right\",\"version\":\"2.0.0\",\"size\":$(stat -c %s right.bin),\"sha256\":\"$(sha right.bin)\",\"hash\":\"$(tlvhash right.bin)\""; then
		ok "group, compression $c: JSON describes both members"
	else
		not_ok "group, compression $c: JSON" "$(cat "$T/out")"
	fi
done

accept "text output" single-none.rdfm
if has "type: zephyr-image" && has "device_types: board-a board-b" &&
	has "version: 1.2.3+4 (zephyr 1.2.3.4)" && has "hash: $(tlvhash img.bin)"; then
	ok "text output names type, types, versions and hash"
else
	not_ok "text output" "$(cat "$T/out")"
fi

# Meta-data and mender-artifact's default extra provides are harmless.
mkdir md && cp img.bin md/zephyr.signed.bin && echo '{"board":"rev-b"}' >md.json
mender-artifact write module-image -T zephyr-image -t board-a -n md \
	-f md/zephyr.signed.bin --provides "zephyr-image.checksum:$(sha img.bin)" \
	--provides zephyr-image.version:1.2.3+4 -m md.json --compression gzip \
	-o meta.rdfm >/dev/null
accept "meta-data and default software-version provides" meta.rdfm

# zstd: Debian's mender-artifact cannot write it, so repack.
"$MK" repack single-gzip.rdfm single-zst.rdfm -H zst -D zst
accept "single, zstd header and data" single-zst.rdfm
"$MK" repack group-lzma.rdfm group-zst.rdfm -H zst -D zst
accept "group, zstd header and data" group-zst.rdfm
"$MK" repack single-none.rdfm single-mixed.rdfm -H gz -D xz
accept "gzip header, xz data" single-mixed.rdfm

# --- signatures -------------------------------------------------------
openssl genrsa -traditional -out rsa.key 2048 2>/dev/null
openssl rsa -in rsa.key -pubout -out rsa.pub 2>/dev/null
openssl ecparam -genkey -name prime256v1 -noout -out ec.key
openssl ec -in ec.key -pubout -out ec.pub 2>/dev/null
openssl genrsa -traditional -out other.key 2048 2>/dev/null
openssl rsa -in other.key -pubout -out other.pub 2>/dev/null
for k in rsa ec; do
	"$MK" single -o signed-$k.rdfm -f img.bin -t board-a -c gzip -k $k.key
	accept "$k-signed, verified with its key" signed-$k.rdfm \
		--verify-key $k.pub --json
	if has '"signed":true' && has '"signature_verified":true'; then
		ok "$k-signed: reported as signed and verified"
	else
		not_ok "$k-signed: reported" "$(cat "$T/out")"
	fi
	accept "$k-signed, no key configured" signed-$k.rdfm
	if has "signed: yes, not checked"; then
		ok "$k-signed without key: signature reported, not checked"
	else
		not_ok "$k-signed without key" "$(cat "$T/out")"
	fi
	reject "$k-signed, wrong key" signed-$k.rdfm \
		"signature does not verify with the configured key" \
		--verify-key other.pub
done
"$MK" group -o signed-group.rdfm -t grp-a -V 2.0.0 -c lzma -k ec.key \
	left=left.bin right=right.bin
accept "group signed with ECDSA, verified" signed-group.rdfm --verify-key ec.pub
# A private key file works as the verify key too.
accept "verify key given as the private key" signed-rsa.rdfm --verify-key rsa.key
reject "unsigned artifact while a key is configured" single-gzip.rdfm \
	"artifact is not signed and a verify key is configured" \
	--verify-key rsa.pub
# Flip one signature byte (keep it base64).
mkdir sig && tar -xf signed-rsa.rdfm -C sig
# flip FILE COLUMN: change the character at COLUMN of the first line.
flip() {
	local c r=A
	c=$(head -1 "$1" | cut -c"$2")
	[ "$c" = A ] && r=B
	sed -i "1s/^\(.\{$(($2 - 1))\}\)./\1$r/" "$1"
}
flip sig/manifest.sig 20
tar -C sig --format=ustar -cf badsig.rdfm version manifest manifest.sig \
	header.tar.gz data/0000.tar.gz
reject "bad signature" badsig.rdfm "signature does not verify" \
	--verify-key rsa.pub
# The signature is over the manifest: change a line and it fails.
mkdir sig2 && tar -xf signed-ec.rdfm -C sig2
flip sig2/manifest 5
tar -C sig2 --format=ustar -cf sigmanifest.rdfm version manifest \
	manifest.sig header.tar.gz data/0000.tar.gz
reject "manifest changed after signing" sigmanifest.rdfm \
	"signature does not verify" --verify-key ec.pub

# With -c, the config's artifact_verify_key decides, as in the daemon.
cat >cfg.json <<EOF
{"server": "http://127.0.0.1:1", "key_dir": "$T/keys",
 "artifact_verify_key": "$T/ec.pub",
 "devices": [{"name": "b", "id": "b1", "dev_type": "board-a", "key": "b.key",
   "transport": {"type": "udp", "address": "127.0.0.1:1337"}}]}
EOF
mkdir -p keys
if [ -x "$BIN/rdfm-mcumgr-client" ]; then
	CFG=("$BIN/rdfm-mcumgr-client" -c cfg.json artifact inspect)
else
	CFG=("$BIN/artifact-inspect" -c cfg.json inspect)
fi
if "${CFG[@]}" signed-ec.rdfm >"$T/out" 2>"$T/err" && has "signed: yes, verified"; then
	ok "config's artifact_verify_key verifies a signed artifact"
else
	not_ok "config's artifact_verify_key" "$(cat "$T/err" "$T/out")"
fi
"${CFG[@]}" single-none.rdfm >"$T/out" 2>"$T/err"
rc=$?
if [ "$rc" -eq 1 ] && grep -q "artifact is not signed" "$T/err"; then
	ok "config's artifact_verify_key refuses an unsigned artifact"
else
	not_ok "config's artifact_verify_key refuses unsigned" "exit $rc: $(cat "$T/err")"
fi

# --- broken variants --------------------------------------------------
unpack single-none.rdfm base
unpack group-none.rdfm gbase

cp -r base v && sed -i "s/^[0-9a-f]\{8\}/00000000/" v/manifest
pack v wrongsum.rdfm
reject "wrong manifest checksum (data)" wrongsum.rdfm \
	"does not match the manifest"

rm -rf v && cp -r base v && grep -v '  header.tar' base/manifest >v/manifest
pack v nohdrsum.rdfm
reject "missing manifest checksum (header)" nohdrsum.rdfm \
	"'header.tar' is not listed in the manifest"

rm -rf v && cp -r base v && grep -v '  data/0000/' base/manifest >v/manifest
pack v nodatasum.rdfm
reject "missing manifest checksum (data)" nodatasum.rdfm \
	"'data/0000/zephyr.signed.bin' is not listed in the manifest"

rm -rf v && cp -r base v && grep -v '  version' base/manifest >v/manifest
pack v noversum.rdfm
reject "missing manifest checksum (version)" noversum.rdfm \
	"'version' is not listed in the manifest"

rm -rf v && cp -r base v && echo "$(sha img.bin)  data/0000/ghost" >>v/manifest
pack v ghost.rdfm
reject "manifest lists a file that is not there" ghost.rdfm \
	"'data/0000/ghost' listed in the manifest is missing"

rm -rf v && cp -r base v && echo x >>v/h/header-info && pack_header v
pack v hdrsum.rdfm
reject "header changed, manifest not" hdrsum.rdfm \
	"checksum of 'header.tar' does not match the manifest"

rm -rf v && cp -r base v
sed -i "s/\"zephyr-image.checksum\":\"[0-9a-f]*\"/\"zephyr-image.checksum\":\"$(sha left.bin)\"/" v/h/headers/0000/type-info
pack_header v && remanifest v && pack v wrongprov.rdfm
reject "wrong zephyr-image.checksum provides" wrongprov.rdfm \
	"zephyr-image.checksum does not match"

rm -rf v && cp -r base v
sed -i 's/"zephyr-image.version":"1.2.3+4"/"zephyr-image.version":"1.2.4"/' v/h/headers/0000/type-info
pack_header v && remanifest v && pack v wrongver.rdfm
reject "zephyr-image.version differs from the image" wrongver.rdfm \
	"is version 1.2.3+4, the artifact provides 1.2.4"

rm -rf v && cp -r base v
sed -i 's/"zephyr-image.version":"1.2.3+4"/"zephyr-image.version":"latest"/' v/h/headers/0000/type-info
pack_header v && remanifest v && pack v badver.rdfm
reject "zephyr-image.version is not a version" badver.rdfm \
	"zephyr-image.version 'latest' is not a version"

rm -rf v && cp -r gbase v
sed -i "s/\"zephyr-group-image.target.left\":\"[0-9a-f]*\"/\"zephyr-group-image.target.left\":\"$(sha right.bin)\"/" v/h/headers/0000/type-info
pack_header v && remanifest v && pack v gwrongprov.rdfm
reject "wrong zephyr-group-image.target provides" gwrongprov.rdfm \
	"zephyr-group-image.target.left does not match"

rm -rf v && cp -r gbase v && rm v/d/right && pack_data v left
remanifest v && pack v gmissing.rdfm
reject "group target without a payload file" gmissing.rdfm \
	"no payload file for target 'right'"

rm -rf v && cp -r gbase v && cp img.bin v/d/extra && pack_data v left right extra
pack v gextra.rdfm
reject "extra file not in the manifest" gextra.rdfm \
	"'data/0000/extra' is not listed in the manifest"

rm -rf v && cp -r gbase v && cp img.bin v/d/extra && pack_data v left right extra
remanifest v && pack v gextra2.rdfm
reject "extra file without target provides" gextra2.rdfm \
	"no zephyr-group-image.target.extra provides"

rm -rf v && cp -r base v && cp img.bin v/d/extra.bin
pack_data v zephyr.signed.bin extra.bin && remanifest v && pack v sextra.rdfm
reject "second file in a zephyr-image" sextra.rdfm \
	"unexpected payload file 'extra.bin'"

rm -rf v && cp -r base v && echo junk >v/extra && pack v outerextra.rdfm \
	version manifest header.tar data/0000.tar extra
reject "extra outer entry" outerextra.rdfm "unexpected entry 'extra'"

rm -rf v && cp -r base v && mkdir -p v/d/sub && mv v/d/zephyr.signed.bin v/d/sub/
pack_data v sub/zephyr.signed.bin && pack v slash.rdfm
reject "payload name with '/'" slash.rdfm "contains '/'"

rm -rf v && cp -r base v
(cd v/d && tar --format=ustar -P -cf ../data/0000.tar \
	--transform='s|zephyr.signed.bin|../zephyr.signed.bin|' zephyr.signed.bin)
pack v traversal.rdfm
reject "traversal name in data" traversal.rdfm "path traversal"

rm -rf v && cp -r base v
tar -C v --format=ustar -P -cf outertrav.rdfm version manifest \
	--transform='s|^header.tar|x/../header.tar|' header.tar data/0000.tar
reject "traversal name in the outer tar" outertrav.rdfm "path traversal"

rm -rf v && cp -r base v
tar -C v --format=ustar -P -cf absolute.rdfm "$T/v/version" manifest \
	header.tar data/0000.tar
reject "absolute name" absolute.rdfm "absolute name"

rm -rf v && cp -r base v && ln -s /etc/passwd v/d/link
pack_data v zephyr.signed.bin link && pack v symlink.rdfm
reject "symbolic link in data" symlink.rdfm "is a symbolic link"

rm -rf v && cp -r base v && ln v/d/zephyr.signed.bin v/d/hard
pack_data v zephyr.signed.bin hard && pack v hardlink.rdfm
reject "hard link in data" hardlink.rdfm "is a hard link"

sz=$(stat -c %s single-none.rdfm)
head -c $((sz - 3000)) single-none.rdfm >truncated.rdfm
reject "truncated artifact" truncated.rdfm "runcated"
head -c 1000 single-none.rdfm >truncated2.rdfm
reject "truncated in the manifest" truncated2.rdfm "runcated"

rm -rf v && cp -r base v && pack v order.rdfm manifest version header.tar \
	data/0000.tar
reject "entries out of order" order.rdfm "'version' must come first"
pack v order2.rdfm version manifest data/0000.tar header.tar
reject "data before header" order2.rdfm "before the header"
tar -C v --format=ustar --hard-dereference -cf dup.rdfm version version \
	manifest header.tar data/0000.tar
reject "duplicate entry" dup.rdfm "duplicate entry 'version'"
pack v nodata.rdfm version manifest header.tar
reject "no payload" nodata.rdfm "ends before its payload"

rm -rf v && cp -r base v && cp v/data/0000.tar v/data/0001.tar
pack v two.rdfm version manifest header.tar data/0000.tar data/0001.tar
reject "second payload tar" two.rdfm "more than one payload"

rm -rf v && cp -r base v && mkdir -p v/h/headers/0001 &&
	cp v/h/headers/0000/type-info v/h/headers/0001/ && pack_header v &&
	remanifest v && pack v twohdr.rdfm
reject "second payload header" twohdr.rdfm "more than one payload"

rm -rf v && cp -r base v
sed -i 's/"zephyr-image"/"rootfs-image"/' v/h/header-info
pack_header v && remanifest v && pack v rootfs0.rdfm
reject "rootfs-image named in header-info" rootfs0.rdfm \
	"unsupported payload type 'rootfs-image'"

cp img.bin rootfs.ext4
mender-artifact write rootfs-image -t board-a -n rootfs -f rootfs.ext4 \
	--compression none -o rootfs.rdfm >/dev/null 2>&1
reject "rootfs-image artifact from mender-artifact" rootfs.rdfm \
	"unsupported payload type 'rootfs-image'"

rm -rf v && cp -r base v && echo '{"format":"mender","version":2}' >v/version
remanifest v && pack v v2.rdfm
reject "format version 2" v2.rdfm "unsupported format version 2"
echo 'not json' >v/version && remanifest v && pack v vjunk.rdfm
reject "version file is not JSON" vjunk.rdfm "version: invalid JSON"
echo '{"format":"debian","version":3}' >v/version && remanifest v &&
	pack v vfmt.rdfm
reject "unknown format" vfmt.rdfm "unknown format 'debian'"

rm -rf v && cp -r base v
{ printf '{"payloads":[{"type":"zephyr-image"}],"x":"'; head -c 70000 /dev/zero | tr '\0' a; printf '"}'; } >v/h/header-info
pack_header v && remanifest v && pack v bighdr.rdfm
reject "oversized header-info" bighdr.rdfm "'header-info' is too large"

rm -rf v && cp -r base v && gzip -n v/header.tar && mv v/header.tar.gz v/header.tar &&
	remanifest v && pack v hdrgz.rdfm
reject "compressed header named header.tar" hdrgz.rdfm \
	"compression does not match its name"

# An xz stream asking for a huge dictionary (memory) is refused up front.
rm -rf v && cp -r base v && xz --lzma2=dict=256MiB v/header.tar &&
	sed -i 's/  header.tar$/  header.tar.xz/' v/manifest && remanifest_hdr v &&
	pack v xzbomb.rdfm version manifest header.tar.xz data/0000.tar
reject "xz header asking for a 256 MiB dictionary" xzbomb.rdfm \
	"xz stream needs 256 MiB to decompress (limit 66 MiB)"

rm -rf v && cp -r base v && cp notimage.bin v/d/zephyr.signed.bin
pack_data v zephyr.signed.bin
sed -i "s/\"zephyr-image.checksum\":\"[0-9a-f]*\"/\"zephyr-image.checksum\":\"$(sha notimage.bin)\"/" v/h/headers/0000/type-info
pack_header v && remanifest v && pack v notimage.rdfm
reject "payload that is not an MCUboot image" notimage.rdfm \
	"is not a valid MCUboot image"

"$MK" single -o badhash.rdfm -f badhash.bin -t board-a -V 1.2.3+4
reject "payload whose hash TLV is wrong" badhash.rdfm \
	"is not a valid MCUboot image"
if grep -qi "hash" "$T/err"; then
	ok "hash TLV failure names the hash"
else
	not_ok "hash TLV failure names the hash" "$(cat "$T/err")"
fi

reject "not an artifact at all" "$MK" "not a tar archive"
"${INSPECT[@]}" >/dev/null 2>&1
check "usage error exits 2" test $? -eq 2

done_testing
