#!/bin/bash
# End to end, groups that take the update or are refused before any board
# is touched: a group of two (serial + UDP, one self-confirming) and of
# three (UDP), both with --once; members on different versions without a
# journal entry are refused naming each version; an artifact without one
# member's image is refused and no member is touched.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../e2e-lib.sh"
. "$(dirname "$0")/e2e_group_lib.bash"

e2e_server --auto-approve || exit 1

# --- a group of two: serial (confirmed by us) and UDP (self-confirming) ---
group_images 2.0.0 10 a b
group_artifact "$T/g2.rdfm" gtwo 2.0.0 a="$T/a.new.bin" b="$T/b.new.bin"
e2e_package "$T/g2.rdfm" 2.0.0 gtwo >/dev/null
e2e_board a serial "$T/a.old.bin" || exit 1
e2e_board b udp "$T/b.old.bin" --self-confirm --confirm-ms 400 || exit 1
group_config "$T/g2.json" '{}' two:gtwo a b:self
e2e_run g2 -c "$T/g2.json" --once
L=$T/g2.log
check "group of two: --once exits 0" [ "$RC" -eq 0 ]
check "group of two: Update successful with new_version" \
	grep -q 'msg="Update successful" group="two" members=2 new_version=2.0.0' "$L"
check "group of two: the version went to the server once all agreed" \
	grep -q 'msg="Update offered" group="two" running=1.0.0 ' "$L"
# Packages are offered by device type: the offer proves the group's type.
check "group of two: the group was offered its type's package under its id" \
	[ "$(jq -c 'select(.path == "/api/v1/update/check" and .status == 200 and .device == "id-two")' "$SLOG" | wc -l)" -ge 1 ]
check "group of two: member a runs its new image, confirmed" \
	on_image a "${NEW_HASH[a]}"
check "group of two: member b runs its new image, confirmed" \
	on_image b "${NEW_HASH[b]}"
check "group of two: the self-confirming member was watched" \
	grep -q 'Waiting for the group member to confirm the new image.*member="b"' "$L"
check "group of two: the commit came after every member ran the new image" \
	awk '/msg="The group member runs the new image"/ {n++}
		/committing/ {exit !(n == 2)}' "$L"
check "group of two: each member reset once" \
	[ "$(board_field a .counters.resets):$(board_field b .counters.resets)" = 1:1 ]
check "group of two: no ERROR line" [ "$(count "$L" 'level=ERROR')" -eq 0 ]
[ "$RC" -eq 0 ] || show_log "$L"
e2e_run g2b -c "$T/g2.json" --once
check "group of two, again: up to date at 2.0.0" \
	grep -q 'msg="Up to date" group="two" version=2.0.0' "$T/g2b.log"
e2e_board_stop a
e2e_board_stop b

# --- a group of three over UDP, all confirmed by us ---
group_images 3.1.0+2 20 c d e
group_artifact "$T/g3.rdfm" gthree 3.1.0+2 c="$T/c.new.bin" \
	d="$T/d.new.bin" e="$T/e.new.bin"
e2e_package "$T/g3.rdfm" 3.1.0+2 gthree >/dev/null
for b in c d e; do e2e_board $b udp "$T/$b.old.bin" || exit 1; done
group_config "$T/g3.json" '{}' three:gthree c d e
e2e_run g3 -c "$T/g3.json" --once
L=$T/g3.log
check "group of three: --once exits 0" [ "$RC" -eq 0 ]
check "group of three: Update successful with new_version" \
	grep -q 'msg="Update successful" group="three" members=3 new_version=3.1.0+2' "$L"
for b in c d e; do
	check "group of three: member $b runs its new image, confirmed" \
		on_image $b "${NEW_HASH[$b]}"
	check "group of three: member $b keeps its old image in slot 1" \
		[ "$(slot $b 1 hash)" = "${OLD_HASH[$b]}" ]
done
check "group of three: the uploads overlapped (all started before one ended)" \
	awk '/Uploading the new image/ {s++} /Upload finished/ {exit !(s == 3)}' "$L"
[ "$RC" -eq 0 ] || show_log "$L"

# --- a BLE member (the simulator's ATT socket) and a UDP one, next to a
# single device in the same supervisor ---
group_images 2.0.0 50 k l
group_artifact "$T/gb.rdfm" gble 2.0.0 k="$T/k.new.bin" l="$T/l.new.bin"
e2e_package "$T/gb.rdfm" 2.0.0 gble >/dev/null
e2e_image "$T/s.new.bin" 2.0.0 60
e2e_artifact "$T/s.rdfm" "$T/s.new.bin" tsingle 2.0.0
e2e_package "$T/s.rdfm" 2.0.0 tsingle >/dev/null
e2e_board k ble "$T/k.old.bin" --self-confirm --confirm-ms 300 || exit 1
e2e_board l udp "$T/l.old.bin" || exit 1
e2e_board s udp "$T/k.old.bin" || exit 1
e2e_config "$T/single.json" -- s:tsingle
group_config "$T/gb.json" "$(jq -c '{devices}' "$T/single.json")" \
	bl:gble k:self l
e2e_run gb -c "$T/gb.json" --once
L=$T/gb.log
check "BLE member and a device: --once exits 0" [ "$RC" -eq 0 ]
check "BLE member: the group's update succeeded" \
	grep -q 'msg="Update successful" group="bl" members=2 new_version=2.0.0' "$L"
check "BLE member: k (BLE) runs its new image, confirmed" \
	on_image k "${NEW_HASH[k]}"
check "BLE member: l (UDP) runs its new image, confirmed" \
	on_image l "${NEW_HASH[l]}"
check "the single device next to the group was updated too" \
	eval 'grep -q "msg=\"Update successful\" device=\"s\" new_version=2.0.0" "$L" &&
	on_image s "$(image_hash "$T/s.new.bin")"'
[ "$RC" -eq 0 ] || show_log "$L"
for b in k l s; do e2e_board_stop $b; done

# --- members disagree at start-up: refused, each version named ---
group_images 2.0.0 30 f g
e2e_image "$T/g.other.bin" 1.5.0 99
group_artifact "$T/gd.rdfm" gdis 2.0.0 f="$T/f.new.bin" g="$T/g.new.bin"
e2e_package "$T/gd.rdfm" 2.0.0 gdis >/dev/null
e2e_board f udp "$T/f.old.bin" || exit 1
e2e_board g udp "$T/g.other.bin" || exit 1
group_config "$T/gd.json" "{\"state_dir\": \"$T/state-dis\"}" dis:gdis f g
e2e_run gd -c "$T/gd.json" --once
L=$T/gd.log
check "disagreeing members: --once exits non-zero" [ "$RC" -ne 0 ]
check "disagreeing members: one ERROR naming each member's version" \
	grep -q 'level=ERROR msg="Update failed" group="dis" phase=read reason=".*different versions (f=1.0.0 g=1.5.0)' "$L"
check "disagreeing members: the server was not asked" \
	[ "$(jq -c 'select(.device == "id-dis")' "$SLOG" | wc -l)" -eq 0 ]
check "disagreeing members: no member touched" \
	[ "$(board_field f .counters.resets):$(board_field g .counters.resets):$(slot f 1 hash):$(slot g 1 hash)" = "0:0:null:null" ]
e2e_board_stop f
e2e_board_stop g

# --- the artifact lacks a member's image: refused, nobody touched ---
group_images 2.0.0 40 h i j
group_artifact "$T/gm.rdfm" gmiss 2.0.0 h="$T/h.new.bin" i="$T/i.new.bin"
e2e_package "$T/gm.rdfm" 2.0.0 gmiss >/dev/null
for b in h i j; do e2e_board $b udp "$T/$b.old.bin" || exit 1; done
group_config "$T/gm.json" "{\"state_dir\": \"$T/state-miss\"}" miss:gmiss h i j
e2e_run gm -c "$T/gm.json" --once
L=$T/gm.log
check "missing image: --once exits non-zero" [ "$RC" -ne 0 ]
check "missing image: refused naming the member and its image" \
	grep -q 'msg="Update failed" group="miss" phase=artifact reason="artifact refused: no image for member j (image \\"img-j\\"); no member was touched"' "$L"
for b in h i j; do
	check "missing image: member $b untouched" \
		[ "$(board_field $b .counters.resets):$(slot $b 1 hash):$(board_field $b .upload.offset)" = "0:null:0" ]
done
check "missing image: nothing uploaded" \
	[ "$(count "$L" 'Uploading the new image')" -eq 0 ]
[ "$RC" -ne 0 ] || show_log "$L"

done_testing
