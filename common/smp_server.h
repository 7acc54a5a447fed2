/*
 * The board side of SMP for the virtual board: request decoding and
 * response encoding shaped as Zephyr's MCUmgr shapes them.  Linked into
 * the simulator and its tests only, never into a worker.
 */
#ifndef SMP_SERVER_H
#define SMP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "smp.h"

/*
 * Server side (virtual board).  A request decoded by smp_req_decode();
 * pointers point into the packet.  Unknown extra keys are ignored.
 */
struct smp_request {
	struct smp_hdr hdr;
	union {
		struct {
			char text[SMP_ECHO_MAX];
		} echo;
		struct {
			bool has_hash;
			uint8_t hash[SMP_HASH_LEN];
			bool confirm;
		} state;
		struct {
			bool has_image, has_len, has_off, has_sha;
			uint32_t image, len, off;
			size_t sha_len; /* Zephyr accepts up to 32 bytes */
			uint8_t sha[SMP_HASH_LEN];
			const uint8_t *data;
			size_t data_len;
		} upload;
		struct {
			bool has_slot;
			uint32_t slot;
		} erase;
	} u;
};

/*
 * Decode a request.  Returns SMP_OK (also for a group/id it does not know:
 * the caller answers "not supported"), or a negative smp_status.
 */
int smp_req_decode(const uint8_t *pkt, size_t len, struct smp_request *req);

struct smp_rsp_opts {
	int version;        /* SMP version of the reply header and error form */
	bool definite_maps; /* false: indefinite-length maps as Zephyr */
	bool no_image_key;  /* image list entries without "image", as a
	                       single-image Zephyr 3.2 writes them */
};

/*
 * Response builders: header fields copied from the request header, op
 * turned into the matching response op, version from opts.  Maps (and the
 * image array) are indefinite-length unless definite_maps.
 *
 * smp_rspb_error(): v1 writes {"rc": rc, "rsn": rsn} (rsn left out when
 * NULL or empty).  v2 writes {"err": {"group": G, "rc": smp_rc_to_v2()},
 * "rsn": rsn} when the refusal has a group-specific code, and otherwise
 * {"rc": rc, "rsn": rsn} as Zephyr does for generic errors (not supported,
 * message too large...) in v2 too.
 */
/*
 * The v1 codes the virtual board uses mapped to Zephyr's IMG_MGMT_ERR_*
 * for the same refusal; -1 when there is no group-specific code:
 *   image upload: 3 (magic mismatch) -> 23 invalid image header magic,
 *     5 (no slot) -> 9 no free slot, 6 -> 28 image already pending,
 *     2 -> 15 no free memory;
 *   image state write: 3 or 5 (hash in no slot) -> 8 hash not found,
 *     6 -> 28 image already pending;
 *   image erase: 6 (slot in use) -> 9 no free slot.
 */
int smp_rc_to_v2(uint16_t group, uint8_t id, int rc);

ssize_t smp_rspb_error(uint8_t *buf, size_t cap, const struct smp_hdr *req,
                       const struct smp_rsp_opts *o, int rc, const char *rsn);
ssize_t smp_rspb_empty(uint8_t *buf, size_t cap, const struct smp_hdr *req,
                       const struct smp_rsp_opts *o);
ssize_t smp_rspb_echo(uint8_t *buf, size_t cap, const struct smp_hdr *req,
                      const struct smp_rsp_opts *o, const char *text);
ssize_t smp_rspb_params(uint8_t *buf, size_t cap, const struct smp_hdr *req,
                        const struct smp_rsp_opts *o,
                        const struct smp_params *p);
ssize_t smp_rspb_image_state(uint8_t *buf, size_t cap,
                             const struct smp_hdr *req,
                             const struct smp_rsp_opts *o,
                             const struct smp_image_list *list);
ssize_t smp_rspb_image_upload(uint8_t *buf, size_t cap,
                              const struct smp_hdr *req,
                              const struct smp_rsp_opts *o,
                              const struct smp_upload_rsp *rsp);

#endif
