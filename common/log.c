/*
 * Logging: one write(2) per line so lines from the supervisor and its
 * workers, which share stderr, never interleave mid-line.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "log.h"

static int log_verbose;
static enum log_level log_min = LOG_LEVEL_INFO;
static const char *log_ident;
static void (*log_prewrite)(void);
static enum log_format log_fmt = LOG_TEXT;

void
log_init(int verbose, const char *ident)
{
	const char *f = getenv("RDFM_LOG_FORMAT");

	log_ident = ident;
	log_setverbose(verbose);
	if (f != NULL && strcmp(f, "json") == 0)
		log_fmt = LOG_JSON;
}

void
log_setformat(enum log_format f)
{
	log_fmt = f;
}

void
log_setverbose(int verbose)
{
	log_verbose = verbose;
	if (verbose)
		log_min = LOG_LEVEL_DEBUG;
	else if (log_min == LOG_LEVEL_DEBUG)
		log_min = LOG_LEVEL_INFO;
}

void
log_setlevel(enum log_level min)
{
	log_min = min;
	log_verbose = min == LOG_LEVEL_DEBUG;
}

enum log_level
log_getlevel(void)
{
	return log_min;
}

void
log_set_prewrite(void (*fn)(void))
{
	log_prewrite = fn;
}

int
log_getverbose(void)
{
	return log_verbose;
}

static const char *
level_name(enum log_level level)
{
	switch (level) {
	case LOG_LEVEL_DEBUG:
		return "DEBUG";
	case LOG_LEVEL_INFO:
		return "INFO";
	case LOG_LEVEL_WARN:
		return "WARN";
	case LOG_LEVEL_ERROR:
		return "ERROR";
	}
	return "?";
}

/* Append s to buf (at *len, capacity cap) quoted and escaped. */
static void
append_quoted(char *buf, size_t *len, size_t cap, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = *len;

	if (n + 1 < cap)
		buf[n++] = '"';
	for (; *s != '\0' && n + 5 < cap; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			buf[n++] = '\\';
			buf[n++] = (char)c;
		} else if (c == '\n') {
			buf[n++] = '\\';
			buf[n++] = 'n';
		} else if (c < 0x20 || c == 0x7f) {
			buf[n++] = '\\';
			buf[n++] = 'x';
			buf[n++] = hex[c >> 4];
			buf[n++] = hex[c & 15];
		} else
			buf[n++] = (char)c;
	}
	if (n + 1 < cap)
		buf[n++] = '"';
	buf[n] = '\0';
	*len = n;
}

const char *
log_q(const char *value)
{
	static char bufs[8][512];
	static unsigned int next;
	char *buf = bufs[next++ % 8];
	size_t len = 0;

	append_quoted(buf, &len, sizeof(bufs[0]), value ? value : "");
	return buf;
}

/* One value of a key=value line: "quoted" with our escapes, or bare. */
static const char *
kv_value(const char *p, char *out, size_t cap, bool *quoted)
{
	size_t n = 0;
	unsigned int x;

	*quoted = *p == '"';
	if (!*quoted) {
		while (*p != '\0' && *p != ' ' && n + 1 < cap)
			out[n++] = *p++;
		out[n] = '\0';
		return p;
	}
	for (p++; *p != '\0' && *p != '"'; p++) {
		if (*p == '\\' && p[1] == 'n') {
			p++;
			out[n] = '\n';
		} else if (*p == '\\' && p[1] == 'x' &&
		           sscanf(p + 2, "%2x", &x) == 1) {
			p += 3;
			out[n] = (char)x;
		} else if (*p == '\\' && p[1] != '\0')
			out[n] = *++p;
		else
			out[n] = *p;
		if (n + 1 < cap)
			n++;
	}
	out[n] = '\0';
	return *p == '"' ? p + 1 : p;
}

/* A bare value as JSON: numbers and booleans typed, the rest text. */
static struct json_object *
kv_json(const char *v, bool quoted)
{
	char *end;
	long long i;
	double d;

	if (quoted || *v == '\0')
		return json_object_new_string(v);
	if (strcmp(v, "true") == 0 || strcmp(v, "false") == 0)
		return json_object_new_boolean(v[0] == 't');
	i = strtoll(v, &end, 10);
	if (*end == '\0')
		return json_object_new_int64(i);
	d = strtod(v, &end);
	if (*end == '\0' && strchr(v, '.') != NULL)
		return json_object_new_double(d);
	return json_object_new_string(v);
}

/*
 * The text line (key=value pairs, time first) as one JSON object; the
 * keys and values are exactly the text line's, so both formats carry the
 * same facts.
 */
static size_t
line_to_json(const char *line, char *out, size_t cap)
{
	struct json_object *o = json_object_new_object();
	char key[64], val[2048];
	const char *p = line, *eq;
	size_t n, k;
	bool quoted;

	while (*p != '\0') {
		while (*p == ' ')
			p++;
		if ((eq = strchr(p, '=')) == NULL)
			break;
		k = (size_t)(eq - p) < sizeof(key) - 1 ? (size_t)(eq - p)
		                                       : sizeof(key) - 1;
		memcpy(key, p, k);
		key[k] = '\0';
		p = kv_value(eq + 1, val, sizeof(val), &quoted);
		json_object_object_add(o, key, kv_json(val, quoted));
	}
	n = (size_t)snprintf(
	    out, cap, "%s\n",
	    json_object_to_json_string_ext(
	        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return n < cap ? n : cap - 1;
}

static void
log_vmsg(enum log_level level, int with_errno, const char *msg,
         const char *kvfmt, va_list ap)
{
	char line[4096];
	size_t len = 0;
	int saved_errno = errno;
	struct timespec ts;
	struct tm tm;
	int n;

	if (level < log_min)
		return;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	len = strftime(line, sizeof(line), "time=%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line + len, sizeof(line) - len, ".%03ldZ level=%s",
	             ts.tv_nsec / 1000000, level_name(level));
	len += (size_t)n;
	if (log_ident != NULL) {
		n = snprintf(line + len, sizeof(line) - len, " proc=%s",
		             log_ident);
		len += (size_t)n;
	}
	n = snprintf(line + len, sizeof(line) - len, " msg=");
	len += (size_t)n;
	append_quoted(line, &len, sizeof(line) - 64, msg);

	if (kvfmt != NULL && *kvfmt != '\0' && len + 2 < sizeof(line) - 64) {
		line[len++] = ' ';
		n = vsnprintf(line + len, sizeof(line) - 64 - len, kvfmt, ap);
		if (n > 0)
			len += (size_t)n < sizeof(line) - 64 - len
			           ? (size_t)n
			           : sizeof(line) - 65 - len;
	}
	if (with_errno) {
		n = snprintf(line + len, sizeof(line) - len - 1, " error=");
		len += (size_t)n;
		append_quoted(line, &len, sizeof(line) - 1,
		              strerror(saved_errno));
	}
	line[len] = '\0';
	if (log_fmt == LOG_JSON) {
		char js[8192];

		len = line_to_json(line, js, sizeof(js));
		if (log_prewrite != NULL)
			log_prewrite();
		(void)!write(STDERR_FILENO, js, len);
		errno = saved_errno;
		return;
	}
	line[len++] = '\n';
	if (log_prewrite != NULL)
		log_prewrite();
	(void)!write(STDERR_FILENO, line, len);
	errno = saved_errno;
}

#define LOG_FN(name, level, with_errno)                                        \
	void name(const char *msg, const char *kvfmt, ...)                     \
	{                                                                      \
		va_list ap;                                                    \
		va_start(ap, kvfmt);                                           \
		log_vmsg(level, with_errno, msg, kvfmt, ap);                   \
		va_end(ap);                                                    \
	}

LOG_FN(log_debug, LOG_LEVEL_DEBUG, 0)
LOG_FN(log_info, LOG_LEVEL_INFO, 0)
LOG_FN(log_warn, LOG_LEVEL_WARN, 1)
LOG_FN(log_warnx, LOG_LEVEL_WARN, 0)
LOG_FN(log_err, LOG_LEVEL_ERROR, 1)
LOG_FN(log_errx, LOG_LEVEL_ERROR, 0)

void
fatal(const char *msg, const char *kvfmt, ...)
{
	va_list ap;

	va_start(ap, kvfmt);
	log_vmsg(LOG_LEVEL_ERROR, 1, msg, kvfmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *msg, const char *kvfmt, ...)
{
	va_list ap;

	va_start(ap, kvfmt);
	log_vmsg(LOG_LEVEL_ERROR, 0, msg, kvfmt, ap);
	va_end(ap);
	exit(1);
}
