/*
 * RSA device keys with OpenSSL 3's EVP API: load what the Go client wrote,
 * generate what is missing without ever leaving a partial file, sign auth
 * requests, and export the public key byte for byte as the Go client did.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "keys.h"
#include "log.h"
#include "xmalloc.h"

#define KEY_FILE_MAX (64 * 1024)

static void
ssl_err(char *err, size_t errcap, const char *path, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	if (e != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		snprintf(err, errcap, "%s: %s (%s)", path, what, buf);
	} else
		snprintf(err, errcap, "%s: %s", path, what);
	ERR_clear_error();
}

/* The whole file, checked for size; warns about loose permissions. */
static char *
read_key_file(const char *path, size_t *len, char *err, size_t errcap)
{
	struct stat st;
	char *buf;
	ssize_t r;
	size_t off = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		snprintf(err, errcap, "%s: cannot read key: %s", path,
		         strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size > KEY_FILE_MAX) {
		snprintf(err, errcap, "%s: cannot read key: %s", path,
		         !S_ISREG(st.st_mode)
		             ? "not a regular file"
		             : "larger than 64 KiB, not a key file");
		close(fd);
		return NULL;
	}
	if ((st.st_mode & 077) != 0)
		log_warnx("Key file is readable by group or others; "
		          "chmod 600 it",
		          "path=%s mode=%04o", log_q(path),
		          (unsigned int)(st.st_mode & 07777));
	buf = xmalloc((size_t)st.st_size + 1);
	while (off < (size_t)st.st_size) {
		r = read(fd, buf + off, (size_t)st.st_size - off);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(err, errcap, "%s: cannot read key: %s", path,
			         r == 0 ? "file shrank" : strerror(errno));
			free(buf);
			close(fd);
			return NULL;
		}
		off += (size_t)r;
	}
	close(fd);
	buf[off] = '\0';
	*len = off;
	return buf;
}

static EVP_PKEY *
decode_key(const char *path, const char *pem, size_t len, char *err,
           size_t errcap)
{
	EVP_PKEY *pkey = NULL;
	BIO *bio;
	char *name = NULL, *header = NULL;
	unsigned char *der = NULL;
	const unsigned char *p;
	long derlen = 0;

	if (len > INT_MAX || (bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		snprintf(err, errcap, "%s: cannot read key", path);
		return NULL;
	}
	if (!PEM_read_bio(bio, &name, &header, &der, &derlen)) {
		BIO_free(bio);
		ERR_clear_error();
		snprintf(err, errcap,
		         "%s: not a PEM key file (expected "
		         "\"-----BEGIN PRIVATE KEY-----\" or \"-----BEGIN RSA "
		         "PRIVATE KEY-----\")",
		         path);
		return NULL;
	}
	BIO_free(bio);
	if (strcmp(name, "ENCRYPTED PRIVATE KEY") == 0 ||
	    strstr(header, "ENCRYPTED") != NULL)
		snprintf(err, errcap,
		         "%s: the key is encrypted; a device key "
		         "must be stored without a passphrase",
		         path);
	else if (strcmp(name, "PRIVATE KEY") != 0 &&
	         strcmp(name, "RSA PRIVATE KEY") != 0)
		snprintf(err, errcap,
		         "%s: \"%s\" is not an RSA private key "
		         "(expected PKCS#1 or PKCS#8 PEM)",
		         path, name);
	else {
		/*
		 * d2i_AutoPrivateKey tries PKCS#8 and the type-specific
		 * forms, so it also reads the Go client's PKCS#1 body under
		 * a "PRIVATE KEY" label.
		 */
		p = der;
		pkey = d2i_AutoPrivateKey(NULL, &p, derlen);
		if (pkey == NULL)
			ssl_err(err, errcap, path,
			        "cannot decode the private "
			        "key");
		else if (!EVP_PKEY_is_a(pkey, "RSA")) {
			snprintf(err, errcap,
			         "%s: a %s key, expected an RSA "
			         "key",
			         path,
			         EVP_PKEY_get0_type_name(pkey) != NULL
			             ? EVP_PKEY_get0_type_name(pkey)
			             : "non-RSA");
			EVP_PKEY_free(pkey);
			pkey = NULL;
		}
	}
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_clear_free(der, (size_t)derlen);
	return pkey;
}

EVP_PKEY *
keys_load(const char *path, char *err, size_t errcap)
{
	EVP_PKEY *pkey;
	char *pem;
	size_t len;

	if ((pem = read_key_file(path, &len, err, errcap)) == NULL)
		return NULL;
	pkey = decode_key(path, pem, len, err, errcap);
	OPENSSL_cleanse(pem, len);
	free(pem);
	if (pkey != NULL && EVP_PKEY_get_bits(pkey) < 2048)
		log_warnx("Device key is shorter than 2048 bits",
		          "path=%s "
		          "bits=%d",
		          log_q(path), EVP_PKEY_get_bits(pkey));
	return pkey;
}

/* mkdir -p with mode 0700 for what we create. */
static int
make_dirs(const char *dir, char *err, size_t errcap)
{
	char buf[PATH_MAX], *s, c;
	struct stat st;

	if (snprintf(buf, sizeof(buf), "%s", dir) >= (int)sizeof(buf)) {
		snprintf(err, errcap, "%s: path too long", dir);
		return -1;
	}
	for (s = buf + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		c = *s;
		*s = '\0';
		if (mkdir(buf, 0700) == -1 && errno != EEXIST) {
			snprintf(err, errcap,
			         "%s: cannot create key directory: "
			         "%s",
			         buf, strerror(errno));
			return -1;
		}
		if (c == '\0')
			break;
		*s = c;
	}
	if (stat(dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errcap, "%s: not a directory", dir);
		return -1;
	}
	return 0;
}

static int
write_all(int fd, const char *buf, size_t len)
{
	ssize_t r;

	while (len > 0) {
		if ((r = write(fd, buf, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += r;
		len -= (size_t)r;
	}
	return 0;
}

/*
 * Write the key as PKCS#8 PEM to a temporary file next to path, fsync it,
 * rename it into place and fsync the directory: after a crash there is
 * either no key or a whole one.  Returns 1 when another process created
 * the file first (ours is dropped), 0 when written, -1 on error.
 */
static int
store_key(const char *path, EVP_PKEY *pkey, char *err, size_t errcap)
{
	char *tmp, *dircopy, *dir, *pem;
	BIO *bio;
	long len;
	int fd, dfd, rc = -1;

	dircopy = xstrdup(path);
	dir = dirname(dircopy);
	if (make_dirs(dir, err, errcap) == -1) {
		free(dircopy);
		return -1;
	}
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    !PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL)) {
		BIO_free(bio);
		ssl_err(err, errcap, path, "cannot encode the new key");
		free(dircopy);
		return -1;
	}
	len = BIO_get_mem_data(bio, &pem);
	xasprintf(&tmp, "%s.tmp.XXXXXX", path);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1) {
		snprintf(err, errcap, "%s: cannot create key file: %s", tmp,
		         strerror(errno));
		goto out;
	}
	if (fchmod(fd, 0600) == -1 || write_all(fd, pem, (size_t)len) == -1 ||
	    fsync(fd) == -1) {
		snprintf(err, errcap, "%s: cannot write key file: %s", tmp,
		         strerror(errno));
		close(fd);
		unlink(tmp);
		goto out;
	}
	close(fd);
	/* Never replace a key someone else just wrote: it may be approved. */
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == -1) {
		if (errno == EEXIST) {
			unlink(tmp);
			rc = 1;
			goto out;
		}
		if ((errno != EINVAL && errno != ENOSYS) ||
		    rename(tmp, path) == -1) {
			snprintf(err, errcap,
			         "%s: cannot rename key file into "
			         "place: %s",
			         path, strerror(errno));
			unlink(tmp);
			goto out;
		}
	}
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    fsync(dfd) == -1) {
		snprintf(err, errcap, "%s: cannot sync key directory: %s", dir,
		         strerror(errno));
		if (dfd != -1)
			close(dfd);
		goto out;
	}
	close(dfd);
	rc = 0;
out:
	BIO_free(bio); /* BIO_s_mem frees with cleanse-free semantics */
	free(tmp);
	free(dircopy);
	return rc;
}

EVP_PKEY *
keys_load_or_generate(const char *path, bool *generated, char *err,
                      size_t errcap)
{
	EVP_PKEY *pkey;
	struct stat st;
	int rc;

	*generated = false;
	if (lstat(path, &st) == 0 || errno != ENOENT)
		return keys_load(path, err, errcap);
	pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)KEYS_RSA_BITS);
	if (pkey == NULL) {
		ssl_err(err, errcap, path, "cannot generate an RSA key");
		return NULL;
	}
	rc = store_key(path, pkey, err, errcap);
	if (rc == 1) {
		EVP_PKEY_free(pkey);
		return keys_load(path, err, errcap);
	}
	if (rc == -1) {
		EVP_PKEY_free(pkey);
		return NULL;
	}
	*generated = true;
	log_info("Generated device key", "path=%s bits=%d", log_q(path),
	         KEYS_RSA_BITS);
	return pkey;
}

/* --- which keys this client has used ------------------------------------- */

#define IDENTITY_DIR "identity"

static void
hex(const unsigned char *in, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", in[i]);
}

/* state_dir/identity/<sha256 of the key's path>: the path is its name. */
static char *
record_path(const char *state_dir, const char *path)
{
	unsigned char md[32];
	char h[65], *s;

	SHA256((const unsigned char *)path, strlen(path), md);
	hex(md, sizeof(md), h);
	xasprintf(&s, "%s/" IDENTITY_DIR "/%s", state_dir, h);
	return s;
}

/* The SHA-256 of the public key, as hex: what identifies the device. */
static int
key_fingerprint(EVP_PKEY *key, char out[65])
{
	unsigned char *der = NULL, md[32];
	int len;

	if ((len = i2d_PUBKEY(key, &der)) <= 0) {
		ERR_clear_error();
		return -1;
	}
	SHA256(der, (size_t)len, md);
	OPENSSL_free(der);
	hex(md, sizeof(md), out);
	return 0;
}

enum keys_presence
keys_presence(const char *state_dir, const char *path)
{
	struct stat st;
	char *rec;
	int known;

	if (lstat(path, &st) == 0 || errno != ENOENT)
		return KEYS_PRESENT;
	rec = record_path(state_dir, path);
	known = lstat(rec, &st) == 0;
	free(rec);
	return known ? KEYS_DISAPPEARED : KEYS_FIRST_START;
}

/* The fingerprint stored in a record, or "" when there is none. */
static void
read_record(const char *rec, char fp[65])
{
	char buf[PATH_MAX + 128], *nl;
	size_t n;
	FILE *f;

	fp[0] = '\0';
	if ((f = fopen(rec, "re")) == NULL)
		return;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* "path\nfingerprint\n" */
	if ((nl = strchr(buf, '\n')) != NULL && strlen(nl + 1) >= 64) {
		memcpy(fp, nl + 1, 64);
		fp[64] = '\0';
	}
}

/*
 * Record that the key at path is in use.  A record for another key at the
 * same path is replaced with a warning: the server will see a new identity.
 * 0, or -1 with err.
 */
static int
keys_remember(const char *state_dir, const char *path, EVP_PKEY *key, char *err,
              size_t errcap)
{
	char fp[65], old[65], *rec, *dir, *tmp, *body;
	int fd, rc = -1;

	if (key_fingerprint(key, fp) == -1) {
		snprintf(err, errcap,
		         "%s: cannot compute the key's fingerprint", path);
		return -1;
	}
	rec = record_path(state_dir, path);
	read_record(rec, old);
	if (strcmp(old, fp) == 0) {
		free(rec);
		return 0;
	}
	if (old[0] != '\0')
		log_warnx("Device key differs from the one used before; the "
		          "server sees a new identity",
		          "path=%s", log_q(path));
	xasprintf(&dir, "%s/" IDENTITY_DIR, state_dir);
	xasprintf(&tmp, "%s.tmp.XXXXXX", rec);
	xasprintf(&body, "%s\n%s\n", path, fp);
	if (make_dirs(dir, err, errcap) == -1)
		goto out;
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1 || fchmod(fd, 0600) == -1 ||
	    write_all(fd, body, strlen(body)) == -1 || fsync(fd) == -1) {
		snprintf(err, errcap, "%s: cannot record the key in use: %s",
		         dir, strerror(errno));
		if (fd != -1) {
			close(fd);
			unlink(tmp);
		}
		goto out;
	}
	close(fd);
	if (rename(tmp, rec) == -1) {
		snprintf(err, errcap, "%s: cannot record the key in use: %s",
		         rec, strerror(errno));
		unlink(tmp);
		goto out;
	}
	rc = 0;
out:
	free(body);
	free(tmp);
	free(dir);
	free(rec);
	return rc;
}

/* path is key_dir/NAME with NAME a plain file name. */
static bool
inside_key_dir(const char *key_dir, const char *path)
{
	size_t n = strlen(key_dir);
	const char *name = path + n + 1;

	return strncmp(path, key_dir, n) == 0 && path[n] == '/' &&
	       name[0] != '\0' && strchr(name, '/') == NULL &&
	       strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

EVP_PKEY *
keys_load_for_device(const char *state_dir, const char *key_dir,
                     const char *path, bool *generated, char *err,
                     size_t errcap)
{
	EVP_PKEY *pkey;
	char *rec;

	*generated = false;
	if (!inside_key_dir(key_dir, path)) {
		snprintf(err, errcap,
		         "%s: not a file directly inside key_dir %s; keys are "
		         "never read or written elsewhere",
		         path, key_dir);
		return NULL;
	}
	if (keys_presence(state_dir, path) == KEYS_DISAPPEARED) {
		rec = record_path(state_dir, path);
		snprintf(err, errcap,
		         "%s: the key file this device used has disappeared; "
		         "restore it from a backup (a new key would be a new, "
		         "unapproved identity on the server), or delete %s to "
		         "start over with a new identity",
		         path, rec);
		free(rec);
		return NULL;
	}
	if ((pkey = keys_load_or_generate(path, generated, err, errcap)) ==
	    NULL)
		return NULL;
	if (keys_remember(state_dir, path, pkey, err, errcap) == -1) {
		EVP_PKEY_free(pkey);
		return NULL;
	}
	return pkey;
}

int
keys_sign(EVP_PKEY *key, const void *data, size_t len, unsigned char **sig,
          size_t *siglen)
{
	EVP_MD_CTX *md;
	EVP_PKEY_CTX *pctx = NULL;
	unsigned char *out = NULL;
	size_t outlen = 0;
	int rc = -1;

	*sig = NULL;
	*siglen = 0;
	if ((md = EVP_MD_CTX_new()) == NULL)
		return -1;
	if (EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, key) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1 ||
	    EVP_DigestSign(md, NULL, &outlen, data, len) != 1)
		goto out;
	out = xmalloc(outlen);
	if (EVP_DigestSign(md, out, &outlen, data, len) != 1) {
		free(out);
		goto out;
	}
	*sig = out;
	*siglen = outlen;
	rc = 0;
out:
	if (rc == -1)
		ERR_clear_error();
	EVP_MD_CTX_free(md);
	return rc;
}

char *
keys_public_pem(EVP_PKEY *key)
{
	unsigned char *der = NULL;
	char *data, *s = NULL;
	BIO *bio;
	long n;
	int len;

	/* i2d_PublicKey gives PKCS#1 RSAPublicKey for RSA, what Go sends. */
	if (!EVP_PKEY_is_a(key, "RSA") || (len = i2d_PublicKey(key, &der)) <= 0)
		return NULL;
	if ((bio = BIO_new(BIO_s_mem())) != NULL &&
	    PEM_write_bio(bio, "PUBLIC KEY", "", der, len) > 0) {
		n = BIO_get_mem_data(bio, &data);
		s = xstrndup(data, (size_t)n);
	}
	BIO_free(bio);
	OPENSSL_free(der);
	ERR_clear_error();
	return s;
}
