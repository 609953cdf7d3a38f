/*
 * cmd_run.c: `clawback run`, the daemon. Wires the components together:
 *
 *   main thread      signals (signalfd), sd_notify READY/STATUS/WATCHDOG, SIGHUP
 *                    reloads the rules, the status file, pause and resume;
 *   one feed thread  per [feed "NAME"]: receive, pipeline, commit, wake the executor;
 *   executor thread  jobs to backend requests (executor.h).
 *
 * Each feed thread has its own store connection and its own copy of the
 * rules; a reload hands every feed thread a fresh copy through an atomic
 * pointer, which the thread swaps in before its next message. Nothing else is
 * shared between threads.
 *
 * The status (feeds, executor counters) is written once a second to a JSON
 * file next to the store (STORE.status.json), which `clawback status` reads.
 * `clawback pause` creates STORE.paused; while it exists the executor claims
 * no new jobs, and events are still received and stored. The main thread
 * also deletes events and audit rows past their retention, hourly.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "backend/backend.h"
#include "base/log.h"
#include "base/util.h"
#include "cli/cli.h"
#include "executor/executor.h"
#include "feed/feed.h"
#include "pipeline/pipeline.h"

/* How often the main thread refreshes the status file and STATUS=, in ms. */
#define RUN_STATUS_INTERVAL_MS 1000
/* How often the main thread deletes events and audit rows past their retention, in ms. */
#define RUN_PRUNE_INTERVAL_MS (60 * 60 * 1000)
/* Longest feed name kept for logs and the status (longer names are cut). */
#define FEED_NAME_MAX 64

struct run_feed {
	struct cb_feed *feed;
	struct cb_store *store;
	struct cb_ruleset *rules;
	_Atomic(struct cb_ruleset *) next_rules; /* a reloaded copy, swapped in by the feed thread */
	struct cb_pipeline pipeline;
	struct cb_executor *executor;
	char source[FEED_NAME_MAX + 8];
	char name[FEED_NAME_MAX + 1];
};

struct run {
	struct cb_cli *cli;
	const struct cb_backend_ops *backend;
	void *backend_state;
	struct cb_executor *executor;
	pthread_t executor_thread;
	int executor_started;
	struct run_feed feeds[CB_CONFIG_MAX_FEEDS];
	size_t feed_count;
	char status_path[4096];
	char pause_path[4096];
	int paused;
	int64_t started_ms;
	struct cb_store *store; /* the main thread's connection, for retention */
	int64_t next_prune_ms;  /* monotonic */
};

/* Swaps in a reloaded rules copy, if the main thread posted one. Feed thread only. */
static void feed_take_rules(struct run_feed *f)
{
	struct cb_ruleset *fresh = atomic_exchange(&f->next_rules, NULL);

	if (!fresh)
		return;
	cb_rules_free(f->rules);
	f->rules = fresh;
	f->pipeline.rules = fresh;
}

static int feed_on_message(void *ctx, const char *data, size_t len)
{
	struct run_feed *f = ctx;
	struct cb_ingest_result result;
	struct cb_log_value value;
	struct cb_err err;

	feed_take_rules(f);
	if (cb_pipeline_submit(&f->pipeline, data, len, &result, NULL, &err) < 0) {
		cb_error("storing an event failed feed=%s error=%s", f->name, cb_log_str(&value, err.msg));
		return -1;
	}
	if (result.status == CB_EVENT_REJECTED)
		cb_warn("event rejected feed=%s event=%lld; kept in the final error queue", f->name,
			(long long)result.event_id);
	if (f->pipeline.batch_count == 0)
		cb_executor_wake(f->executor);
	return 0;
}

static int feed_on_rejected(void *ctx, const char *data, size_t len, uint64_t full_len,
			    const char *reason)
{
	struct run_feed *f = ctx;
	struct cb_log_value value;
	enum cb_event_reject reject;
	char detail[256];
	struct cb_err err;

	snprintf(detail, sizeof(detail), "%s (%llu bytes, first %zu kept)", reason,
		 (unsigned long long)full_len, len);
	reject = full_len > CB_FEED_MAX_MESSAGE ? CB_REJECT_TOO_LARGE : CB_REJECT_TRANSPORT;
	if (cb_pipeline_reject(&f->pipeline, data, len, reject, detail, NULL, &err) < 0) {
		cb_error("storing a rejected message failed feed=%s error=%s", f->name,
			 cb_log_str(&value, err.msg));
		return -1;
	}
	return 0;
}

static int feed_on_flush(void *ctx)
{
	struct run_feed *f = ctx;
	struct cb_log_value value;
	struct cb_err err;
	size_t pending = f->pipeline.batch_count;

	if (cb_pipeline_flush(&f->pipeline, 1, &err) < 0) {
		cb_error("committing events failed feed=%s error=%s", f->name, cb_log_str(&value, err.msg));
		return -1;
	}
	if (pending)
		cb_executor_wake(f->executor);
	return 0;
}

static void *executor_main(void *arg)
{
	struct run *r = arg;
	struct cb_log_value value;
	struct cb_err err;

	if (cb_executor_run(r->executor, &err) < 0) {
		cb_log(CB_LOG_FATAL, "executor stopped error=%s", cb_log_str(&value, err.msg));
		kill(getpid(), SIGTERM);
	}
	return NULL;
}

static int start_feeds(struct run *r)
{
	static const struct cb_feed_callbacks callbacks = {
		.on_message = feed_on_message,
		.on_rejected = feed_on_rejected,
		.on_flush = feed_on_flush,
	};
	const struct cb_config *cfg = &r->cli->config;
	struct cb_err err;

	for (size_t i = 0; i < cfg->feed_count; i++) {
		struct run_feed *f = &r->feeds[i];

		snprintf(f->name, sizeof(f->name), "%s", cfg->feeds[i].name);
		snprintf(f->source, sizeof(f->source), "feed:%s", cfg->feeds[i].name);
		f->store = cb_cli_open_store(r->cli);
		f->rules = f->store ? cb_cli_load_rules(r->cli) : NULL;
		if (!f->rules)
			return -1;
		f->executor = r->executor;
		cb_pipeline_init(&f->pipeline, f->store, f->rules, cfg->dry_run, f->source);
		r->feed_count++;
		if (cb_feed_start(&cfg->feeds[i], NULL, &callbacks, f, &f->feed, &err) < 0) {
			fprintf(stderr, "clawback: feed '%s': %s\n", f->name, err.msg);
			return -1;
		}
		cb_notice("feed started feed=%s", f->name);
	}
	return 0;
}

static void stop_feeds(struct run *r)
{
	for (size_t i = 0; i < r->feed_count; i++) {
		struct run_feed *f = &r->feeds[i];

		cb_feed_stop(f->feed);
		f->feed = NULL;
		cb_rules_free(atomic_exchange(&f->next_rules, NULL));
		cb_rules_free(f->rules);
		cb_store_close(f->store);
	}
	r->feed_count = 0;
}

/*
 * Loads the rules again for every feed thread (and once to validate them when
 * there is no feed); keeps the old ones when the file is invalid.
 */
static void reload_rules(struct run *r)
{
	struct cb_ruleset *fresh[CB_CONFIG_MAX_FEEDS] = {NULL};
	size_t copies = r->feed_count ? r->feed_count : 1;

	for (size_t i = 0; i < copies; i++) {
		fresh[i] = cb_cli_load_rules(r->cli);
		if (!fresh[i]) {
			cb_error("rules reload failed; the previous rules stay in force");
			for (size_t j = 0; j < i; j++)
				cb_rules_free(fresh[j]);
			return;
		}
	}
	for (size_t i = 0; i < r->feed_count; i++)
		cb_rules_free(atomic_exchange(&r->feeds[i].next_rules, fresh[i]));
	if (r->feed_count == 0)
		cb_rules_free(fresh[0]);
	cb_notice("rules reloaded feeds=%zu", r->feed_count);
}

/* Writes the status file (atomically, by rename) and sends STATUS= to systemd. */
static void publish_status(struct run *r)
{
	struct cb_executor_stats stats;
	json_t *root, *feeds;
	char tmp[4200];
	char line[256];
	size_t connected = 0;
	FILE *out;

	cb_executor_stats(r->executor, &stats);
	feeds = json_array();
	for (size_t i = 0; i < r->feed_count; i++) {
		struct cb_feed_status st;

		cb_feed_status(r->feeds[i].feed, &st);
		connected += st.state == CB_FEED_CONNECTED;
		json_array_append_new(
			feeds, json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:b,s:i,s:s,s:I}", "name",
					 r->feeds[i].name, "state", cb_feed_state_name(st.state),
					 "connected_since_ms", (json_int_t)st.connected_since_ms,
					 "messages", (json_int_t)st.messages, "rejected",
					 (json_int_t)st.rejected, "reconnects", (json_int_t)st.reconnects,
					 "next_attempt_ms", (json_int_t)st.next_attempt_ms, "auth_failed",
					 st.auth_failed, "http_status", st.http_status, "last_error",
					 st.last_error, "last_error_ms", (json_int_t)st.last_error_ms));
	}
	root = json_pack("{s:I,s:I,s:s,s:b,s:o,s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}}",
			 "pid", (json_int_t)getpid(), "started_ms", (json_int_t)r->started_ms,
			 "backend", r->backend->name, "paused", r->paused, "feeds", feeds, "executor",
			 "active_jobs", (json_int_t)stats.active_jobs, "in_flight",
			 (json_int_t)stats.in_flight, "waiting_requests",
			 (json_int_t)stats.waiting_requests, "done", (json_int_t)stats.done,
			 "not_found", (json_int_t)stats.not_found, "retry_wait",
			 (json_int_t)stats.retry_wait, "retry_queue", (json_int_t)stats.retry_queue,
			 "final_error", (json_int_t)stats.final_error, "requests",
			 (json_int_t)stats.requests, "throttled", (json_int_t)stats.throttled);
	json_object_set_new(root, "updated_ms", json_integer(cb_now_ms()));
	snprintf(tmp, sizeof(tmp), "%s.tmp", r->status_path);
	out = fopen(tmp, "w");
	if (out) {
		json_dumpf(root, out, JSON_INDENT(2));
		if (fclose(out) == 0)
			rename(tmp, r->status_path);
	}
	json_decref(root);

	snprintf(line, sizeof(line),
		 "STATUS=%s%zu/%zu feeds connected, %lld jobs active, %lld done, %lld need attention",
		 r->paused ? "paused; " : "", connected, r->feed_count, (long long)stats.active_jobs,
		 (long long)stats.done, (long long)(stats.retry_queue + stats.final_error));
	sd_notify(0, line);
}

/* Deletes what is past its retention ([general] *_retention_days), at start and hourly. */
static void prune_if_due(struct run *r)
{
	const struct cb_config *cfg = &r->cli->config;
	struct cb_log_value value;
	struct cb_err err;
	int64_t deleted = 0;

	if (cb_mono_ms() < r->next_prune_ms)
		return;
	r->next_prune_ms = cb_mono_ms() + RUN_PRUNE_INTERVAL_MS;
	if (cb_store_prune(r->store, cb_now_ms(), cfg->event_retention_ms, cfg->audit_retention_ms,
			   &deleted, &err) < 0) {
		cb_error("retention pruning failed error=%s; retrying in an hour",
			 cb_log_str(&value, err.msg));
		return;
	}
	if (deleted)
		cb_notice("retention pruning deleted=%lld", (long long)deleted);
}

static void check_pause(struct run *r)
{
	int want = access(r->pause_path, F_OK) == 0;

	if (want == r->paused)
		return;
	r->paused = want;
	if (want) {
		cb_executor_pause(r->executor);
		cb_notice("processing paused; events are still received and stored");
	} else {
		cb_executor_resume(r->executor);
		cb_notice("processing resumed");
	}
}

/* Runs the main thread's loop until SIGTERM or SIGINT. */
static int main_loop(struct run *r, int signal_fd)
{
	uint64_t watchdog_usec = 0;
	int watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0;
	int64_t interval = RUN_STATUS_INTERVAL_MS;
	struct signalfd_siginfo info;
	struct pollfd pfd = {.fd = signal_fd, .events = POLLIN};

	if (watchdog && (int64_t)(watchdog_usec / 2000) < interval)
		interval = (int64_t)(watchdog_usec / 2000);
	for (;;) {
		int n = poll(&pfd, 1, (int)interval);

		if (n < 0 && errno != EINTR)
			return -1;
		if (n > 0 && read(signal_fd, &info, sizeof(info)) == sizeof(info)) {
			if (info.ssi_signo == SIGHUP) {
				sd_notify(0, "RELOADING=1");
				reload_rules(r);
				sd_notify(0, "READY=1");
			} else {
				cb_notice("stopping signal=%s", strsignal((int)info.ssi_signo));
				return 0;
			}
		}
		check_pause(r);
		publish_status(r);
		prune_if_due(r);
		if (watchdog)
			sd_notify(0, "WATCHDOG=1");
	}
}

/*
 * Returns 1 when stderr is systemd's journal stream. $JOURNAL_STREAM contains the
 * "DEVICE:INODE" of that stream, which must match stderr itself, because a
 * child started from a service inherits the variable with another stderr.
 */
static int stderr_is_journal(void)
{
	const char *value = getenv("JOURNAL_STREAM");
	unsigned long long device, inode;
	struct stat st;

	if (!value || sscanf(value, "%llu:%llu", &device, &inode) != 2)
		return 0;
	if (fstat(STDERR_FILENO, &st) < 0)
		return 0;
	return (unsigned long long)st.st_dev == device && (unsigned long long)st.st_ino == inode;
}

static int run_daemon(struct cb_cli *cli, int argc, char **argv)
{
	struct run *r = calloc(1, sizeof(*r));
	const char *store_path;
	struct cb_log_value value;
	struct cb_err err;
	sigset_t mask;
	int signal_fd = -1;
	int rc = CB_EXIT_FAILURE;

	(void)argv;
	if (!r)
		return CB_EXIT_FAILURE;
	if (argc != 1) {
		fprintf(stderr, "Usage: clawback [--config PATH] run\n");
		free(r);
		return CB_EXIT_USAGE;
	}
	r->cli = cli;
	r->started_ms = cb_now_ms();

	/*
	 * Blocked first, before any thread starts (so every thread inherits the
	 * mask) and before the slow start-up steps, so an early SIGTERM stops
	 * the daemon gracefully instead of killing it.
	 */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	if (stderr_is_journal())
		cb_log_use_journal(1);
	if (cb_cli_load_config(cli) < 0)
		goto out;
	store_path = cb_cli_store_path(cli);
	cb_cli_store_file(cli, ".status.json", r->status_path, sizeof(r->status_path));
	cb_cli_store_file(cli, ".paused", r->pause_path, sizeof(r->pause_path));

	signal(SIGPIPE, SIG_IGN);
	signal_fd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (signal_fd < 0)
		goto out;

	r->store = cb_cli_open_store(cli);
	if (!r->store)
		goto out;
	r->backend = cb_backend_find(cli->config.backend);
	if (!r->backend) {
		fprintf(stderr, "clawback: unknown backend '%s'; expected log or graph\n",
			cli->config.backend);
		goto out;
	}
	if (r->backend->open(&cli->config, &r->backend_state, &err) < 0 ||
	    cb_executor_new(&cli->config, store_path, r->backend, r->backend_state, &r->executor,
			    &err) < 0) {
		fprintf(stderr, "clawback: %s\n", err.msg);
		goto out;
	}
	/* Before the executor thread starts, so a paused daemon claims nothing at all. */
	check_pause(r);
	if (pthread_create(&r->executor_thread, NULL, executor_main, r) != 0)
		goto out;
	r->executor_started = 1;
	if (start_feeds(r) < 0)
		goto out;
	if (cli->config.feed_count == 0)
		cb_warn("no [feed] configured; only jobs already in the store are processed");

	cb_notice("clawback started version=%s backend=%s feeds=%zu store=%s", CLAWBACK_VERSION,
		  r->backend->name, r->feed_count, cb_log_str(&value, store_path));
	publish_status(r);
	sd_notify(0, "READY=1");
	rc = main_loop(r, signal_fd) < 0 ? CB_EXIT_FAILURE : CB_EXIT_OK;
	sd_notify(0, "STOPPING=1");
	publish_status(r);
out:
	stop_feeds(r);
	if (r->executor_started) {
		cb_executor_stop(r->executor, 1);
		pthread_join(r->executor_thread, NULL);
	}
	cb_executor_free(r->executor);
	if (r->backend && r->backend_state)
		r->backend->close(r->backend_state);
	if (signal_fd >= 0)
		close(signal_fd);
	cb_store_close(r->store);
	if (r->executor_started)
		cb_notice("clawback stopped");
	free(r);
	return rc;
}

const struct cb_command cb_cmd_run = {
	.name = "run",
	.summary = "run the daemon: receive the feeds and remediate",
	.help = "Usage: clawback [--config PATH] run\n"
		"\n"
		"Runs in the foreground until SIGTERM or SIGINT (graceful: requests in flight\n"
		"finish within [executor] stop_timeout_seconds, unfinished jobs stay queued).\n"
		"SIGHUP reloads the rules. Under systemd (Type=notify) it reports READY=1,\n"
		"STATUS= and the watchdog, and logs to the journal. The status of the feeds and\n"
		"the executor is written once a second to STORE.status.json (`clawback status`).\n",
	.run = run_daemon,
};
