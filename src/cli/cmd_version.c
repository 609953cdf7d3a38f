/* cmd_version.c: `clawback version`. */
#include <stdio.h>

#include "cli/cli.h"

static int run_version(struct cb_cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	(void)argv;
	printf("clawback %s\n", CLAWBACK_VERSION);
	return CB_EXIT_OK;
}

const struct cb_command cb_cmd_version = {
	.name = "version",
	.summary = "show the version",
	.help = "Usage: clawback version\n\nPrints the version of clawback.\n",
	.run = run_version,
};
