#!/bin/bash
# Integration test of build/mcuboot-mkimage: the bytes it writes (header
# fields, TLV areas), its hash against `openssl dgst` over the hashed byte
# range, determinism, --body/--protected-tlv/--pad-to, reading images back
# with --print-hash, and errors for bad arguments.
. "$(dirname "$0")/../lib.sh"

MK=$BIN/mcuboot-mkimage

# hexat FILE OFF LEN: those bytes as lowercase hex.
hexat() {
	xxd -p -s "$2" -l "$3" "$1" | tr -d '\n'
}

# sha_head FILE N: SHA-256 hex of the first N bytes.
sha_head() {
	head -c "$2" "$1" | openssl dgst -sha256 -r | cut -d' ' -f1
}

fsize() {
	stat -c %s "$1"
}

# reads_back FILE: the tool accepts FILE as an image.
reads_back() {
	"$MK" --print-hash "$1" >/dev/null 2>&1
}

# --- the basic image -------------------------------------------------------
h=$("$MK" --version 1.2.3+4 --size 1000 --seed 7 -o "$T/a.bin" --print-hash)
check "writes an image" test -s "$T/a.bin"
check "file size = hdr 0x200 + body + 40-byte TLV area" \
	test "$(fsize "$T/a.bin")" -eq $((512 + 1000 + 40))
# magic 3db8f396, load 0, hdr_size 0x0200, ptlv 0, img_size 1000 = e8030000,
# flags 0, version 01 02 0300 04000000, pad 0.
hdr=3db8f396 hdr+=00000000 hdr+=0002 hdr+=0000 hdr+=e8030000 hdr+=00000000
hdr+=01020300 hdr+=04000000 hdr+=00000000
check "header bytes" test "$(hexat "$T/a.bin" 0 32)" = "$hdr"
check "header padded with zeros" \
	test "$(hexat "$T/a.bin" 32 480 | tr -d 0)" = ""
check "printed hash = openssl over header + body" \
	test "$h" = "$(sha_head "$T/a.bin" 1512)"
check "TLV area: 6907, total 40, type 0x10, len 32, hash" \
	test "$(hexat "$T/a.bin" 1512 40)" = "0769280010002000$h"
check "--print-hash FILE reads it back" \
	test "$("$MK" --print-hash "$T/a.bin")" = "$h"

# --- determinism and version spellings -------------------------------------
"$MK" --version 1.2.3.4 --size 1000 --seed 7 -o "$T/b.bin"
check "1.2.3.4 and 1.2.3+4 write the same file" cmp -s "$T/a.bin" "$T/b.bin"
"$MK" --version 1.2.3+4 --size 1000 --seed 8 -o "$T/c.bin"
check_fails "another seed gives another body" cmp -s "$T/a.bin" "$T/c.bin"
"$MK" --version 2.0.0 --size 10 -o "$T/d.bin"
check "2.0.0 has build 0" test "$(hexat "$T/d.bin" 20 8)" = "0200000000000000"
"$MK" --version 255.255.65535+4294967295 --size 10 -o "$T/e.bin"
check "largest version" test "$(hexat "$T/e.bin" 20 8)" = "ffffffffffffffff"

# --- options ---------------------------------------------------------------
"$MK" --size 10 --load-addr 0x8000 --hdr-size 0x20 -o "$T/f.bin"
check "--load-addr" test "$(hexat "$T/f.bin" 4 4)" = "00800000"
check "--hdr-size 0x20" test "$(hexat "$T/f.bin" 8 2)" = "2000"
check "--hdr-size 0x20: body right after the header" \
	test "$(fsize "$T/f.bin")" -eq $((32 + 10 + 40))

head -c 3000 /dev/urandom >"$T/body"
"$MK" --body "$T/body" -o "$T/g.bin"
check "--body: img_size" test "$(hexat "$T/g.bin" 12 4)" = "b80b0000"
tail -c +513 "$T/g.bin" | head -c 3000 >"$T/g.body"
check "--body: the body is the file" cmp -s "$T/body" "$T/g.body"

h=$("$MK" --size 100 --protected-tlv 0x50:01000000 \
	--protected-tlv 0x60: -o "$T/p.bin" --print-hash)
# 4 (info) + 4 + 4 (security counter) + 4 (empty 0x60) = 16 = 0x10.
check "--protected-tlv: protect_tlv_size" \
	test "$(hexat "$T/p.bin" 10 2)" = "1000"
check "--protected-tlv: the area" \
	test "$(hexat "$T/p.bin" 612 16)" = "0869100050000400010000006000"0000
check "--protected-tlv: hash covers header + body + protected area" \
	test "$h" = "$(sha_head "$T/p.bin" $((612 + 16)))"
check "--protected-tlv: SHA-256 TLV after it" \
	test "$(hexat "$T/p.bin" 628 40)" = "0769280010002000$h"

"$MK" --size 100 --pad-to 4096 -o "$T/pad.bin"
check "--pad-to: file size" test "$(fsize "$T/pad.bin")" -eq 4096
check "--pad-to: img_size includes the padding" \
	test "$(hexat "$T/pad.bin" 12 4)" = "$(printf '%02x%02x0000' \
	$(((4096 - 552) & 255)) $(((4096 - 552) >> 8)))"
check "--pad-to: padded with 0xff" \
	test "$(hexat "$T/pad.bin" $((512 + 100)) $((4096 - 552 - 100)) | tr -d f)" = ""
check "--pad-to: reads back" reads_back "$T/pad.bin"

"$MK" --version 9.9.9 --size $((8 << 20)) --seed 3 -o "$T/big.bin"
check "8 MiB image reads back" reads_back "$T/big.bin"

# --- reading damaged images ------------------------------------------------
cp "$T/a.bin" "$T/bad.bin"
printf '\x00' | dd of="$T/bad.bin" bs=1 seek=600 conv=notrunc 2>/dev/null
if "$MK" --print-hash "$T/bad.bin" 2>"$T/err"; then
	not_ok "a changed body byte is caught" "accepted"
else
	check "a changed body byte is caught" grep -q "hash mismatch" "$T/err"
fi
head -c 1000 "$T/a.bin" >"$T/short.bin"
if "$MK" --print-hash "$T/short.bin" 2>"$T/err"; then
	not_ok "a truncated image is caught" "accepted"
else
	check "a truncated image is caught" grep -q "truncated" "$T/err"
fi
cat "$T/a.bin" "$T/a.bin" >"$T/twice.bin"
check_fails "trailing data is refused" reads_back "$T/twice.bin"
check_fails "a missing file is refused" reads_back "$T/nonexistent"

# --- bad arguments ---------------------------------------------------------
# bad_args NAME WORD ARGS...: fails, says WORD on stderr, leaves no output.
bad_args() {
	local name=$1 word=$2
	shift 2
	rm -f "$T/out.bin"
	if "$MK" "$@" 2>"$T/err" >/dev/null; then
		not_ok "$name" "accepted: $*"
	elif ! grep -q -- "$word" "$T/err"; then
		not_ok "$name" "stderr does not mention '$word': $(cat "$T/err")"
	elif [ -e "$T/out.bin" ]; then
		not_ok "$name" "left an output file"
	else
		ok "$name"
	fi
}
bad_args "version 1.2" --version --version 1.2 --size 1 -o "$T/out.bin"
bad_args "version 256.0.0" --version --version 256.0.0 --size 1 -o "$T/out.bin"
bad_args "version build 2^32" --version --version 1.0.0+4294967296 --size 1 -o "$T/out.bin"
bad_args "hdr-size below 32" --hdr-size --hdr-size 16 --size 1 -o "$T/out.bin"
bad_args "hdr-size above 65535" --hdr-size --hdr-size 0x10000 --size 1 -o "$T/out.bin"
bad_args "size not a number" --size --size abc -o "$T/out.bin"
bad_args "negative size" --size --size -1 -o "$T/out.bin"
bad_args "size above u32" --size --size 0x100000000 -o "$T/out.bin"
bad_args "no -o" "-o FILE" --size 1
bad_args "neither size nor body" "--size" -o "$T/out.bin"
bad_args "both size and body" "--size" --size 1 --body "$T/body" -o "$T/out.bin"
bad_args "missing body file" "$T/none" --body "$T/none" -o "$T/out.bin"
bad_args "protected TLV without colon" "TYPE:HEX" --protected-tlv 0x50 --size 1 -o "$T/out.bin"
bad_args "protected TLV bad hex" "bad hex" --protected-tlv 0x50:zz --size 1 -o "$T/out.bin"
bad_args "protected TLV type too big" "type" --protected-tlv 0x10000:00 --size 1 -o "$T/out.bin"
bad_args "protected SHA-256 TLV" "0x10" --protected-tlv 0x10:00 --size 1 -o "$T/out.bin"
bad_args "pad-to too small" "--pad-to" --pad-to 100 --size 1 -o "$T/out.bin"
bad_args "unknown option" "usage" --frobnicate -o "$T/out.bin"
bad_args "extra argument" "unexpected" --size 1 -o "$T/out.bin" extra

done_testing
