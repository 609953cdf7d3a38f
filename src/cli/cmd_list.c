/* cmd_list.c: `clawback events` and `clawback jobs`, listings of what is stored. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli/cli.h"

/* Adds the raw bytes as "raw" when they are UTF-8, otherwise as "raw_hex". */
static void set_raw(json_t *o, const char *raw, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	json_t *text = json_stringn(raw, len);
	char *encoded;

	if (text) {
		json_object_set_new(o, "raw", text);
		return;
	}
	encoded = malloc(len * 2 + 1);
	if (!encoded)
		return;
	for (size_t i = 0; i < len; i++) {
		encoded[2 * i] = hex[(unsigned char)raw[i] >> 4];
		encoded[2 * i + 1] = hex[(unsigned char)raw[i] & 15];
	}
	encoded[len * 2] = '\0';
	json_object_set_new(o, "raw_hex", json_string(encoded));
	free(encoded);
}

static int print_event(const struct cb_event_row *row, void *ctx)
{
	const int *json = ctx;
	char received[32];
	json_t *o;

	if (*json) {
		o = json_pack("{s:I,s:I,s:s,s:s?,s:s?,s:s?,s:s?}", "event", (json_int_t)row->id,
			      "received_ms", (json_int_t)row->received_ms, "status",
			      cb_event_status_name(row->status), "type", row->type, "recipient",
			      row->recipient, "message_id", row->message_id, "source", row->source);
		if (row->reject_reason)
			json_object_set_new(o, "reject_reason", json_string(row->reject_reason));
		if (row->duplicate_of)
			json_object_set_new(o, "duplicate_of", json_integer(row->duplicate_of));
		set_raw(o, row->raw, row->raw_len);
		cb_cli_print_json(stdout, o);
		json_decref(o);
		return 0;
	}
	cb_format_time(row->received_ms, received);
	printf("event %-6lld %s %-9s type=%s recipient=%s message_id=%s", (long long)row->id, received,
	       cb_event_status_name(row->status), row->type ? row->type : "-",
	       row->recipient ? row->recipient : "-", row->message_id ? row->message_id : "-");
	if (row->duplicate_of)
		printf(" duplicate_of=%lld", (long long)row->duplicate_of);
	if (row->reject_reason)
		printf(" reason=%s", row->reject_reason);
	printf("\n");
	return 0;
}

static int print_job(const struct cb_job *job, void *ctx)
{
	const int *json = ctx;
	json_t *o;

	if (*json) {
		o = cb_cli_job_json(job);
		cb_cli_print_json(stdout, o);
		json_decref(o);
	} else {
		cb_cli_print_job(job);
	}
	return 0;
}

static int run_list(struct cb_cli *cli, int argc, char **argv, int for_jobs)
{
	static const struct option options[] = {CB_CLI_FILTER_OPTIONS, {NULL, 0, NULL, 0}};
	struct cb_filter filter = CB_FILTER_INIT;
	struct cb_store *store;
	struct cb_err err;
	int json = 0, opt, rc;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (opt == 'j')
			json = 1;
		else if (opt == '?' || cb_cli_parse_filter(opt, optarg, &filter, for_jobs) < 0)
			return CB_EXIT_USAGE;
	}
	if (optind != argc) {
		fprintf(stderr, "clawback: unexpected argument '%s'; see clawback %s --help\n",
			argv[optind], argv[0]);
		return CB_EXIT_USAGE;
	}
	store = cb_cli_open_store(cli);
	if (!store)
		return CB_EXIT_FAILURE;
	if (for_jobs)
		rc = cb_store_list_jobs(store, &filter, print_job, &json, &err);
	else
		rc = cb_store_list_events(store, &filter, print_event, &json, &err);
	if (rc < 0)
		fprintf(stderr, "clawback: %s\n", err.msg);
	cb_store_close(store);
	return rc < 0 ? CB_EXIT_FAILURE : CB_EXIT_OK;
}

static int run_events(struct cb_cli *cli, int argc, char **argv)
{
	return run_list(cli, argc, argv, 0);
}

static int run_jobs(struct cb_cli *cli, int argc, char **argv)
{
	return run_list(cli, argc, argv, 1);
}

const struct cb_command cb_cmd_events = {
	.name = "events",
	.summary = "list received events (PZD and others, rejected, duplicates)",
	.help = "Usage: clawback events [FILTERS] [--json]\n"
		"\n"
		"Lists every received message in the order it arrived, with its status:\n"
		"accepted (a PZD event with a job), ignored (another event type), rejected\n"
		"(malformed, with the reason) or duplicate (a repeat of an earlier event).\n"
		"--json includes the raw bytes as received.\n"
		"\n"
		"  --state STATUS      accepted, ignored, rejected or duplicate\n" CB_CLI_FILTER_HELP,
	.run = run_events,
};

const struct cb_command cb_cmd_jobs = {
	.name = "jobs",
	.summary = "list remediation jobs and their state",
	.help = "Usage: clawback jobs [FILTERS] [--json]\n"
		"\n"
		"Lists the jobs (one per PZD event and recipient) with the rule that decided,\n"
		"the action, the state and the outcome.\n"
		"\n"
		"  --state STATE       queued, running, done, not_found, skipped, retry_wait,\n"
		"                      retry_queue or final_error\n" CB_CLI_FILTER_HELP,
	.run = run_jobs,
};
