/*
 * Mender v3 artifact reader (docs/design.md "Artifacts"): one streaming pass
 * over the outer tar that checks every manifest checksum and the signature,
 * parses the headers, and writes zephyr-image / zephyr-group-image payloads
 * into a spool directory while hashing and MCUboot-validating them.
 */
#ifndef ARTIFACT_H
#define ARTIFACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "mcuboot.h"

#define ARTIFACT_JSON_MAX     (64 * 1024) /* header-info, type-info, ... */
#define ARTIFACT_MANIFEST_MAX (64 * 1024)
#define ARTIFACT_SIG_MAX      4096 /* base64 text of manifest.sig */
#define ARTIFACT_MAX_IMAGES   32   /* payload files (group members) */
#define ARTIFACT_NAME_MAX     255
#define ARTIFACT_SHA256_HEX   65 /* 64 hex digits and a NUL */

enum artifact_type {
	ARTIFACT_ZEPHYR_IMAGE,       /* one image for a device type */
	ARTIFACT_ZEPHYR_GROUP_IMAGE, /* one image per group member */
};

struct artifact_image {
	char *target; /* group member `device` name; NULL in zephyr-image */
	char *file;   /* payload file name: zephyr.signed.bin or the target */
	char *path;   /* where it was extracted; NULL when not extracted */
	uint64_t size;
	uint8_t sha256[32]; /* of the whole file: the upload's `sha` */
	char sha256_hex[ARTIFACT_SHA256_HEX];
	struct mcuboot_image mcuboot;       /* header fields and the TLV hash */
	char hash_hex[ARTIFACT_SHA256_HEX]; /* TLV hash: what the board reports
	                                     */
	char version_imgtool[MCUBOOT_VERSION_MAX]; /* 1.2.3+4 */
	char version_rdfm[MCUBOOT_VERSION_MAX];    /* 1.2.3+4, 2.0.0 */
	char version_zephyr[MCUBOOT_VERSION_MAX];  /* 1.2.3.4, 2.0.0 */
};

struct artifact {
	char format[8]; /* "mender" or "rdfm" */
	int format_version;
	char *name; /* artifact_provides.artifact_name */
	enum artifact_type type;
	char *version; /* zephyr-[group-]image.version as written */
	char **device_types;
	size_t ndevice_types;
	bool is_signed;    /* manifest.sig present */
	bool sig_verified; /* ... and verified with the configured key */
	struct artifact_image *images;
	size_t nimages;
};

struct artifact_opts {
	/*
	 * Directory (in the spool) to write payload files into, as
	 * extract_dir/<file> (0600, fsync'ed); NULL only verifies.  Give
	 * each artifact a directory of its own: group payload files are
	 * named after their targets, and files of the same name are
	 * replaced.  On error nothing extracted is left behind.
	 */
	const char *extract_dir;
	/*
	 * Public key (artifact_verify_key) that manifest.sig must verify
	 * with; an unsigned artifact is then refused.  NULL: a signature is
	 * reported and not checked.
	 */
	EVP_PKEY *verify_key;
	/*
	 * When not NULL, set to the errno of a failure of this host (the
	 * disk is full, no descriptors left, the spool file vanished), 0
	 * when the failure was the artifact's: only the latter is a reason
	 * to give up on it.
	 */
	int *local_errno;
};

/*
 * Read an artifact in one pass.  Returns 0 and a new artifact in *out, or
 * -1 with the reason in err (*out is then NULL).
 */
int artifact_read_file(const char *path, const struct artifact_opts *opts,
                       struct artifact **out, char *err, size_t errcap);
int artifact_read_memory(const void *buf, size_t len,
                         const struct artifact_opts *opts,
                         struct artifact **out, char *err, size_t errcap);

/* Frees the struct; extracted files stay (see artifact_remove_files). */
void artifact_free(struct artifact *a);
/* Unlinks the files the artifact was extracted to. */
void artifact_remove_files(const struct artifact *a);

const char *artifact_type_name(enum artifact_type t);
/* Does the artifact declare device_type (or group type) as compatible? */
bool artifact_compatible(const struct artifact *a, const char *device_type);
/* The image for a group member's `device` name, or NULL. */
const struct artifact_image *artifact_image_for(const struct artifact *a,
                                                const char *target);

/*
 * Load a verify key from a PEM file: a public key (SPKI or PKCS#1 RSA) or
 * a private key, whose public half is used.  RSA (PKCS#1 v1.5 SHA-256) and
 * ECDSA P-256 (SHA-256), as mender-artifact signs.  NULL with err on
 * failure.
 */
EVP_PKEY *artifact_key_load(const char *path, char *err, size_t errcap);

/* cmd_artifact.c: `rdfm-mcumgr-client artifact inspect FILE [--json]`. */
int cmd_artifact(int argc, char **argv);

#endif
