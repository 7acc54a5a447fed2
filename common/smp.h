/*
 * SMP (MCUmgr Simple Management Protocol) message codecs: pure functions
 * that encode requests and decode responses for the client side (workers).
 * The board side (the virtual board's) is smp_server.h; the CBOR layer both
 * share is smp_cbor.h.  No I/O; CBOR through libcbor.  Wire facts:
 * docs/design.md, "SMP".
 *
 * Conventions: builders write a whole packet (8-byte header + CBOR payload)
 * into buf and return its length, or -1 when it does not fit in cap (or an
 * argument is invalid: a version other than SMP_V1/SMP_V2, NULL data).
 * Parsers take a whole packet and return SMP_OK, a negative smp_status when
 * the packet is malformed, or SMP_E_BOARD when it is well-formed but carries
 * an error (rc != 0 or a v2 "err" map), described in *err.
 * smp_error_detail() then says what was wrong ("\"off\" is not an unsigned
 * integer", "packet does not fit 64 bytes").
 *
 * Parsers accept definite and indefinite-length maps, arrays and strings,
 * integers of any width (values too big for the field are SMP_E_RANGE),
 * unknown keys (skipped, however nested, up to 16 levels: deeper is
 * SMP_E_CBOR), an empty payload as an empty map, and either SMP version in
 * any reply.  A known key given twice is SMP_E_CBOR.  Nothing allocates.
 */
#ifndef SMP_H
#define SMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SMP_HDR_SIZE       8
#define SMP_MAX_PACKET     (65535 + SMP_HDR_SIZE)
#define SMP_HASH_LEN       32
#define SMP_MAX_SLOTS      8
#define SMP_VERSION_STRLEN 32
#define SMP_RSN_STRLEN     64
#define SMP_ECHO_MAX       256

enum smp_op {
	SMP_OP_READ = 0,
	SMP_OP_READ_RSP = 1,
	SMP_OP_WRITE = 2,
	SMP_OP_WRITE_RSP = 3,
};

#define SMP_V1 0
#define SMP_V2 1

#define SMP_GROUP_OS    0
#define SMP_GROUP_IMAGE 1

#define SMP_OS_ECHO      0
#define SMP_OS_RESET     5
#define SMP_OS_PARAMS    6
#define SMP_IMAGE_STATE  0
#define SMP_IMAGE_UPLOAD 1
#define SMP_IMAGE_ERASE  5

/* v1 "rc" values (MGMT_ERR_*). */
enum smp_rc {
	SMP_RC_OK = 0,
	SMP_RC_UNKNOWN = 1,
	SMP_RC_NOMEM = 2,
	SMP_RC_INVAL = 3,
	SMP_RC_TIMEOUT = 4,
	SMP_RC_NOENT = 5,
	SMP_RC_BADSTATE = 6,
	SMP_RC_MSGSIZE = 7,
	SMP_RC_NOTSUP = 8,
	SMP_RC_CORRUPT = 9,
	SMP_RC_BUSY = 10,
	SMP_RC_ACCESS_DENIED = 11,
};

enum smp_status {
	SMP_OK = 0,
	SMP_E_BOARD = -1,   /* well-formed reply carrying an error: see err */
	SMP_E_SHORT = -2,   /* shorter than its header says */
	SMP_E_HEADER = -3,  /* bad op, version, group/id mismatch */
	SMP_E_CBOR = -4,    /* payload is not one well-formed CBOR map */
	SMP_E_TYPE = -5,    /* a field has the wrong type */
	SMP_E_MISSING = -6, /* a required field is absent */
	SMP_E_RANGE = -7,   /* a value is out of range (too long, too big) */
	SMP_E_NOSPACE = -8, /* builder: does not fit the buffer */
};

struct smp_hdr {
	uint8_t op;      /* enum smp_op */
	uint8_t version; /* SMP_V1 or SMP_V2 */
	uint8_t flags;
	uint16_t len; /* payload length */
	uint16_t group;
	uint8_t seq;
	uint8_t id;
};

/* An error reported by the board, in either protocol version. */
struct smp_err {
	bool v2;        /* came as {"err": {"group", "rc"}} */
	uint16_t group; /* v2 only */
	int rc;
	char rsn[SMP_RSN_STRLEN]; /* v1 "rsn" text, may be empty */
};

struct smp_params {
	uint32_t buf_size;
	uint32_t buf_count;
};

struct smp_image_slot {
	uint32_t image;
	uint32_t slot;
	char version[SMP_VERSION_STRLEN]; /* Zephyr spelling, "1.2.3.4" */
	bool has_hash;
	uint8_t hash[SMP_HASH_LEN];
	bool bootable, pending, confirmed, active, permanent;
};

struct smp_image_list {
	size_t n;
	struct smp_image_slot slots[SMP_MAX_SLOTS];
};

struct smp_upload_rsp {
	uint32_t off;
	bool has_match;
	bool match;
};

/* What one upload request carries (first packet: first = true). */
struct smp_upload_req {
	bool first;
	uint32_t image;     /* first only */
	uint32_t len;       /* total image length, first only */
	const uint8_t *sha; /* SHA-256 of the whole file, first only, or NULL */
	uint32_t off;
	const uint8_t *data;
	size_t data_len;
};

/* Header. */
void smp_hdr_encode(const struct smp_hdr *h, uint8_t out[SMP_HDR_SIZE]);
int smp_hdr_decode(const uint8_t *buf, size_t len, struct smp_hdr *h);
/* Bytes a whole packet needs given its first 8 bytes, or 0 if < 8 given. */
size_t smp_packet_len(const uint8_t *buf, size_t len);

/* Client side: request builders (ver is SMP_V1 or SMP_V2). */
ssize_t smp_req_echo(uint8_t *buf, size_t cap, int ver, uint8_t seq,
                     const char *text);
ssize_t smp_req_reset(uint8_t *buf, size_t cap, int ver, uint8_t seq);
ssize_t smp_req_params(uint8_t *buf, size_t cap, int ver, uint8_t seq);
ssize_t smp_req_image_state_read(uint8_t *buf, size_t cap, int ver,
                                 uint8_t seq);
/* hash NULL with confirm = true: confirm the running image. */
ssize_t smp_req_image_state_write(uint8_t *buf, size_t cap, int ver,
                                  uint8_t seq, const uint8_t *hash,
                                  bool confirm);
ssize_t smp_req_image_upload(uint8_t *buf, size_t cap, int ver, uint8_t seq,
                             const struct smp_upload_req *req);
ssize_t smp_req_image_erase(uint8_t *buf, size_t cap, int ver, uint8_t seq);

/* Client side: response parsers.  err may be NULL. */
int smp_rsp_echo(const uint8_t *pkt, size_t len, struct smp_err *err,
                 char *text, size_t textcap);
int smp_rsp_params(const uint8_t *pkt, size_t len, struct smp_err *err,
                   struct smp_params *p);
int smp_rsp_image_state(const uint8_t *pkt, size_t len, struct smp_err *err,
                        struct smp_image_list *list);
int smp_rsp_image_upload(const uint8_t *pkt, size_t len, struct smp_err *err,
                         struct smp_upload_rsp *rsp);
/* Replies with no fields of interest (reset, erase). */
int smp_rsp_empty(const uint8_t *pkt, size_t len, struct smp_err *err);

/*
 * Why the last parse or build in this thread failed (names the field and
 * the problem).  Valid until the next call into this module.
 */
const char *smp_error_detail(void);

/* Readable names. */
const char *smp_status_str(int status);
const char *smp_rc_str(int rc); /* v1 rc: "invalid value" ... */
/* v2 group codes (OS_MGMT_ERR_*, IMG_MGMT_ERR_*): "no free slot" ... */
const char *smp_group_rc_str(uint16_t group, int rc);
/*
 * "rc 3 (invalid value): magic mismatch", or the v2 form
 * "image group rc 9 (no free slot): no slot".
 */
const char *smp_err_str(const struct smp_err *err, char *buf, size_t cap);

/*
 * Upload planner.  pkt_limit is the largest whole SMP packet (header and
 * CBOR included) the board takes: see smp_pkt_limit().  The plan gives the
 * largest data chunk for the first packet and for the others such that
 * every packet of an image of image_len bytes stays within pkt_limit, and
 * the pipeline window (buf_count - 1, at least 1; 1 when buf_count is 0).
 * Sizes are measured with the real encoder: the first packet with image
 * number 0..23, len = image_len, off = 0 and a 32-byte sha; the others with
 * the largest offset they can carry (image_len - 1).  The chunks are not
 * capped at image_len: the caller sends min(chunk, bytes left).  Returns
 * SMP_OK, or SMP_E_RANGE when pkt_limit leaves no room for one data byte.
 */
struct smp_upload_plan {
	size_t pkt_limit;
	size_t first_chunk;
	size_t chunk;
	unsigned int window;
};

#define SMP_DEFAULT_PKT_LIMIT 128 /* when nothing better is known */

/*
 * have_params: the board answered the parameters command.  serial: buf_size
 * also holds 2 bytes of length and 2 of CRC.  cfg_mtu: the configured
 * serial mtu (0 if none).
 */
size_t smp_pkt_limit(bool have_params, const struct smp_params *p, bool serial,
                     size_t cfg_mtu);
int smp_plan_upload(size_t pkt_limit, unsigned int buf_count, int ver,
                    uint32_t image_len, struct smp_upload_plan *plan);

#endif
