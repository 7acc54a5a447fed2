/*
 * What happens around a reset: the board goes silent, MCUboot swaps in a
 * pending image (test or permanent) or reverts an unconfirmed one, then the
 * firmware boots and, if asked to, confirms itself or fails its self test.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sim.h"

#define DRAIN_POLL_MS 10
#define DRAIN_MAX_MS  2000
/* Zephyr's os_mgmt waits this long after answering a reset. */
#define RESET_DELAY_MS 50

static void
ms_timer(struct event *ev, unsigned int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	evtimer_add(ev, &tv);
}

/* MCUboot: validate and swap slot 1 in, or revert an unconfirmed image. */
static void
mcuboot_run(void)
{
	const struct slot *s1;

	if (board.pending) {
		s1 = flash_slot_info(1);
		board.pending = false;
		if (!s1->valid || board.o->reject_new) {
			/* MCUboot erases an image that fails validation. */
			log_info("mcuboot: image in slot 1 is not valid, "
			         "booting the old one",
			         NULL);
			flash_erase_slot(1);
			board.permanent = false;
			return;
		}
		flash_swap();
		if (board.permanent) {
			log_info("mcuboot: permanent swap", NULL);
			board.test = false;
			board.confirmed = true;
		} else {
			log_info("mcuboot: test swap", NULL);
			board.test = true;
			board.confirmed = false;
		}
		board.permanent = false;
		return;
	}
	if (board.test) {
		log_info("mcuboot: running image was not confirmed, "
		         "reverting",
		         NULL);
		flash_swap();
		board.test = false;
		board.confirmed = true;
	}
}

static void
selftest_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	sim_board = arg; /* this board is the current one */
	if (board.run != BOARD_UP || !board.test)
		return;
	if (board.o->self_confirm) {
		log_info("firmware: self test passed, confirming", NULL);
		board.test = false;
		board.confirmed = true;
		flash_save();
		status_update();
	} else if (board.o->self_reject) {
		log_info("firmware: self test failed, resetting", NULL);
		boot_request_reset();
	}
}

static void
reboot_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	sim_board = arg; /* this board is the current one */
	mcuboot_run();
	flash_save();
	if (board.o->no_boot) {
		log_info("board does not boot (--no-boot)", NULL);
		board.run = BOARD_HUNG;
		status_update();
		return;
	}
	board.run = BOARD_UP;
	log_info("board booted", "test=%d", board.test);
	if (board.test && (board.o->self_confirm || board.o->self_reject))
		ms_timer(board.selftest_ev, board.o->confirm_ms);
	blink->up();
	status_update();
}

/* The reset reply has left the board (or waited long enough): go down. */
static void
reset_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	sim_board = arg; /* this board is the current one */
	if (blink->pending_out() > 0 && board.drain_waited < DRAIN_MAX_MS) {
		board.drain_waited += DRAIN_POLL_MS;
		ms_timer(board.reset_ev, DRAIN_POLL_MS);
		return;
	}
	board.reset_requested = false;
	if (board.run == BOARD_HUNG)
		return;
	board.run = BOARD_DOWN;
	board.c.resets++;
	evtimer_del(board.selftest_ev);
	server_down();
	blink->down();
	flash_flush();
	log_info("board resetting", "reboot_ms=%u", board.o->reboot_ms);
	ms_timer(board.reboot_ev, board.o->reboot_ms);
	status_update();
}

void
boot_request_reset(void)
{
	if (board.reset_requested)
		return;
	board.reset_requested = true;
	board.drain_waited = 0;
	ms_timer(board.reset_ev, RESET_DELAY_MS + board.o->latency_ms);
}

void
boot_confirmed(void)
{
	evtimer_del(board.selftest_ev);
}

void
boot_init(void)
{
	board.reset_ev = evtimer_new(board.base, reset_cb, sim_board);
	board.reboot_ev = evtimer_new(board.base, reboot_cb, sim_board);
	board.selftest_ev = evtimer_new(board.base, selftest_cb, sim_board);
	/*
	 * A restart of the simulator continues where it stopped (flash,
	 * flags, upload progress): only a reset runs MCUboot.
	 */
	board.run = BOARD_UP;
	if (board.test && (board.o->self_confirm || board.o->self_reject))
		ms_timer(board.selftest_ev, board.o->confirm_ms);
}

void
boot_free(void)
{
	event_free(board.reset_ev);
	event_free(board.reboot_ev);
	event_free(board.selftest_ev);
}
