/*
 * The `smp` commands of the OS, stat and shell groups: echo, params,
 * reset through the worker's own operations; os info, taskstat, mpstat,
 * datetime, bootloader, stat and shell exec through the generic command
 * and smp_groups.h.  --json prints the board's reply as it came.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "cmd_smp.h"
#include "ipc.h"
#include "xmalloc.h"

int
smp_run_echo(struct smp_cli *c, int argc, char **argv)
{
	Ipc__Envelope env = IPC__ENVELOPE__INIT;
	Ipc__Echo echo;
	Ipc__Reply *r;
	struct json_object *o;
	char msg[1024];
	int rc;

	(void)argc;
	if (strlen(argv[0]) > 256)
		return cli_fail(c, SMP_EX_USAGE,
		                "echo: text longer than 256 bytes");
	if ((rc = cli_start(c)) != 0)
		return rc;
	ipc__echo__init(&echo);
	echo.text = argv[0];
	env.body_case = IPC__ENVELOPE__BODY_ECHO;
	env.echo = &echo;
	if ((r = cli_ipc(c, &env)) == NULL)
		return SMP_EX_FAIL;
	if (r->status != IPC__REPLY__STATUS__OK ||
	    r->result_case != IPC__REPLY__RESULT_ECHO) {
		cli_explain_reply(c, "echo", r, msg, sizeof(msg));
		ipc__reply__free_unpacked(r, NULL);
		return cli_fail(c, SMP_EX_FAIL, "%s", msg);
	}
	if (c->json) {
		o = json_object_new_object();
		json_object_object_add(o, "echo",
		                       json_object_new_string(r->echo));
		cli_print_json(o);
	} else
		printf("%s\n", r->echo);
	ipc__reply__free_unpacked(r, NULL);
	return 0;
}

int
smp_run_params(struct smp_cli *c, int argc, char **argv)
{
	struct json_object *o;
	int rc;

	(void)argc;
	(void)argv;
	/* Starting asks the board for them. */
	if ((rc = cli_start(c)) != 0)
		return rc;
	if (c->json) {
		o = json_object_new_object();
		json_object_object_add(o, "supported",
		                       json_object_new_boolean(c->have_params));
		json_object_object_add(o, "buf_size",
		                       json_object_new_int64(c->buf_size));
		json_object_object_add(o, "buf_count",
		                       json_object_new_int64(c->buf_count));
		cli_print_json(o);
	} else if (!c->have_params)
		printf("the board does not report MCUmgr parameters (a Zephyr "
		       "build enables it with "
		       "CONFIG_MCUMGR_GRP_OS_MCUMGR_PARAMS)\n");
	else
		printf("buf_size: %u\nbuf_count: %u\n", c->buf_size,
		       c->buf_count);
	return 0;
}

int
smp_run_reset(struct smp_cli *c, int argc, char **argv)
{
	Ipc__Envelope env = IPC__ENVELOPE__INIT;
	Ipc__Reset reset = IPC__RESET__INIT;
	Ipc__Reply *r;
	struct json_object *o;
	char msg[1024];
	int rc;

	(void)argc;
	(void)argv;
	if ((rc = cli_start(c)) != 0)
		return rc;
	env.body_case = IPC__ENVELOPE__BODY_RESET;
	env.reset = &reset;
	if ((r = cli_ipc(c, &env)) == NULL)
		return SMP_EX_FAIL;
	if (r->status != IPC__REPLY__STATUS__OK) {
		cli_explain_reply(c, "reset", r, msg, sizeof(msg));
		ipc__reply__free_unpacked(r, NULL);
		return cli_fail(c, SMP_EX_FAIL, "%s", msg);
	}
	ipc__reply__free_unpacked(r, NULL);
	if (c->json) {
		o = json_object_new_object();
		json_object_object_add(o, "reset", json_object_new_boolean(1));
		cli_print_json(o);
	} else
		printf("reset\n");
	return 0;
}

/*
 * The common shape of the read-only commands: run, then print the tree as
 * JSON or hand it to a printer that decodes it.
 */
typedef int (*print_fn)(struct smp_cli *c, const struct smp_tree *t);

static int
run_and_print(struct smp_cli *c, const struct smpg_cmd *sc,
              const uint8_t *payload, ssize_t len, print_fn print)
{
	struct smp_tree t;
	int rc;

	if ((rc = cli_start(c)) != 0)
		return rc;
	if ((rc = cli_cmd_ok(c, sc, payload, len, &t)) != 0)
		return rc;
	if (c->json)
		cli_print_tree(&t);
	else
		rc = print(c, &t);
	smp_tree_free(&t);
	return rc;
}

static int
bad_reply(struct smp_cli *c, const char *what, const char *why)
{
	return cli_fail(c, SMP_EX_FAIL,
	                "%s: unexpected reply from the board: %s", what, why);
}

static int
print_info(struct smp_cli *c, const struct smp_tree *t)
{
	const char *s;
	char why[256];

	if (smpg_dec_os_info(t, &s, why, sizeof(why)) == -1)
		return bad_reply(c, "os info", why);
	printf("%s\n", s);
	return 0;
}

int
smp_run_os_info(struct smp_cli *c, int argc, char **argv)
{
	uint8_t buf[128];

	if (argc == 1 && strlen(argv[0]) > 32)
		return cli_fail(c, SMP_EX_USAGE,
		                "os info: FORMAT of more than "
		                "32 letters");
	return run_and_print(
	    c, &smpg_os_info, buf,
	    smpg_enc_os_info(buf, sizeof(buf), argc == 1 ? argv[0] : NULL),
	    print_info);
}

static int
print_taskstat(struct smp_cli *c, const struct smp_tree *t)
{
	struct smpg_taskstat ts;
	char why[256], stack[48];
	size_t i, w = 4;
	bool stk = false, rt = false;

	if (smpg_dec_taskstat(t, &ts, why, sizeof(why)) == -1)
		return bad_reply(c, "os taskstat", why);
	for (i = 0; i < ts.n; i++) {
		if (strlen(ts.tasks[i].name) > w)
			w = strlen(ts.tasks[i].name);
		stk |= ts.tasks[i].has_stack;
		rt |= ts.tasks[i].has_runtime;
	}
	printf("%-*s %5s %4s %6s", (int)w, "task", "prio", "tid", "state");
	if (stk)
		printf(" %15s", "stack used/size");
	if (rt)
		printf(" %12s", "runtime");
	printf("\n");
	for (i = 0; i < ts.n; i++) {
		const struct smpg_task *k = &ts.tasks[i];

		printf("%-*s %5" PRId64 " %4" PRIu64 " %6" PRIu64, (int)w,
		       k->name, k->prio, k->tid, k->state);
		if (stk) {
			snprintf(stack, sizeof(stack), "%" PRIu64 "/%" PRIu64,
			         k->stkuse, k->stksiz);
			printf(" %15s", k->has_stack ? stack : "-");
		}
		if (rt)
			printf(" %12" PRIu64, k->runtime);
		printf("\n");
	}
	smpg_taskstat_free(&ts);
	return 0;
}

int
smp_run_os_taskstat(struct smp_cli *c, int argc, char **argv)
{
	uint8_t buf[8];

	(void)argc;
	(void)argv;
	return run_and_print(c, &smpg_os_taskstat, buf,
	                     smpg_enc_empty(buf, sizeof(buf)), print_taskstat);
}

static int
print_mpstat(struct smp_cli *c, const struct smp_tree *t)
{
	struct smpg_mpstat ms;
	char why[256];
	size_t i, w = 4;

	if (smpg_dec_mpstat(t, &ms, why, sizeof(why)) == -1)
		return bad_reply(c, "os mpstat", why);
	for (i = 0; i < ms.n; i++)
		if (strlen(ms.pools[i].name) > w)
			w = strlen(ms.pools[i].name);
	printf("%-*s %8s %8s %8s %8s\n", (int)w, "pool", "blksiz", "nblks",
	       "nfree", "min");
	for (i = 0; i < ms.n; i++) {
		const struct smpg_pool *p = &ms.pools[i];

		printf("%-*s %8" PRIu64 " %8" PRIu64 " %8" PRIu64, (int)w,
		       p->name, p->blksiz, p->nblks, p->nfree);
		if (p->has_min)
			printf(" %8" PRIu64 "\n", p->min);
		else
			printf(" %8s\n", "-");
	}
	smpg_mpstat_free(&ms);
	return 0;
}

int
smp_run_os_mpstat(struct smp_cli *c, int argc, char **argv)
{
	uint8_t buf[8];

	(void)argc;
	(void)argv;
	return run_and_print(c, &smpg_os_mpstat, buf,
	                     smpg_enc_empty(buf, sizeof(buf)), print_mpstat);
}

static int
print_datetime(struct smp_cli *c, const struct smp_tree *t)
{
	const char *s;
	char why[256];

	if (smpg_dec_datetime(t, &s, why, sizeof(why)) == -1)
		return bad_reply(c, "os datetime", why);
	printf("%s\n", s);
	return 0;
}

int
smp_run_os_datetime(struct smp_cli *c, int argc, char **argv)
{
	struct json_object *o;
	struct smp_tree t;
	uint8_t buf[128];
	char now[32];
	const char *when;
	time_t tt;
	struct tm tm;
	ssize_t n;
	int rc;

	if (argc == 0)
		return run_and_print(c, &smpg_os_datetime_get, buf,
		                     smpg_enc_empty(buf, sizeof(buf)),
		                     print_datetime);
	if (strcmp(argv[0], "set") != 0 || argc != 2)
		return cli_fail(c, SMP_EX_USAGE,
		                "os datetime takes nothing (read the clock) or "
		                "set TIME|now");
	when = argv[1];
	if (strcmp(when, "now") == 0) {
		tt = time(NULL);
		gmtime_r(&tt, &tm);
		strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%S", &tm);
		when = now;
	}
	if ((n = smpg_enc_datetime_set(buf, sizeof(buf), when)) < 0)
		return cli_fail(c, SMP_EX_USAGE,
		                "os datetime set: \"%s\" is not a time like "
		                "2024-05-01T12:00:00 (optionally .mmm), or now",
		                when);
	if ((rc = cli_start(c)) != 0 ||
	    (rc = cli_cmd_ok(c, &smpg_os_datetime_set, buf, n, &t)) != 0)
		return rc;
	smp_tree_free(&t);
	if (c->json) {
		o = json_object_new_object();
		json_object_object_add(o, "datetime",
		                       json_object_new_string(when));
		cli_print_json(o);
	} else
		printf("datetime set to %s\n", when);
	return 0;
}

static int
print_bootloader(struct smp_cli *c, const struct smp_tree *t)
{
	struct smpg_bootloader bl;
	char why[256];

	if (smpg_dec_bootloader(t, &bl, why, sizeof(why)) == -1)
		return bad_reply(c, "os bootloader", why);
	if (bl.bootloader != NULL)
		printf("%s\n", bl.bootloader);
	if (bl.has_mode)
		printf("mode: %" PRId64 " (%s)\n", bl.mode,
		       smpg_mcuboot_mode_name(bl.mode));
	if (bl.has_no_downgrade)
		printf("no-downgrade: %s\n", bl.no_downgrade ? "yes" : "no");
	return 0;
}

int
smp_run_os_bootloader(struct smp_cli *c, int argc, char **argv)
{
	uint8_t buf[128];

	if (argc == 1 && strlen(argv[0]) > 32)
		return cli_fail(c, SMP_EX_USAGE,
		                "os bootloader: QUERY longer than 32 bytes");
	return run_and_print(
	    c, &smpg_os_bootloader, buf,
	    smpg_enc_bootloader(buf, sizeof(buf), argc == 1 ? argv[0] : NULL),
	    print_bootloader);
}

static int
print_stat_list(struct smp_cli *c, const struct smp_tree *t)
{
	struct smpg_stat_list sl;
	char why[256];
	size_t i;

	if (smpg_dec_stat_list(t, &sl, why, sizeof(why)) == -1)
		return bad_reply(c, "stat list", why);
	for (i = 0; i < sl.n; i++)
		printf("%s\n", sl.names[i]);
	smpg_stat_list_free(&sl);
	return 0;
}

int
smp_run_stat_list(struct smp_cli *c, int argc, char **argv)
{
	uint8_t buf[8];

	(void)argc;
	(void)argv;
	return run_and_print(c, &smpg_stat_list, buf,
	                     smpg_enc_empty(buf, sizeof(buf)), print_stat_list);
}

static int
print_stat_show(struct smp_cli *c, const struct smp_tree *t)
{
	struct smpg_stat_show ss;
	char why[256];
	size_t i, w = 0;

	if (smpg_dec_stat_show(t, &ss, why, sizeof(why)) == -1)
		return bad_reply(c, "stat show", why);
	for (i = 0; i < ss.n; i++)
		if (strlen(ss.fields[i].name) > w)
			w = strlen(ss.fields[i].name);
	for (i = 0; i < ss.n; i++)
		printf("%-*s %" PRIu64 "\n", (int)w + 1, ss.fields[i].name,
		       ss.fields[i].value);
	smpg_stat_show_free(&ss);
	return 0;
}

int
smp_run_stat_show(struct smp_cli *c, int argc, char **argv)
{
	uint8_t buf[300];

	(void)argc;
	if (strlen(argv[0]) > 200 || argv[0][0] == '\0')
		return cli_fail(c, SMP_EX_USAGE,
		                "stat show: NAME must be 1 to 200 bytes");
	return run_and_print(c, &smpg_stat_show, buf,
	                     smpg_enc_stat_show(buf, sizeof(buf), argv[0]),
	                     print_stat_show);
}

/*
 * shell exec: the output as the board gave it, and an exit status that
 * says whether the command returned 0.  A legacy build's non-zero "rc" is
 * the command's, not a refusal.
 */
int
smp_run_shell_exec(struct smp_cli *c, int argc, char **argv)
{
	struct smp_cmd_result res;
	struct smpg_shell sh;
	uint8_t buf[1024];
	char why[256], msg[1024];
	ssize_t n;
	int rc;

	if ((n = smpg_enc_shell_exec(buf, sizeof(buf), argc, argv)) < 0)
		return cli_fail(c, SMP_EX_USAGE,
		                "shell exec: the command line is longer than "
		                "%zu bytes",
		                sizeof(buf) - 16);
	if ((rc = cli_start(c)) != 0)
		return rc;
	if (cli_cmd(c, &smpg_shell_exec, buf, n, 0, &res) == -1)
		return SMP_EX_FAIL;
	if (res.status != SMP_CMD_OK &&
	    !(res.status == SMP_CMD_BOARD_ERROR && res.tree.n > 0 &&
	      smp_tree_get(&res.tree, smp_tree_root(&res.tree), "o") != NULL)) {
		cli_explain(c, "shell exec", &smpg_shell_exec, &res, msg,
		            sizeof(msg));
		smp_tree_free(&res.tree);
		return cli_fail(c, SMP_EX_FAIL, "%s", msg);
	}
	if (smpg_dec_shell(&res.tree, &sh, why, sizeof(why)) == -1) {
		smp_tree_free(&res.tree);
		return bad_reply(c, "shell exec", why);
	}
	if (c->json)
		cli_print_tree(&res.tree);
	else {
		fwrite(sh.out, 1, sh.out_len, stdout);
		if (sh.out_len > 0 && sh.out[sh.out_len - 1] != '\n')
			fputc('\n', stdout);
		fflush(stdout);
	}
	rc = 0;
	if (sh.has_ret && sh.ret != 0) {
		if (!c->json)
			fprintf(stderr,
			        "smp: shell exec: the command returned "
			        "%" PRId64 "\n",
			        sh.ret);
		rc = SMP_EX_FAIL;
	}
	smp_tree_free(&res.tree);
	return rc;
}
