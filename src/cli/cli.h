/* cli.h: what the command-line commands share. */
#ifndef CLAWBACK_CLI_CLI_H
#define CLAWBACK_CLI_CLI_H

#include <jansson.h>
#include <stdio.h>

#include "config/config.h"
#include "rules/rules.h"
#include "store/store.h"

/* Exit codes: 0 success, 1 the operation failed, 2 usage error, 3 invalid config or rules. */
enum {
	CB_EXIT_OK = 0,
	CB_EXIT_FAILURE = 1,
	CB_EXIT_USAGE = 2,
	CB_EXIT_INVALID = 3,
};

struct cb_cli {
	const char *config_path; /* --config, or NULL for the default */
	const char *store_path;  /* --store, overrides [general] store */
	const char *rules_path;  /* --rules, overrides [general] rules */
	struct cb_config config; /* loaded by cb_cli_load_config */
	int config_loaded;
};

struct cb_command {
	const char *name;
	const char *summary; /* one line for `clawback --help` */
	const char *help;    /* full text for `clawback COMMAND --help` */
	int (*run)(struct cb_cli *cli, int argc, char **argv);
};

extern const struct cb_command cb_cmd_version, cb_cmd_check_config, cb_cmd_rules, cb_cmd_replay,
	cb_cmd_events, cb_cmd_jobs, cb_cmd_queue, cb_cmd_run, cb_cmd_doctor, cb_cmd_status,
	cb_cmd_pause, cb_cmd_resume;

/*
 * Loads the settings: --config PATH, else the default path, else (when the
 * default file does not exist) the built-in defaults. Prints every problem to
 * stderr and returns -1 when the file is invalid or unreadable.
 */
int cb_cli_load_config(struct cb_cli *cli);
/* Opens the store named by --store or the settings; prints the error and returns NULL on failure. */
struct cb_store *cb_cli_open_store(struct cb_cli *cli);
/* Loads the rules named by --rules or the settings; prints every problem, NULL on failure. */
struct cb_ruleset *cb_cli_load_rules(struct cb_cli *cli);
void cb_cli_free(struct cb_cli *cli);
/*
 * Runs the executor with the configured backend until no job can run now
 * (used by replay and the demo); prints the error and returns -1 on failure.
 */
int cb_cli_execute_until_idle(struct cb_cli *cli);

/* Returns the store path: --store, else [general] store. The settings must be loaded. */
const char *cb_cli_store_path(const struct cb_cli *cli);
/*
 * Writes the path of a file the daemon keeps next to the store into out:
 * STORE.status.json (suffix ".status.json") or STORE.paused (".paused").
 */
void cb_cli_store_file(const struct cb_cli *cli, const char *suffix, char *out, size_t size);

/* Tells whether `clawback pause` is in force for the store (its STORE.paused file exists). */
int cb_cli_paused(struct cb_cli *cli);

/* Parses the list filters shared by events, jobs and queue list; CB_CLI_FILTER_HELP documents them. */
int cb_cli_parse_filter(int opt, const char *arg, struct cb_filter *f, int for_jobs);
#define CB_CLI_FILTER_OPTIONS                                                                      \
	{"state", required_argument, NULL, 'S'}, {"recipient", required_argument, NULL, 'R'},     \
	    {"message-id", required_argument, NULL, 'M'}, {"since", required_argument, NULL, 'F'},  \
	    {"until", required_argument, NULL, 'U'}, {"event", required_argument, NULL, 'E'},       \
	    {"limit", required_argument, NULL, 'L'}, {"json", no_argument, NULL, 'j'}
#define CB_CLI_FILTER_HELP                                                                         \
	"  --recipient ADDR    only this recipient (case-insensitive)\n"                            \
	"  --message-id ID     only this Message-ID, angle brackets included\n"                     \
	"  --since TIME        received at or after TIME (2026-11-30, 2026-11-30T08:00:00Z,\n"      \
	"                      or an age: 30m, 2h, 7d)\n"                                           \
	"  --until TIME        received before TIME\n"                                              \
	"  --event ID          only this event\n"                                                   \
	"  --limit N           at most N rows\n"                                                    \
	"  --json              one JSON object per line\n"

/* Builds the JSON object for a job, shared by every listing. */
json_t *cb_cli_job_json(const struct cb_job *job);
/* Prints a job as one line of key=value fields. */
void cb_cli_print_job(const struct cb_job *job);

/* Parses a time filter: "2026-11-30", "2026-11-30T08:00:00Z" or a relative "2h", "3d"; -1 if invalid. */
int cb_cli_parse_time(const char *s, int64_t *out_ms);
/* Prints a JSON value as one line to out. */
void cb_cli_print_json(FILE *out, json_t *value);

#endif
