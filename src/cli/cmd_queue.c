/*
 * cmd_queue.c: `clawback queue`, the administrator's view of the processing,
 * retry and final error queues: list, show, requeue, delete. Changes are
 * committed to the store, where a running daemon notices them within a second.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli/cli.h"

struct queue_list {
	int json;
	size_t count;
};

static int list_one(const struct cb_job *job, void *ctx)
{
	struct queue_list *list = ctx;
	json_t *o;

	list->count++;
	if (list->json) {
		o = cb_cli_job_json(job);
		cb_cli_print_json(stdout, o);
		json_decref(o);
	} else {
		cb_cli_print_job(job);
	}
	return 0;
}

/* Lists the jobs of one state; the processing queue is queued, running and retry_wait. */
static int queue_list(struct cb_store *store, int argc, char **argv)
{
	static const struct option options[] = {
		{"retry", no_argument, NULL, 'r'},      {"final", no_argument, NULL, 'f'},
		{"processing", no_argument, NULL, 'p'}, {"json", no_argument, NULL, 'j'},
		{NULL, 0, NULL, 0},
	};
	static const enum cb_job_state processing[] = {CB_JOB_QUEUED, CB_JOB_RUNNING,
						       CB_JOB_RETRY_WAIT};
	struct cb_filter filter = CB_FILTER_INIT;
	struct queue_list list = {0};
	enum cb_job_state only = CB_JOB_STATE_COUNT;
	struct cb_err err;
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (opt == 'r')
			only = CB_JOB_RETRY_QUEUE;
		else if (opt == 'f')
			only = CB_JOB_FINAL_ERROR;
		else if (opt == 'p')
			only = CB_JOB_QUEUED;
		else if (opt == 'j')
			list.json = 1;
		else
			return CB_EXIT_USAGE;
	}
	if (only == CB_JOB_STATE_COUNT || optind != argc) {
		fprintf(stderr, "clawback: queue list needs one of --processing, --retry or --final\n"
				"Usage: clawback queue list --processing|--retry|--final [--json]\n");
		return CB_EXIT_USAGE;
	}
	for (size_t i = 0; i < (only == CB_JOB_QUEUED ? 3 : 1); i++) {
		filter.state = (int)(only == CB_JOB_QUEUED ? processing[i] : only);
		if (cb_store_list_jobs(store, &filter, list_one, &list, &err) < 0) {
			fprintf(stderr, "clawback: %s\n", err.msg);
			return CB_EXIT_FAILURE;
		}
	}
	if (!list.json)
		printf("%zu job%s\n", list.count, list.count == 1 ? "" : "s");
	return CB_EXIT_OK;
}

static int print_audit(const struct cb_audit_row *row, void *ctx)
{
	char at[32];

	(void)ctx;
	cb_format_time(row->at_ms, at);
	printf("  %s %-10s %s\n", at, row->kind, row->detail_json ? row->detail_json : "");
	return 0;
}

static int print_raw_event(const struct cb_event_row *row, void *ctx)
{
	(void)ctx;
	printf("event %lld (%s, from %s):\n  %.*s\n", (long long)row->id,
	       cb_event_status_name(row->status), row->source ? row->source : "-",
	       (int)row->raw_len, row->raw);
	return 1;
}

static int parse_job_id(const char *arg, int64_t *id)
{
	if (cb_parse_int64(arg, 1, INT64_MAX, id) < 0) {
		fprintf(stderr, "clawback: invalid job id '%s'; expected a positive number\n", arg);
		return -1;
	}
	return 0;
}

static int queue_show(struct cb_store *store, int argc, char **argv)
{
	struct cb_filter filter = CB_FILTER_INIT;
	struct cb_job job;
	struct cb_err err;
	int64_t id;

	if (argc != 2) {
		fprintf(stderr, "Usage: clawback queue show JOB\n");
		return CB_EXIT_USAGE;
	}
	if (parse_job_id(argv[1], &id) < 0)
		return CB_EXIT_USAGE;
	if (cb_store_job_get(store, id, &job, &err) < 0) {
		fprintf(stderr, "clawback: %s\n", err.msg);
		return CB_EXIT_FAILURE;
	}
	cb_cli_print_job(&job);
	filter.event_id = job.event_id;
	cb_store_list_events(store, &filter, print_raw_event, NULL, &err);
	printf("history:\n");
	cb_store_list_audit(store, id, print_audit, NULL, &err);
	cb_job_clear(&job);
	return CB_EXIT_OK;
}

static int requeue_all_retry(const struct cb_job *job, void *ctx)
{
	struct cb_store *store = ctx;
	struct cb_err err;

	if (cb_store_job_requeue(store, job->id, &err) < 0)
		fprintf(stderr, "clawback: job %lld: %s\n", (long long)job->id, err.msg);
	else
		printf("job %lld re-queued\n", (long long)job->id);
	return 0;
}

/* Re-queues or deletes the jobs named in argv[1..]; returns the exit code. */
static int queue_change(struct cb_store *store, int argc, char **argv, int delete)
{
	struct cb_filter filter = CB_FILTER_INIT;
	struct cb_err err;
	int failed = 0;
	int64_t id;

	if (argc < 2) {
		fprintf(stderr, "Usage: clawback queue %s JOB...%s\n", argv[0],
			delete ? "" : " | --all-retry");
		return CB_EXIT_USAGE;
	}
	if (!delete && argc == 2 && strcmp(argv[1], "--all-retry") == 0) {
		filter.state = CB_JOB_RETRY_QUEUE;
		if (cb_store_list_jobs(store, &filter, requeue_all_retry, store, &err) < 0) {
			fprintf(stderr, "clawback: %s\n", err.msg);
			return CB_EXIT_FAILURE;
		}
		return CB_EXIT_OK;
	}
	for (int i = 1; i < argc; i++) {
		if (parse_job_id(argv[i], &id) < 0)
			return CB_EXIT_USAGE;
		if ((delete ? cb_store_job_delete(store, id, &err) : cb_store_job_requeue(store, id, &err)) < 0) {
			fprintf(stderr, "clawback: %s\n", err.msg);
			failed = 1;
			continue;
		}
		printf("job %lld %s\n", (long long)id, delete ? "deleted" : "re-queued");
	}
	return failed ? CB_EXIT_FAILURE : CB_EXIT_OK;
}

static int run_queue(struct cb_cli *cli, int argc, char **argv)
{
	struct cb_store *store;
	int rc;

	if (argc < 2) {
		fputs(cb_cmd_queue.help, stderr);
		return CB_EXIT_USAGE;
	}
	store = cb_cli_open_store(cli);
	if (!store)
		return CB_EXIT_FAILURE;
	if (strcmp(argv[1], "list") == 0)
		rc = queue_list(store, argc - 1, argv + 1);
	else if (strcmp(argv[1], "show") == 0)
		rc = queue_show(store, argc - 1, argv + 1);
	else if (strcmp(argv[1], "requeue") == 0)
		rc = queue_change(store, argc - 1, argv + 1, 0);
	else if (strcmp(argv[1], "delete") == 0)
		rc = queue_change(store, argc - 1, argv + 1, 1);
	else {
		fprintf(stderr, "clawback: unknown queue command '%s'; see clawback queue --help\n",
			argv[1]);
		rc = CB_EXIT_USAGE;
	}
	cb_store_close(store);
	return rc;
}

const struct cb_command cb_cmd_queue = {
	.name = "queue",
	.summary = "list, inspect, re-queue or delete jobs in the queues",
	.help = "Usage: clawback queue list --processing|--retry|--final [--json]\n"
		"       clawback queue show JOB\n"
		"       clawback queue requeue JOB...|--all-retry\n"
		"       clawback queue delete JOB...\n"
		"\n"
		"The processing queue holds queued, running and retry_wait jobs; the retry\n"
		"queue holds jobs whose automatic retries are used up; the final error queue\n"
		"holds jobs that need the administrator (permission missing, unknown mailbox).\n"
		"show prints a job, its raw event and its full history. requeue puts retry or\n"
		"final error jobs back to queued with fresh attempts; a running daemon picks\n"
		"them up within a second. delete removes retry or final error jobs (the\n"
		"audit trail keeps a record).\n",
	.run = run_queue,
};
