/*
 * Unit tests of supervisor/workers.c against a stand-in worker: this same
 * binary, exec'd with STUB_WORKER set, speaks the IPC and misbehaves on
 * request (dies, hangs, sends garbage, lies about its version).
 */
#include <sys/stat.h>

#include <dirent.h>
#include <fcntl.h>
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
#include "supervisor/upload.h"
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

/*
 * A pretend board behind the stand-in worker: chunks are written to
 * $STUB_OUT at their offset; a new upload resumes at what the file holds
 * (the board's offset), told through a rewind after the first chunk.
 * Marker files make it die ($STUB_DIE) or rewind ($STUB_REWIND) once.
 */
static uint64_t up_req, up_total, up_expected, up_board_off;
static int up_fd = -1;

static void
stub_send(uint64_t req, Ipc__Envelope *env)
{
	env->request_id = req;
	env->board_id = 7;
	ipc_send(stub_ipc, env, -1);
}

static void
stub_credit(uint32_t n)
{
	Ipc__Envelope env = IPC__ENVELOPE__INIT;
	Ipc__UploadCredit c = IPC__UPLOAD_CREDIT__INIT;

	c.chunks = n;
	env.body_case = IPC__ENVELOPE__BODY_UPLOAD_CREDIT;
	env.upload_credit = &c;
	stub_send(up_req, &env);
}

static void
stub_rewind(uint64_t off)
{
	Ipc__Envelope env = IPC__ENVELOPE__INIT;
	Ipc__UploadRewind rw = IPC__UPLOAD_REWIND__INIT;

	rw.offset = off;
	env.body_case = IPC__ENVELOPE__BODY_UPLOAD_REWIND;
	env.upload_rewind = &rw;
	stub_send(up_req, &env);
	up_expected = off;
	stub_credit(4);
}

static void
stub_upload_reply(Ipc__Reply__Status status)
{
	Ipc__Envelope env = IPC__ENVELOPE__INIT;
	Ipc__UploadResult res = IPC__UPLOAD_RESULT__INIT;
	Ipc__Reply r;

	ipc__reply__init(&r);
	r.status = status;
	if (status == IPC__REPLY__STATUS__OK) {
		res.bytes = up_total;
		res.window = 4;
		res.chunk = IPC_CHUNK_SIZE;
		r.result_case = IPC__REPLY__RESULT_UPLOAD;
		r.upload = &res;
	}
	env.body_case = IPC__ENVELOPE__BODY_REPLY;
	env.reply = &r;
	stub_send(up_req, &env);
	up_req = 0;
}

static int
take_marker(const char *var)
{
	const char *p = getenv(var);

	return p != NULL && unlink(p) == 0;
}

static void
stub_upload_begin(const Ipc__Envelope *env)
{
	struct stat st;

	up_req = env->request_id;
	up_total = env->upload_begin->total_len;
	up_expected = 0;
	if (up_fd == -1)
		up_fd = open(getenv("STUB_OUT"), O_RDWR | O_CREAT, 0600);
	up_board_off = fstat(up_fd, &st) == 0 ? (uint64_t)st.st_size : 0;
	up_board_off -= up_board_off % IPC_CHUNK_SIZE;
	stub_credit(4);
}

static void
stub_upload_chunk(const Ipc__Envelope *env)
{
	const Ipc__UploadChunk *c = env->upload_chunk;
	Ipc__Envelope p = IPC__ENVELOPE__INIT;
	Ipc__UploadProgress pr = IPC__UPLOAD_PROGRESS__INIT;

	if (env->request_id != up_req || c->offset != up_expected)
		return; /* stale: sent before a rewind */
	if (c->offset == 0 && up_board_off > 0) {
		stub_rewind(up_board_off); /* the board knew better */
		up_board_off = 0;
		return;
	}
	if (pwrite(up_fd, c->data.data, c->data.len, (off_t)c->offset) !=
	    (ssize_t)c->data.len)
		_exit(6);
	up_expected += c->data.len;
	pr.offset = up_expected;
	pr.total = up_total;
	p.body_case = IPC__ENVELOPE__BODY_UPLOAD_PROGRESS;
	p.upload_progress = &pr;
	stub_send(up_req, &p);
	if (up_expected >= 3 * IPC_CHUNK_SIZE && take_marker("STUB_DIE"))
		_exit(5);
	if (up_expected >= 3 * IPC_CHUNK_SIZE && take_marker("STUB_REWIND")) {
		stub_rewind(IPC_CHUNK_SIZE);
		return;
	}
	if (up_expected == up_total)
		stub_upload_reply(IPC__REPLY__STATUS__OK);
	else
		stub_credit(1);
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
	switch (env->body_case) {
	case IPC__ENVELOPE__BODY_UPLOAD_BEGIN:
		stub_upload_begin(env);
		return;
	case IPC__ENVELOPE__BODY_UPLOAD_CHUNK:
		stub_upload_chunk(env);
		return;
	case IPC__ENVELOPE__BODY_UPLOAD_ABORT:
		if (env->request_id == up_req)
			stub_upload_reply(IPC__REPLY__STATUS__ABORTED);
		return;
	case IPC__ENVELOPE__BODY_ECHO:
		break;
	default:
		return;
	}
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

/* --- Uploads through the stand-in worker. --- */

struct up_result {
	int done;
	int status;
	uint64_t bytes;
	uint64_t last_progress;
	int nprogress;
	struct upload *u; /* abort at the first progress when set */
};

static void
up_progress(uint64_t off, uint64_t total, void *arg)
{
	struct up_result *r = arg;

	assert_true(off <= total);
	r->last_progress = off;
	r->nprogress++;
	if (r->u != NULL)
		upload_abort(r->u);
}

static void
up_done(const Ipc__Reply *reply, void *arg)
{
	struct up_result *r = arg;

	r->done = 1;
	r->status = reply->status;
	if (reply->result_case == IPC__REPLY__RESULT_UPLOAD)
		r->bytes = reply->upload->bytes;
}

/* A file of n pseudo-random bytes; its path in out. */
static void
make_file(struct fx *f, const char *name, size_t n, char *out, size_t cap)
{
	FILE *fp;
	size_t i;

	snprintf(out, cap, "%s/%s", f->dir, name);
	fp = fopen(out, "wb");
	assert_non_null(fp);
	for (i = 0; i < n; i++)
		fputc((int)((i * 2654435761u) >> 13) & 0xff, fp);
	fclose(fp);
}

static int
same_file(const char *a, const char *b)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s'", a, b);
	return system(cmd) == 0;
}

static struct upload *
start_upload(struct fx *f, struct worker *w, const char *src,
             struct up_result *r)
{
	struct upload_opts o = {0};
	char err[256];
	struct upload *u;

	memset(r, 0, sizeof(*r));
	u = upload_start(f->base, w, 7, src, &o, up_progress, up_done, r, err,
	                 sizeof(err));
	if (u == NULL)
		fail_msg("upload_start: %s", err);
	return u;
}

static void
upload_case(void **state, size_t size, const char *marker, int resumes)
{
	struct fx *f = *state;
	char src[128], out[128], mark[128];
	struct worker *w;
	struct up_result r;
	struct upload *u;

	make_file(f, "src.bin", size, src, sizeof(src));
	snprintf(out, sizeof(out), "%s/out.bin", f->dir);
	setenv("STUB_OUT", out, 1);
	if (marker != NULL) {
		snprintf(mark, sizeof(mark), "%s/marker", f->dir);
		close(open(mark, O_CREAT | O_WRONLY, 0600));
		setenv(marker, mark, 1);
	}
	w = spawn(f, "w", 0); /* it inherits the settings above */
	u = start_upload(f, w, src, &r);
	assert_true(run_until(f, &r.done, 10000));
	assert_int_equal(r.status, IPC__REPLY__STATUS__OK);
	assert_int_equal(r.bytes, size);
	assert_int_equal(r.last_progress, size);
	assert_int_equal(upload_total(u), size);
	assert_int_equal(upload_resumes(u), resumes);
	assert_true(same_file(src, out));
	upload_free(u);
	unsetenv("STUB_DIE");
	unsetenv("STUB_REWIND");
	unlink(out);
	unlink(src);
}

static void
test_upload_streams_under_credit(void **state)
{
	upload_case(state, 100000, NULL, 0);
}

static void
test_upload_exact_chunks(void **state)
{
	upload_case(state, 8 * IPC_CHUNK_SIZE, NULL, 0);
}

static void
test_upload_follows_rewind(void **state)
{
	upload_case(state, 50000, "STUB_REWIND", 0);
}

static void
test_upload_resumes_after_worker_death(void **state)
{
	upload_case(state, 60000, "STUB_DIE", 1);
}

static void
test_upload_abort(void **state)
{
	struct fx *f = *state;
	char src[128], out[128];
	struct worker *w;
	struct up_result r;
	struct upload *u;

	make_file(f, "src.bin", 200000, src, sizeof(src));
	snprintf(out, sizeof(out), "%s/out.bin", f->dir);
	setenv("STUB_OUT", out, 1);
	w = spawn(f, "w", 0);
	u = start_upload(f, w, src, &r);
	r.u = u;
	assert_true(run_until(f, &r.done, 10000));
	assert_int_equal(r.status, IPC__REPLY__STATUS__ABORTED);
	assert_true(r.last_progress < 200000);
	upload_free(u);
	unlink(out);
	unlink(src);
}

static void
test_upload_missing_file(void **state)
{
	struct fx *f = *state;
	struct worker *w = spawn(f, "w", 0);
	struct up_result r;
	char err[256];

	assert_null(upload_start(f->base, w, 7, "/nonexistent/x.bin", NULL,
	                         up_progress, up_done, &r, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/x.bin"));
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
	    cmocka_unit_test_setup_teardown(test_upload_streams_under_credit,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_upload_exact_chunks, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_upload_follows_rewind, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(
	        test_upload_resumes_after_worker_death, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_upload_abort, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_upload_missing_file, setup,
	                                    teardown),
	};

	if (getenv("STUB_WORKER") != NULL)
		return stub_main();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
