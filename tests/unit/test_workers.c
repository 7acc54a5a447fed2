/*
 * Unit tests of supervisor/workers.c against a stand-in worker: this same
 * binary, exec'd with STUB_WORKER set, speaks the IPC and misbehaves on
 * request (dies, hangs, sends garbage, lies about its version).
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "ipc.h"
#include "supervisor/workers.h"

/* --- The stand-in worker. --- */

static struct event_base *stub_base;
static struct ipc *stub_ipc;
static char stub_fds[256]; /* descriptors above 2 it was started with */

static void
stub_reply(const Ipc__Envelope *req, const char *text)
{
	Ipc__Envelope env = IPC__ENVELOPE__INIT;
	Ipc__Reply r;

	ipc__reply__init(&r);
	r.result_case = IPC__REPLY__RESULT_ECHO;
	r.echo = (char *)(uintptr_t)text;
	env.request_id = req->request_id;
	env.board_id = req->board_id;
	env.body_case = IPC__ENVELOPE__BODY_REPLY;
	env.reply = &r;
	ipc_send(stub_ipc, &env, -1);
}

static void
stub_msg(struct ipc *ipc, const Ipc__Envelope *env, int fd, void *arg)
{
	char buf[64];
	const char *t;

	(void)ipc;
	(void)arg;
	if (fd != -1)
		close(fd);
	if (env->body_case != IPC__ENVELOPE__BODY_ECHO)
		return;
	t = env->echo->text;
	if (strcmp(t, "die") == 0)
		_exit(3);
	if (strcmp(t, "hang") == 0)
		return;
	if (strcmp(t, "garbage") == 0) {
		if (write(IPC_WORKER_FD, "\xff\xff\xff\xff", 4) != 4)
			_exit(4);
		return;
	}
	if (strcmp(t, "pid") == 0) {
		snprintf(buf, sizeof(buf), "%d", (int)getpid());
		stub_reply(env, buf);
		return;
	}
	if (strcmp(t, "fds") == 0) {
		stub_reply(env, stub_fds);
		return;
	}
	stub_reply(env, t);
}

static void
stub_err(struct ipc *ipc, const char *reason, void *arg)
{
	(void)ipc;
	(void)reason;
	(void)arg;
	exit(0); /* the supervisor closed the socket */
}

static void
stub_list_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	size_t len = 0;
	int n;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		n = atoi(de->d_name);
		if (de->d_name[0] == '.' || n <= 2 || n == dirfd(d))
			continue;
		len += (size_t)snprintf(stub_fds + len, sizeof(stub_fds) - len,
		                        "%s%d", len ? " " : "", n);
		if (len >= sizeof(stub_fds))
			break;
	}
	closedir(d);
}

static int
stub_main(void)
{
	Ipc__Envelope env = IPC__ENVELOPE__INIT;
	Ipc__Hello h;
	const char *v = getenv("STUB_VERSION");

	stub_list_fds();
	stub_base = event_base_new();
	stub_ipc = ipc_new(stub_base, IPC_WORKER_FD, stub_msg, stub_err, NULL);
	ipc__hello__init(&h);
	h.protocol_version = v ? (uint32_t)atoi(v) : IPC_PROTOCOL_VERSION;
	h.role = (char *)(uintptr_t) "udp";
	h.pid = (uint32_t)getpid();
	env.body_case = IPC__ENVELOPE__BODY_HELLO;
	env.hello = &h;
	ipc_send(stub_ipc, &env, -1);
	event_base_dispatch(stub_base);
	return 0;
}

/* --- The tests. --- */

struct result {
	int done;
	int status;
	char text[256];
	char error[256];
};

struct fx {
	struct event_base *base;
	struct workers *ws;
	char dir[64];
};

static void
on_reply(const Ipc__Envelope *env, void *arg)
{
	struct result *r = arg;

	if (env->body_case != IPC__ENVELOPE__BODY_REPLY)
		return;
	r->done = 1;
	r->status = env->reply->status;
	snprintf(r->error, sizeof(r->error), "%s", env->reply->error);
	if (env->reply->result_case == IPC__REPLY__RESULT_ECHO)
		snprintf(r->text, sizeof(r->text), "%s", env->reply->echo);
}

static void
timeout_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	*(int *)arg = 1;
}

/* Run the loop until *flag is set or ms pass; returns *flag. */
static int
run_until(struct fx *f, int *flag, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	int expired = 0;
	struct event *t = evtimer_new(f->base, timeout_cb, &expired);

	evtimer_add(t, &tv);
	while (!*flag && !expired)
		event_base_loop(f->base, EVLOOP_ONCE);
	event_free(t);
	return *flag;
}

static void
echo(struct fx *f, struct worker *w, const char *text, struct result *r)
{
	Ipc__Envelope env = IPC__ENVELOPE__INIT;
	Ipc__Echo e;

	(void)f;
	memset(r, 0, sizeof(*r));
	ipc__echo__init(&e);
	e.text = (char *)(uintptr_t)text;
	env.body_case = IPC__ENVELOPE__BODY_ECHO;
	env.echo = &e;
	assert_true(worker_request(w, 7, &env, on_reply, r) != 0);
}

static struct worker *
spawn(struct fx *f, const char *name, uint32_t timeout_ms)
{
	struct worker_link l;
	char err[256];
	struct worker *w;

	memset(&l, 0, sizeof(l));
	l.kind = WORKER_UDP;
	l.address = "127.0.0.1:9";
	l.request_timeout_ms = timeout_ms;
	w = worker_spawn(f->ws, name, &l, err, sizeof(err));
	if (w == NULL)
		fail_msg("spawn: %s", err);
	return w;
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char self[PATH_MAX], link[128];
	ssize_t n;

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_workers.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	assert_true(n > 0);
	self[n] = '\0';
	snprintf(link, sizeof(link), "%s/rdfm-mcumgr-worker-udp", f->dir);
	assert_int_equal(symlink(self, link), 0);
	setenv("RDFM_MCUMGR_WORKER_DIR", f->dir, 1);
	setenv("STUB_WORKER", "1", 1);
	unsetenv("STUB_VERSION");
	f->base = event_base_new();
	f->ws = workers_new(f->base);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char link[128];

	workers_free(f->ws);
	event_base_free(f->base);
	snprintf(link, sizeof(link), "%s/rdfm-mcumgr-worker-udp", f->dir);
	unlink(link);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void
test_echo_round_trip(void **state)
{
	struct fx *f = *state;
	struct worker *w = spawn(f, "w", 0);
	struct result r;

	echo(f, w, "hello", &r);
	assert_true(run_until(f, &r.done, 5000));
	assert_int_equal(r.status, IPC__REPLY__STATUS__OK);
	assert_string_equal(r.text, "hello");
	assert_true(worker_pid(w) > 0);
}

static void
test_only_fd_3_inherited(void **state)
{
	struct fx *f = *state;
	struct worker *w = spawn(f, "w", 0);
	struct result r;

	echo(f, w, "fds", &r);
	assert_true(run_until(f, &r.done, 5000));
	assert_int_equal(r.status, IPC__REPLY__STATUS__OK);
	assert_string_equal(r.text, "3");
}

static void
test_crash_fails_request_and_restarts(void **state)
{
	struct fx *f = *state;
	struct worker *w = spawn(f, "w", 0);
	struct result r;
	int pid1;

	echo(f, w, "pid", &r);
	assert_true(run_until(f, &r.done, 5000));
	pid1 = atoi(r.text);
	assert_int_equal(pid1, worker_pid(w));

	echo(f, w, "die", &r);
	assert_true(run_until(f, &r.done, 5000));
	assert_int_equal(r.status, IPC__REPLY__STATUS__LINK_DOWN);
	assert_non_null(strstr(r.error, "exited with status 3"));

	/* Waits for the restart, then goes through. */
	echo(f, w, "pid", &r);
	assert_true(run_until(f, &r.done, 5000));
	assert_int_equal(r.status, IPC__REPLY__STATUS__OK);
	assert_int_not_equal(atoi(r.text), pid1);
	assert_int_equal(worker_restarts(w), 1);
}

static void
test_garbage_restarts_worker(void **state)
{
	struct fx *f = *state;
	struct worker *w = spawn(f, "w", 0);
	struct result r;

	echo(f, w, "garbage", &r);
	assert_true(run_until(f, &r.done, 5000));
	assert_int_equal(r.status, IPC__REPLY__STATUS__LINK_DOWN);
	assert_non_null(strstr(r.error, "killed"));
	echo(f, w, "again", &r);
	assert_true(run_until(f, &r.done, 5000));
	assert_int_equal(r.status, IPC__REPLY__STATUS__OK);
	assert_string_equal(r.text, "again");
	assert_int_equal(worker_restarts(w), 1);
}

static void
test_version_mismatch_refused(void **state)
{
	struct fx *f = *state;
	struct worker *w;
	struct result r;

	setenv("STUB_VERSION", "99", 1);
	w = spawn(f, "w", 0);
	echo(f, w, "hello", &r);
	assert_true(run_until(f, &r.done, 5000));
	unsetenv("STUB_VERSION");
	assert_int_equal(r.status, IPC__REPLY__STATUS__LINK_DOWN);
	assert_non_null(strstr(r.error, "protocol version 99"));
}

static void
test_hang_tripped_by_watchdog(void **state)
{
	struct fx *f = *state;
	struct worker *w = spawn(f, "w", 100);
	struct result r;

	echo(f, w, "hang", &r);
	assert_true(run_until(f, &r.done, 15000));
	assert_int_equal(r.status, IPC__REPLY__STATUS__LINK_DOWN);
	assert_non_null(strstr(r.error, "watchdog"));
}

static void
test_other_worker_undisturbed(void **state)
{
	struct fx *f = *state;
	struct worker *a = spawn(f, "a", 0), *b = spawn(f, "b", 0);
	struct result ra, rb;
	int pid_b;

	echo(f, b, "pid", &rb);
	assert_true(run_until(f, &rb.done, 5000));
	pid_b = atoi(rb.text);
	echo(f, b, "hang", &rb);
	echo(f, a, "die", &ra);
	assert_true(run_until(f, &ra.done, 5000));
	assert_int_equal(ra.status, IPC__REPLY__STATUS__LINK_DOWN);
	assert_false(rb.done); /* b's request is still in flight */
	echo(f, a, "x", &ra);
	assert_true(run_until(f, &ra.done, 5000));
	assert_int_equal(worker_pid(b), pid_b);
	assert_int_equal(worker_restarts(b), 0);
	worker_stop(b);
	assert_true(run_until(f, &rb.done, 5000));
	assert_int_equal(rb.status, IPC__REPLY__STATUS__LINK_DOWN);
	assert_non_null(strstr(rb.error, "stopped"));
}

static void
test_missing_executable(void **state)
{
	struct fx *f = *state;
	struct worker_link l;
	char err[256];

	memset(&l, 0, sizeof(l));
	l.kind = WORKER_SERIAL;
	l.device = "/dev/null";
	assert_null(worker_spawn(f->ws, "s", &l, err, sizeof(err)));
	assert_non_null(strstr(err, "rdfm-mcumgr-worker-serial"));
	l.kind = WORKER_UDP;
	l.address = NULL;
	assert_null(worker_spawn(f->ws, "u", &l, err, sizeof(err)));
	assert_non_null(strstr(err, "address"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_echo_round_trip, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_only_fd_3_inherited, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(
	        test_crash_fails_request_and_restarts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_garbage_restarts_worker, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_version_mismatch_refused,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hang_tripped_by_watchdog,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_other_worker_undisturbed,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing_executable, setup,
	                                    teardown),
	};

	if (getenv("STUB_WORKER") != NULL)
		return stub_main();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
