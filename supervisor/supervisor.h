/*
 * Declarations shared by the supervisor's modules, one heading per file
 * (as OpenSMTPD's smtpd.h does).  Module APIs with their own header
 * (config.h, keys.h, workers.h, ...) stay there.
 */
#ifndef SUPERVISOR_H
#define SUPERVISOR_H

#include <stdbool.h>

#include "config.h"

#define EX_CONFIG 1 /* bad config, key or runtime failure */
#define EX_USAGE  2 /* bad command line */

/* main.c */
/* The global flags, filled before any sub-command runs. */
struct global_opts {
	const char *config_path; /* NULL: search order */
	struct config_overrides ov;
	int verbose;
	bool once;
};
extern struct global_opts gopts;

/*
 * Load the config named by the global flags; NULL after printing the error.
 * For sub-commands that need the configured boards.
 */
struct config *supervisor_load_config(void);

/* cmd_smp.c */
int cmd_smp(int argc, char **argv);

/* cmd_artifact.c */
int cmd_artifact(int argc, char **argv);

#endif
