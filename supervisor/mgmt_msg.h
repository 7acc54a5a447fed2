/*
 * The management channel's pure parts (no I/O, unit-tested and fuzzed):
 * reading the server's messages, writing ours (MGMT-CHANNEL.md sections
 * 3-8), the file path and upload URL rules, the shell's line editor, and
 * the reconnect backoff.
 */
#ifndef MGMT_MSG_H
#define MGMT_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct json_object;

/* Bounds on what the server may send. */
#define MGMT_ID_MAX   128  /* execution ids, action ids, fs ids, mac */
#define MGMT_FILE_MAX 1024 /* a file path as sent */
#define MGMT_URL_MAX  8192
#define MGMT_URLS_MAX 10000
#define MGMT_PATH_MAX 255 /* a board path we accept */
#define MGMT_LINE_MAX 256 /* one shell line */
#define MGMT_ARGV_MAX 32

enum mgmt_method {
	MGMT_M_ALERT,
	MGMT_M_ACTION_LIST_QUERY,
	MGMT_M_ACTION_EXEC,
	MGMT_M_SHELL_ATTACH,
	MGMT_M_FS_PROBE,
	MGMT_M_FS_DOWNLOAD,
	MGMT_M_UNKNOWN, /* a method we do not take; name says which */
};

/* One message from the server; the strings live in root. */
struct mgmt_msg {
	enum mgmt_method method;
	char name[48];                        /* the method, printable */
	const char *execution_id, *action_id; /* action_exec */
	const char *mac, *uuid;               /* shell_attach */
	const char *id, *file;                /* fs_file_* */
	const char **urls;                    /* fs_file_download */
	size_t nurls;
	uint64_t part_size;
	const char *alert; /* alert: its text */
	bool alert_error;  /* ... an "error" one */
	struct json_object *root;
};

/*
 * 0 with m filled (free it with mgmt_msg_free), or -1 with why naming what
 * was wrong: not JSON, not an object, no method, or a known method whose
 * fields are missing, of the wrong type, empty or too long.
 */
int mgmt_msg_parse(const char *buf, size_t len, struct mgmt_msg *m, char *why,
                   size_t whycap);
void mgmt_msg_free(struct mgmt_msg *m);

/* Messages we send, as malloc'd compact JSON. */
struct mgmt_action_desc {
	const char *id, *name, *description;
	const char *const *argv; /* shown to people only */
	size_t argc;
	double timeout_s;
};
char *mgmt_enc_capabilities(bool action, bool shell, bool filesystem);
char *mgmt_enc_action_list(const struct mgmt_action_desc *a, size_t n);
char *mgmt_enc_exec_control(const char *execution_id, bool accepted);
/* output in standard base64 with padding ("" for none). */
char *mgmt_enc_exec_result(const char *execution_id, int status,
                           const void *output, size_t len);
char *mgmt_enc_progress(int percent);
char *mgmt_enc_version(const char *version);
char *mgmt_enc_probe_reply(const char *id, int status, uint64_t size);
char *mgmt_enc_download_reply(const char *id, int status, char *const *etags,
                              size_t n);
/* POST /api/v1/logs: {"batch": [...]} of n entries. */
struct mgmt_log_entry {
	time_t when;
	const char *name, *entry;
};
char *mgmt_enc_logs(const struct mgmt_log_entry *e, size_t n);
/* "Wed, 02 Oct 2002 15:00:00 -0000" */
void mgmt_rfc822(time_t t, char out[40]);

/* 8-4-4-4-12 hexadecimal digits. */
bool mgmt_is_uuid(const char *s);
/* Printable ASCII (0x20-0x7e) only. */
bool mgmt_printable(const char *s, size_t len);

/*
 * A board path: absolute, at most MGMT_PATH_MAX characters of printable
 * ASCII, no empty, "." or ".." component.  "/" alone is valid.
 */
bool mgmt_path_valid(const char *path, char *why, size_t whycap);
/* path lies under one of the prefixes, matched on whole components. */
bool mgmt_path_allowed(const char *path, char *const *prefixes, size_t n);

/*
 * The host of an http(s) URL, lower-case, IPv6 without brackets; -1 when
 * the URL is not one.
 */
int mgmt_url_host(const char *url, char *host, size_t cap);
/*
 * An upload URL we may PUT to: http or https, no user or password, and its
 * host the server's or one of hosts (compared without regard to case).
 */
bool mgmt_upload_url_ok(const char *url, const char *server_host,
                        char *const *hosts, size_t nhosts, char *why,
                        size_t whycap);
/* How many parts a file of size needs with part_size (0 for 0 bytes). */
uint64_t mgmt_parts_needed(uint64_t size, uint64_t part_size);

/* Whole percent of done/total, 0..99 (100 is "finished", sent apart). */
int mgmt_percent(uint64_t done, uint64_t total);

/*
 * Reconnect delay after `failures` failed attempts in a row (1 for the
 * first): min doubled per failure up to max, then a random point in its
 * upper half (rnd is any random number).
 */
unsigned mgmt_backoff_ms(unsigned failures, unsigned min_ms, unsigned max_ms,
                         uint64_t rnd);

/*
 * The shell's line editor: keystrokes in, echo out, and a whole line when
 * Enter comes.  Printable ASCII is kept (up to MGMT_LINE_MAX), Backspace
 * and DEL erase, Ctrl-C drops the line, Ctrl-D on an empty line ends the
 * session, escape sequences (arrow keys) and other control bytes are
 * ignored.
 */
struct mgmt_line {
	char buf[MGMT_LINE_MAX + 1];
	size_t len;
	int esc; /* 0, 1 after ESC, 2 inside "ESC [" */
};
enum mgmt_key {
	MGMT_KEY_NONE,
	MGMT_KEY_LINE,      /* buf holds a whole line (NUL-terminated) */
	MGMT_KEY_INTERRUPT, /* Ctrl-C */
	MGMT_KEY_EOF,       /* Ctrl-D on an empty line */
};
/* One byte; echo (at most 4 bytes) is what the terminal should show. */
enum mgmt_key mgmt_line_key(struct mgmt_line *l, uint8_t c, char echo[8],
                            size_t *echolen);
/* Forget the line after it was taken. */
void mgmt_line_reset(struct mgmt_line *l);

/* "resize <rows> <cols>" */
bool mgmt_parse_resize(const char *s, size_t len, int *rows, int *cols);
/*
 * Splits a line into words on spaces and tabs; 0, or -1 when it has more
 * than MGMT_ARGV_MAX words.  *argv (NULL-terminated) is malloc'd with its
 * strings in one block: free(*argv).
 */
int mgmt_split_words(const char *line, char ***argv, size_t *argc);
/* Output for a terminal: every lone "\n" becomes "\r\n".  malloc'd. */
char *mgmt_crlf(const void *s, size_t len, size_t *outlen);

#endif
