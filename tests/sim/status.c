/*
 * --status FILE: the board's state as JSON, rewritten atomically (write a
 * temporary file, rename) after every change, for tests and benchmarks to
 * read without talking SMP.
 */
#include <stdio.h>
#include <stdlib.h>
#include <json-c/json.h>

#include "log.h"
#include "xmalloc.h"
#include "sim.h"

static json_object *
hex_or_null(const uint8_t *b, size_t n)
{
	static const char hx[] = "0123456789abcdef";
	char s[2 * SMP_HASH_LEN + 1];
	size_t i;

	if (b == NULL || n > SMP_HASH_LEN)
		return NULL;
	for (i = 0; i < n; i++) {
		s[2 * i] = hx[b[i] >> 4];
		s[2 * i + 1] = hx[b[i] & 15];
	}
	s[2 * n] = '\0';
	return json_object_new_string(s);
}

static json_object *
slot_json(int s, const struct smp_image_list *list)
{
	json_object *o = json_object_new_object();
	const struct smp_image_slot *e = NULL;
	size_t i;

	for (i = 0; i < list->n; i++)
		if (list->slots[i].slot == (uint32_t)s)
			e = &list->slots[i];
	json_object_object_add(o, "slot", json_object_new_int(s));
	json_object_object_add(o, "version",
	                       e ? json_object_new_string(e->version) : NULL);
	json_object_object_add(o, "hash",
	                       e ? hex_or_null(e->hash, SMP_HASH_LEN) : NULL);
	json_object_object_add(o, "bootable",
	                       json_object_new_boolean(e && e->bootable));
	json_object_object_add(o, "pending",
	                       json_object_new_boolean(e && e->pending));
	json_object_object_add(o, "confirmed",
	                       json_object_new_boolean(e && e->confirmed));
	json_object_object_add(o, "active",
	                       json_object_new_boolean(e && e->active));
	json_object_object_add(o, "permanent",
	                       json_object_new_boolean(e && e->permanent));
	return o;
}

static const char *
run_name(enum board_run r)
{
	switch (r) {
	case BOARD_UP:
		return "up";
	case BOARD_DOWN:
		return "down";
	case BOARD_HUNG:
		return "hung";
	}
	return "?";
}

void
status_update(void)
{
	struct smp_image_list list;
	json_object *root, *slots, *up, *c;
	const char *text;
	char *tmp;
	FILE *f;

	if (board.o->status == NULL)
		return;
	server_list_images(&list);
	root = json_object_new_object();
	json_object_object_add(root, "state",
	                       json_object_new_string(run_name(board.run)));
	slots = json_object_new_array();
	json_object_array_add(slots, slot_json(0, &list));
	json_object_array_add(slots, slot_json(1, &list));
	json_object_object_add(root, "slots", slots);
	up = json_object_new_object();
	json_object_object_add(
	    up, "offset",
	    json_object_new_int64(board.up_active ? board.up_off : 0));
	json_object_object_add(
	    up, "len",
	    json_object_new_int64(board.up_active ? board.up_len : 0));
	json_object_object_add(up, "sha",
	                       board.up_active && board.up_has_sha
	                           ? hex_or_null(board.up_sha, board.up_sha_len)
	                           : NULL);
	json_object_object_add(root, "upload", up);
	c = json_object_new_object();
	json_object_object_add(
	    c, "requests", json_object_new_int64((int64_t)board.c.requests));
	json_object_object_add(c, "replies",
	                       json_object_new_int64((int64_t)board.c.replies));
	json_object_object_add(c, "dropped",
	                       json_object_new_int64((int64_t)board.c.dropped));
	json_object_object_add(
	    c, "lines_dropped",
	    json_object_new_int64((int64_t)board.c.lines_dropped));
	json_object_object_add(
	    c, "bytes_in", json_object_new_int64((int64_t)board.c.bytes_in));
	json_object_object_add(
	    c, "bytes_out", json_object_new_int64((int64_t)board.c.bytes_out));
	json_object_object_add(c, "resets",
	                       json_object_new_int64((int64_t)board.c.resets));
	/* Image bytes written to flash: an upload resumed writes none twice. */
	json_object_object_add(
	    c, "upload_written",
	    json_object_new_int64((int64_t)board.upload_written));
	json_object_object_add(root, "counters", c);

	text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
	xasprintf(&tmp, "%s.tmp", board.o->status);
	if ((f = fopen(tmp, "w")) == NULL)
		fatal("cannot create status file", "path=%s", log_q(tmp));
	if (fprintf(f, "%s\n", text) < 0 || fclose(f) == EOF)
		fatal("cannot write status file", "path=%s", log_q(tmp));
	if (rename(tmp, board.o->status) == -1)
		fatal("cannot rename status file", "path=%s", log_q(tmp));
	free(tmp);
	json_object_put(root);
}
