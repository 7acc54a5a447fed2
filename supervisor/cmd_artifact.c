/*
 * `rdfm-mcumgr-client [-c CONFIG] artifact inspect FILE [--json]
 * [--verify-key PEM]`: reads an artifact exactly as an update would
 * (without extracting it) and prints what it holds.  Exits 0 only for an
 * artifact the client accepts: with -c, under that config's
 * artifact_verify_key.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "artifact.h"
#include "supervisor.h"
#include "xmalloc.h"

static void
usage(FILE *f)
{
	fprintf(f, "usage: rdfm-mcumgr-client artifact inspect FILE [--json] "
	           "[--verify-key PEM]\n");
}

static const char *
signed_text(const struct artifact *a)
{
	if (!a->is_signed)
		return "no";
	return a->sig_verified ? "yes, verified" : "yes, not checked";
}

static void
print_text(const struct artifact *a)
{
	const struct artifact_image *img;
	size_t i;

	printf("type: %s\n", artifact_type_name(a->type));
	printf("name: %s\n", a->name);
	printf("version: %s\n", a->version);
	printf("format: %s %d\n", a->format, a->format_version);
	printf("device_types:");
	for (i = 0; i < a->ndevice_types; i++)
		printf(" %s", a->device_types[i]);
	printf("\nsigned: %s\n", signed_text(a));
	for (i = 0; i < a->nimages; i++) {
		img = &a->images[i];
		printf("image %s:\n", img->file);
		printf("  target: %s\n", img->target ? img->target : "-");
		printf("  version: %s (zephyr %s)\n", img->version_rdfm,
		       img->version_zephyr);
		printf("  size: %llu\n", (unsigned long long)img->size);
		printf("  sha256: %s\n", img->sha256_hex);
		printf("  hash: %s\n", img->hash_hex);
	}
}

static void
print_json(const struct artifact *a)
{
	const struct artifact_image *img;
	json_object *o, *types, *imgs, *io;
	size_t i;

	o = json_object_new_object();
	json_object_object_add(
	    o, "type", json_object_new_string(artifact_type_name(a->type)));
	json_object_object_add(o, "name", json_object_new_string(a->name));
	json_object_object_add(o, "version",
	                       json_object_new_string(a->version));
	types = json_object_new_array();
	for (i = 0; i < a->ndevice_types; i++)
		json_object_array_add(
		    types, json_object_new_string(a->device_types[i]));
	json_object_object_add(o, "device_types", types);
	json_object_object_add(o, "signed",
	                       json_object_new_boolean(a->is_signed));
	json_object_object_add(o, "signature_verified",
	                       json_object_new_boolean(a->sig_verified));
	imgs = json_object_new_array();
	for (i = 0; i < a->nimages; i++) {
		img = &a->images[i];
		io = json_object_new_object();
		json_object_object_add(
		    io, "target",
		    img->target ? json_object_new_string(img->target) : NULL);
		json_object_object_add(io, "file",
		                       json_object_new_string(img->file));
		json_object_object_add(
		    io, "version", json_object_new_string(img->version_rdfm));
		json_object_object_add(
		    io, "size", json_object_new_int64((int64_t)img->size));
		json_object_object_add(io, "sha256",
		                       json_object_new_string(img->sha256_hex));
		json_object_object_add(io, "hash",
		                       json_object_new_string(img->hash_hex));
		json_object_array_add(imgs, io);
	}
	json_object_object_add(o, "images", imgs);
	printf("%s\n",
	       json_object_to_json_string_ext(
	           o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

static int
cmd_inspect(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"verify-key", required_argument, NULL, 'k'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct artifact_opts opts = {0};
	struct artifact *a;
	const char *keyfile = NULL;
	char *keypath = NULL;
	struct config *c;
	char err[512];
	int ch, json = 0, ret;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "jk:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			json = 1;
			break;
		case 'k':
			keyfile = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (argc - optind != 1) {
		usage(stderr);
		return EX_USAGE;
	}
	/* An explicit config decides whether signatures are required. */
	if (keyfile == NULL && gopts.config_path != NULL) {
		if ((c = supervisor_load_config()) == NULL)
			return EX_USAGE;
		if (c->artifact_verify_key != NULL)
			keyfile = keypath = xstrdup(c->artifact_verify_key);
		config_free(c);
	}
	if (keyfile != NULL) {
		opts.verify_key = artifact_key_load(keyfile, err, sizeof(err));
		if (opts.verify_key == NULL) {
			fprintf(stderr, "artifact inspect: %s\n", err);
			free(keypath);
			return EX_USAGE;
		}
	}
	free(keypath);
	ret = artifact_read_file(argv[optind], &opts, &a, err, sizeof(err));
	EVP_PKEY_free(opts.verify_key);
	if (ret == -1) {
		fprintf(stderr, "artifact inspect: %s: rejected: %s\n",
		        argv[optind], err);
		return 1;
	}
	if (json)
		print_json(a);
	else
		print_text(a);
	artifact_free(a);
	return 0;
}

/* argv[0] is "artifact". */
int
cmd_artifact(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EX_USAGE;
	}
	if (strcmp(argv[1], "inspect") == 0)
		return cmd_inspect(argc - 1, argv + 1);
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "artifact: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return EX_USAGE;
}
