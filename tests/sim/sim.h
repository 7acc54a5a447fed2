/*
 * The virtual board (mcumgr-board-sim): a model of a Zephyr smp_svr board
 * booting through MCUboot, reachable over a pty, UDP or a BLE ATT socket.
 * Shared declarations of its parts; one libevent loop drives them all.
 */
#ifndef SIM_H
#define SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <event2/event.h>

#include "mcuboot.h"
#include "smp.h"
#include "smp_server.h"

struct sim_opts {
	size_t slot_size;
	const char *image;
	const char *state;
	const char *status;
	uint32_t buf_size;
	uint32_t buf_count;
	bool definite_maps;
	bool zephyr3;
	unsigned int reboot_ms;
	bool reject_new;
	bool self_confirm;
	bool self_reject;
	unsigned int confirm_ms;
	const char *serial;
	bool reenumerate;
	unsigned int baud;
	bool console_noise;
	const char *udp;
	const char *ble;
	uint16_t ble_mtu;
	unsigned int latency_ms;
	unsigned int flash_us_per_kb;
	unsigned int erase_us_per_kb;
	unsigned int proc_us;
	uint64_t seed;
	double drop_rate;
	double drop_reply_rate;
	double corrupt_rate;
	uint64_t hang_after;
	uint64_t die_after;
	bool no_boot;
	const char *without; /* groups answering "not supported" */
	bool shell_legacy_rc;
	bool stuck_upload;
	int verbose;
};

/* One flash slot and what was last read from it. */
struct slot {
	uint8_t *data;
	bool info_fresh; /* the fields below describe data as it is now */
	/*
	 * listed: a header and a SHA-256 TLV, which is all Zephyr's image
	 * list reads; valid: the whole image checks out (what MCUboot
	 * verifies before it swaps).
	 */
	bool listed;
	bool valid;
	struct mcuboot_version version;
	uint8_t hash[MCUBOOT_HASH_LEN];
};

enum board_run {
	BOARD_UP,   /* firmware running, SMP server answers */
	BOARD_DOWN, /* resetting: silent */
	BOARD_HUNG, /* --hang-after tripped or --no-boot: silent for good */
};

struct counters {
	uint64_t requests;
	uint64_t replies;
	uint64_t dropped;
	uint64_t bytes_in;
	uint64_t bytes_out;
	uint64_t resets;
};

struct board {
	struct event_base *base;
	const struct sim_opts *o;
	struct slot slot[2];
	/* MCUboot trailer flags, persisted with the slots. */
	bool pending;   /* slot 1 marked for swap at next reset */
	bool permanent; /* ... and the swap is permanent */
	bool confirmed; /* slot 0 image confirmed */
	bool test;      /* slot 0 runs an unconfirmed test image */
	/* Upload in progress (RAM only: a reset forgets it, as Zephyr). */
	bool up_active;
	uint32_t up_off;
	uint32_t up_len;
	bool up_has_sha;
	size_t up_sha_len;
	uint8_t up_sha[SMP_HASH_LEN];
	uint64_t upload_written; /* bytes written by uploads since start */
	enum board_run run;
	struct counters c;
};

extern struct board board;

/*
 * A link to the client.  peer identifies where a request came from so the
 * reply goes back there (UDP: the sender's address); other links ignore it.
 */
struct peer {
	struct sockaddr_storage ss;
	socklen_t len;
};

struct link_ops {
	const char *name;
	/* Largest SMP packet the board's receive buffer takes on this link. */
	size_t (*pkt_limit)(void);
	void (*send)(const uint8_t *pkt, size_t len, const struct peer *peer);
	void (*down)(void); /* board resets: drop what is in flight */
	void (*up)(void);   /* board booted */
	size_t (*pending_out)(void);
};

extern const struct link_ops *blink;

/* flash.c */
void flash_init(void);
void flash_erase_slot(int slot);
void flash_write(int slot, size_t off, const uint8_t *data, size_t len);
const struct slot *flash_slot_info(int slot);
void flash_swap(void);
void flash_save(void);       /* now, atomically */
void flash_save_later(void); /* coalesced with other writes */
void flash_flush(void);      /* pending coalesced write, now */
void flash_free(void);

/* boot.c */
void boot_init(void);
void boot_request_reset(void);
void boot_confirmed(void); /* the client confirmed the running image */
void boot_free(void);

/* smp_server.c */
void server_init(void);
void server_receive(const uint8_t *pkt, size_t len, const struct peer *peer);
void server_down(void);
void server_free(void);
void server_list_images(struct smp_image_list *list);

/* smp_groups.c: the groups beyond the update path */
#define SIM_NOT_MINE (-3)
/* A reply for a request of those groups, or SIM_NOT_MINE. */
ssize_t sim_groups_handle(uint8_t *out, size_t cap, const uint8_t *pkt,
                          size_t len, const struct smp_rsp_opts *o);
bool sim_group_enabled(const char *name);
void sim_groups_free(void);

/* faults.c */
void faults_init(uint64_t seed);
bool fault_hit(double p);
uint64_t fault_rand(void);
void faults_upload_written(void);

/* status.c */
void status_update(void);

/* link_serial.c, link_udp.c, link_ble.c: set up and set `blink`. */
void serial_link_init(void);
void udp_link_init(void);
void ble_link_init(void);
void serial_link_free(void);
void udp_link_free(void);
void ble_link_free(void);

/* main.c */
void sim_ready(const char *kind, const char *where);
__attribute__((noreturn)) void sim_exit(int status);

#endif
