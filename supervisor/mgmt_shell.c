/*
 * Shell sessions of the management channel: on shell_attach a second
 * WebSocket to /api/v1/devices/<mac>/shell/attach/<uuid>; the operator's
 * keystrokes are edited into lines, each line runs as one SMP shell exec on
 * the board (queued behind its other operations) and its output comes back
 * as terminal output with a prompt.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "log.h"
#include "mgmt_int.h"
#include "xmalloc.h"

#define TYPEAHEAD_MAX 4096
#define SHELL_MSG_MAX (64 * 1024)

struct mgmt_shell {
	struct mgmt_shell *next;
	struct mgmt_dev *dev;
	char uuid[37];
	struct ws *ws;
	unsigned board;
	struct mgmt_line line;
	uint8_t *typeahead;
	size_t ntype;
	struct job *job;
	int rows, cols;
};

static void feed(struct mgmt_shell *, const uint8_t *, size_t);

static void
out(struct mgmt_shell *sh, const char *s, size_t n)
{
	if (sh->ws != NULL && n > 0)
		(void)ws_send(sh->ws, false, s, n);
}

static void
outs(struct mgmt_shell *sh, const char *s)
{
	out(sh, s, strlen(s));
}

static void
prompt(struct mgmt_shell *sh)
{
	char p[160];

	snprintf(p, sizeof(p), "%s$ ", sh->dev->boards[sh->board].name);
	outs(sh, p);
}

static bool
board_has_shell(const struct board *b)
{
	return b->shell && !b->no_shell;
}

static void
line_done(struct job *j, const struct mgmt_result *res)
{
	struct mgmt_shell *sh = j->owner;
	const char *data = res->data != NULL ? res->data : "";
	size_t len = res->data != NULL ? res->len : 0, n;
	char buf[200], *text;
	uint8_t *rest;

	if (sh == NULL)
		return;
	sh->job = NULL;
	switch (res->status) {
	case MGMT_DONE:
		if (len > MGMT_OUTPUT_MAX)
			len = MGMT_OUTPUT_MAX;
		text = mgmt_crlf(data, len, &n);
		out(sh, text, n);
		if (n > 0 && text[n - 1] != '\n')
			outs(sh, "\r\n");
		free(text);
		if (res->rc != 0) {
			snprintf(buf, sizeof(buf), "[exit %d]\r\n", res->rc);
			outs(sh, buf);
		}
		break;
	case MGMT_UNSUPPORTED:
		outs(sh, "error: the board has no SMP shell\r\n");
		break;
	case MGMT_BUSY:
		outs(sh, "busy: update in progress\r\n");
		break;
	default:
		snprintf(buf, sizeof(buf), "error: %.*s\r\n",
		         (int)(len > 150 ? 150 : len), data);
		outs(sh, buf);
		break;
	}
	prompt(sh);
	/* What was typed meanwhile. */
	if (sh->ntype > 0) {
		rest = sh->typeahead;
		n = sh->ntype;
		sh->typeahead = NULL;
		sh->ntype = 0;
		feed(sh, rest, n);
		free(rest);
	}
}

/* "@member" switches a group's session to another member. */
static bool
switch_member(struct mgmt_shell *sh, const char *word)
{
	struct mgmt_dev *dev = sh->dev;
	size_t i;

	for (i = 0; i < dev->nboards; i++)
		if (strcmp(dev->boards[i].name, word + 1) == 0) {
			if (!board_has_shell(&dev->boards[i])) {
				outs(sh, "error: no shell on that member\r\n");
				return true;
			}
			sh->board = (unsigned)i;
			return true;
		}
	outs(sh, "error: no such member\r\n");
	return true;
}

static void
run_line(struct mgmt_shell *sh, const char *line)
{
	struct mgmt_dev *dev = sh->dev;
	struct job *j;
	char **argv;
	size_t argc;

	if (mgmt_split_words(line, &argv, &argc) == -1) {
		outs(sh, "error: too many words\r\n");
		prompt(sh);
		return;
	}
	if (argc == 0 ||
	    (dev->group && argv[0][0] == '@' && switch_member(sh, argv[0]))) {
		free(argv);
		prompt(sh);
		return;
	}
	if (!board_has_shell(&dev->boards[sh->board])) {
		free(argv);
		outs(sh, "error: the board has no SMP shell\r\n");
		prompt(sh);
		return;
	}
	if (dev_busy(dev)) {
		free(argv);
		outs(sh, "busy: update in progress\r\n");
		prompt(sh);
		return;
	}
	log_debug("Shell line", "device=%s board=%s argc=%zu", log_q(dev->name),
	          log_q(dev->boards[sh->board].name), argc);
	j = job_new(dev, sh->board, MGMT_OP_SHELL);
	j->argv_own = argv;
	j->op.argv = (const char *const *)argv;
	j->op.argc = argc;
	j->op.timeout_ms = dev->m->t.shell_timeout_ms;
	j->done = line_done;
	j->owner = sh;
	sh->job = j;
	job_submit(j);
}

static void
feed(struct mgmt_shell *sh, const uint8_t *p, size_t n)
{
	enum mgmt_key k;
	char echo[8];
	size_t i, e;

	for (i = 0; i < n; i++) {
		if (sh->job != NULL) {
			/* A line runs: keep the rest for after it. */
			size_t keep = n - i;

			if (sh->ntype + keep > TYPEAHEAD_MAX)
				keep = TYPEAHEAD_MAX - sh->ntype;
			sh->typeahead = xreallocarray(sh->typeahead,
			                              sh->ntype + keep + 1, 1);
			memcpy(sh->typeahead + sh->ntype, p + i, keep);
			sh->ntype += keep;
			return;
		}
		k = mgmt_line_key(&sh->line, p[i], echo, &e);
		out(sh, echo, e);
		switch (k) {
		case MGMT_KEY_LINE:
			run_line(sh, sh->line.buf);
			mgmt_line_reset(&sh->line);
			break;
		case MGMT_KEY_INTERRUPT:
			prompt(sh);
			break;
		case MGMT_KEY_EOF:
			outs(sh, "logout\r\n");
			ws_close(sh->ws, 1000, "");
			return;
		case MGMT_KEY_NONE:
			break;
		}
		if (sh->ws == NULL)
			return;
	}
}

static void
on_shell_open(struct ws *ws, void *arg)
{
	struct mgmt_shell *sh = arg;
	char banner[300];

	(void)ws;
	log_info("Shell session opened", "device=%s uuid=%s",
	         log_q(sh->dev->name), sh->uuid);
	snprintf(banner, sizeof(banner),
	         "%s: each line runs as an SMP shell command on the "
	         "board%s\r\n",
	         sh->dev->name,
	         sh->dev->group ? " (\"@member\" switches members)" : "");
	outs(sh, banner);
	prompt(sh);
}

static void
on_shell_message(struct ws *ws, bool text, const uint8_t *data, size_t len,
                 void *arg)
{
	struct mgmt_shell *sh = arg;

	(void)ws;
	if (!text) {
		feed(sh, data, len);
		return;
	}
	if (mgmt_parse_resize((const char *)data, len, &sh->rows, &sh->cols))
		log_debug("Shell resized", "uuid=%s rows=%d cols=%d", sh->uuid,
		          sh->rows, sh->cols);
	else
		log_debug("Shell: a text frame that is no resize; ignored",
		          "uuid=%s", sh->uuid);
}

static void
shell_free(struct mgmt_shell *sh)
{
	struct mgmt_shell **pp;

	for (pp = &sh->dev->shells; *pp != NULL; pp = &(*pp)->next)
		if (*pp == sh) {
			*pp = sh->next;
			break;
		}
	sh->dev->nshells--;
	job_cancel(sh->job);
	ws_free(sh->ws);
	free(sh->typeahead);
	free(sh);
}

static void
on_shell_end(struct ws *ws, const struct ws_end_info *e, void *arg)
{
	struct mgmt_shell *sh = arg;

	(void)ws;
	log_info("Shell session closed", "device=%s uuid=%s why=%s",
	         log_q(sh->dev->name), sh->uuid, log_q(e->detail));
	sh->ws = NULL;
	shell_free(sh);
}

static const struct ws_callbacks shell_cbs = {
    .on_open = on_shell_open,
    .on_message = on_shell_message,
    .on_end = on_shell_end,
};

void
shell_attach(struct mgmt_dev *dev, const struct mgmt_msg *m)
{
	struct mgmt_shell *sh;
	struct ws_opts o;
	const char *tok;
	char *mac, *url, *auth, err[200];
	size_t i;
	int board = -1;

	/* Both go into a request line: check before anything else. */
	if (strcmp(m->mac, dev->id) != 0) {
		ONCE(dev, ONCE_SHELL_MAC,
		     "management channel: shell_attach names another device; "
		     "refused",
		     "device=%s mac_addr=%s", log_q(dev->name), log_q(m->mac));
		return;
	}
	if (!mgmt_is_uuid(m->uuid)) {
		ONCE(dev, ONCE_SHELL_UUID,
		     "management channel: shell_attach with a uuid that is "
		     "not a UUID; refused",
		     "device=%s uuid=%s", log_q(dev->name), log_q(m->uuid));
		return;
	}
	for (i = 0; i < dev->nboards && board < 0; i++)
		if (board_has_shell(&dev->boards[i]))
			board = (int)i;
	if (board < 0) {
		ONCE(dev, ONCE_SHELL_OFF,
		     "management channel: shell_attach, but no board has "
		     "\"shell\": true; refused",
		     "device=%s", log_q(dev->name));
		return;
	}
	if (dev->nshells >= MGMT_SHELLS_MAX) {
		ONCE(dev, ONCE_SHELL_MANY,
		     "management channel: too many shell sessions; refused",
		     "device=%s limit=%d", log_q(dev->name), MGMT_SHELLS_MAX);
		return;
	}
	if ((tok = dev->ops->token(dev->ctx, false)) == NULL) {
		ONCE(dev, ONCE_SHELL_TOKEN,
		     "management channel: no valid token for a shell session; "
		     "refused",
		     "device=%s", log_q(dev->name));
		return;
	}
	if ((mac = curl_escape(dev->id, 0)) == NULL)
		fatalx("out of memory", NULL);
	xasprintf(&url, "%s/api/v1/devices/%s/shell/attach/%s", dev->m->server,
	          mac, m->uuid);
	curl_free(mac);
	xasprintf(&auth, "Bearer token=%s", tok);
	sh = xcalloc(1, sizeof(*sh));
	sh->dev = dev;
	snprintf(sh->uuid, sizeof(sh->uuid), "%s", m->uuid);
	sh->board = (unsigned)board;
	mgmt_line_reset(&sh->line);
	memset(&o, 0, sizeof(o));
	o.url = url;
	o.auth = auth;
	o.max_msg = SHELL_MSG_MAX;
	o.max_queue = MGMT_MAX_QUEUE;
	o.idle_ms = dev->m->t.idle_ms;
	sh->ws = ws_open(dev->m->wsc, &o, &shell_cbs, sh, err, sizeof(err));
	explicit_bzero(auth, strlen(auth));
	free(auth);
	free(url);
	if (sh->ws == NULL) {
		log_warnx("Cannot open a shell session", "device=%s error=%s",
		          log_q(dev->name), log_q(err));
		free(sh);
		return;
	}
	sh->next = dev->shells;
	dev->shells = sh;
	dev->nshells++;
}

void
shells_free(struct mgmt_dev *dev)
{
	while (dev->shells != NULL)
		shell_free(dev->shells);
}
