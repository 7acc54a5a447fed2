/*
 * The board's flash: slot 0 (running image) and slot 1 (upload target),
 * with the MCUboot flags, persisted in --state FILE so that a reset or a
 * restart of the simulator keeps what was written.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "xmalloc.h"
#include "sim.h"

/*
 * State file: "RDFMSIM2", u32 slot_size, u8 pending, permanent, confirmed,
 * test, the upload in progress (u8 active, u32 off, u32 len, u8 sha_len,
 * 32 bytes sha), then per slot u32 used and the first `used` bytes (the
 * rest of the slot is erased, 0xff).  Little-endian.  The upload state is
 * kept so a restarted simulator (--die-after, a killed process) resumes
 * like the board it stands for; a reset of the board forgets it.
 */
#define STATE_MAGIC   "RDFMSIM2"
#define STATE_HDR_LEN (8 + 4 + 4 + 1 + 4 + 4 + 1 + SMP_HASH_LEN)
#define SAVE_DELAY_MS 200

static struct event *save_ev;
static bool save_pending;

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = v & 0xff;
	p[1] = (v >> 8) & 0xff;
	p[2] = (v >> 16) & 0xff;
	p[3] = (v >> 24) & 0xff;
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* Bytes up to the last one that is not erased. */
static size_t
slot_used(int s)
{
	size_t n = board.o->slot_size;

	while (n > 0 && board.slot[s].data[n - 1] == 0xff)
		n--;
	return n;
}

static int
read_all(int fd, uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = read(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Returns 1 when loaded, 0 when the file does not exist; fatal otherwise. */
static int
load_state(const char *path)
{
	uint8_t hdr[STATE_HDR_LEN], used[4];
	uint32_t size;
	int fd, s;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 0;
		fatal("cannot open state file", "path=%s", log_q(path));
	}
	if (read_all(fd, hdr, sizeof(hdr)) == -1 ||
	    memcmp(hdr, STATE_MAGIC, 8) != 0)
		fatalx("state file is not a simulator state file", "path=%s",
		       log_q(path));
	size = get32(hdr + 8);
	if (size != board.o->slot_size)
		fatalx("state file slot size differs from --slot-size",
		       "path=%s file=%u option=%zu", log_q(path), size,
		       board.o->slot_size);
	board.pending = hdr[12] != 0;
	board.permanent = hdr[13] != 0;
	board.confirmed = hdr[14] != 0;
	board.test = hdr[15] != 0;
	board.up_active = hdr[16] != 0;
	board.up_off = get32(hdr + 17);
	board.up_len = get32(hdr + 21);
	board.up_sha_len = hdr[25];
	board.up_has_sha = board.up_sha_len > 0;
	if (board.up_sha_len > SMP_HASH_LEN || board.up_off > board.up_len ||
	    board.up_len > size)
		fatalx("state file has a bad upload record", "path=%s",
		       log_q(path));
	memcpy(board.up_sha, hdr + 26, SMP_HASH_LEN);
	for (s = 0; s < 2; s++) {
		uint32_t n;

		if (read_all(fd, used, 4) == -1)
			fatalx("state file is truncated", "path=%s",
			       log_q(path));
		n = get32(used);
		if (n > size)
			fatalx("state file slot length exceeds the slot size",
			       "path=%s slot=%d used=%u", log_q(path), s, n);
		if (read_all(fd, board.slot[s].data, n) == -1)
			fatalx("state file is truncated", "path=%s",
			       log_q(path));
	}
	close(fd);
	return 1;
}

static void
load_image(const char *path)
{
	struct mcuboot_image img;
	char err[128];
	struct stat st;
	uint8_t *buf;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		fatal("cannot open --image", "path=%s", log_q(path));
	if (fstat(fd, &st) == -1)
		fatal("cannot stat --image", "path=%s", log_q(path));
	if ((size_t)st.st_size > board.o->slot_size)
		fatalx("--image is larger than a slot",
		       "path=%s size=%lld "
		       "slot_size=%zu",
		       log_q(path), (long long)st.st_size, board.o->slot_size);
	buf = xmalloc((size_t)st.st_size + 1);
	if (read_all(fd, buf, (size_t)st.st_size) == -1)
		fatal("cannot read --image", "path=%s", log_q(path));
	close(fd);
	if (mcuboot_parse(buf, (size_t)st.st_size, &img, err, sizeof(err)) ==
	    -1)
		fatalx("--image is not a valid MCUboot image",
		       "path=%s "
		       "reason=%s",
		       log_q(path), log_q(err));
	memcpy(board.slot[0].data, buf, (size_t)st.st_size);
	free(buf);
	board.confirmed = true;
}

static void
save_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	flash_flush();
}

void
flash_init(void)
{
	int s;

	for (s = 0; s < 2; s++) {
		board.slot[s].data = xmalloc(board.o->slot_size);
		memset(board.slot[s].data, 0xff, board.o->slot_size);
		board.slot[s].info_fresh = false;
	}
	save_ev = evtimer_new(board.base, save_cb, NULL);
	if (board.o->state != NULL && load_state(board.o->state)) {
		log_info("state loaded", "path=%s", log_q(board.o->state));
		return;
	}
	if (board.o->image != NULL)
		load_image(board.o->image);
	flash_save();
}

void
flash_erase_slot(int s)
{
	memset(board.slot[s].data, 0xff, board.o->slot_size);
	board.slot[s].info_fresh = false;
}

void
flash_write(int s, size_t off, const uint8_t *data, size_t len)
{
	if (off > board.o->slot_size || len > board.o->slot_size - off)
		fatalx("flash write outside the slot",
		       "slot=%d off=%zu "
		       "len=%zu",
		       s, off, len);
	memcpy(board.slot[s].data + off, data, len);
	board.slot[s].info_fresh = false;
}

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/*
 * Where the image in a slot ends (the rest of the slot is erased flash,
 * which mcuboot_parse() would take for trailing garbage), and its SHA-256
 * TLV as Zephyr's image list reads it, without checking it: a corrupted
 * image is listed with the hash it claims and refused by MCUboot at the
 * next reset, as on a real board.  Layout arithmetic only (docs/design.md
 * "MCUboot images"); mcuboot_parse() checks everything.  Returns 0 when there is
 * no image.
 */
static size_t
slot_image_len(const uint8_t *d, size_t size, const uint8_t **hash)
{
	uint64_t tlv_off, end, off;

	*hash = NULL;
	if (get32(d) != MCUBOOT_MAGIC)
		return 0;
	tlv_off = (uint64_t)get16(d + 8) + get32(d + 12) + get16(d + 10);
	if (tlv_off + 4 > size || get16(d + tlv_off) != MCUBOOT_TLV_MAGIC)
		return 0;
	end = tlv_off + get16(d + tlv_off + 2);
	if (end > size)
		return 0;
	for (off = tlv_off + 4; off + 4 <= end;
	     off += 4 + (uint64_t)get16(d + off + 2)) {
		if (get16(d + off) == MCUBOOT_TLV_SHA256 &&
		    get16(d + off + 2) == MCUBOOT_HASH_LEN &&
		    off + 4 + MCUBOOT_HASH_LEN <= end)
			*hash = d + off + 4;
	}
	return (size_t)end;
}

const struct slot *
flash_slot_info(int s)
{
	struct slot *sl = &board.slot[s];
	struct mcuboot_image img;
	const uint8_t *hash;
	char err[160] = "no image header";
	size_t len;

	if (sl->info_fresh)
		return sl;
	sl->info_fresh = true;
	len = slot_image_len(sl->data, board.o->slot_size, &hash);
	sl->listed = hash != NULL;
	sl->valid = len > 0 &&
	            mcuboot_parse(sl->data, len, &img, err, sizeof(err)) == 0;
	if (sl->valid) {
		sl->version = img.version;
		memcpy(sl->hash, img.hash, MCUBOOT_HASH_LEN);
	} else {
		log_debug("slot holds no valid image", "slot=%d reason=%s", s,
		          log_q(err));
		if (sl->listed) {
			sl->version.major = sl->data[20];
			sl->version.minor = sl->data[21];
			sl->version.revision = get16(sl->data + 22);
			sl->version.build = get32(sl->data + 24);
			memcpy(sl->hash, hash, MCUBOOT_HASH_LEN);
		}
	}
	return sl;
}

void
flash_swap(void)
{
	struct slot t = board.slot[0];

	board.slot[0] = board.slot[1];
	board.slot[1] = t;
}

void
flash_save(void)
{
	uint8_t hdr[STATE_HDR_LEN], used[4];
	char *tmp;
	int fd, s;

	save_pending = false;
	if (save_ev != NULL)
		evtimer_del(save_ev);
	if (board.o->state == NULL)
		return;
	xasprintf(&tmp, "%s.tmp", board.o->state);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) ==
	    -1)
		fatal("cannot create state file", "path=%s", log_q(tmp));
	memcpy(hdr, STATE_MAGIC, 8);
	put32(hdr + 8, (uint32_t)board.o->slot_size);
	hdr[12] = board.pending;
	hdr[13] = board.permanent;
	hdr[14] = board.confirmed;
	hdr[15] = board.test;
	hdr[16] = board.up_active;
	put32(hdr + 17, board.up_off);
	put32(hdr + 21, board.up_len);
	hdr[25] = (uint8_t)(board.up_has_sha ? board.up_sha_len : 0);
	memcpy(hdr + 26, board.up_sha, SMP_HASH_LEN);
	if (write_all(fd, hdr, sizeof(hdr)) == -1)
		fatal("cannot write state file", "path=%s", log_q(tmp));
	for (s = 0; s < 2; s++) {
		size_t n = slot_used(s);

		put32(used, (uint32_t)n);
		if (write_all(fd, used, 4) == -1 ||
		    write_all(fd, board.slot[s].data, n) == -1)
			fatal("cannot write state file", "path=%s", log_q(tmp));
	}
	if (close(fd) == -1)
		fatal("cannot write state file", "path=%s", log_q(tmp));
	if (rename(tmp, board.o->state) == -1)
		fatal("cannot rename state file", "path=%s", log_q(tmp));
	free(tmp);
}

/*
 * Upload chunks arrive hundreds per second; writing both slots for each
 * would make the simulator slower than the board it models.  A chunk's
 * bytes reach the file within SAVE_DELAY_MS, and at once at exit.
 */
void
flash_save_later(void)
{
	struct timeval tv = {0, SAVE_DELAY_MS * 1000};

	if (save_pending)
		return;
	save_pending = true;
	evtimer_add(save_ev, &tv);
}

void
flash_flush(void)
{
	if (save_pending)
		flash_save();
}

void
flash_free(void)
{
	int s;

	if (save_ev != NULL)
		event_free(save_ev);
	save_ev = NULL;
	for (s = 0; s < 2; s++) {
		free(board.slot[s].data);
		board.slot[s].data = NULL;
	}
}
