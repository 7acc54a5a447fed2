/*
 * Intel HEX reader (ihex.h): one pass checks every record and finds the
 * span, a second fills the image; a bitmap of written bytes catches
 * records that overlap with different data.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ihex.h"
#include "xmalloc.h"

struct rec {
	uint8_t type;
	uint8_t n;
	uint16_t addr;
	uint8_t data[255];
};

static int ihex_fail(char *why, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
ihex_fail(char *why, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, cap, fmt, ap);
	va_end(ap);
	return -1;
}

bool
ihex_looks_like(const uint8_t *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len && isspace(buf[i]); i++)
		;
	return i < len && buf[i] == ':';
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* One record from a line (without its end of line). */
static int
parse_record(const char *s, size_t n, struct rec *r, unsigned int line,
             char *why, size_t cap)
{
	uint8_t b[5 + 255];
	size_t i, nb;
	uint8_t sum = 0;
	int hi, lo;

	if (n == 0 || s[0] != ':')
		return ihex_fail(why, cap, "line %u: a record starts with ':'",
		                 line);
	if (n < 11 || (n - 1) % 2 != 0)
		return ihex_fail(why, cap,
		                 "line %u: a record of %zu characters is cut",
		                 line, n);
	nb = (n - 1) / 2;
	if (nb > sizeof(b))
		return ihex_fail(why, cap, "line %u: record too long", line);
	for (i = 0; i < nb; i++) {
		hi = hexval(s[1 + 2 * i]);
		lo = hexval(s[2 + 2 * i]);
		if (hi < 0 || lo < 0)
			return ihex_fail(why, cap,
			                 "line %u: \"%c%c\" is not a hex byte",
			                 line, s[1 + 2 * i], s[2 + 2 * i]);
		b[i] = (uint8_t)(hi << 4 | lo);
		sum = (uint8_t)(sum + b[i]);
	}
	if (nb != (size_t)b[0] + 5)
		return ihex_fail(
		    why, cap, "line %u: the record says %u data bytes, has %zu",
		    line, b[0], nb >= 5 ? nb - 5 : 0);
	if (sum != 0)
		return ihex_fail(why, cap,
		                 "line %u: checksum 0x%02x does not match "
		                 "(expected 0x%02x)",
		                 line, b[nb - 1], (uint8_t)(b[nb - 1] - sum));
	r->n = b[0];
	r->addr = (uint16_t)(b[1] << 8 | b[2]);
	r->type = b[3];
	memcpy(r->data, b + 4, r->n);
	return 0;
}

/*
 * Walk the records; with img NULL only check them and find the span,
 * else write the data into img (base and len set).
 */
static int
walk(const char *text, size_t len, uint64_t *lo, uint64_t *hi,
     struct ihex_image *img, uint8_t *seen, char *why, size_t cap)
{
	size_t pos = 0, end, n;
	unsigned int line = 0;
	uint64_t base = 0, a, i;
	bool done = false;
	struct rec r;

	while (pos < len) {
		line++;
		for (end = pos; end < len && text[end] != '\n'; end++)
			;
		n = end - pos;
		while (n > 0 && isspace((unsigned char)text[pos + n - 1]))
			n--;
		while (n > 0 && isspace((unsigned char)text[pos])) {
			pos++;
			n--;
		}
		if (n == 0) {
			pos = end + 1;
			continue;
		}
		if (done)
			return ihex_fail(why, cap,
			                 "line %u: data after the end record",
			                 line);
		if (parse_record(text + pos, n, &r, line, why, cap) == -1)
			return -1;
		pos = end + 1;
		switch (r.type) {
		case 0x00:
			a = base + r.addr;
			if (r.n == 0)
				break;
			if (img == NULL) {
				*lo = a < *lo ? a : *lo;
				*hi = a + r.n > *hi ? a + r.n : *hi;
				break;
			}
			for (i = 0; i < r.n; i++) {
				uint64_t k = a + i - img->base;

				if ((seen[k / 8] >> (k % 8) & 1) &&
				    img->data[k] != r.data[i])
					return ihex_fail(
					    why, cap,
					    "line %u: overwrites address "
					    "0x%llx with other data",
					    line, (unsigned long long)(a + i));
				seen[k / 8] |= (uint8_t)(1u << (k % 8));
				img->data[k] = r.data[i];
			}
			break;
		case 0x01:
			done = true;
			break;
		case 0x02:
		case 0x04:
			if (r.n != 2)
				return ihex_fail(
				    why, cap,
				    "line %u: a base address record "
				    "of %u bytes (expected 2)",
				    line, r.n);
			base = (uint64_t)(r.data[0] << 8 | r.data[1])
			       << (r.type == 0x02 ? 4 : 16);
			break;
		case 0x03:
		case 0x05:
			break;
		default:
			return ihex_fail(why, cap,
			                 "line %u: unknown record type %02x",
			                 line, r.type);
		}
	}
	if (!done)
		return ihex_fail(why, cap, "no end record (:00000001FF)");
	return 0;
}

int
ihex_parse(const char *text, size_t len, struct ihex_image *out, char *why,
           size_t whycap)
{
	uint64_t lo = UINT64_MAX, hi = 0;
	uint8_t *seen;

	memset(out, 0, sizeof(*out));
	if (walk(text, len, &lo, &hi, NULL, NULL, why, whycap) == -1)
		return -1;
	if (hi == 0)
		return ihex_fail(why, whycap, "no data records");
	if (hi - lo > IHEX_MAX_SPAN || hi > UINT32_MAX + 1ULL)
		return ihex_fail(
		    why, whycap,
		    "data spans 0x%llx to 0x%llx, more than %d MiB",
		    (unsigned long long)lo, (unsigned long long)hi,
		    IHEX_MAX_SPAN / (1024 * 1024));
	out->base = (uint32_t)lo;
	out->len = (size_t)(hi - lo);
	out->data = xmalloc(out->len);
	memset(out->data, 0xff, out->len);
	seen = xcalloc(out->len / 8 + 1, 1);
	if (walk(text, len, &lo, &hi, out, seen, why, whycap) == -1) {
		free(seen);
		ihex_free(out);
		return -1;
	}
	free(seen);
	return 0;
}

void
ihex_free(struct ihex_image *img)
{
	free(img->data);
	memset(img, 0, sizeof(*img));
}
