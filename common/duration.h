/*
 * Durations in Go's time.ParseDuration syntax ("10s", "1h30m", "500ms",
 * "1.5h"), as the Go client's config used them, kept in milliseconds.
 */
#ifndef DURATION_H
#define DURATION_H

#include <stddef.h>
#include <stdint.h>

/*
 * Parse s into milliseconds.  Units ns, us (µs), ms, s, m, h; a sign is
 * allowed but negative results are refused, as is anything below 1 ms
 * except "0".  Returns 0, or -1 with a reason in err (may be NULL).
 */
int duration_parse(const char *s, int64_t *ms, char *err, size_t errcap);

/* Format as Go prints a duration ("1h30m0s", "500ms", "0s"); returns buf. */
char *duration_format(int64_t ms, char *buf, size_t cap);

#define DURATION_BUFSZ 32

#endif
