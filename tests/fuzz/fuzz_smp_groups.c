/*
 * libFuzzer target for the group decoders (smp_groups.h): whatever tree a
 * board's reply makes, every decoder refuses it with a reason or gives
 * values that stay inside the tree (strings end where the tree says).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "smp_groups.h"
#include "smp_tree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c))                                                      \
			__builtin_trap();                                      \
	} while (0)

static const struct smp_tree *cur;

/* A string from a decoder lies in the tree's data and is terminated. */
static void
in_tree(const void *p, size_t n)
{
	const uint8_t *b = p;

	CHECK(b >= cur->data && b + n < cur->data + cur->data_len);
	CHECK(b[n] == '\0');
}

static void
cstr(const char *s)
{
	if (s != NULL)
		in_tree(s, strlen(s));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smpg_taskstat ts;
	struct smpg_mpstat ms;
	struct smpg_bootloader bl;
	struct smpg_stat_list sl;
	struct smpg_stat_show ss;
	struct smpg_shell sh;
	struct smpg_fs_chunk ch;
	struct smpg_fs_hash fh;
	struct smp_image_list il;
	struct smp_tree t;
	const char *s;
	char why[160];
	uint64_t v;
	size_t i;

	if (smp_tree_from_cbor(data, size, &t, why, sizeof(why)) == -1)
		return 0;
	cur = &t;
	if (smpg_dec_taskstat(&t, &ts, why, sizeof(why)) == 0) {
		for (i = 0; i < ts.n; i++)
			cstr(ts.tasks[i].name);
		smpg_taskstat_free(&ts);
	}
	if (smpg_dec_mpstat(&t, &ms, why, sizeof(why)) == 0) {
		for (i = 0; i < ms.n; i++)
			cstr(ms.pools[i].name);
		smpg_mpstat_free(&ms);
	}
	if (smpg_dec_os_info(&t, &s, why, sizeof(why)) == 0)
		cstr(s);
	if (smpg_dec_datetime(&t, &s, why, sizeof(why)) == 0)
		cstr(s);
	if (smpg_dec_bootloader(&t, &bl, why, sizeof(why)) == 0) {
		cstr(bl.bootloader);
		(void)smpg_mcuboot_mode_name(bl.mode);
	}
	if (smpg_dec_stat_list(&t, &sl, why, sizeof(why)) == 0) {
		for (i = 0; i < sl.n; i++)
			cstr(sl.names[i]);
		smpg_stat_list_free(&sl);
	}
	if (smpg_dec_stat_show(&t, &ss, why, sizeof(why)) == 0) {
		cstr(ss.name);
		for (i = 0; i < ss.n; i++)
			cstr(ss.fields[i].name);
		smpg_stat_show_free(&ss);
	}
	if (smpg_dec_shell(&t, &sh, why, sizeof(why)) == 0)
		in_tree(sh.out, sh.out_len);
	(void)smpg_dec_fs_upload(&t, &v, why, sizeof(why));
	if (smpg_dec_fs_download(&t, &ch, why, sizeof(why)) == 0)
		in_tree(ch.data, ch.len);
	(void)smpg_dec_fs_stat(&t, &v, why, sizeof(why));
	if (smpg_dec_fs_hash(&t, &fh, why, sizeof(why)) == 0) {
		cstr(fh.type);
		if (fh.is_bytes)
			in_tree(fh.bytes, fh.nbytes);
	}
	if (smpg_dec_image_state(&t, &il, why, sizeof(why)) == 0) {
		CHECK(il.n <= SMP_MAX_SLOTS);
		for (i = 0; i < il.n; i++)
			CHECK(memchr(il.slots[i].version, '\0',
			             sizeof(il.slots[i].version)) != NULL);
	}
	smp_tree_free(&t);
	return 0;
}
