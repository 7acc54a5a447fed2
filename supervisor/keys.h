/*
 * Device and group keys: RSA private keys on disk (the Go client's files
 * included), generated where missing, used to sign RDFM auth requests.
 */
#ifndef KEYS_H
#define KEYS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

#define KEYS_RSA_BITS 3072

/*
 * Load an RSA private key from a PEM file: PKCS#1 ("RSA PRIVATE KEY"),
 * PKCS#8 ("PRIVATE KEY") or the Go client's PKCS#1 under "PRIVATE KEY".
 * Warns when the file is readable by group or others.  NULL + err on
 * failure (missing, unreadable, not a key, not RSA).
 */
EVP_PKEY *keys_load(const char *path, char *err, size_t errcap);

/*
 * As keys_load; when the file does not exist, generate an RSA-3072 key and
 * write it atomically (parent directory created 0700, file 0600, temp +
 * fsync + rename + fsync of the directory).  *generated tells which.
 */
EVP_PKEY *keys_load_or_generate(const char *path, bool *generated, char *err,
                                size_t errcap);

/*
 * A key is generated once, at the first start of a device that has none.
 * The client remembers every key it has used (state_dir/identity/, one
 * small record per key file): a key file that is missing but remembered
 * has disappeared, and a new key would make the device a new, unapproved
 * identity on the server while the old one may still be in use.
 */
enum keys_presence {
	KEYS_PRESENT,     /* the file exists (usable or not: keys_load says) */
	KEYS_FIRST_START, /* no file, never used here: generate one */
	KEYS_DISAPPEARED, /* no file, but this client has used it */
};

/*
 * What is at path, a key file inside key_dir.  A missing file whose record
 * cannot be read (state_dir not readable by this user) counts as a first
 * start: only the daemon's own view, with its state_dir, decides.
 */
enum keys_presence keys_presence(const char *state_dir, const char *path);

/*
 * The daemon's start: load the key at path, which must be a file directly
 * inside key_dir; generate it only at a first start (keys_presence), and
 * remember it either way.  A disappeared key is an error naming the file
 * and what to do.  *generated tells whether it is new.
 */
EVP_PKEY *keys_load_for_device(const char *state_dir, const char *key_dir,
                               const char *path, bool *generated, char *err,
                               size_t errcap);

/* SHA-256, PKCS#1 v1.5.  0 on success; the caller frees *sig with free(). */
int keys_sign(EVP_PKEY *key, const void *data, size_t len, unsigned char **sig,
              size_t *siglen);

/*
 * The public key exactly as the Go client sends it (docs/design.md "RDFM device
 * API"): PKCS#1 RSAPublicKey DER under a "PUBLIC KEY" label, 64-character
 * lines, trailing newline.  The caller frees it with free().  NULL on error.
 */
char *keys_public_pem(EVP_PKEY *key);

#endif
