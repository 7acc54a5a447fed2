/*
 * sim-client: a small SMP client for the simulator's tests.  Sends one
 * command (or raw packets) over serial, UDP or the BLE ATT socket, built
 * with the project's codecs, and prints each reply as its header, hex and
 * JSON, so shell tests can compare golden bytes and read fields with jq.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <cbor.h>
#include <json-c/json.h>
#include <openssl/sha.h>

#include "att.h"
#include "log.h"
#include "mcuboot.h"
#include "smp.h"
#include "smp_ble.h"
#include "smp_serial.h"
#include "xmalloc.h"

#define PKT_MAX      4096
#define QUEUE_MAX    64
#define EXIT_TIMEOUT 3

enum transport { T_NONE, T_SERIAL, T_UDP, T_BLE };

static enum transport tr;
static int fd = -1;
static int timeout_ms = 3000;
static int ver = SMP_V1;
static uint8_t seq;
static uint16_t mtu = 247;
static uint16_t ble_handle, ble_cccd;
static struct smp_serial_decoder *sdec;
static struct smp_ble_reasm *breasm;
static struct {
	size_t len;
	uint8_t *pkt;
} queue[QUEUE_MAX];
static size_t qn;
static uint64_t bytes_sent, bytes_recv;
static bool no_setup; /* BLE: no MTU exchange or discovery */

static void
usage(void)
{
	fprintf(
	    stderr,
	    "usage: sim-client (--serial PATH | --udp HOST:PORT | --ble "
	    "@NAME)\n"
	    "                  [--timeout-ms N] [--v2] [--mtu N] [--seq N] "
	    "COMMAND\n"
	    "commands:\n"
	    "  echo TEXT | reset | params | state | erase\n"
	    "  test HASHHEX | permanent HASHHEX | confirm [HASHHEX]\n"
	    "  upload FILE [CHUNK [STOP_AT]]   (env NO_SHA=1: first packet "
	    "without sha)\n"
	    "  chunk FILE OFF LEN [first]      one upload packet with the "
	    "file's bytes\n"
	    "  raw HEX                         send a packet, print the reply\n"
	    "  burst N TEXT                    N echo requests at once, count "
	    "replies\n"
	    "  rate N TEXT                     N echos one at a time, print "
	    "bytes/s\n"
	    "each reply: \"hdr op= ver= group= id= seq= len=\", \"hex ...\", "
	    "\"json ...\",\n"
	    "\"shape ...\" (the CBOR's keys and types);\n"
	    "exit 3 when no reply came within the timeout\n");
	exit(2);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
enqueue(void *arg, const uint8_t *pkt, size_t len)
{
	(void)arg;
	if (qn == QUEUE_MAX)
		return;
	queue[qn].pkt = xmalloc(len);
	memcpy(queue[qn].pkt, pkt, len);
	queue[qn].len = len;
	qn++;
}

static void
write_all(const uint8_t *b, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, b, n);

		if (w < 0 && (errno == EINTR || errno == EAGAIN)) {
			struct pollfd p = {fd, POLLOUT, 0};

			poll(&p, 1, 100);
			continue;
		}
		if (w < 0)
			fatal("write failed", NULL);
		b += w;
		n -= (size_t)w;
	}
}

/* Read whatever is there into the queue; returns -1 on timeout. */
static int
pump(int ms)
{
	uint8_t buf[8192];
	struct pollfd p = {fd, POLLIN, 0};
	struct att_pdu *pdu;
	char err[96];
	ssize_t n;

	if (poll(&p, 1, ms) <= 0)
		return -1;
	n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && errno == ENOTSOCK)
		n = read(fd, buf, sizeof(buf));
	/* UDP: an ICMP "port unreachable" from a board that is gone. */
	if (n < 0 &&
	    (errno == EAGAIN || errno == EINTR || errno == ECONNREFUSED))
		return 0;
	if (n <= 0)
		fatalx("link closed", NULL);
	bytes_recv += (size_t)n;
	switch (tr) {
	case T_SERIAL:
		smp_serial_decoder_feed(sdec, buf, (size_t)n, enqueue, NULL);
		break;
	case T_UDP:
		enqueue(NULL, buf, (size_t)n);
		break;
	case T_BLE:
		pdu = xmalloc(sizeof(*pdu));
		if (att_decode(buf, (size_t)n, pdu, err, sizeof(err)) == 0 &&
		    pdu->op == ATT_OP_NOTIFY &&
		    pdu->u.write.handle == ble_handle)
			smp_ble_reasm_feed(breasm, pdu->u.write.value,
			                   pdu->u.write.len, enqueue, NULL);
		free(pdu);
		break;
	default:
		break;
	}
	return 0;
}

static void
send_pkt(const uint8_t *pkt, size_t len)
{
	uint8_t *enc, buf[ATT_MAX_MTU];
	struct att_pdu pdu;
	size_t cap, i, n, off, flen;
	ssize_t e;

	switch (tr) {
	case T_SERIAL:
		cap = smp_serial_encoded_len(len, SMP_SERIAL_LINE_MAX);
		enc = xmalloc(cap ? cap : 1);
		if ((e = smp_serial_encode(pkt, len, SMP_SERIAL_LINE_MAX, enc,
		                           cap)) < 0)
			fatalx("cannot frame the packet", NULL);
		write_all(enc, (size_t)e);
		bytes_sent += (size_t)e;
		free(enc);
		break;
	case T_UDP:
		if (send(fd, pkt, len, 0) == -1)
			fatal("udp send failed", NULL);
		bytes_sent += len;
		break;
	case T_BLE:
		n = smp_ble_fragments(len, mtu);
		for (i = 0; i < n; i++) {
			smp_ble_fragment(len, mtu, i, &off, &flen);
			pdu.op = ATT_OP_WRITE_CMD;
			pdu.u.write.handle = ble_handle;
			pdu.u.write.value = pkt + off;
			pdu.u.write.len = flen;
			e = att_encode(&pdu, buf, mtu);
			if (e < 0 || send(fd, buf, (size_t)e, 0) == -1)
				fatal("ble write failed", NULL);
			bytes_sent += (size_t)e;
		}
		break;
	default:
		break;
	}
}

/* Wait for the reply with this sequence number; others are discarded. */
static int
await(uint8_t s, uint8_t *out, size_t *len, int ms)
{
	double deadline = now_s() + ms / 1000.0;
	size_t i;

	for (;;) {
		for (i = 0; i < qn; i++) {
			struct smp_hdr h;
			bool match = smp_hdr_decode(queue[i].pkt, queue[i].len,
			                            &h) == SMP_OK &&
			             h.seq == s;

			if (match && queue[i].len <= PKT_MAX) {
				memcpy(out, queue[i].pkt, queue[i].len);
				*len = queue[i].len;
			}
			free(queue[i].pkt);
			if (match) {
				memmove(&queue[0], &queue[i + 1],
				        (qn - i - 1) * sizeof(queue[0]));
				qn -= i + 1;
				return 0;
			}
		}
		qn = 0;
		int left = (int)((deadline - now_s()) * 1000);
		if (left <= 0 || (pump(left) == -1 && now_s() >= deadline))
			return -1;
	}
}

static json_object *
cbor_to_json(const cbor_item_t *it)
{
	static const char hx[] = "0123456789abcdef";
	json_object *o;
	size_t i, n;
	char *s;

	switch (cbor_typeof(it)) {
	case CBOR_TYPE_UINT:
		return json_object_new_int64((int64_t)cbor_get_int(it));
	case CBOR_TYPE_NEGINT:
		return json_object_new_int64(-1 - (int64_t)cbor_get_int(it));
	case CBOR_TYPE_BYTESTRING:
		if (!cbor_bytestring_is_definite(it))
			return NULL;
		n = cbor_bytestring_length(it);
		s = xmalloc(2 * n + 1);
		for (i = 0; i < n; i++) {
			s[2 * i] = hx[cbor_bytestring_handle(it)[i] >> 4];
			s[2 * i + 1] = hx[cbor_bytestring_handle(it)[i] & 15];
		}
		s[2 * n] = '\0';
		o = json_object_new_string(s);
		free(s);
		return o;
	case CBOR_TYPE_STRING:
		if (!cbor_string_is_definite(it))
			return NULL;
		return json_object_new_string_len(
		    (const char *)cbor_string_handle(it),
		    (int)cbor_string_length(it));
	case CBOR_TYPE_ARRAY:
		o = json_object_new_array();
		for (i = 0; i < cbor_array_size(it); i++)
			json_object_array_add(
			    o, cbor_to_json(cbor_array_handle(it)[i]));
		return o;
	case CBOR_TYPE_MAP:
		o = json_object_new_object();
		for (i = 0; i < cbor_map_size(it); i++) {
			struct cbor_pair *p = &cbor_map_handle(it)[i];
			char key[64];

			if (cbor_typeof(p->key) == CBOR_TYPE_STRING &&
			    cbor_string_is_definite(p->key))
				snprintf(
				    key, sizeof(key), "%.*s",
				    (int)cbor_string_length(p->key),
				    (const char *)cbor_string_handle(p->key));
			else
				snprintf(key, sizeof(key), "?%zu", i);
			json_object_object_add(o, key, cbor_to_json(p->value));
		}
		return o;
	case CBOR_TYPE_FLOAT_CTRL:
		if (cbor_is_bool(it))
			return json_object_new_boolean(cbor_get_bool(it));
		return NULL;
	default:
		return NULL;
	}
}

/*
 * The reply's CBOR shape: every value replaced by its type, maps and
 * arrays kept with their keys and order, each marked definite or not
 * ("{}" key of a map, first element of an array).
 */
static json_object *
cbor_shape(const cbor_item_t *it)
{
	json_object *o;
	size_t i;

	switch (cbor_typeof(it)) {
	case CBOR_TYPE_UINT:
		return json_object_new_string("uint");
	case CBOR_TYPE_NEGINT:
		return json_object_new_string("negint");
	case CBOR_TYPE_BYTESTRING:
		return json_object_new_string("bytes");
	case CBOR_TYPE_STRING:
		return json_object_new_string("text");
	case CBOR_TYPE_ARRAY:
		o = json_object_new_array();
		json_object_array_add(
		    o, json_object_new_string(cbor_array_is_definite(it)
		                                  ? "definite"
		                                  : "indefinite"));
		for (i = 0; i < cbor_array_size(it); i++)
			json_object_array_add(
			    o, cbor_shape(cbor_array_handle(it)[i]));
		return o;
	case CBOR_TYPE_MAP:
		o = json_object_new_object();
		json_object_object_add(
		    o, "{}",
		    json_object_new_string(
		        cbor_map_is_definite(it) ? "definite" : "indefinite"));
		for (i = 0; i < cbor_map_size(it); i++) {
			struct cbor_pair *p = &cbor_map_handle(it)[i];
			char key[64];

			if (cbor_typeof(p->key) == CBOR_TYPE_STRING &&
			    cbor_string_is_definite(p->key))
				snprintf(
				    key, sizeof(key), "%.*s",
				    (int)cbor_string_length(p->key),
				    (const char *)cbor_string_handle(p->key));
			else
				snprintf(key, sizeof(key), "?%zu", i);
			json_object_object_add(o, key, cbor_shape(p->value));
		}
		return o;
	case CBOR_TYPE_FLOAT_CTRL:
		return json_object_new_string(cbor_is_bool(it) ? "bool"
		                                               : "other");
	default:
		return json_object_new_string("other");
	}
}

static void
print_reply(const uint8_t *pkt, size_t len)
{
	struct cbor_load_result res;
	struct smp_hdr h;
	cbor_item_t *it;
	json_object *j;
	size_t i;

	if (smp_hdr_decode(pkt, len, &h) == SMP_OK)
		printf("hdr op=%u ver=%u group=%u id=%u seq=%u len=%u\n", h.op,
		       h.version, h.group, h.id, h.seq, h.len);
	printf("hex ");
	for (i = 0; i < len; i++)
		printf("%02x", pkt[i]);
	printf("\n");
	if (len > SMP_HDR_SIZE &&
	    (it = cbor_load(pkt + SMP_HDR_SIZE, len - SMP_HDR_SIZE, &res)) !=
	        NULL) {
		j = cbor_to_json(it);
		printf("json %s\n", json_object_to_json_string_ext(
		                        j, JSON_C_TO_STRING_PLAIN));
		json_object_put(j);
		j = cbor_shape(it);
		printf("shape %s\n", json_object_to_json_string_ext(
		                         j, JSON_C_TO_STRING_PLAIN));
		json_object_put(j);
		cbor_decref(&it);
	}
	fflush(stdout);
}

/* Send a built packet, wait for its reply and print it. */
static int
exchange(const uint8_t *pkt, ssize_t len, uint8_t *rsp, size_t *rlen)
{
	struct smp_hdr h;

	if (len < 0)
		fatalx("request does not fit", NULL);
	smp_hdr_decode(pkt, (size_t)len, &h);
	send_pkt(pkt, (size_t)len);
	if (await(h.seq, rsp, rlen, timeout_ms) == -1) {
		printf("timeout\n");
		fflush(stdout);
		return -1;
	}
	print_reply(rsp, *rlen);
	return 0;
}

static int
parse_hex(const char *s, uint8_t *out, size_t cap)
{
	size_t n = 0;
	unsigned int b;

	while (s[0] != '\0') {
		if (s[0] == ' ' || s[0] == ':') {
			s++;
			continue;
		}
		if (n == cap || sscanf(s, "%2x", &b) != 1 || s[1] == '\0')
			fatalx("bad hex argument", NULL);
		out[n++] = (uint8_t)b;
		s += 2;
	}
	return (int)n;
}

static uint8_t *
read_file(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *b;
	FILE *f;

	if ((f = fopen(path, "rb")) == NULL || fstat(fileno(f), &st) == -1)
		fatal("cannot open file", "path=%s", log_q(path));
	b = xmalloc((size_t)st.st_size + 1);
	if (fread(b, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
		fatal("cannot read file", "path=%s", log_q(path));
	fclose(f);
	*len = (size_t)st.st_size;
	return b;
}

static ssize_t
build_chunk(uint8_t *pkt, const uint8_t *img, size_t len, size_t off, size_t n,
            bool first, const uint8_t *sha)
{
	struct smp_upload_req r;

	memset(&r, 0, sizeof(r));
	r.first = first;
	r.image = 0;
	r.len = (uint32_t)len;
	r.sha = getenv("NO_SHA") ? NULL : sha;
	r.off = (uint32_t)off;
	r.data = img + off;
	r.data_len = n;
	return smp_req_image_upload(pkt, PKT_MAX, ver, seq++, &r);
}

/* A window-1 upload that follows the offsets the board answers. */
static int
cmd_upload(const char *path, size_t chunk, size_t stop_at)
{
	uint8_t pkt[PKT_MAX], rsp[PKT_MAX], sha[SHA256_DIGEST_LENGTH];
	struct smp_upload_rsp ur;
	struct smp_err err;
	size_t len, off = 0, n, tries = 0;
	uint8_t *img = read_file(path, &len);
	char ebuf[128];
	int rv;

	SHA256(img, len, sha);
	while (off < len) {
		size_t rlen;

		n = len - off < chunk ? len - off : chunk;
		if (exchange(pkt,
		             build_chunk(pkt, img, len, off, n, off == 0, sha),
		             rsp, &rlen) == -1) {
			if (++tries > 5) {
				free(img);
				return EXIT_TIMEOUT;
			}
			continue;
		}
		tries = 0;
		rv = smp_rsp_image_upload(rsp, rlen, &err, &ur);
		if (rv == SMP_E_BOARD) {
			free(img);
			printf("error %s\n",
			       smp_err_str(&err, ebuf, sizeof(ebuf)));
			return 1;
		}
		if (rv != SMP_OK) {
			free(img);
			printf("bad reply %s\n", smp_status_str(rv));
			return 1;
		}
		printf("off %u\n", ur.off);
		if (ur.off > len) {
			free(img);
			printf("board offset beyond the image\n");
			return 1;
		}
		off = ur.off;
		if (stop_at > 0 && off >= stop_at)
			break;
	}
	printf("upload stopped at %zu of %zu\n", off, len);
	free(img);
	return 0;
}

static int
cmd_chunk(const char *path, size_t off, size_t n, bool first)
{
	uint8_t pkt[PKT_MAX], rsp[PKT_MAX], sha[SHA256_DIGEST_LENGTH];
	size_t len, rlen;
	uint8_t *img = read_file(path, &len);
	int rv;

	if (off > len || n > len - off)
		fatalx("chunk outside the file", NULL);
	SHA256(img, len, sha);
	rv = exchange(pkt, build_chunk(pkt, img, len, off, n, first, sha), rsp,
	              &rlen);
	free(img);
	return rv == -1 ? EXIT_TIMEOUT : 0;
}

/* N requests back to back; count the replies that come. */
static int
cmd_burst(int n, const char *text)
{
	uint8_t pkt[PKT_MAX];
	int i, got = 0;
	double end;

	for (i = 0; i < n; i++) {
		ssize_t l = smp_req_echo(pkt, sizeof(pkt), ver, seq++, text);

		if (l < 0)
			fatalx("request does not fit", NULL);
		send_pkt(pkt, (size_t)l);
	}
	end = now_s() + timeout_ms / 1000.0;
	while (now_s() < end) {
		pump(50);
		for (size_t k = 0; k < qn; k++) {
			print_reply(queue[k].pkt, queue[k].len);
			free(queue[k].pkt);
			got++;
		}
		qn = 0;
	}
	printf("replies %d\n", got);
	return 0;
}

/* Echo round trips one after the other: bytes on the line per second. */
static int
cmd_rate(int n, const char *text)
{
	uint8_t pkt[PKT_MAX], rsp[PKT_MAX];
	double t0 = now_s(), dt;
	size_t rlen;
	int i;

	for (i = 0; i < n; i++) {
		ssize_t l = smp_req_echo(pkt, sizeof(pkt), ver, seq++, text);

		send_pkt(pkt, (size_t)l);
		if (await((uint8_t)(seq - 1), rsp, &rlen, timeout_ms) == -1) {
			printf("timeout\n");
			return EXIT_TIMEOUT;
		}
	}
	dt = now_s() - t0;
	/* Ping-pong: one direction at a time, so the sum is the line rate. */
	printf("rate sent=%llu received=%llu seconds=%.3f bps=%.0f\n",
	       (unsigned long long)bytes_sent, (unsigned long long)bytes_recv,
	       dt, (double)(bytes_sent + bytes_recv) / dt);
	return 0;
}

static void
open_serial(const char *path)
{
	struct termios t;

	if ((fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC)) == -1)
		fatal("cannot open serial device", "path=%s", log_q(path));
	if (tcgetattr(fd, &t) == 0) {
		cfmakeraw(&t);
		cfsetspeed(&t, B115200);
		tcsetattr(fd, TCSANOW, &t);
	}
	tcflush(fd, TCIOFLUSH);
	sdec = smp_serial_decoder_new(PKT_MAX);
}

static void
open_udp(const char *addr)
{
	struct addrinfo hints, *res;
	char *host = xstrdup(addr), *port;

	if ((port = strrchr(host, ':')) == NULL)
		fatalx("--udp wants HOST:PORT", NULL);
	*port++ = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_DGRAM;
	if (getaddrinfo(host, port, &hints, &res) != 0)
		fatalx("cannot resolve", "addr=%s", log_q(addr));
	if ((fd = socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, res->ai_addr, res->ai_addrlen) == -1)
		fatal("cannot set up udp socket", NULL);
	freeaddrinfo(res);
	free(host);
}

/* One ATT request, its response (or error response) into *rsp. */
static void
att_req(const struct att_pdu *req, struct att_pdu *rsp, uint8_t *raw)
{
	uint8_t buf[ATT_MAX_MTU];
	struct pollfd p = {fd, POLLIN, 0};
	char err[96];
	ssize_t n;

	if ((n = att_encode(req, buf, mtu)) < 0 ||
	    send(fd, buf, (size_t)n, 0) == -1)
		fatal("ble request failed", NULL);
	for (;;) {
		if (poll(&p, 1, timeout_ms) <= 0)
			fatalx("ble: no ATT response", NULL);
		if ((n = recv(fd, raw, ATT_MAX_MTU, 0)) <= 0)
			fatalx("ble: connection closed", NULL);
		if (att_decode(raw, (size_t)n, rsp, err, sizeof(err)) == -1)
			fatalx("ble: bad ATT response", "reason=%s",
			       log_q(err));
		if (rsp->op == req->op + 1 || rsp->op == ATT_OP_ERROR_RSP)
			return;
	}
}

/*
 * Raw ATT: send each PDU and print every PDU that comes back until the
 * link has been quiet for a while ("att HEX"), or "closed".
 */
static int
cmd_att(int n, char **pdus)
{
	uint8_t buf[ATT_MAX_MTU + 1];
	struct pollfd p = {fd, POLLIN, 0};
	ssize_t r;
	int i, k;

	for (i = 0; i < n; i++) {
		r = parse_hex(pdus[i], buf, sizeof(buf));
		if (send(fd, buf, (size_t)r, 0) == -1)
			fatal("ble send failed", NULL);
		while (poll(&p, 1, 400) > 0) {
			if ((r = recv(fd, buf, sizeof(buf), 0)) <= 0) {
				printf("closed\n");
				return 0;
			}
			printf("att ");
			for (k = 0; k < r; k++)
				printf("%02x", buf[k]);
			printf("\n");
		}
	}
	return 0;
}

static void
open_ble(const char *name)
{
	static struct att_pdu req, rsp;
	static uint8_t raw[ATT_MAX_MTU];
	struct att_uuid svc, chr, cccd;
	struct sockaddr_un sun;
	uint16_t start = 1, s_start = 0, s_end = 0;
	size_t i, nlen;

	if (name[0] != '@' || (nlen = strlen(name + 1)) > 100)
		fatalx("--ble wants @NAME", NULL);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path + 1, name + 1, nlen);
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun,
	            (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
	                        nlen)) == -1)
		fatal("cannot connect to the ble socket", "name=%s",
		      log_q(name));
	if (no_setup)
		return;
	att_uuid_parse(&svc, SMP_BLE_SERVICE_UUID);
	att_uuid_parse(&chr, SMP_BLE_CHAR_UUID);
	att_uuid16(&cccd, ATT_UUID_CCCD);

	req.op = ATT_OP_MTU_REQ;
	req.u.mtu = mtu;
	{
		uint16_t want = mtu;

		mtu = ATT_DEFAULT_MTU;
		att_req(&req, &rsp, raw);
		if (rsp.op == ATT_OP_MTU_RSP)
			mtu = rsp.u.mtu < want ? rsp.u.mtu : want;
	}
	/* Primary services, until "attribute not found". */
	for (;;) {
		req.op = ATT_OP_READ_BY_GROUP_REQ;
		req.u.range.start = start;
		req.u.range.end = 0xffff;
		att_uuid16(&req.u.range.type, ATT_UUID_PRIMARY_SERVICE);
		att_req(&req, &rsp, raw);
		if (rsp.op == ATT_OP_ERROR_RSP)
			break;
		for (i = 0; i < rsp.u.list.n; i++)
			if (att_uuid_eq(&rsp.u.list.e[i].uuid, &svc)) {
				s_start = rsp.u.list.e[i].handle;
				s_end = rsp.u.list.e[i].end;
			}
		if (rsp.u.list.e[rsp.u.list.n - 1].end == 0xffff)
			break;
		start = rsp.u.list.e[rsp.u.list.n - 1].end + 1;
	}
	if (s_start == 0)
		fatalx("ble: no SMP service", NULL);
	req.op = ATT_OP_READ_BY_TYPE_REQ;
	req.u.range.start = s_start;
	req.u.range.end = s_end;
	att_uuid16(&req.u.range.type, ATT_UUID_CHARACTERISTIC);
	att_req(&req, &rsp, raw);
	for (i = 0; rsp.op == ATT_OP_READ_BY_TYPE_RSP && i < rsp.u.list.n;
	     i++) {
		struct att_chr_decl d;

		if (att_chr_decl_parse(rsp.u.list.e[i].value,
		                       rsp.u.list.e[i].value_len, &d) == 0 &&
		    att_uuid_eq(&d.uuid, &chr))
			ble_handle = d.value_handle;
	}
	if (ble_handle == 0)
		fatalx("ble: no SMP characteristic", NULL);
	req.op = ATT_OP_FIND_INFO_REQ;
	req.u.range.start = ble_handle + 1;
	req.u.range.end = s_end;
	att_req(&req, &rsp, raw);
	for (i = 0; rsp.op == ATT_OP_FIND_INFO_RSP && i < rsp.u.list.n; i++)
		if (att_uuid_eq(&rsp.u.list.e[i].uuid, &cccd))
			ble_cccd = rsp.u.list.e[i].handle;
	if (ble_cccd == 0)
		fatalx("ble: no CCCD", NULL);
	req.op = ATT_OP_WRITE_REQ;
	req.u.write.handle = ble_cccd;
	req.u.write.value = (const uint8_t *)"\x01\x00";
	req.u.write.len = 2;
	att_req(&req, &rsp, raw);
	if (rsp.op != ATT_OP_WRITE_RSP)
		fatalx("ble: enabling notifications failed", NULL);
	printf("ble mtu=%u handle=%u cccd=%u\n", mtu, ble_handle, ble_cccd);
	breasm = smp_ble_reasm_new(PKT_MAX);
}

static int
hash_arg(const char *s, uint8_t *h)
{
	if (parse_hex(s, h, SMP_HASH_LEN) != SMP_HASH_LEN)
		fatalx("a hash is 32 bytes of hex", NULL);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"serial", required_argument, NULL, 's'},
	    {"udp", required_argument, NULL, 'u'},
	    {"ble", required_argument, NULL, 'b'},
	    {"timeout-ms", required_argument, NULL, 't'},
	    {"v2", no_argument, NULL, '2'},
	    {"mtu", required_argument, NULL, 'm'},
	    {"seq", required_argument, NULL, 'q'},
	    {"no-setup", no_argument, NULL, 'n'},
	    {NULL, 0, NULL, 0},
	};
	uint8_t pkt[PKT_MAX], rsp[PKT_MAX], hash[SMP_HASH_LEN];
	const char *link_arg = NULL, *cmd;
	size_t rlen;
	ssize_t l = -1;
	int ch, rv;

	log_init(0, "sim-client");
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 's':
			tr = T_SERIAL;
			link_arg = optarg;
			break;
		case 'u':
			tr = T_UDP;
			link_arg = optarg;
			break;
		case 'b':
			tr = T_BLE;
			link_arg = optarg;
			break;
		case 't':
			timeout_ms = atoi(optarg);
			break;
		case '2':
			ver = SMP_V2;
			break;
		case 'm':
			mtu = (uint16_t)atoi(optarg);
			break;
		case 'n':
			no_setup = true;
			break;
		case 'q':
			seq = (uint8_t)atoi(optarg);
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (tr == T_NONE || argc < 1)
		usage();
	if (tr == T_SERIAL)
		open_serial(link_arg);
	else if (tr == T_UDP)
		open_udp(link_arg);
	else
		open_ble(link_arg);
	cmd = argv[0];
	if (strcmp(cmd, "att") == 0 && tr == T_BLE)
		return cmd_att(argc - 1, argv + 1);

	if (strcmp(cmd, "echo") == 0 && argc == 2)
		l = smp_req_echo(pkt, sizeof(pkt), ver, seq++, argv[1]);
	else if (strcmp(cmd, "reset") == 0)
		l = smp_req_reset(pkt, sizeof(pkt), ver, seq++);
	else if (strcmp(cmd, "params") == 0)
		l = smp_req_params(pkt, sizeof(pkt), ver, seq++);
	else if (strcmp(cmd, "state") == 0)
		l = smp_req_image_state_read(pkt, sizeof(pkt), ver, seq++);
	else if (strcmp(cmd, "erase") == 0)
		l = smp_req_image_erase(pkt, sizeof(pkt), ver, seq++);
	else if (strcmp(cmd, "test") == 0 && argc == 2 &&
	         !hash_arg(argv[1], hash))
		l = smp_req_image_state_write(pkt, sizeof(pkt), ver, seq++,
		                              hash, false);
	else if (strcmp(cmd, "permanent") == 0 && argc == 2 &&
	         !hash_arg(argv[1], hash))
		l = smp_req_image_state_write(pkt, sizeof(pkt), ver, seq++,
		                              hash, true);
	else if (strcmp(cmd, "confirm") == 0 && argc <= 2) {
		if (argc == 2)
			hash_arg(argv[1], hash);
		l = smp_req_image_state_write(pkt, sizeof(pkt), ver, seq++,
		                              argc == 2 ? hash : NULL, true);
	} else if (strcmp(cmd, "raw") == 0 && argc == 2)
		l = parse_hex(argv[1], pkt, sizeof(pkt));
	else if (strcmp(cmd, "upload") == 0 && argc >= 2 && argc <= 4)
		return cmd_upload(argv[1],
		                  argc > 2 ? strtoul(argv[2], NULL, 0) : 128,
		                  argc > 3 ? strtoul(argv[3], NULL, 0) : 0);
	else if (strcmp(cmd, "chunk") == 0 && (argc == 4 || argc == 5))
		return cmd_chunk(argv[1], strtoul(argv[2], NULL, 0),
		                 strtoul(argv[3], NULL, 0), argc == 5);
	else if (strcmp(cmd, "burst") == 0 && argc == 3)
		return cmd_burst(atoi(argv[1]), argv[2]);
	else if (strcmp(cmd, "rate") == 0 && argc == 3)
		return cmd_rate(atoi(argv[1]), argv[2]);
	else
		usage();
	rv = exchange(pkt, l, rsp, &rlen);
	return rv == -1 ? EXIT_TIMEOUT : 0;
}
