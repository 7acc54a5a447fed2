/*
 * Device keys: generation (mode bits, atomic write, reload), PKCS#1, PKCS#8
 * and the Go client's own files, the Go client's exact public-key string,
 * refusal of non-RSA and broken keys, and signatures that OpenSSL verifies.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "supervisor/keys.h"
#include "log.h"

static char tmpdir[] = "/tmp/test_keys.XXXXXX";
static char errbuf[1024];

static const char *
src_dir(void)
{
	const char *s = getenv("SRC");

	return s != NULL ? s : ".";
}

static char *
data_path(const char *name)
{
	static char buf[4][4096];
	static int n;
	char *b = buf[n++ % 4];

	snprintf(b, sizeof(buf[0]), "%s/tests/data/keys/%s", src_dir(), name);
	return b;
}

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;

	if (f == NULL)
		return NULL;
	buf = calloc(1, 1 << 16);
	assert_non_null(buf);
	n = fread(buf, 1, (1 << 16) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void
copy_file(const char *from, const char *to, mode_t mode)
{
	char *s = slurp(from);
	FILE *f;

	assert_non_null(s);
	f = fopen(to, "w");
	assert_non_null(f);
	fputs(s, f);
	fclose(f);
	assert_int_equal(chmod(to, mode), 0);
	free(s);
}

/* stderr into a file while f runs, so log lines can be checked. */
static int saved_stderr = -1;
static char capture_path[4200];

static void
capture_start(void)
{
	FILE *f;

	snprintf(capture_path, sizeof(capture_path), "%s/stderr.txt", tmpdir);
	f = fopen(capture_path, "w");
	assert_non_null(f);
	fflush(stderr);
	saved_stderr = dup(2);
	dup2(fileno(f), 2);
	fclose(f);
}

static char *
capture_stop(void)
{
	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	return slurp(capture_path);
}

static char *
public_pem_of_file(const char *path)
{
	EVP_PKEY *k = keys_load(path, errbuf, sizeof(errbuf));
	char *pem;

	if (k == NULL)
		fail_msg("%s: %s", path, errbuf);
	pem = keys_public_pem(k);
	assert_non_null(pem);
	EVP_PKEY_free(k);
	return pem;
}

static void
test_generate_mode_and_reload(void **state)
{
	char dir[4200], path[4300], sub[4200], cmd[9000], *pem1, *pem2, *cli;
	struct stat st;
	struct dirent *de;
	EVP_PKEY *k;
	bool generated = false;
	DIR *d;
	int nfiles = 0;
	FILE *p;
	size_t n;

	(void)state;
	snprintf(sub, sizeof(sub), "%s/a", tmpdir);
	snprintf(dir, sizeof(dir), "%s/a/keys", tmpdir);
	snprintf(path, sizeof(path), "%s/dev.key", dir);
	k = keys_load_or_generate(path, &generated, errbuf, sizeof(errbuf));
	if (k == NULL)
		fail_msg("generate: %s", errbuf);
	assert_true(generated);
	assert_true(EVP_PKEY_is_a(k, "RSA"));
	assert_int_equal(EVP_PKEY_get_bits(k), 3072);

	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(stat(sub, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);

	/* No temporary file is left behind. */
	d = opendir(dir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			nfiles++;
	closedir(d);
	assert_int_equal(nfiles, 1);

	pem1 = keys_public_pem(k);
	assert_non_null(pem1);
	EVP_PKEY_free(k);

	/* The second start loads the same key instead of making a new one. */
	k = keys_load_or_generate(path, &generated, errbuf, sizeof(errbuf));
	assert_non_null(k);
	assert_false(generated);
	pem2 = keys_public_pem(k);
	assert_string_equal(pem1, pem2);
	EVP_PKEY_free(k);

	/* The openssl command reads the file and agrees on the public key. */
	snprintf(cmd, sizeof(cmd),
	         "openssl rsa -in '%s' -RSAPublicKey_out 2>/dev/null | "
	         "sed 's/RSA PUBLIC KEY/PUBLIC KEY/'",
	         path);
	p = popen(cmd, "r");
	assert_non_null(p);
	cli = calloc(1, 8192);
	n = fread(cli, 1, 8191, p);
	cli[n] = '\0';
	assert_int_equal(pclose(p), 0);
	assert_string_equal(cli, pem1);
	free(cli);
	free(pem1);
	free(pem2);
}

static void
test_pkcs1_and_pkcs8(void **state)
{
	char *want, *p1, *p8;

	(void)state;
	want = slurp(data_path("rsa2048.pub-as-sent.pem"));
	assert_non_null(want);
	p1 = public_pem_of_file(data_path("rsa2048-pkcs1.pem"));
	p8 = public_pem_of_file(data_path("rsa2048-pkcs8.pem"));
	assert_string_equal(p1, want);
	assert_string_equal(p8, want);
	free(want);
	free(p1);
	free(p8);
}

static void
check_go_key(const char *keyfile, const char *pubfile)
{
	char *want = slurp(pubfile), *got;

	assert_non_null(want);
	got = public_pem_of_file(keyfile);
	/* Byte for byte: the server identifies the device by this string. */
	assert_int_equal(strlen(got), strlen(want));
	assert_memory_equal(got, want, strlen(want));
	free(want);
	free(got);
}

static void
test_go_client_key(void **state)
{
	char key[4096], pub[4096];
	const char *shared = getenv("SHARED");

	(void)state;
	check_go_key(data_path("goclient-a.key"),
	             data_path("goclient-a.pub-as-sent.pem"));
	/* And against the shared fixture itself, when it is there. */
	if (shared != NULL)
		snprintf(key, sizeof(key),
		         "%s/fixtures/go-client-keys/goclient-a.key", shared);
	else
		snprintf(key, sizeof(key),
		         "%s/../shared/fixtures/go-client-keys/goclient-a.key",
		         src_dir());
	snprintf(pub, sizeof(pub), "%.*s/goclient-a.pub-as-sent.pem",
	         (int)(strrchr(key, '/') - key), key);
	if (access(key, R_OK) == 0)
		check_go_key(key, pub);
	else
		print_message("shared fixture %s not found; copy checked\n",
		              key);
}

static void
expect_refused(const char *path, const char *what)
{
	EVP_PKEY *k = keys_load(path, errbuf, sizeof(errbuf));

	if (k != NULL)
		fail_msg("%s accepted", path);
	if (strstr(errbuf, what) == NULL || strstr(errbuf, path) == NULL)
		fail_msg("%s: message \"%s\" lacks \"%s\" or the path", path,
		         errbuf, what);
}

static void
test_refusals(void **state)
{
	char path[4200], *before, *after;
	bool generated = true;

	(void)state;
	expect_refused(data_path("ec-p256.pem"), "not an RSA private key");
	expect_refused(data_path("ec-p256-pkcs8.pem"), "EC key, expected an "
	                                               "RSA key");
	expect_refused(data_path("encrypted.pem"), "encrypted");
	expect_refused(data_path("not-a-key.pem"), "not a PEM key file");
	expect_refused(data_path("does-not-exist.pem"), "No such file");
	expect_refused(tmpdir, "not a regular file");

	/* A broken key is reported, never replaced by a new one. */
	snprintf(path, sizeof(path), "%s/broken.key", tmpdir);
	copy_file(data_path("not-a-key.pem"), path, 0600);
	before = slurp(path);
	assert_null(
	    keys_load_or_generate(path, &generated, errbuf, sizeof(errbuf)));
	assert_false(generated);
	assert_non_null(strstr(errbuf, "not a PEM key file"));
	after = slurp(path);
	assert_string_equal(before, after);
	free(before);
	free(after);
}

static void
test_loose_permissions_warn(void **state)
{
	char path[4200], *out;
	EVP_PKEY *k;

	(void)state;
	snprintf(path, sizeof(path), "%s/loose.key", tmpdir);
	copy_file(data_path("rsa2048-pkcs8.pem"), path, 0644);
	capture_start();
	k = keys_load(path, errbuf, sizeof(errbuf));
	out = capture_stop();
	assert_non_null(k);
	EVP_PKEY_free(k);
	if (strstr(out, "level=WARN") == NULL ||
	    strstr(out, "readable by group or others") == NULL ||
	    strstr(out, path) == NULL)
		fail_msg("no permission warning in \"%s\"", out);
	free(out);

	assert_int_equal(chmod(path, 0600), 0);
	capture_start();
	k = keys_load(path, errbuf, sizeof(errbuf));
	out = capture_stop();
	assert_non_null(k);
	EVP_PKEY_free(k);
	assert_null(strstr(out, "readable by group or others"));
	free(out);
}

/* Verify with the key decoded from the string we send, as the server does. */
static int
verify_with_sent_key(const char *pem, const void *data, size_t len,
                     const unsigned char *sig, size_t siglen)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	char *name = NULL, *header = NULL;
	unsigned char *der = NULL;
	const unsigned char *p;
	long derlen;
	EVP_PKEY *pub;
	EVP_MD_CTX *md;
	int ok;

	assert_true(PEM_read_bio(bio, &name, &header, &der, &derlen));
	assert_string_equal(name, "PUBLIC KEY");
	p = der;
	pub = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, derlen);
	assert_non_null(pub);
	md = EVP_MD_CTX_new();
	assert_int_equal(
	    EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub), 1);
	ok = EVP_DigestVerify(md, sig, siglen, data, len);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pub);
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(der);
	BIO_free(bio);
	return ok;
}

static void
test_sign_verify(void **state)
{
	static const char body[] = "{\"metadata\":{},\"public_key\":\"x\","
	                           "\"timestamp\":1}";
	char dpath[4200], spath[4200], cmd[9000], *pem, *cli;
	unsigned char *sig;
	size_t siglen;
	EVP_PKEY *k;
	FILE *f;
	size_t n;

	(void)state;
	k = keys_load(data_path("rsa2048-pkcs1.pem"), errbuf, sizeof(errbuf));
	assert_non_null(k);
	assert_int_equal(keys_sign(k, body, strlen(body), &sig, &siglen), 0);
	assert_int_equal(siglen, 256);
	pem = keys_public_pem(k);
	assert_int_equal(
	    verify_with_sent_key(pem, body, strlen(body), sig, siglen), 1);
	/* A changed body does not verify. */
	assert_int_not_equal(verify_with_sent_key(pem, "x", 1, sig, siglen), 1);

	/* PKCS#1 v1.5 is deterministic: openssl dgst makes the same bytes. */
	snprintf(dpath, sizeof(dpath), "%s/body", tmpdir);
	snprintf(spath, sizeof(spath), "%s/body.sig", tmpdir);
	f = fopen(dpath, "w");
	assert_non_null(f);
	fputs(body, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd),
	         "openssl dgst -sha256 -sign '%s' -out '%s' '%s'",
	         data_path("rsa2048-pkcs1.pem"), spath, dpath);
	assert_int_equal(system(cmd), 0);
	f = fopen(spath, "rb");
	assert_non_null(f);
	cli = calloc(1, 1024);
	n = fread(cli, 1, 1024, f);
	fclose(f);
	assert_int_equal(n, siglen);
	assert_memory_equal(cli, sig, siglen);
	free(cli);
	free(sig);
	free(pem);
	EVP_PKEY_free(k);
}

/*
 * A key is generated at a device's first start only: once used, a missing
 * key file is "disappeared", an error, never a new identity.
 */
static void
test_first_start_and_disappeared(void **state)
{
	char st[4200], kd[4200], path[4300], cmd[9000], *pem1, *pem2;
	EVP_PKEY *k;
	bool generated;

	(void)state;
	snprintf(st, sizeof(st), "%s/fs/state", tmpdir);
	snprintf(kd, sizeof(kd), "%s/fs/keys", tmpdir);
	snprintf(path, sizeof(path), "%s/dev.key", kd);
	assert_int_equal(keys_presence(st, path), KEYS_FIRST_START);
	k = keys_load_for_device(st, kd, path, &generated, errbuf,
	                         sizeof(errbuf));
	if (k == NULL)
		fail_msg("first start: %s", errbuf);
	assert_true(generated);
	pem1 = keys_public_pem(k);
	EVP_PKEY_free(k);
	assert_int_equal(keys_presence(st, path), KEYS_PRESENT);

	/* The next start loads it. */
	k = keys_load_for_device(st, kd, path, &generated, errbuf,
	                         sizeof(errbuf));
	assert_non_null(k);
	assert_false(generated);
	EVP_PKEY_free(k);

	/* The key directory is deleted: no new key, a clear error. */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", kd);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(keys_presence(st, path), KEYS_DISAPPEARED);
	assert_null(keys_load_for_device(st, kd, path, &generated, errbuf,
	                                 sizeof(errbuf)));
	assert_non_null(strstr(errbuf, "has disappeared"));
	assert_non_null(strstr(errbuf, "restore it from a backup"));
	assert_non_null(strstr(errbuf, "/identity/"));
	assert_int_equal(access(path, F_OK), -1);

	/* Restored from a backup of the same key: fine again. */
	k = keys_load_or_generate(path, &generated, errbuf, sizeof(errbuf));
	assert_non_null(k);
	pem2 = keys_public_pem(k);
	assert_string_not_equal(pem1, pem2);
	EVP_PKEY_free(k);
	/* A different key at the path is taken, with a warning. */
	capture_start();
	k = keys_load_for_device(st, kd, path, &generated, errbuf,
	                         sizeof(errbuf));
	free(pem2);
	pem2 = capture_stop();
	assert_non_null(k);
	EVP_PKEY_free(k);
	assert_non_null(strstr(pem2, "server sees a new identity"));
	free(pem1);
	free(pem2);

	/* Deleting the record is the documented way to start over. */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s/identity'", kd, st);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(keys_presence(st, path), KEYS_FIRST_START);
}

/* Keys are never read or written outside key_dir, whatever the caller. */
static void
test_key_stays_in_key_dir(void **state)
{
	static const char *const bad[] = {"/../x.key", "/sub/x.key", "/..",
	                                  "/.",        "/",          "x.key"};
	char st[4200], kd[4200], path[4400], outside[4300];
	bool generated;
	size_t i;

	(void)state;
	snprintf(st, sizeof(st), "%s/in/state", tmpdir);
	snprintf(kd, sizeof(kd), "%s/in/keys", tmpdir);
	snprintf(outside, sizeof(outside), "%s/in/x.key", tmpdir);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", kd, bad[i]);
		assert_null(keys_load_for_device(st, kd, path, &generated,
		                                 errbuf, sizeof(errbuf)));
		assert_non_null(strstr(errbuf, "not a file directly inside"));
	}
	assert_int_equal(access(outside, F_OK), -1);
}

static int
setup(void **state)
{
	(void)state;
	log_init(0, NULL);
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	char cmd[256];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_generate_mode_and_reload),
	    cmocka_unit_test(test_pkcs1_and_pkcs8),
	    cmocka_unit_test(test_go_client_key),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_loose_permissions_warn),
	    cmocka_unit_test(test_sign_verify),
	    cmocka_unit_test(test_first_start_and_disappeared),
	    cmocka_unit_test(test_key_stays_in_key_dir),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
