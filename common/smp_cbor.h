/*
 * The CBOR layer under the SMP codecs (smp.c for the client side,
 * smp_server.c for the virtual board, and the codecs of the other groups):
 * a streaming reader with typed field getters that check types and ranges
 * and name the field in their errors, the response skeleton every reply
 * shares (rc, rsn, the v2 err map), and a bounded encoder.  Internal to
 * the codecs: callers outside common/ use smp.h.
 */
#ifndef SMP_CBOR_H
#define SMP_CBOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "smp.h"

/* Longest map key we look at; longer keys are unknown by construction. */
#define CB_KEY_MAX 16
/* smp_parse_rsp(): accept any group or command id. */
#define SMP_ID_ANY -1

enum cb_type {
	CB_OTHER, /* a scalar we have no use for (float, simple value) */
	CB_UINT,
	CB_NEGINT, /* value is -1 - v */
	CB_BSTR,
	CB_TSTR,
	CB_BSTR_INDEF,
	CB_TSTR_INDEF,
	CB_ARRAY,
	CB_ARRAY_INDEF,
	CB_MAP,
	CB_MAP_INDEF,
	CB_TAG,
	CB_BOOL,
	CB_NULL,
	CB_BREAK,
};

struct cb_item {
	enum cb_type t;
	uint64_t v; /* integer value, container count, tag */
	const uint8_t *p;
	size_t n; /* string bytes */
	bool b;
};

struct cb_rd {
	const uint8_t *p;
	size_t len;
	size_t pos;
};

/* Iterating over a map's text keys. */
struct cb_map {
	struct cb_rd *r;
	bool indef;
	uint64_t left;
};

/*
 * A field callback for smp_parse_rsp(): reads the value of a key it knows
 * and returns SMP_OK, or 1 for a key it does not know (skipped), or a
 * negative status.
 */
typedef int (*field_fn)(struct cb_rd *r, const char *key, void *arg);

/* The CBOR writer; with buf NULL it only counts. */
struct enc {
	uint8_t *buf;
	size_t cap;
	size_t pos;
	bool full;
};

/* Record why a parse or build failed (smp_error_detail()); returns status. */
int smp_fail(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Decode a header and check the payload length against the packet. */
int smp_hdr_check(const uint8_t *pkt, size_t len, struct smp_hdr *h);

/* Reading: one item head; skipping the rest of an item or a whole one. */
int cb_next(struct cb_rd *r, struct cb_item *it);
int cb_skip(struct cb_rd *r);
/* A text or byte string whose head is it (with dst: up to cap bytes). */
int cb_collect(struct cb_rd *r, const struct cb_item *it, enum cb_type want,
               uint8_t *dst, size_t cap, size_t *n);
/* Typed values; name is the field's name in error details. */
int cb_get_uint(struct cb_rd *r, const char *name, uint64_t max, uint64_t *out);
int cb_get_u32(struct cb_rd *r, const char *name, uint32_t *out);
int cb_get_int(struct cb_rd *r, const char *name, int *out);
int cb_get_bool(struct cb_rd *r, const char *name, bool *out);
/* truncate: a longer string is cut to cap - 1 instead of an error. */
int cb_get_text(struct cb_rd *r, const char *name, char *dst, size_t cap,
                bool truncate);
int cb_get_bytes(struct cb_rd *r, const char *name, uint8_t *dst, size_t cap,
                 size_t *n);
int cb_get_bytes_ref(struct cb_rd *r, const char *name, const uint8_t **p,
                     size_t *n);
/* Maps with text keys; top: the map is the whole payload (may be empty). */
int cb_map_open(struct cb_rd *r, struct cb_map *m, const char *what, bool top);
/* 1 with the key (empty: not a short text key, skip the value), 0 at end. */
int cb_map_next(struct cb_map *m, char *key);
int cb_payload_end(const struct cb_rd *r);
/* Each known key may appear once: bit is its flag in *seen. */
int cb_seen_once(unsigned int *seen, unsigned int bit, const char *key);

/*
 * A response: header checks (op, group, id unless SMP_ID_ANY), then every
 * key of the payload map; rc, rsn and err are handled here, everything
 * else goes to fn.  SMP_E_BOARD with *err filled when the board refused.
 */
int smp_parse_rsp(const uint8_t *pkt, size_t len, int group, int id,
                  struct smp_err *err, field_fn fn, void *arg);

/* Writing. */
void enc_start(struct enc *e, uint8_t *buf, size_t cap);
void enc_uint(struct enc *e, uint64_t v);
void enc_int(struct enc *e, int v);
void enc_bool(struct enc *e, bool b);
void enc_tstr(struct enc *e, const char *s);
void enc_bstr(struct enc *e, const uint8_t *p, size_t n);
void enc_map(struct enc *e, size_t n, bool indef);
void enc_array(struct enc *e, size_t n, bool indef);
void enc_end(struct enc *e, bool indef);
/* Header in front of what was written; the packet length, or -1. */
ssize_t enc_finish(struct enc *e, uint8_t op, int ver, uint16_t group,
                   uint8_t seq, uint8_t id);
/* ver is SMP_V1 or SMP_V2 (else records why and returns 0). */
int smp_ver_ok(int ver);

#endif
