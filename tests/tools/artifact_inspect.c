/*
 * Test driver: `artifact-inspect [-c CONFIG] inspect FILE [--json]
 * [--verify-key PEM]` runs cmd_artifact() without the rest of the
 * supervisor, for artifact tests and memory measurements.
 */
#include <stdio.h>
#include <string.h>

#include "supervisor/artifact.h"
#include "supervisor/supervisor.h"

struct global_opts gopts;

struct config *
supervisor_load_config(void)
{
	struct config *c;
	char err[1024];

	if ((c = config_load(gopts.config_path, &gopts.ov, err, sizeof(err))) ==
	    NULL)
		fprintf(stderr, "artifact-inspect: %s\n", err);
	return c;
}

int
main(int argc, char **argv)
{
	if (argc > 2 && strcmp(argv[1], "-c") == 0) {
		gopts.config_path = argv[2];
		argv += 2;
		argc -= 2;
	}
	argv[0] = "artifact";
	return cmd_artifact(argc, argv);
}
