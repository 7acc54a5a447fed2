/*
 * Test driver: `artifact-inspect inspect FILE [--json] [--verify-key PEM]`
 * runs cmd_artifact() alone, so artifact tests and RSS measurements do not
 * need the whole supervisor.
 */
#include "supervisor/artifact.h"

int
main(int argc, char **argv)
{
	argv[0] = "artifact";
	return cmd_artifact(argc, argv);
}
