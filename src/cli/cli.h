/* cli.h: what the command-line commands share. */
#ifndef CLAWBACK_CLI_CLI_H
#define CLAWBACK_CLI_CLI_H

#include "config/config.h"

/* Exit codes: 0 success, 1 the operation failed, 2 usage error, 3 invalid config or rules. */
enum {
	CB_EXIT_OK = 0,
	CB_EXIT_FAILURE = 1,
	CB_EXIT_USAGE = 2,
	CB_EXIT_INVALID = 3,
};

struct cb_cli {
	const char *config_path; /* --config, or NULL for the default */
};

struct cb_command {
	const char *name;
	const char *summary; /* one line for `clawback --help` */
	const char *help;    /* full text for `clawback COMMAND --help` */
	int (*run)(struct cb_cli *cli, int argc, char **argv);
};

extern const struct cb_command cb_cmd_version;

#endif
