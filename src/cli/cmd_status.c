/*
 * cmd_status.c: `clawback status`, `clawback pause` and `clawback resume`.
 *
 * The daemon writes its status once a second to STORE.status.json and
 * pauses its executor while STORE.paused exists (see cmd_run.c); these
 * commands read the one and create or remove the other, so they work
 * without any connection to the daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "cli/cli.h"

/* A status older than this (ms) means the daemon is not running. */
#define STATUS_STALE_MS 5000

static void print_counts(struct cb_cli *cli)
{
	int64_t counts[CB_JOB_STATE_COUNT] = {0};
	struct cb_store *store = cb_cli_open_store(cli);
	struct cb_err err;

	if (!store)
		return;
	if (cb_store_count_jobs(store, counts, &err) == 0) {
		printf("jobs:");
		for (int s = 0; s < CB_JOB_STATE_COUNT; s++)
			if (counts[s])
				printf(" %s=%lld", cb_job_state_name((enum cb_job_state)s),
				       (long long)counts[s]);
		printf("\n");
	}
	cb_store_close(store);
}

static int run_status(struct cb_cli *cli, int argc, char **argv)
{
	char path[4200];
	json_error_t error;
	json_t *status, *feed;
	int64_t updated;
	int running;
	size_t i;

	if (argc != 1) {
		fprintf(stderr, "clawback: unexpected argument '%s'\nUsage: clawback status\n", argv[1]);
		return CB_EXIT_USAGE;
	}
	if (cb_cli_load_config(cli) < 0)
		return CB_EXIT_INVALID;
	cb_cli_store_file(cli, ".status.json", path, sizeof(path));
	status = json_load_file(path, 0, &error);
	if (!status) {
		printf("daemon: not running (no status in %s)%s\n", path,
		       cb_cli_paused(cli) ? ", processing paused" : "");
		print_counts(cli);
		return 3;
	}
	updated = json_integer_value(json_object_get(status, "updated_ms"));
	running = cb_now_ms() - updated < STATUS_STALE_MS &&
		  kill((pid_t)json_integer_value(json_object_get(status, "pid")), 0) == 0;
	printf("daemon: %s (pid %lld, backend %s)%s\n", running ? "running" : "not running",
	       (long long)json_integer_value(json_object_get(status, "pid")),
	       json_string_value(json_object_get(status, "backend")),
	       json_is_true(json_object_get(status, "paused")) ? ", processing paused" : "");
	json_array_foreach(json_object_get(status, "feeds"), i, feed)
	{
		printf("feed %s: %s, %lld messages, %lld rejected, %lld reconnects",
		       json_string_value(json_object_get(feed, "name")),
		       json_string_value(json_object_get(feed, "state")),
		       (long long)json_integer_value(json_object_get(feed, "messages")),
		       (long long)json_integer_value(json_object_get(feed, "rejected")),
		       (long long)json_integer_value(json_object_get(feed, "reconnects")));
		if (json_is_true(json_object_get(feed, "auth_failed")))
			printf(", token rejected with HTTP %lld: check token_file",
			       (long long)json_integer_value(json_object_get(feed, "http_status")));
		if (json_string_length(json_object_get(feed, "last_error")))
			printf(", last error: %s", json_string_value(json_object_get(feed, "last_error")));
		printf("\n");
	}
	print_counts(cli);
	json_decref(status);
	return running ? CB_EXIT_OK : 3;
}

static int set_paused(struct cb_cli *cli, int argc, int paused)
{
	char path[4200];
	int fd;

	if (argc != 1) {
		fprintf(stderr, "Usage: clawback %s\n", paused ? "pause" : "resume");
		return CB_EXIT_USAGE;
	}
	if (cb_cli_load_config(cli) < 0)
		return CB_EXIT_INVALID;
	cb_cli_store_file(cli, ".paused", path, sizeof(path));
	if (paused) {
		fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0) {
			fprintf(stderr, "clawback: cannot create %s: %m\n", path);
			return CB_EXIT_FAILURE;
		}
		close(fd);
		printf("processing paused: events are still received and stored\n");
	} else {
		if (unlink(path) < 0 && errno != ENOENT) {
			fprintf(stderr, "clawback: cannot remove %s: %m\n", path);
			return CB_EXIT_FAILURE;
		}
		printf("processing resumed\n");
	}
	return CB_EXIT_OK;
}

static int run_pause(struct cb_cli *cli, int argc, char **argv)
{
	(void)argv;
	return set_paused(cli, argc, 1);
}

static int run_resume(struct cb_cli *cli, int argc, char **argv)
{
	(void)argv;
	return set_paused(cli, argc, 0);
}

const struct cb_command cb_cmd_status = {
	.name = "status",
	.summary = "show whether the daemon runs, its feeds and the job counts",
	.help = "Usage: clawback status\n"
		"\n"
		"Shows whether the daemon runs, whether processing is paused, each feed's\n"
		"connection state and counters (and a rejected token), and the number of jobs\n"
		"in each state. Exit status 0 when the daemon runs, 3 when not.\n",
	.run = run_status,
};

const struct cb_command cb_cmd_pause = {
	.name = "pause",
	.summary = "pause processing (events are still received and stored)",
	.help = "Usage: clawback pause\n"
		"\n"
		"Stops the running daemon from starting new jobs within a second; requests in\n"
		"flight finish. Events are still received and stored. Lasts until\n"
		"`clawback resume`, across restarts of the daemon.\n",
	.run = run_pause,
};

const struct cb_command cb_cmd_resume = {
	.name = "resume",
	.summary = "resume processing after clawback pause",
	.help = "Usage: clawback resume\n\nLets the daemon start jobs again after `clawback pause`.\n",
	.run = run_resume,
};
