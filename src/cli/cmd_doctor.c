/*
 * cmd_doctor.c: `clawback doctor`, which proves that the configuration works
 * before the daemon relies on it: settings and rules valid, store writable,
 * secret files readable, and for the Graph backend a token, the canary
 * mailbox and every destination folder the rules name. Each failure names
 * what to fix. Makes blocking requests; changes nothing in any mailbox.
 */
#include <stdlib.h>
#include <string.h>

#include "backend/graph/graph.h"
#include "cli/cli.h"

static int check_secret(const char *what, const char *path)
{
	struct cb_err err;
	char *secret = NULL;
	size_t len = 0;

	if (!path)
		return 0;
	if (cb_secret_read(path, &secret, &len, &err) < 0) {
		printf("FAILED %s: %s\n", what, err.msg);
		return -1;
	}
	cb_secret_free(secret, len);
	printf("ok     %s readable\n", what);
	return 0;
}

/* Checks each distinct destination folder of the enabled move rules and of [default]. */
static int check_rule_folders(const struct cb_config *cfg, const struct cb_ruleset *rules)
{
	struct cb_rule_info info;
	struct cb_action fallback;
	int failed = 0;

	for (size_t i = 0; cb_rules_get(rules, i, &info) == 0; i++) {
		if (!info.enabled || info.action.kind != CB_ACTION_MOVE)
			continue;
		if (cb_graph_doctor_folder(cfg, info.action.folder, stdout) < 0)
			failed = 1;
	}
	cb_rules_default_action(rules, &fallback);
	if (fallback.kind == CB_ACTION_MOVE && cb_graph_doctor_folder(cfg, fallback.folder, stdout) < 0)
		failed = 1;
	return failed ? -1 : 0;
}

static int run_doctor(struct cb_cli *cli, int argc, char **argv)
{
	struct cb_ruleset *rules;
	struct cb_store *store;
	const struct cb_config *cfg;
	int failed = 0;

	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "Usage: clawback [--config PATH] doctor\n");
		return CB_EXIT_USAGE;
	}
	if (cb_cli_load_config(cli) < 0)
		return CB_EXIT_INVALID;
	cfg = &cli->config;
	printf("ok     settings valid (%s)\n", cfg->path ? cfg->path : "built-in defaults");

	rules = cb_cli_load_rules(cli);
	if (!rules)
		return CB_EXIT_INVALID;
	printf("ok     rules valid: %zu rule%s\n", cb_rules_count(rules),
	       cb_rules_count(rules) == 1 ? "" : "s");

	store = cb_cli_open_store(cli);
	if (store)
		printf("ok     store opens and is up to date\n");
	else
		failed = 1;
	cb_store_close(store);

	for (size_t i = 0; i < cfg->feed_count; i++) {
		char what[128];

		snprintf(what, sizeof(what), "feed '%s' token_file", cfg->feeds[i].name);
		failed |= check_secret(what, cfg->feeds[i].token_file) < 0;
		snprintf(what, sizeof(what), "feed '%s' proxy_password_file", cfg->feeds[i].name);
		failed |= check_secret(what, cfg->feeds[i].proxy_password_file) < 0;
	}

	if (strcmp(cfg->backend, "graph") == 0) {
		failed |= cb_graph_doctor(cfg, stdout) < 0;
		failed |= check_rule_folders(cfg, rules) < 0;
	} else {
		printf("ok     backend %s: no mailbox access to check\n", cfg->backend);
	}
	cb_rules_free(rules);
	printf(failed ? "some checks FAILED; fix them and run clawback doctor again\n"
		      : "all checks passed\n");
	return failed ? CB_EXIT_FAILURE : CB_EXIT_OK;
}

const struct cb_command cb_cmd_doctor = {
	.name = "doctor",
	.summary = "check that the settings, secrets and mailbox access work",
	.help = "Usage: clawback [--config PATH] doctor\n"
		"\n"
		"Checks, one line each, what the daemon needs: the settings and rules are\n"
		"valid, the store opens, every secret file is readable, and with the Graph\n"
		"backend: a token is obtained, the canary mailbox ([graph] canary_mailbox)\n"
		"is readable, and every destination folder the rules name exists in it (or\n"
		"would be created). A failure says which permission or setting to fix.\n"
		"Nothing is changed in any mailbox. Exit status 0 when every check passed.\n",
	.run = run_doctor,
};
