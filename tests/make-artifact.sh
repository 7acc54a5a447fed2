#!/bin/bash
# Builds MCUboot test images and RDFM/Mender artifacts for tests and demos,
# with Debian's mender-artifact as the (independent) artifact writer.
#
#   make-artifact.sh image -o FILE [-V VERSION] [-s SIZE] [-S SEED] [--bad-hash]
#       An MCUboot image (imgtool layout: 0x200 header, body, TLV area with
#       the SHA-256 hash TLV).  VERSION in imgtool spelling (default
#       1.2.3+4), SIZE body bytes (default 4096), SEED picks the body bytes
#       (default 1).  Uses $BIN/mcuboot-mkimage when it exists; --bad-hash
#       (always written here) stores a hash TLV that does not match.
#
#   make-artifact.sh single -o OUT -f IMAGE -t TYPE [-t TYPE...] [-n NAME]
#       [-V VERSION] [-c none|gzip|lzma] [-k SIGNKEY.pem]
#       A zephyr-image artifact: one payload, zephyr.signed.bin, provides
#       zephyr-image.checksum and zephyr-image.version = VERSION (default
#       1.2.3+4; it must match the image's own version to be accepted).
#       NAME defaults to the OUT file name; compression defaults to none
#       (what RDFM writes).  SIGNKEY: an RSA key in PKCS#1 PEM (`openssl
#       genrsa -traditional`: mender-artifact 3.9 cannot read PKCS#8) or an
#       EC P-256 key (`openssl ecparam -genkey -name prime256v1 -noout`).
#
#   make-artifact.sh group -o OUT -t TYPE [-t TYPE...] [-n NAME] [-V VERSION]
#       [-c none|gzip|lzma] [-k SIGNKEY.pem] MEMBER=IMAGE [MEMBER=IMAGE...]
#       A zephyr-group-image artifact: one payload file per member, named
#       after the member's `device`, with zephyr-group-image.version and
#       zephyr-group-image.target.MEMBER = sha256 of that file.
#
#   make-artifact.sh repack IN OUT [-H none|gz|xz|zst] [-D none|gz|xz|zst]
#       Unpacks IN and writes OUT with header.tar and data/0000.tar
#       (re)compressed as asked (default: as they were), updating the
#       manifest's header checksum and dropping any manifest.sig.  Mender's
#       Debian build cannot write zstd; this can.
set -euo pipefail

die() {
	echo "make-artifact.sh: $*" >&2
	exit 2
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

# le N BYTES: N as little-endian, BYTES wide, in printf escapes.
le() {
	local v=$1 n=$2 i out=
	for ((i = 0; i < n; i++)); do
		out+=$(printf '\\x%02x' $((v & 0xff)))
		v=$((v >> 8))
	done
	printf '%s' "$out"
}

# Body bytes: an AES-CTR keystream from the seed, so the same seed gives
# the same image and different seeds different hashes.
body() {
	local size=$1 seed=$2
	(openssl enc -aes-128-ctr -nosalt -pass "pass:mcuboot-seed-$seed" \
		-pbkdf2 </dev/zero 2>/dev/null || true) | head -c "$size"
}

cmd_image() {
	local out= ver=1.2.3+4 size=4096 seed=1 bad=0 maj min rev bld mk
	while [ $# -gt 0 ]; do
		case $1 in
		-o) out=$2; shift 2 ;;
		-V) ver=$2; shift 2 ;;
		-s) size=$2; shift 2 ;;
		-S) seed=$2; shift 2 ;;
		--bad-hash) bad=1; shift ;;
		*) die "image: unknown argument $1" ;;
		esac
	done
	[ -n "$out" ] || die "image: -o FILE is required"
	mk=${BIN:-}/mcuboot-mkimage
	if [ "$bad" -eq 0 ] && [ -n "${BIN:-}" ] && [ -x "$mk" ]; then
		"$mk" --version "$ver" --size "$size" --seed "$seed" -o "$out"
		return
	fi
	[[ $ver =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)([+.]([0-9]+))?$ ]] ||
		die "image: bad version $ver"
	maj=${BASH_REMATCH[1]} min=${BASH_REMATCH[2]}
	rev=${BASH_REMATCH[3]} bld=${BASH_REMATCH[5]:-0}
	local tmp
	tmp=$(mktemp)
	{
		printf "$(le $((0x96f3b83d)) 4)$(le 0 4)$(le 512 2)$(le 0 2)"
		printf "$(le "$size" 4)$(le 0 4)"
		printf "$(le "$maj" 1)$(le "$min" 1)$(le "$rev" 2)$(le "$bld" 4)"
		printf "$(le 0 4)"
		head -c $((512 - 32)) /dev/zero
		body "$size" "$seed"
	} >"$tmp"
	local h
	h=$(sha256sum "$tmp" | cut -d' ' -f1)
	if [ "$bad" -eq 1 ]; then
		h=$(printf '%s' "$h" | tr '0-9a-f' '1-9a-f0')
	fi
	{
		cat "$tmp"
		printf "$(le $((0x6907)) 2)$(le 40 2)$(le $((0x10)) 2)$(le 32 2)"
		printf '%s' "$h" | sed 's/../\\x&/g' | xargs -0 printf
	} >"$out"
	rm -f "$tmp"
}

# Common option parsing for single/group; sets globals.
parse_write_opts() {
	out= name= ver=1.2.3+4 comp=none key= types=() files=() members=()
	image=
	while [ $# -gt 0 ]; do
		case $1 in
		-o) out=$2; shift 2 ;;
		-f) image=$2; shift 2 ;;
		-t) types+=(-t "$2"); shift 2 ;;
		-n) name=$2; shift 2 ;;
		-V) ver=$2; shift 2 ;;
		-c) comp=$2; shift 2 ;;
		-k) key=$2; shift 2 ;;
		*=*) members+=("$1"); shift ;;
		*) die "unknown argument $1" ;;
		esac
	done
	[ -n "$out" ] || die "-o OUT is required"
	[ ${#types[@]} -gt 0 ] || die "at least one -t TYPE is required"
	[ -n "$name" ] || name=$(basename "$out")
}

write_artifact() {
	local sign=()
	[ -n "$key" ] && sign=(-k "$key")
	rm -f "$out"
	mender-artifact write module-image "$@" "${types[@]}" -n "$name" \
		--no-default-software-version --no-default-clears-provides \
		--compression "$comp" "${sign[@]}" -o "$out" >/dev/null
}

cmd_single() {
	parse_write_opts "$@"
	[ -n "$image" ] || die "single: -f IMAGE is required"
	[ ${#members[@]} -eq 0 ] || die "single: no MEMBER=IMAGE arguments"
	local dir
	dir=$(mktemp -d)
	cp "$image" "$dir/zephyr.signed.bin"
	write_artifact -T zephyr-image -f "$dir/zephyr.signed.bin" \
		--provides "zephyr-image.checksum:$(sha "$image")" \
		--provides "zephyr-image.version:$ver"
	rm -rf "$dir"
}

cmd_group() {
	parse_write_opts "$@"
	[ ${#members[@]} -gt 0 ] || die "group: MEMBER=IMAGE arguments needed"
	local dir m args=()
	dir=$(mktemp -d)
	for m in "${members[@]}"; do
		cp "${m#*=}" "$dir/${m%%=*}"
		args+=(-f "$dir/${m%%=*}" --provides
			"zephyr-group-image.target.${m%%=*}:$(sha "${m#*=}")")
	done
	write_artifact -T zephyr-group-image "${args[@]}" \
		--provides "zephyr-group-image.version:$ver"
	rm -rf "$dir"
}

# compress KIND FILE: FILE -> FILE.ext (none: unchanged); prints the name.
compress() {
	case $1 in
	none) echo "$2" ;;
	gz) gzip -n -c "$2" >"$2.gz" && rm "$2" && echo "$2.gz" ;;
	xz) xz -c "$2" >"$2.xz" && rm "$2" && echo "$2.xz" ;;
	zst) zstd -q -c "$2" >"$2.zst" && rm "$2" && echo "$2.zst" ;;
	*) die "repack: unknown compression $1" ;;
	esac
}

decompress() {
	case $1 in
	*.gz) gzip -dc "$1" ;;
	*.xz) xz -dc "$1" ;;
	*.zst) zstd -q -dc "$1" ;;
	*) cat "$1" ;;
	esac
}

ext_of() {
	case $1 in
	*.gz) echo gz ;; *.xz) echo xz ;; *.zst) echo zst ;; *) echo none ;;
	esac
}

cmd_repack() {
	local in=${1:?repack IN OUT} out=${2:?repack IN OUT} hc= dc= dir h d
	shift 2
	while [ $# -gt 0 ]; do
		case $1 in
		-H) hc=$2; shift 2 ;;
		-D) dc=$2; shift 2 ;;
		*) die "repack: unknown argument $1" ;;
		esac
	done
	dir=$(mktemp -d)
	tar --warning=no-timestamp -xf "$in" -C "$dir"
	h=$(cd "$dir" && ls header.tar*)
	d=$(cd "$dir" && ls data/0000.tar*)
	[ -n "$hc" ] || hc=$(ext_of "$h")
	[ -n "$dc" ] || dc=$(ext_of "$d")
	decompress "$dir/$h" >"$dir/header.tar.plain"
	decompress "$dir/$d" >"$dir/data.tar.plain"
	rm -f "$dir/$h" "$dir/$d" "$dir/manifest.sig"
	mv "$dir/header.tar.plain" "$dir/header.tar"
	mv "$dir/data.tar.plain" "$dir/data/0000.tar"
	h=$(basename "$(compress "$hc" "$dir/header.tar")")
	d=data/$(basename "$(compress "$dc" "$dir/data/0000.tar")")
	grep -v '  header\.tar' "$dir/manifest" >"$dir/manifest.new" || true
	(cd "$dir" && sha256sum "$h") | sed 's/ \*/  /' >>"$dir/manifest.new"
	sort -k2 "$dir/manifest.new" >"$dir/manifest"
	rm "$dir/manifest.new"
	pack "$dir" "$out" version manifest "$h" "$d"
	rm -rf "$dir"
}

# pack DIR OUT ENTRY...: an outer artifact tar with entries in that order.
pack() {
	local dir=$1 out=$2
	shift 2
	tar -C "$dir" --format=ustar --owner=0 --group=0 --numeric-owner \
		--mtime=@0 -cf "$out" "$@"
}

case ${1:-} in
image) shift; cmd_image "$@" ;;
single) shift; cmd_single "$@" ;;
group) shift; cmd_group "$@" ;;
repack) shift; cmd_repack "$@" ;;
*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
