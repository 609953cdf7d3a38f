/* cmd_check_config.c: `clawback check-config`, which validates the settings and the rules. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static int run_check_config(struct cb_cli *cli, int argc, char **argv)
{
	const char *path = cli->config_path ? cli->config_path : CB_CONFIG_DEFAULT_PATH;
	struct cb_ruleset *rules;
	struct cb_config cfg;
	char *problems = NULL;
	struct cb_err err;
	int n;

	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "Usage: clawback [--config PATH] check-config\n");
		return CB_EXIT_USAGE;
	}
	n = cb_config_load(path, &cfg, &problems, &err);
	if (n < 0) {
		fprintf(stderr, "clawback: %s\n", err.msg);
		cb_config_free(&cfg);
		return CB_EXIT_INVALID;
	}
	if (n > 0) {
		fputs(problems, stdout);
		printf("%s: %d problem%s\n", path, n, n == 1 ? "" : "s");
		free(problems);
		cb_config_free(&cfg);
		return CB_EXIT_INVALID;
	}
	free(problems);
	problems = NULL;
	n = cb_config_check_files(&cfg, &problems);
	if (n > 0) {
		fputs(problems, stdout);
		printf("%s: %d problem%s with the files it names\n", path, n, n == 1 ? "" : "s");
		free(problems);
		cb_config_free(&cfg);
		return CB_EXIT_INVALID;
	}
	free(problems);
	printf("%s: valid (backend %s, %zu feed%s, store %s)\n", path, cfg.backend, cfg.feed_count,
	       cfg.feed_count == 1 ? "" : "s", cfg.store_path);
	cb_config_free(&cfg);

	rules = cb_cli_load_rules(cli);
	if (!rules)
		return CB_EXIT_INVALID;
	printf("%s: %zu rule%s, valid\n", cli->rules_path ? cli->rules_path : cli->config.rules_path,
	       cb_rules_count(rules), cb_rules_count(rules) == 1 ? "" : "s");
	cb_rules_free(rules);
	return CB_EXIT_OK;
}

const struct cb_command cb_cmd_check_config = {
	.name = "check-config",
	.summary = "validate the settings file and the rules",
	.help = "Usage: clawback [--config PATH] check-config\n"
		"\n"
		"Reads the settings file (default " CB_CONFIG_DEFAULT_PATH ") and the rules file\n"
		"it names, and prints every problem as FILE:LINE: [section] key: message.\n"
		"Every file a *_file key names must exist and be readable, and secret files\n"
		"must not be readable by group or others; their contents are never printed.\n"
		"Exit status 0 when valid, 3 when not.\n",
	.run = run_check_config,
};
