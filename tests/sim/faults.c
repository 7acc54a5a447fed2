/*
 * Fault injection for the virtual board, reproducible from --seed: lost
 * requests and replies, corrupted serial bytes, a board that hangs or dies
 * part way through an upload.
 */
#include <stdlib.h>

#include "log.h"
#include "sim.h"

/* splitmix64: small, seedable, and the same sequence on every host. */
uint64_t
fault_rand(void)
{
	uint64_t z = (board.rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void
faults_init(uint64_t seed)
{
	board.rng_state = seed;
}

bool
fault_hit(double p)
{
	if (p <= 0)
		return false;
	if (p >= 1)
		return true;
	return (double)(fault_rand() >> 11) / (double)(1ULL << 53) < p;
}

/* Called after upload bytes reached the flash. */
void
faults_upload_written(void)
{
	const struct sim_opts *o = board.o;

	if (o->die_after > 0 && board.upload_written >= o->die_after) {
		log_info("dying mid-upload (--die-after)", "written=%llu",
		         (unsigned long long)board.upload_written);
		flash_save();
		status_update();
		sim_exit(0);
	}
	if (o->hang_after > 0 && board.upload_written >= o->hang_after &&
	    board.run != BOARD_HUNG) {
		log_info("hanging mid-upload (--hang-after)", "written=%llu",
		         (unsigned long long)board.upload_written);
		board.run = BOARD_HUNG;
		flash_save();
		status_update();
	}
}
