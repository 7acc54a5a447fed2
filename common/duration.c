/*
 * Go duration syntax (time.ParseDuration and Duration.String), so config
 * files and flags written for the Go client keep their meaning.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "duration.h"

#define NS_PER_MS 1000000ULL

static const struct {
	const char *name;
	uint64_t ns;
} units[] = {
    {"ns", 1ULL},
    {"us", 1000ULL},
    {"\xc2\xb5s", 1000ULL}, /* U+00B5 micro sign */
    {"\xce\xbcs", 1000ULL}, /* U+03BC Greek mu */
    {"ms", 1000000ULL},
    {"s", 1000000000ULL},
    {"m", 60ULL * 1000000000ULL},
    {"h", 3600ULL * 1000000000ULL},
};

static int
fail(char *err, size_t errcap, const char *s, const char *why)
{
	if (err != NULL && errcap > 0)
		snprintf(err, errcap, "\"%s\" is not a duration: %s", s, why);
	return -1;
}

/*
 * As Go does, the unit is everything up to the next digit or dot; return
 * its length and its size in ns (*ns = 0 when unknown).
 */
static size_t
match_unit(const char *p, uint64_t *ns)
{
	size_t i, n = strcspn(p, "0123456789.");

	*ns = 0;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strlen(units[i].name) == n &&
		    strncmp(p, units[i].name, n) == 0)
			*ns = units[i].ns;
	return n;
}

int
duration_parse(const char *s, int64_t *ms, char *err, size_t errcap)
{
	const char *p = s;
	uint64_t total = 0, v, frac, scale, unit, add;
	bool neg = false, digits;
	size_t ulen;

	if (s == NULL || *s == '\0')
		return fail(err, errcap, "",
		            "empty (expected e.g. 10s, 15m, "
		            "1h30m, 500ms)");
	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	if (strcmp(p, "0") == 0) {
		*ms = 0;
		return 0;
	}
	if (*p == '\0')
		return fail(err, errcap, s, "no number");
	while (*p != '\0') {
		v = 0;
		frac = 0;
		scale = 1;
		digits = false;
		if (!(*p >= '0' && *p <= '9') && *p != '.')
			return fail(err, errcap, s, "expected a number");
		for (; *p >= '0' && *p <= '9'; p++) {
			if (v > (UINT64_MAX - 9) / 10)
				return fail(err, errcap, s, "too large");
			v = v * 10 + (uint64_t)(*p - '0');
			digits = true;
		}
		if (*p == '.') {
			for (p++; *p >= '0' && *p <= '9'; p++) {
				digits = true;
				/* Digits beyond ns precision do not matter. */
				if (scale < 1000000000000000000ULL) {
					frac = frac * 10 + (uint64_t)(*p - '0');
					scale *= 10;
				}
			}
		}
		if (!digits)
			return fail(err, errcap, s, "expected a number");
		ulen = match_unit(p, &unit);
		if (ulen == 0)
			return fail(err, errcap, s,
			            "missing unit (ns, us, ms, s, m, h)");
		if (unit == 0)
			return fail(err, errcap, s,
			            "unknown unit (ns, us, ms, s, m, h)");
		p += ulen;
		if (v > (uint64_t)INT64_MAX / unit)
			return fail(err, errcap, s, "too large");
		add = v * unit;
		/* frac < scale <= 1e18 and unit <= 3.6e12: split to not
		 * overflow. */
		add += frac * (unit / scale) +
		       (uint64_t)((double)frac * (double)(unit % scale) /
		                  (double)scale);
		if (add > (uint64_t)INT64_MAX - total)
			return fail(err, errcap, s, "too large");
		total += add;
	}
	if (neg && total != 0)
		return fail(err, errcap, s, "must not be negative");
	if (total != 0 && total < NS_PER_MS)
		return fail(err, errcap, s, "shorter than 1ms");
	*ms = (int64_t)(total / NS_PER_MS);
	return 0;
}

char *
duration_format(int64_t ms, char *buf, size_t cap)
{
	uint64_t u, h, m, s, frac;
	const char *sign = "";
	char fs[8] = "";
	int n;

	if (cap == 0)
		return buf;
	if (ms == 0) {
		snprintf(buf, cap, "0s");
		return buf;
	}
	if (ms < 0) {
		sign = "-";
		u = (uint64_t)0 - (uint64_t)ms;
	} else
		u = (uint64_t)ms;
	if (u < 1000) {
		snprintf(buf, cap, "%s%" PRIu64 "ms", sign, u);
		return buf;
	}
	frac = u % 1000;
	s = u / 1000;
	h = s / 3600;
	m = (s / 60) % 60;
	s %= 60;
	if (frac != 0) {
		/* Go prints the fraction without trailing zeros. */
		n = snprintf(fs, sizeof(fs), ".%03" PRIu64, frac);
		while (n > 1 && fs[n - 1] == '0')
			fs[--n] = '\0';
	}
	if (h > 0)
		snprintf(buf, cap, "%s%" PRIu64 "h%" PRIu64 "m%" PRIu64 "%ss",
		         sign, h, m, s, fs);
	else if (m > 0)
		snprintf(buf, cap, "%s%" PRIu64 "m%" PRIu64 "%ss", sign, m, s,
		         fs);
	else
		snprintf(buf, cap, "%s%" PRIu64 "%ss", sign, s, fs);
	return buf;
}
