/*
 * Unit tests of common/ipc.c over a real SOCK_SEQPACKET socketpair: framing,
 * descriptor passing, size caps, and that malformed input ends the peer.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "ipc.h"

struct sink {
	int nmsg;
	int nerr;
	char reason[256];
	uint64_t last_req;
	int last_case;
	char last_text[64];
	size_t last_data_len;
	int fd;
	struct ipc *ipc;
	int free_on_error;
};

static void
sink_msg(struct ipc *ipc, const Ipc__Envelope *env, int fd, void *arg)
{
	struct sink *s = arg;

	(void)ipc;
	s->nmsg++;
	s->last_req = env->request_id;
	s->last_case = env->body_case;
	if (env->body_case == IPC__ENVELOPE__BODY_ECHO)
		snprintf(s->last_text, sizeof(s->last_text), "%s",
		         env->echo->text);
	if (env->body_case == IPC__ENVELOPE__BODY_UPLOAD_CHUNK)
		s->last_data_len = env->upload_chunk->data.len;
	if (s->fd != -1)
		close(s->fd);
	s->fd = fd;
}

static void
sink_err(struct ipc *ipc, const char *reason, void *arg)
{
	struct sink *s = arg;

	s->nerr++;
	snprintf(s->reason, sizeof(s->reason), "%s", reason);
	if (s->free_on_error) {
		ipc_free(ipc);
		s->ipc = NULL;
	}
}

struct fixture {
	struct event_base *base;
	int sv[2];
	struct ipc *a, *b;
	struct sink sa, sb;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->base = event_base_new();
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, f->sv), 0);
	f->sa.fd = f->sb.fd = -1;
	f->a = ipc_new(f->base, f->sv[0], sink_msg, sink_err, &f->sa);
	f->b = ipc_new(f->base, f->sv[1], sink_msg, sink_err, &f->sb);
	assert_non_null(f->a);
	assert_non_null(f->b);
	f->sb.ipc = f->b;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	ipc_free(f->a);
	if (f->sb.ipc != NULL)
		ipc_free(f->sb.ipc);
	if (f->sa.fd != -1)
		close(f->sa.fd);
	if (f->sb.fd != -1)
		close(f->sb.fd);
	event_base_free(f->base);
	free(f);
	return 0;
}

/* Run the loop until nothing more happens. */
static void
spin(struct fixture *f)
{
	int i;

	for (i = 0; i < 20; i++)
		event_base_loop(f->base, EVLOOP_NONBLOCK);
}

static int
send_echo(struct ipc *ipc, uint64_t id, const char *text, int fd)
{
	Ipc__Envelope env = IPC__ENVELOPE__INIT;
	Ipc__Echo echo;

	ipc__echo__init(&echo);
	echo.text = (char *)(uintptr_t)text;
	env.request_id = id;
	env.board_id = 7;
	env.body_case = IPC__ENVELOPE__BODY_ECHO;
	env.echo = &echo;
	return ipc_send(ipc, &env, fd);
}

static void
test_messages_keep_boundaries_and_order(void **state)
{
	struct fixture *f = *state;
	char text[32];
	int i;

	for (i = 1; i <= 50; i++) {
		snprintf(text, sizeof(text), "msg %d", i);
		assert_int_equal(send_echo(f->a, i, text, -1), 0);
	}
	assert_int_equal(ipc_queued(f->a), 50);
	spin(f);
	assert_int_equal(ipc_queued(f->a), 0);
	assert_int_equal(f->sb.nmsg, 50);
	assert_int_equal(f->sb.last_req, 50);
	assert_string_equal(f->sb.last_text, "msg 50");
	assert_int_equal(f->sb.nerr, 0);
}

static void
test_descriptor_passing(void **state)
{
	struct fixture *f = *state;
	int p[2];
	char c = 0;

	assert_int_equal(pipe(p), 0);
	assert_int_equal(send_echo(f->a, 1, "fd", p[1]), 0);
	/* ipc_send keeps its own copy: the caller may close now. */
	close(p[1]);
	spin(f);
	assert_int_equal(f->sb.nmsg, 1);
	assert_true(f->sb.fd >= 0);
	assert_int_equal(fcntl(f->sb.fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	assert_int_equal(write(f->sb.fd, "x", 1), 1);
	assert_int_equal(read(p[0], &c, 1), 1);
	assert_int_equal(c, 'x');
	close(p[0]);
}

static void
test_large_chunk_within_cap(void **state)
{
	struct fixture *f = *state;
	Ipc__Envelope env = IPC__ENVELOPE__INIT;
	Ipc__UploadChunk ch = IPC__UPLOAD_CHUNK__INIT;
	static uint8_t data[IPC_CHUNK_SIZE];

	memset(data, 0xa5, sizeof(data));
	ch.offset = 4096;
	ch.data.data = data;
	ch.data.len = sizeof(data);
	env.body_case = IPC__ENVELOPE__BODY_UPLOAD_CHUNK;
	env.upload_chunk = &ch;
	assert_int_equal(ipc_send(f->a, &env, -1), 0);
	spin(f);
	assert_int_equal(f->sb.nmsg, 1);
	assert_int_equal(f->sb.last_data_len, IPC_CHUNK_SIZE);
}

static void
test_send_refuses_oversize(void **state)
{
	struct fixture *f = *state;
	Ipc__Envelope env = IPC__ENVELOPE__INIT;
	Ipc__UploadChunk ch = IPC__UPLOAD_CHUNK__INIT;
	uint8_t *data = calloc(1, IPC_MAX_MSG);

	ch.data.data = data;
	ch.data.len = IPC_MAX_MSG;
	env.body_case = IPC__ENVELOPE__BODY_UPLOAD_CHUNK;
	env.upload_chunk = &ch;
	assert_int_equal(ipc_send(f->a, &env, -1), -1);
	assert_int_equal(ipc_queued(f->a), 0);
	free(data);
}

static void
test_oversized_datagram_ends_peer(void **state)
{
	struct fixture *f = *state;
	uint8_t *big = calloc(1, IPC_MAX_MSG + 100);

	f->sb.free_on_error = 1;
	assert_int_equal(send(f->sv[0], big, IPC_MAX_MSG + 100, 0),
	                 IPC_MAX_MSG + 100);
	spin(f);
	assert_int_equal(f->sb.nerr, 1);
	assert_string_equal(f->sb.reason, "oversized message");
	assert_null(f->sb.ipc);
	free(big);
}

static void
test_garbage_ends_peer(void **state)
{
	struct fixture *f = *state;
	const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};

	f->sb.free_on_error = 1;
	assert_int_equal(send(f->sv[0], junk, sizeof(junk), 0), sizeof(junk));
	/* A later good message must not be delivered. */
	assert_int_equal(send_echo(f->a, 2, "late", -1), 0);
	spin(f);
	assert_int_equal(f->sb.nerr, 1);
	assert_int_equal(f->sb.nmsg, 0);
	assert_non_null(strstr(f->sb.reason, "malformed message"));
}

static void
test_peer_close_reported(void **state)
{
	struct fixture *f = *state;

	f->sb.free_on_error = 1;
	ipc_free(f->a);
	f->a = NULL;
	spin(f);
	assert_int_equal(f->sb.nerr, 1);
	assert_string_equal(f->sb.reason, "peer closed");
}

static void
test_two_descriptors_end_peer(void **state)
{
	struct fixture *f = *state;
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(2 * sizeof(int))];
	} cm;
	Ipc__Envelope env = IPC__ENVELOPE__INIT;
	Ipc__Reset rs = IPC__RESET__INIT;
	uint8_t buf[64];
	struct iovec iov;
	struct msghdr msg = {0};
	struct cmsghdr *c;
	int fds[2] = {0, 1};

	env.body_case = IPC__ENVELOPE__BODY_RESET;
	env.reset = &rs;
	iov.iov_base = buf;
	iov.iov_len = ipc__envelope__pack(&env, buf);
	memset(&cm, 0, sizeof(cm));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cm.buf;
	msg.msg_controllen = sizeof(cm.buf);
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(c), fds, sizeof(fds));
	f->sb.free_on_error = 1;
	assert_true(sendmsg(f->sv[0], &msg, 0) > 0);
	spin(f);
	assert_int_equal(f->sb.nerr, 1);
	assert_int_equal(f->sb.nmsg, 0);
}

static void
test_decode_validates(void **state)
{
	Ipc__Envelope env = IPC__ENVELOPE__INIT;
	Ipc__ImageSetState st = IPC__IMAGE_SET_STATE__INIT;
	Ipc__Configure cf = IPC__CONFIGURE__INIT;
	Ipc__LinkConfig lc;
	Ipc__Envelope *d;
	uint8_t buf[512], hash[33] = {0};
	char err[128];
	size_t n;

	(void)state;
	ipc__link_config__init(&lc);
	/* No body. */
	env.request_id = 5;
	n = ipc__envelope__pack(&env, buf);
	assert_null(ipc_decode(buf, n, err, sizeof(err)));
	assert_string_equal(err, "no message body");
	assert_null(ipc_decode(buf, 0, err, sizeof(err)));
	assert_null(ipc_decode(buf, IPC_MAX_MSG + 1, err, sizeof(err)));
	assert_non_null(strstr(err, "above"));

	/* A hash that is not 32 bytes. */
	env.body_case = IPC__ENVELOPE__BODY_IMAGE_SET_STATE;
	env.image_set_state = &st;
	st.hash.data = hash;
	st.hash.len = 33;
	n = ipc__envelope__pack(&env, buf);
	assert_null(ipc_decode(buf, n, err, sizeof(err)));
	assert_non_null(strstr(err, "hash is 33 bytes"));
	st.hash.len = 32;
	n = ipc__envelope__pack(&env, buf);
	d = ipc_decode(buf, n, err, sizeof(err));
	assert_non_null(d);
	assert_int_equal(d->request_id, 5);
	ipc__envelope__free_unpacked(d, NULL);

	/* Configure needs a link, and a known kind. */
	env.body_case = IPC__ENVELOPE__BODY_CONFIGURE;
	env.configure = &cf;
	n = ipc__envelope__pack(&env, buf);
	assert_null(ipc_decode(buf, n, err, sizeof(err)));
	assert_string_equal(err, "configure without link");
	cf.link = &lc;
	lc.kind = 9;
	n = ipc__envelope__pack(&env, buf);
	assert_null(ipc_decode(buf, n, err, sizeof(err)));
	assert_string_equal(err, "unknown link kind 9");
	lc.kind = IPC__LINK_CONFIG__KIND__UDP;
	lc.address = (char *)(uintptr_t) "127.0.0.1:1337";
	n = ipc__envelope__pack(&env, buf);
	d = ipc_decode(buf, n, err, sizeof(err));
	assert_non_null(d);
	assert_string_equal(d->configure->link->address, "127.0.0.1:1337");
	ipc__envelope__free_unpacked(d, NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
	        test_messages_keep_boundaries_and_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_descriptor_passing, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_large_chunk_within_cap, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_send_refuses_oversize, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_oversized_datagram_ends_peer,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_garbage_ends_peer, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_peer_close_reported, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_two_descriptors_end_peer,
	                                    setup, teardown),
	    cmocka_unit_test(test_decode_validates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
