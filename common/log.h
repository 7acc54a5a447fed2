/*
 * One logging module for every process: key=value lines on stderr in the
 * form the Go client printed, so existing log scrapers keep working:
 *   level=INFO msg="Update successful" device=serial new_version=1.2.3+4
 */
#ifndef LOG_H
#define LOG_H

#include <stdarg.h>

enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR,
};

/*
 * ident, when not NULL, is printed as proc=IDENT (workers use it); verbose
 * enables debug lines.
 */
void log_init(int verbose, const char *ident);
/* Verbose: debug lines on; off: back to INFO unless set quieter. */
void log_setverbose(int verbose);
int log_getverbose(void);
/* The least level printed (INFO by default). */
void log_setlevel(enum log_level min);
enum log_level log_getlevel(void);
/*
 * Called before every line is written, e.g. to take a progress bar off
 * the terminal line first.  NULL: none.
 */
void log_set_prewrite(void (*fn)(void));

/*
 * The line format: LOG_TEXT (key=value, the default) or LOG_JSON (one JSON
 * object per line, for journald and log shippers).  log_init() takes it
 * from $RDFM_LOG_FORMAT ("text" or "json"), which workers inherit.
 */
enum log_format { LOG_TEXT, LOG_JSON };
void log_setformat(enum log_format f);

/*
 * Every function takes a message (printed quoted and escaped) and an
 * optional printf format for the key=value tail (may be NULL).  Values that
 * can contain spaces should be quoted by the caller ("name=\"%s\"") or
 * passed through log_q().  The *_warn/err variants without x append
 * error="strerror(errno)".
 */
#define LOG_PRINTF __attribute__((format(printf, 2, 3)))
void log_debug(const char *msg, const char *kvfmt, ...) LOG_PRINTF;
void log_info(const char *msg, const char *kvfmt, ...) LOG_PRINTF;
void log_warn(const char *msg, const char *kvfmt, ...) LOG_PRINTF;
void log_warnx(const char *msg, const char *kvfmt, ...) LOG_PRINTF;
void log_err(const char *msg, const char *kvfmt, ...) LOG_PRINTF;
void log_errx(const char *msg, const char *kvfmt, ...) LOG_PRINTF;
__attribute__((noreturn)) void fatal(const char *msg, const char *kvfmt,
                                     ...) LOG_PRINTF;
__attribute__((noreturn)) void fatalx(const char *msg, const char *kvfmt,
                                      ...) LOG_PRINTF;

/*
 * Quote a value for a key=value tail: returns "..." with quotes, backslashes
 * and control characters escaped.  The result lives in one of a few rotating
 * static buffers (long values are cut), good until the next few calls.
 */
const char *log_q(const char *value);

#endif
