/* cli_common.c: loading settings, store and rules for the commands. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend.h"
#include "base/log.h"
#include "base/util.h"
#include "cli/cli.h"
#include "executor/executor.h"

int cb_cli_load_config(struct cb_cli *cli)
{
	const char *path = cli->config_path ? cli->config_path : CB_CONFIG_DEFAULT_PATH;
	char *problems = NULL;
	struct cb_err err;
	int n;

	if (cli->config_loaded)
		return 0;
	if (!cli->config_path && access(path, F_OK) != 0 && errno == ENOENT) {
		cb_config_defaults(&cli->config);
	} else {
		n = cb_config_load(path, &cli->config, &problems, &err);
		if (n < 0) {
			fprintf(stderr, "clawback: %s\n", err.msg);
			cb_config_free(&cli->config);
			return -1;
		}
		if (n > 0) {
			fprintf(stderr, "%s", problems);
			fprintf(stderr, "clawback: %s has %d problem%s; fix them and run "
					"`clawback check-config`\n",
				path, n, n == 1 ? "" : "s");
			free(problems);
			cb_config_free(&cli->config);
			return -1;
		}
		free(problems);
	}
	cli->config_loaded = 1;
	cb_log_set_level((enum cb_log_level)cli->config.log_level);
	return 0;
}

struct cb_store *cb_cli_open_store(struct cb_cli *cli)
{
	struct cb_store *store = NULL;
	const char *path;
	struct cb_err err;

	if (cb_cli_load_config(cli) < 0)
		return NULL;
	path = cb_cli_store_path(cli);
	if (cb_store_open(path, &store, &err) < 0) {
		fprintf(stderr, "clawback: %s\n", err.msg);
		return NULL;
	}
	return store;
}

struct cb_ruleset *cb_cli_load_rules(struct cb_cli *cli)
{
	struct cb_ruleset *rules = NULL;
	char *problems = NULL;
	const char *path;
	struct cb_err err;
	int n;

	if (cb_cli_load_config(cli) < 0)
		return NULL;
	path = cli->rules_path ? cli->rules_path : cli->config.rules_path;
	n = cb_rules_load(path, &rules, &problems, &err);
	if (n < 0) {
		fprintf(stderr, "clawback: %s\n", err.msg);
		return NULL;
	}
	if (n > 0) {
		fprintf(stderr, "%s", problems);
		fprintf(stderr, "clawback: %s has %d problem%s; fix them and run `clawback rules check`\n",
			path, n, n == 1 ? "" : "s");
		free(problems);
		cb_rules_free(rules);
		return NULL;
	}
	free(problems);
	return rules;
}

void cb_cli_free(struct cb_cli *cli)
{
	if (cli->config_loaded)
		cb_config_free(&cli->config);
	cli->config_loaded = 0;
}

int cb_cli_parse_time(const char *s, int64_t *out_ms)
{
	struct tm tm, wanted;
	const char *end;
	time_t seconds;
	int64_t amount;
	char unit;
	size_t len = strlen(s);

	if (len >= 2 && strchr("smhd", s[len - 1])) {
		char number[32];

		if (len - 1 >= sizeof(number))
			return -1;
		memcpy(number, s, len - 1);
		number[len - 1] = '\0';
		if (cb_parse_int64(number, 0, 100000000, &amount) < 0)
			return -1;
		unit = s[len - 1];
		if (unit == 's')
			amount *= 1000;
		else if (unit == 'm')
			amount *= 60 * 1000;
		else if (unit == 'h')
			amount *= 3600 * 1000;
		else
			amount *= 86400 * 1000;
		*out_ms = cb_now_ms() - amount;
		return 0;
	}
	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (end && (*end == 'Z' || *end == '\0')) {
		if (*end == 'Z')
			end++;
	} else {
		memset(&tm, 0, sizeof(tm));
		end = strptime(s, "%Y-%m-%d", &tm);
	}
	if (!end || *end)
		return -1;
	wanted = tm;
	seconds = timegm(&tm);
	/* timegm() normalises 2026-02-31 to March 3: such a date was not a real one. */
	if (tm.tm_mday != wanted.tm_mday || tm.tm_mon != wanted.tm_mon)
		return -1;
	*out_ms = (int64_t)seconds * 1000;
	return 0;
}

void cb_cli_print_json(FILE *out, json_t *value)
{
	char *text = json_dumps(value, JSON_COMPACT | JSON_ENSURE_ASCII);

	if (text) {
		fprintf(out, "%s\n", text);
		free(text);
	}
}

int cb_cli_parse_filter(int opt, const char *arg, struct cb_filter *f, int for_jobs)
{
	int64_t value;
	int state;

	switch (opt) {
	case 'S':
		if (for_jobs) {
			enum cb_job_state js;

			if (cb_job_state_parse(arg, &js) < 0) {
				fprintf(stderr, "clawback: invalid state '%s'; expected queued, running, "
						"done, not_found, skipped, retry_wait, retry_queue or "
						"final_error\n",
					arg);
				return -1;
			}
			f->state = (int)js;
			return 0;
		}
		for (state = CB_EVENT_ACCEPTED; state <= CB_EVENT_DUPLICATE; state++) {
			if (strcmp(arg, cb_event_status_name((enum cb_event_status)state)) == 0) {
				f->state = state;
				return 0;
			}
		}
		fprintf(stderr, "clawback: invalid status '%s'; expected accepted, ignored, rejected "
				"or duplicate\n",
			arg);
		return -1;
	case 'R':
		f->recipient = arg;
		return 0;
	case 'M':
		f->message_id = arg;
		return 0;
	case 'F':
	case 'U':
		if (cb_cli_parse_time(arg, &value) < 0) {
			fprintf(stderr, "clawback: invalid time '%s'; expected 2026-11-30, "
					"2026-11-30T08:00:00Z or an age such as 2h\n",
				arg);
			return -1;
		}
		/* 0 means "no filter" in struct cb_filter, so the epoch itself becomes -1 ms. */
		if (value == 0)
			value = opt == 'F' ? 1 : -1;
		if (opt == 'F')
			f->since_ms = value;
		else
			f->until_ms = value;
		return 0;
	case 'E':
	case 'L':
		if (cb_parse_int64(arg, 1, INT64_MAX, &value) < 0) {
			fprintf(stderr, "clawback: invalid number '%s'; expected a positive integer\n", arg);
			return -1;
		}
		if (opt == 'E')
			f->event_id = value;
		else
			f->limit = (size_t)value;
		return 0;
	}
	return -1;
}

json_t *cb_cli_job_json(const struct cb_job *job)
{
	json_t *o = json_object();

	json_object_set_new(o, "job", json_integer(job->id));
	json_object_set_new(o, "event", json_integer(job->event_id));
	json_object_set_new(o, "mailbox", json_string(job->mailbox));
	json_object_set_new(o, "message_id", json_string(job->message_id));
	json_object_set_new(o, "state", json_string(cb_job_state_name(job->state)));
	json_object_set_new(o, "rule", json_string(job->rule));
	json_object_set_new(o, "action", json_string(cb_action_kind_name(job->action.kind)));
	if (job->action.folder[0])
		json_object_set_new(o, "folder", json_string(job->action.folder));
	json_object_set_new(o, "dry_run", json_boolean(job->action.dry_run));
	json_object_set_new(o, "attempts", json_integer(job->attempts));
	json_object_set_new(o, "searches", json_integer(job->searches));
	if (job->next_attempt_ms)
		json_object_set_new(o, "next_attempt_ms", json_integer(job->next_attempt_ms));
	if (job->outcome)
		json_object_set_new(o, "outcome", json_string(job->outcome));
	if (job->found_in)
		json_object_set_new(o, "found_in", json_string(job->found_in));
	if (job->last_error)
		json_object_set_new(o, "error", json_string(job->last_error));
	json_object_set_new(o, "created_ms", json_integer(job->created_ms));
	json_object_set_new(o, "updated_ms", json_integer(job->updated_ms));
	return o;
}

void cb_cli_print_job(const struct cb_job *job)
{
	char created[32];

	cb_format_time(job->created_ms, created);
	printf("job %-6lld event %-6lld %s %-11s mailbox=%s message_id=%s rule=%s action=%s%s%s%s",
	       (long long)job->id, (long long)job->event_id, created, cb_job_state_name(job->state),
	       job->mailbox, job->message_id, job->rule, cb_action_kind_name(job->action.kind),
	       job->action.folder[0] ? ":" : "", job->action.folder,
	       job->action.dry_run ? " dry_run=yes" : "");
	if (job->attempts)
		printf(" attempts=%d", job->attempts);
	if (job->outcome)
		printf(" outcome=\"%s\"", job->outcome);
	if (job->found_in)
		printf(" found_in=\"%s\"", job->found_in);
	if (job->last_error)
		printf(" error=\"%s\"", job->last_error);
	printf("\n");
}

int cb_cli_execute_until_idle(struct cb_cli *cli)
{
	const struct cb_backend_ops *backend;
	struct cb_executor *ex = NULL;
	void *state = NULL;
	struct cb_err err;
	int rc = -1;

	if (cb_cli_load_config(cli) < 0)
		return -1;
	backend = cb_backend_find(cli->config.backend);
	if (!backend) {
		fprintf(stderr, "clawback: unknown backend '%s'; expected log or graph\n",
			cli->config.backend);
		return -1;
	}
	if (backend->open(&cli->config, &state, &err) < 0) {
		fprintf(stderr, "clawback: backend %s: %s\n", backend->name, err.msg);
		return -1;
	}
	if (cb_executor_new(&cli->config, cb_cli_store_path(cli),
			    backend, state, &ex, &err) < 0 ||
	    cb_executor_drain(ex, &err) < 0) {
		fprintf(stderr, "clawback: %s\n", err.msg);
		goto out;
	}
	rc = 0;
out:
	cb_executor_free(ex);
	backend->close(state);
	return rc;
}

int cb_cli_paused(struct cb_cli *cli)
{
	char path[4200];

	if (cb_cli_load_config(cli) < 0)
		return 0;
	cb_cli_store_file(cli, ".paused", path, sizeof(path));
	return access(path, F_OK) == 0;
}

const char *cb_cli_store_path(const struct cb_cli *cli)
{
	return cli->store_path ? cli->store_path : cli->config.store_path;
}

void cb_cli_store_file(const struct cb_cli *cli, const char *suffix, char *out, size_t size)
{
	snprintf(out, size, "%s%s", cb_cli_store_path(cli), suffix);
}
