/*
 * A test RDFM server: the device API of docs/design.md "RDFM device API"
 * (signed authentication, approvals, update check, local-storage downloads with
 * Range), an /admin/ interface for tests, fault injection and a JSON log.
 * This file: start-up, TLS, request dispatch, and the shared helpers.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <json-c/json.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "log.h"
#include "xmalloc.h"

#include "mgmt.h"
#include "server.h"

struct server srv;

static void usage(void) __attribute__((noreturn));

static void
usage(void)
{
	fprintf(
	    stderr,
	    "usage: rdfm-test-server --listen 127.0.0.1:PORT --data-dir DIR\n"
	    "       [--token-expiry S] [--cert FILE --key FILE] "
	    "[--auto-approve]\n"
	    "       [--log FILE] [--seed N] [--ws-ping S]\n");
	exit(2);
}
uint64_t
rng_next(void)
{
	srv.rng ^= srv.rng >> 12;
	srv.rng ^= srv.rng << 25;
	srv.rng ^= srv.rng >> 27;
	return srv.rng * 0x2545F4914F6CDD1DULL;
}

void
random_hex(char *out, size_t nbytes)
{
	unsigned char b[64];
	size_t i;

	if (nbytes > sizeof(b) || RAND_bytes(b, (int)nbytes) != 1)
		fatalx("no random bytes", NULL);
	for (i = 0; i < nbytes; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* The log: one JSON object per request, in the file and in memory. */
void
log_request(struct evhttp_request *req, int status, const char *device,
            uint64_t bytes, const char *range)
{
	struct json_object *o;
	const char *method;
	struct timespec ts;
	struct evhttp_connection *evcon;
	char *peer = NULL;
	ev_uint16_t port = 0;

	switch (evhttp_request_get_command(req)) {
	case EVHTTP_REQ_GET:
		method = "GET";
		break;
	case EVHTTP_REQ_POST:
		method = "POST";
		break;
	case EVHTTP_REQ_HEAD:
		method = "HEAD";
		break;
	default:
		method = "OTHER";
		break;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	o = json_object_new_object();
	json_object_object_add(
	    o, "time",
	    json_object_new_double((double)ts.tv_sec + ts.tv_nsec / 1e9));
	json_object_object_add(o, "method", json_object_new_string(method));
	json_object_object_add(
	    o, "path", json_object_new_string(evhttp_request_get_uri(req)));
	json_object_object_add(o, "status", json_object_new_int(status));
	json_object_object_add(o, "device",
	                       device != NULL ? json_object_new_string(device)
	                                      : NULL);
	json_object_object_add(o, "bytes",
	                       json_object_new_int64((int64_t)bytes));
	json_object_object_add(
	    o, "range", range != NULL ? json_object_new_string(range) : NULL);
	/* Which connection: a client's connection cap shows in these. */
	if ((evcon = evhttp_request_get_connection(req)) != NULL) {
		evhttp_connection_get_peer(evcon, &peer, &port);
		json_object_object_add(o, "peer_port",
		                       json_object_new_int(port));
	}
	if (srv.log != NULL) {
		fprintf(srv.log, "%s\n",
		        json_object_to_json_string_ext(
		            o, JSON_C_TO_STRING_PLAIN |
		                   JSON_C_TO_STRING_NOSLASHESCAPE));
		fflush(srv.log);
	}
	json_object_array_add(srv.logarr, o);
}

void
reply_json(struct evhttp_request *req, int status, struct json_object *body,
           const char *device)
{
	struct evbuffer *b = evbuffer_new();
	const char *s = "";

	if (body != NULL)
		s = json_object_to_json_string_ext(
		    body,
		    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (status != 204) {
		evbuffer_add(b, s, strlen(s));
		evhttp_add_header(evhttp_request_get_output_headers(req),
		                  "Content-Type", "application/json");
	}
	log_request(req, status, device, evbuffer_get_length(b), NULL);
	evhttp_send_reply(req, status, NULL, b);
	evbuffer_free(b);
	json_object_put(body);
}

void
reply_error(struct evhttp_request *req, int status, const char *msg,
            const char *device)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "error", json_object_new_string(msg));
	reply_json(req, status, o, device);
}

/* An injected 5xx, drawn from the seeded generator. */
bool
inject_error(struct evhttp_request *req)
{
	double r;

	if (srv.faults.error_rate <= 0)
		return false;
	r = (double)(rng_next() >> 11) / (double)(1ULL << 53);
	if (r >= srv.faults.error_rate)
		return false;
	reply_error(req, srv.faults.error_status, "injected fault", NULL);
	return true;
}

/* The body as a NUL-terminated string, or NULL when too large. */
char *
request_body(struct evhttp_request *req, size_t max, size_t *len)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	char *s;

	*len = evbuffer_get_length(in);
	if (*len > max)
		return NULL;
	s = xmalloc(*len + 1);
	evbuffer_copyout(in, s, *len);
	s[*len] = '\0';
	return s;
}

bool
is_json(struct evhttp_request *req)
{
	const char *ct = evhttp_find_header(
	    evhttp_request_get_input_headers(req), "Content-Type");
	size_t n = strlen("application/json");

	return ct != NULL && strncasecmp(ct, "application/json", n) == 0 &&
	       (ct[n] == '\0' || ct[n] == ';');
}

/* Parses exactly len bytes as one JSON object. */
struct json_object *
parse_object(const char *s, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o;
	size_t i;

	o = json_tokener_parse_ex(tok, s, (int)len);
	if (o == NULL || json_tokener_get_error(tok) != json_tokener_success)
		goto bad;
	for (i = json_tokener_get_parse_end(tok); i < len; i++)
		if (!isspace((unsigned char)s[i]))
			goto bad;
	json_tokener_free(tok);
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return NULL;
	}
	return o;
bad:
	json_object_put(o);
	json_tokener_free(tok);
	return NULL;
}

const char *
str_field(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static void
handle_request(struct evhttp_request *req, void *arg)
{
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	const char *path;

	(void)arg;
	path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	if (path == NULL)
		path = "";
	if (mgmt_route(req, path))
		return;
	if (strncmp(path, "/admin/", 7) == 0) {
		if (cmd == EVHTTP_REQ_GET &&
		    strcmp(path, "/admin/pending") == 0)
			admin_pending(req);
		else if (cmd == EVHTTP_REQ_GET &&
		         strcmp(path, "/admin/devices") == 0)
			admin_devices(req);
		else if (cmd == EVHTTP_REQ_GET &&
		         strcmp(path, "/admin/log") == 0)
			admin_log(req);
		else if (cmd == EVHTTP_REQ_GET &&
		         strcmp(path, "/admin/stats") == 0)
			admin_server_stats(req);
		else if (cmd == EVHTTP_REQ_POST &&
		         strcmp(path, "/admin/approve") == 0)
			admin_approve(req);
		else if (cmd == EVHTTP_REQ_POST &&
		         strcmp(path, "/admin/packages") == 0)
			admin_packages(req);
		else if (cmd == EVHTTP_REQ_POST &&
		         strcmp(path, "/admin/faults") == 0)
			admin_faults(req);
		else if (cmd == EVHTTP_REQ_POST &&
		         strcmp(path, "/admin/revoke_tokens") == 0)
			admin_revoke_tokens(req);
		else
			reply_error(req, 404, "no such admin endpoint", NULL);
		return;
	}
	if (strcmp(path, "/api/v1/auth/device") == 0) {
		if (!inject_error(req))
			handle_auth(req);
	} else if (strcmp(path, "/api/v1/update/check") == 0) {
		if (!inject_error(req))
			handle_check(req);
	} else if (strncmp(path, "/local_storage/", 15) == 0) {
		if (!inject_error(req))
			handle_download(req, path + 15);
	} else
		reply_error(req, 404, "not found", NULL);
}

static struct bufferevent *
tls_bevcb(struct event_base *base, void *arg)
{
	SSL_CTX *ctx = arg;
	struct bufferevent *bev;
	SSL *ssl;

	if ((ssl = SSL_new(ctx)) == NULL)
		return NULL;
	bev = bufferevent_openssl_socket_new(
	    base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev != NULL)
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

static SSL_CTX *
tls_setup(const char *cert, const char *key)
{
	SSL_CTX *ctx;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL ||
	    SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1)
		fatalx("cannot load the TLS certificate and key",
		       "cert=%s key=%s", log_q(cert), log_q(key));
	return ctx;
}

/* Loopback only: 127.0.0.0/8 or [::1]. */
static void
parse_listen(const char *arg, char *host, size_t hostcap, int *port)
{
	struct in_addr a4;
	struct in6_addr a6;
	const char *colon = strrchr(arg, ':');
	char *ep;
	size_t n;
	long p;

	if (colon == NULL)
		fatalx("--listen must be HOST:PORT", "listen=%s", log_q(arg));
	n = (size_t)(colon - arg);
	if (n >= 2 && arg[0] == '[' && arg[n - 1] == ']') {
		arg++;
		n -= 2;
	}
	if (n == 0 || n >= hostcap)
		fatalx("--listen has a bad host", "listen=%s", log_q(arg));
	memcpy(host, arg, n);
	host[n] = '\0';
	p = strtol(colon + 1, &ep, 10);
	if (*ep != '\0' || colon[1] == '\0' || p < 0 || p > 65535)
		fatalx("--listen has a bad port", "listen=%s", log_q(arg));
	*port = (int)p;
	if (inet_pton(AF_INET, host, &a4) == 1 &&
	    (ntohl(a4.s_addr) >> 24) == 127)
		return;
	if (inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6))
		return;
	fatalx("refusing to listen on a non-loopback address", "host=%s",
	       log_q(host));
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)arg;
	event_base_loopbreak(srv.base);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"data-dir", required_argument, NULL, 'd'},
	    {"token-expiry", required_argument, NULL, 't'},
	    {"cert", required_argument, NULL, 'c'},
	    {"key", required_argument, NULL, 'k'},
	    {"auto-approve", no_argument, NULL, 'a'},
	    {"log", required_argument, NULL, 'L'},
	    {"seed", required_argument, NULL, 's'},
	    {"ws-ping", required_argument, NULL, 'p'},
	    {NULL, 0, NULL, 0},
	};
	struct evhttp_bound_socket *bound;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct event *sigint, *sigterm;
	const char *listen = NULL, *cert = NULL, *key = NULL, *logpath = NULL;
	char host[64];
	int ch, port, bport, ws_ping = 25;
	char *ep;

	log_init(0, "rdfm-test-server");
	srv.token_expiry = 300;
	srv.rng = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'l':
			listen = optarg;
			break;
		case 'd':
			srv.data_dir = optarg;
			break;
		case 't':
			srv.token_expiry = strtol(optarg, &ep, 10);
			if (*ep != '\0' || srv.token_expiry <= 0)
				fatalx("--token-expiry must be a positive "
				       "number of seconds",
				       NULL);
			break;
		case 'c':
			cert = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'a':
			srv.auto_approve = true;
			break;
		case 'L':
			logpath = optarg;
			break;
		case 's':
			srv.rng = strtoull(optarg, &ep, 10);
			if (*ep != '\0')
				fatalx("--seed must be a number", NULL);
			/* xorshift must not start at 0. */
			srv.rng = srv.rng * 0x9E3779B97F4A7C15ULL + 1;
			break;
		case 'p':
			ws_ping = (int)strtol(optarg, &ep, 10);
			if (*ep != '\0' || ws_ping < 0)
				fatalx("--ws-ping must be a number of seconds",
				       NULL);
			break;
		default:
			usage();
		}
	}
	if (listen == NULL || srv.data_dir == NULL || optind != argc ||
	    (cert == NULL) != (key == NULL))
		usage();
	parse_listen(listen, host, sizeof(host), &port);
	if (mkdir(srv.data_dir, 0700) == -1 && errno != EEXIST)
		fatal("cannot create the data directory", "dir=%s",
		      log_q(srv.data_dir));
	if (logpath != NULL && (srv.log = fopen(logpath, "a")) == NULL)
		fatal("cannot open the log", "path=%s", log_q(logpath));
	srv.logarr = json_object_new_array();
	signal(SIGPIPE, SIG_IGN);

	if ((srv.base = event_base_new()) == NULL ||
	    (srv.http = evhttp_new(srv.base)) == NULL)
		fatalx("cannot set up libevent", NULL);
	evhttp_set_allowed_methods(srv.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	                                         EVHTTP_REQ_HEAD |
	                                         EVHTTP_REQ_PUT);
	evhttp_set_max_body_size(srv.http, 1 << 20);
	evhttp_set_gencb(srv.http, handle_request, NULL);
	if (cert != NULL) {
		srv.ssl = tls_setup(cert, key);
		evhttp_set_bevcb(srv.http, tls_bevcb, srv.ssl);
	}
	if ((bound = evhttp_bind_socket_with_handle(srv.http, host,
	                                            (ev_uint16_t)port)) == NULL)
		fatal("cannot listen", "listen=%s", log_q(listen));
	if (getsockname(evhttp_bound_socket_get_fd(bound),
	                (struct sockaddr *)&ss, &sl) == -1)
		fatal("getsockname", NULL);
	bport = ntohs(ss.ss_family == AF_INET6
	                  ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                  : ((struct sockaddr_in *)&ss)->sin_port);
	snprintf(srv.base_url, sizeof(srv.base_url),
	         strchr(host, ':') != NULL ? "%s://[%s]:%d" : "%s://%s:%d",
	         cert != NULL ? "https" : "http", host, bport);
	sigint = evsignal_new(srv.base, SIGINT, on_signal, NULL);
	sigterm = evsignal_new(srv.base, SIGTERM, on_signal, NULL);
	evsignal_add(sigint, NULL);
	evsignal_add(sigterm, NULL);
	mgmt_init(ws_ping);
	printf("READY %s\n", srv.base_url);
	fflush(stdout);
	event_base_dispatch(srv.base);

	event_free(sigint);
	event_free(sigterm);
	mgmt_shutdown();
	evhttp_free(srv.http);
	event_base_free(srv.base);
	SSL_CTX_free(srv.ssl);
	while (srv.devices != NULL) {
		struct device *d = srv.devices;

		srv.devices = d->next;
		free(d->id);
		free(d->pubkey);
		free(d->dev_type);
		free(d->version);
		free(d);
	}
	tokens_clear();
	while (srv.packages != NULL) {
		struct package *p = srv.packages;

		srv.packages = p->next;
		free(p->path);
		free(p->version);
		free(p->dev_type);
		free(p->uri);
		free(p);
	}
	json_object_put(srv.logarr);
	if (srv.log != NULL)
		fclose(srv.log);
	return 0;
}
