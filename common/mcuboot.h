/*
 * MCUboot image reader (docs/design.md "MCUboot images"): header, version
 * spellings, TLV areas and the SHA-256 hash TLV that a board reports as the
 * image hash.  Pure: works on memory, or streamed piece by piece so a large
 * image is never held whole.
 */
#ifndef MCUBOOT_H
#define MCUBOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MCUBOOT_MAGIC        0x96f3b83dU
#define MCUBOOT_HDR_LEN      32
#define MCUBOOT_TLV_MAGIC    0x6907
#define MCUBOOT_PTLV_MAGIC   0x6908
#define MCUBOOT_TLV_SHA256   0x10
#define MCUBOOT_HASH_LEN     32
#define MCUBOOT_VERSION_MAX  32 /* longest spelling incl. NUL */
#define MCUBOOT_TLV_AREA_MAX 65535

struct mcuboot_version {
	uint8_t major;
	uint8_t minor;
	uint16_t revision;
	uint32_t build;
};

enum mcuboot_spelling {
	MCUBOOT_SPELL_IMGTOOL, /* 1.2.3+4, always with +B */
	MCUBOOT_SPELL_RDFM,    /* 1.2.3+4, 2.0.0 (no +0) */
	MCUBOOT_SPELL_ZEPHYR,  /* 1.2.3.4, 2.0.0 (.B only when B != 0) */
};

struct mcuboot_image {
	uint32_t load_addr;
	uint16_t hdr_size;
	uint16_t protect_tlv_size;
	uint32_t img_size;
	uint32_t flags;
	struct mcuboot_version version;
	uint8_t hash[MCUBOOT_HASH_LEN]; /* the SHA-256 TLV, checked */
	size_t image_len; /* hdr_size + img_size + both TLV areas */
	/*
	 * false for encrypted images (flags 0x04/0x08): imgtool hashes the
	 * plaintext, so the TLV cannot be checked against the file; the board
	 * still reports that hash.
	 */
	bool hash_checked;
};

/* Versions. */
void mcuboot_version_format(const struct mcuboot_version *v,
                            enum mcuboot_spelling s, char *buf, size_t cap);
/* Accepts all three spellings; returns 0 or -1. */
int mcuboot_version_parse(const char *s, struct mcuboot_version *v);
/* Convert any spelling into another; returns 0 or -1. */
int mcuboot_version_convert(const char *in, enum mcuboot_spelling s, char *out,
                            size_t cap);

/*
 * Parse and verify a whole image in memory: magic, sizes, TLV areas, and
 * the hash TLV against SHA-256 over header + body + protected TLVs.
 * Returns 0, or -1 with a reason in err (err may be NULL).  Data after the
 * TLV area is an error: imgtool writes none unless it pads an image for a
 * slot, and such a file is not an upload image.
 */
int mcuboot_parse(const uint8_t *buf, size_t len, struct mcuboot_image *img,
                  char *err, size_t errcap);

/*
 * The same, streamed: feed the file in pieces of any size, then finish.
 * Memory stays bounded (header and TLV areas only) whatever the size.
 */
struct mcuboot_stream;
struct mcuboot_stream *mcuboot_stream_new(void);
void mcuboot_stream_free(struct mcuboot_stream *s);
/* Returns 0, or -1 with a reason in err (the stream is then unusable). */
int mcuboot_stream_feed(struct mcuboot_stream *s, const uint8_t *data,
                        size_t len, char *err, size_t errcap);
int mcuboot_stream_finish(struct mcuboot_stream *s, struct mcuboot_image *img,
                          char *err, size_t errcap);

#endif
