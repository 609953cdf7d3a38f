/*
 * main.c: the clawback command line. Dispatches `clawback COMMAND ...` to the
 * commands in this folder, in the manner of git or systemctl.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct cb_command *const commands[] = {
	&cb_cmd_run, &cb_cmd_replay, &cb_cmd_events, &cb_cmd_jobs,         &cb_cmd_queue,
	&cb_cmd_rules,  &cb_cmd_check_config, &cb_cmd_doctor, &cb_cmd_status, &cb_cmd_pause,
	&cb_cmd_resume, &cb_cmd_version,
};

static void print_usage(FILE *out)
{
	fprintf(out, "Usage: clawback [--config PATH] COMMAND [ARGS...]\n\n"
		     "Removes delivered malicious mail reported by Retarus Patient Zero Detection\n"
		     "from Exchange mailboxes.\n\nCommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-14s %s\n", commands[i]->name, commands[i]->summary);
	fprintf(out, "\nOptions:\n"
		     "  --config PATH  settings file (default " CB_CONFIG_DEFAULT_PATH ")\n"
		     "  --store PATH   store file, instead of [general] store\n"
		     "  --rules PATH   rules file, instead of [general] rules\n"
		     "  --help         show this help; `clawback COMMAND --help` for a command\n"
		     "  --version      show the version\n");
}

int main(int argc, char **argv)
{
	struct cb_cli cli;
	int i = 1;

	memset(&cli, 0, sizeof(cli));

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			print_usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("clawback %s\n", CLAWBACK_VERSION);
			return 0;
		} else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			cli.config_path = argv[++i];
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			cli.config_path = argv[i] + 9;
		} else if (strcmp(argv[i], "--store") == 0 && i + 1 < argc) {
			cli.store_path = argv[++i];
		} else if (strcmp(argv[i], "--rules") == 0 && i + 1 < argc) {
			cli.rules_path = argv[++i];
		} else if (strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "--store") == 0 ||
			   strcmp(argv[i], "--rules") == 0) {
			fprintf(stderr, "clawback: option '%s' needs a PATH; see clawback --help\n", argv[i]);
			return CB_EXIT_USAGE;
		} else {
			fprintf(stderr, "clawback: unknown option '%s'; see clawback --help\n", argv[i]);
			return CB_EXIT_USAGE;
		}
	}
	if (i >= argc) {
		print_usage(stderr);
		return CB_EXIT_USAGE;
	}
	for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++) {
		if (strcmp(argv[i], commands[c]->name) == 0) {
			if (argc > i + 1 && (strcmp(argv[i + 1], "--help") == 0 || strcmp(argv[i + 1], "-h") == 0)) {
				fputs(commands[c]->help, stdout);
				return 0;
			}
			int rc;

			/* Before any thread starts: libcurl's global set-up is not thread-safe. */
			curl_global_init(CURL_GLOBAL_DEFAULT);
			rc = commands[c]->run(&cli, argc - i, argv + i);
			curl_global_cleanup();
			cb_cli_free(&cli);
			return rc;
		}
	}
	fprintf(stderr, "clawback: unknown command '%s'; see clawback --help\n", argv[i]);
	return CB_EXIT_USAGE;
}
