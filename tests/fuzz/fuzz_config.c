/*
 * libFuzzer target for the config loader: any bytes must give a config or
 * one error message, never a crash, a leak or a read out of bounds.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "supervisor/config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Unknown keys are logged, one line each: megabytes a second on stderr.
 * -close_fd_mask=2 sends our stderr to /dev/null while libFuzzer and the
 * sanitizers keep reporting on a duplicate of it.  libFuzzer reads its
 * flags after this hook, so adding one here works.
 */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char flag[] = "-close_fd_mask=2";
	static char *args[256];
	int i, n = *argc;

	if (n <= 0 || n >= (int)(sizeof(args) / sizeof(args[0])) - 2)
		return 0;
	for (i = 0; i < n; i++)
		args[i] = (*argv)[i];
	/* Flags must come before the corpus directories. */
	memmove(args + 2, args + 1, (size_t)(n - 1) * sizeof(args[0]));
	args[1] = flag;
	args[n + 1] = NULL;
	*argc = n + 1;
	*argv = args;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	struct config *c;
	char err[1024];

	if (!init) {
		log_init(0, "fuzz");
		init = 1;
	}
	c = config_load_buffer("fuzz.json", (const char *)data, size, NULL, err,
	                       sizeof(err));
	if (c == NULL &&
	    (err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL))
		abort(); /* a failure must always say why */
	config_free(c);
	return 0;
}
