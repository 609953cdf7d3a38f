/*
 * cmd_replay.c: `clawback replay FILE|-`, which feeds JSON-lines events
 * through the same pipeline as the daemon's feed (parse, rules, store), then
 * lets the executor process the new jobs with the configured backend, and
 * prints what was decided and done for each event.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "cli/cli.h"
#include "pipeline/pipeline.h"

/* One replayed line and what became of it, for the report. */
struct replay_row {
	int64_t line;
	struct cb_ingest_result result;
};

struct replay {
	struct cb_pipeline pipeline;
	struct replay_row *rows;
	size_t count, cap;
	int json;
};

static int remember_row(struct replay *r, int64_t line, const struct cb_ingest_result *result)
{
	struct replay_row *row;

	if (r->count == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 64;
		struct replay_row *rows = realloc(r->rows, cap * sizeof(*rows));

		if (!rows)
			return -1;
		r->rows = rows;
		r->cap = cap;
	}
	row = &r->rows[r->count++];
	memset(row, 0, sizeof(*row));
	row->line = line;
	row->result = *result;
	return 0;
}

/*
 * Reads one line of at most CB_EVENT_MAX_BYTES into line. A longer line is
 * consumed to its end and *too_long is set; line keeps its first bytes and
 * *size counts all of them. Returns 0 at end of input, 1 when a line was read.
 */
static int read_line(FILE *in, struct cb_buf *line, int *too_long, uint64_t *size)
{
	int c;

	cb_buf_reset(line);
	*too_long = 0;
	*size = 0;
	while ((c = getc(in)) != EOF) {
		char byte = (char)c;

		if (c == '\n')
			return 1;
		(*size)++;
		if (cb_buf_append(line, &byte, 1) < 0)
			*too_long = 1;
	}
	return line->len > 0 || *too_long;
}

static int replay_stream(struct replay *r, FILE *in)
{
	struct cb_buf line;
	struct cb_ingest_result result;
	struct cb_err err;
	char detail[128];
	int64_t number = 0;
	uint64_t size;
	int too_long;
	int rc = 0;

	cb_buf_init(&line, CB_EVENT_MAX_BYTES);
	while (read_line(in, &line, &too_long, &size)) {
		number++;
		if (line.len > 0 && line.data[line.len - 1] == '\r')
			line.data[--line.len] = '\0';
		if (line.len == 0 && !too_long)
			continue;
		if (too_long) {
			snprintf(detail, sizeof(detail),
				 "line of %llu bytes is longer than the event limit of %d bytes; "
				 "the first %zu bytes are kept",
				 (unsigned long long)size, CB_EVENT_MAX_BYTES, line.len);
			rc = cb_pipeline_reject(&r->pipeline, line.data, line.len, CB_REJECT_TOO_LARGE,
						detail, &result, &err);
		} else {
			rc = cb_pipeline_submit(&r->pipeline, line.data, line.len, &result, NULL, &err);
		}
		if (rc < 0) {
			fprintf(stderr, "clawback: replay stopped at line %lld: %s\n", (long long)number, err.msg);
			break;
		}
		if (remember_row(r, number, &result) < 0) {
			fprintf(stderr, "clawback: out of memory at line %lld\n", (long long)number);
			rc = -1;
			break;
		}
	}
	cb_buf_free(&line);
	if (rc == 0 && ferror(in)) {
		fprintf(stderr, "clawback: reading the input failed after line %lld: %m\n",
			(long long)number);
		rc = -1;
	}
	if (rc == 0 && cb_pipeline_flush(&r->pipeline, 1, &err) < 0) {
		fprintf(stderr, "clawback: %s\n", err.msg);
		rc = -1;
	}
	return rc;
}

static void print_row(struct cb_store *store, const struct replay_row *row, int json)
{
	struct cb_job job;
	struct cb_err err;
	int have_job = row->result.job_id &&
		       cb_store_job_get(store, row->result.job_id, &job, &err) == 0;
	json_t *o;

	if (!json) {
		printf("line %-4lld event %-6lld %s", (long long)row->line,
		       (long long)row->result.event_id, cb_event_status_name(row->result.status));
		if (row->result.status == CB_EVENT_DUPLICATE)
			printf(" of event %lld", (long long)row->result.duplicate_of);
		printf("\n");
		if (have_job) {
			printf("  ");
			cb_cli_print_job(&job);
		}
	} else {
		o = have_job ? cb_cli_job_json(&job) : json_object();
		json_object_set_new(o, "line", json_integer(row->line));
		json_object_set_new(o, "event", json_integer(row->result.event_id));
		json_object_set_new(o, "status",
				    json_string(cb_event_status_name(row->result.status)));
		if (row->result.status == CB_EVENT_DUPLICATE)
			json_object_set_new(o, "duplicate_of", json_integer(row->result.duplicate_of));
		cb_cli_print_json(stdout, o);
		json_decref(o);
	}
	if (have_job)
		cb_job_clear(&job);
}

static void print_report(struct replay *r, struct cb_store *store)
{
	const struct cb_pipeline_counts *c = &r->pipeline.counts;

	for (size_t i = 0; i < r->count; i++) {
		print_row(store, &r->rows[i], r->json);
	}
	if (r->json) {
		json_t *o = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I}", "summary", "replay", "received",
				      (json_int_t)c->received, "accepted", (json_int_t)c->accepted,
				      "ignored", (json_int_t)c->ignored, "rejected",
				      (json_int_t)c->rejected, "duplicate", (json_int_t)c->duplicate);

		cb_cli_print_json(stdout, o);
		json_decref(o);
	} else {
		printf("received %lld: accepted %lld, ignored %lld (not PZD), rejected %lld, "
		       "duplicate %lld\n",
		       (long long)c->received, (long long)c->accepted, (long long)c->ignored,
		       (long long)c->rejected, (long long)c->duplicate);
	}
}

static int run_replay(struct cb_cli *cli, int argc, char **argv)
{
	static const struct option options[] = {
		{"json", no_argument, NULL, 'j'},
		{"no-execute", no_argument, NULL, 'n'},
		{"quiet", no_argument, NULL, 'q'},
		{NULL, 0, NULL, 0},
	};
	struct replay r;
	struct cb_store *store = NULL;
	struct cb_ruleset *rules = NULL;
	const char *source_path;
	char source[300];
	FILE *in = NULL;
	int execute = 1, quiet = 0, opt;
	int rc = CB_EXIT_FAILURE;

	memset(&r, 0, sizeof(r));
	optind = 1;
	while ((opt = getopt_long(argc, argv, "jnq", options, NULL)) != -1) {
		if (opt == 'j')
			r.json = 1;
		else if (opt == 'n')
			execute = 0;
		else if (opt == 'q')
			quiet = 1;
		else
			return CB_EXIT_USAGE;
	}
	if (optind != argc - 1) {
		fprintf(stderr, "Usage: clawback replay [--json] [--no-execute] [--quiet] FILE|-\n");
		return CB_EXIT_USAGE;
	}
	source_path = argv[optind];
	in = strcmp(source_path, "-") == 0 ? stdin : fopen(source_path, "rb");
	if (!in) {
		fprintf(stderr, "clawback: cannot open '%s': %m\n", source_path);
		return CB_EXIT_FAILURE;
	}
	rules = cb_cli_load_rules(cli);
	store = rules ? cb_cli_open_store(cli) : NULL;
	if (!store)
		goto out;

	/* --quiet also drops the per-event info lines (duplicates, decisions) from the log. */
	if (quiet && cb_log_get_level() < CB_LOG_WARNING)
		cb_log_set_level(CB_LOG_WARNING);
	snprintf(source, sizeof(source), "replay:%s", source_path);
	cb_pipeline_init(&r.pipeline, store, rules, cli->config.dry_run, source);
	if (replay_stream(&r, in) < 0)
		goto out;
	if (execute && cb_cli_paused(cli)) {
		fprintf(stderr, "clawback: processing is paused (clawback resume ends it): the new "
				"jobs stay queued\n");
		execute = 0;
	}
	if (execute && cb_cli_execute_until_idle(cli) < 0)
		goto out;
	if (!quiet)
		print_report(&r, store);
	rc = CB_EXIT_OK;
out:
	if (in && in != stdin)
		fclose(in);
	free(r.rows);
	cb_store_close(store);
	cb_rules_free(rules);
	return rc;
}

const struct cb_command cb_cmd_replay = {
	.name = "replay",
	.summary = "feed recorded events (JSON lines) through the pipeline",
	.help = "Usage: clawback replay [--json] [--no-execute] [--quiet] FILE|-\n"
		"\n"
		"Reads one Retarus event per line from FILE (or standard input with -) and\n"
		"takes each through the same steps as events from the feed: parse and\n"
		"validate, decide with the rules, store. Then the executor processes the new\n"
		"jobs with the configured backend ([general] backend; the log backend only\n"
		"records what it would do), and one line per event says what was decided and\n"
		"done. Malformed lines are stored as rejected with their bytes and reason.\n"
		"\n"
		"  --json        print one JSON object per event and a summary object\n"
		"  --no-execute  store and decide only; leave the jobs queued for the daemon\n"
		"  --quiet       print nothing on success, and log only warnings and errors\n",
	.run = run_replay,
};
