/*
 * libFuzzer target for the MCUboot reader: the in-memory and the streamed
 * reader (fed in uneven pieces) must agree on every input, and a version
 * they report must survive each spelling and back.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mcuboot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Field by field: struct padding is not part of the answer. */
static int
same_image(const struct mcuboot_image *a, const struct mcuboot_image *b)
{
	return a->load_addr == b->load_addr && a->hdr_size == b->hdr_size &&
	       a->protect_tlv_size == b->protect_tlv_size &&
	       a->img_size == b->img_size && a->flags == b->flags &&
	       a->version.major == b->version.major &&
	       a->version.minor == b->version.minor &&
	       a->version.revision == b->version.revision &&
	       a->version.build == b->version.build &&
	       memcmp(a->hash, b->hash, sizeof(a->hash)) == 0 &&
	       a->image_len == b->image_len &&
	       a->hash_checked == b->hash_checked;
}

static void
check_version(const struct mcuboot_version *v)
{
	static const enum mcuboot_spelling sp[] = {
	    MCUBOOT_SPELL_IMGTOOL, MCUBOOT_SPELL_RDFM, MCUBOOT_SPELL_ZEPHYR};
	struct mcuboot_version back;
	char buf[MCUBOOT_VERSION_MAX];
	size_t i;

	for (i = 0; i < sizeof(sp) / sizeof(sp[0]); i++) {
		mcuboot_version_format(v, sp[i], buf, sizeof(buf));
		if (mcuboot_version_parse(buf, &back) != 0 ||
		    back.major != v->major || back.minor != v->minor ||
		    back.revision != v->revision || back.build != v->build)
			__builtin_trap();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mcuboot_image a, b;
	struct mcuboot_stream *s;
	char err[256];
	size_t off, n, step = 1;
	int ra, rb = 0;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	ra = mcuboot_parse(data, size, &a, err, sizeof(err));
	s = mcuboot_stream_new();
	for (off = 0; off < size && rb == 0; off += n) {
		/* Pieces of 1, 2, 4, ... 64 bytes, over and over. */
		n = size - off < step ? size - off : step;
		step = step >= 64 ? 1 : step * 2;
		rb = mcuboot_stream_feed(s, data + off, n, err, sizeof(err));
	}
	if (rb == 0)
		rb = mcuboot_stream_finish(s, &b, err, sizeof(err));
	mcuboot_stream_free(s);
	if (ra != rb)
		__builtin_trap();
	if (ra == 0) {
		if (!same_image(&a, &b) || a.image_len != size)
			__builtin_trap();
		check_version(&a.version);
	}
	return 0;
}
