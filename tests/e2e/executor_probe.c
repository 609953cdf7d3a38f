/*
 * executor_probe.c: drives the executor without the daemon, for end-to-end tests.
 *
 *   executor_probe seed STORE COUNT MAILBOX     store COUNT PZD events for MAILBOX
 *   executor_probe drain STORE BACKEND [CONFIG] run the executor until nothing can run now
 *
 * drain prints one line of JSON with the executor's counters. Built by the
 * tests against a build directory's libclawback_core.a; not installed.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "base/util.h"
#include "config/config.h"
#include "event/event.h"
#include "executor/executor.h"
#include "store/store.h"

/* Most events one seed call stores. */
#define PROBE_MAX_SEED 1000000

static const struct cb_decision probe_decision = {
	.rule = "probe",
	.reason = "executor probe",
	.action = {.kind = CB_ACTION_MOVE, .folder = "junkemail"},
};

static int seed(const char *path, const char *count_text, const char *mailbox)
{
	struct cb_store *store = NULL;
	struct cb_err err = {{0}};
	int64_t count;

	if (cb_parse_int64(count_text, 1, PROBE_MAX_SEED, &count) < 0) {
		fprintf(stderr, "invalid COUNT %s: expected 1 to %d\n", count_text, PROBE_MAX_SEED);
		return 2;
	}
	if (cb_store_open(path, &store, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	cb_store_begin(store, &err);
	for (int64_t i = 0; i < count; i++) {
		struct cb_ingest_result res;
		struct cb_event ev;
		char raw[512], key[640], mid[64];

		snprintf(mid, sizeof(mid), "<probe-%lld@example.com>", (long long)i);
		snprintf(raw, sizeof(raw), "{\"type\":\"PZD\",\"recipient\":\"%s\",\"mimeId\":\"%s\"}",
			 mailbox, mid);
		snprintf(key, sizeof(key), "%s %s %lld", mailbox, mid, (long long)cb_now_ms());
		memset(&ev, 0, sizeof(ev));
		ev.type = strdup("PZD");
		ev.recipient = strdup(mailbox);
		ev.recipient_norm = strdup(mailbox);
		ev.message_id = strdup(mid);
		ev.sender = strdup("attacker@evil.example");
		ev.threat = CB_THREAT_VIRUS;
		cb_sha256_hex(key, strlen(key), ev.dedup_key);
		if (cb_store_ingest(store, raw, strlen(raw), "probe", &ev, CB_REJECT_NONE, NULL,
				    &probe_decision, &res, &err) < 0) {
			fprintf(stderr, "%s\n", err.msg);
			cb_event_clear(&ev);
			cb_store_close(store);
			return 1;
		}
		cb_event_clear(&ev);
	}
	if (cb_store_commit(store, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		cb_store_close(store);
		return 1;
	}
	cb_store_close(store);
	return 0;
}

static int drain(const char *path, const char *backend_name, const char *config_path)
{
	const struct cb_backend_ops *ops = cb_backend_find(backend_name);
	struct cb_executor_stats stats;
	struct cb_executor *ex = NULL;
	struct cb_config cfg;
	struct cb_err err = {{0}};
	void *state = NULL;
	char *problems = NULL;
	int rc = 1;

	if (!ops) {
		fprintf(stderr, "unknown backend %s\n", backend_name);
		return 2;
	}
	if (config_path) {
		if (cb_config_load(config_path, &cfg, &problems, &err) != 0) {
			fprintf(stderr, "%s%s\n", problems ? problems : "", err.msg);
			free(problems);
			cb_config_free(&cfg);
			return 2;
		}
	} else {
		cb_config_defaults(&cfg);
	}
	if (ops->open(&cfg, &state, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		goto out;
	}
	if (cb_executor_new(&cfg, path, ops, state, &ex, &err) < 0 ||
	    cb_executor_drain(ex, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		goto out;
	}
	cb_executor_stats(ex, &stats);
	printf("{\"claimed\":%lld,\"done\":%lld,\"not_found\":%lld,\"retry_wait\":%lld,"
	       "\"retry_queue\":%lld,\"final_error\":%lld,\"requests\":%lld,\"throttled\":%lld,"
	       "\"next_retry_ms\":%lld}\n",
	       (long long)stats.claimed, (long long)stats.done, (long long)stats.not_found,
	       (long long)stats.retry_wait, (long long)stats.retry_queue,
	       (long long)stats.final_error, (long long)stats.requests, (long long)stats.throttled,
	       (long long)stats.next_retry_ms);
	rc = 0;
out:
	cb_executor_free(ex);
	if (state)
		ops->close(state);
	free(problems);
	cb_config_free(&cfg);
	return rc;
}

int main(int argc, char **argv)
{
	int rc = 2;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (argc == 5 && strcmp(argv[1], "seed") == 0)
		rc = seed(argv[2], argv[3], argv[4]);
	else if ((argc == 4 || argc == 5) && strcmp(argv[1], "drain") == 0)
		rc = drain(argv[2], argv[3], argc == 5 ? argv[4] : NULL);
	else
		fprintf(stderr, "usage: executor_probe seed STORE COUNT MAILBOX\n"
				"       executor_probe drain STORE BACKEND [CONFIG]\n");
	curl_global_cleanup();
	return rc;
}
