/*
 * test_executor.c: the executor against a real store in a temporary
 * directory: the log backend, a scripted backend for every outcome, and a
 * backend that sends real HTTP requests to a small server on 127.0.0.1.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend.h"
#include "base/util.h"
#include "config/config.h"
#include "event/event.h"
#include "executor/executor.h"
#include "store/store.h"
#include "testutil.h"

extern const struct cb_backend_ops cb_backend_log;

static const struct cb_decision move_decision = {
	.rule = "virus-to-junk",
	.reason = "threat=VIRUS",
	.action = {.kind = CB_ACTION_MOVE, .folder = "junkemail"},
};

/* Stores one PZD event for recipient and returns its job id. */
static int64_t add_job(struct cb_store *store, const char *recipient, int seq)
{
	struct cb_ingest_result res;
	struct cb_event ev;
	struct cb_err err = {{0}};
	char raw[256], seed[64], mid[64];

	snprintf(seed, sizeof(seed), "%s-%d", recipient, seq);
	snprintf(mid, sizeof(mid), "<m%d@example.com>", seq);
	snprintf(raw, sizeof(raw), "{\"type\":\"PZD\",\"recipient\":\"%s\",\"seq\":%d}", recipient,
		 seq);
	memset(&ev, 0, sizeof(ev));
	ev.type = strdup("PZD");
	ev.customer = strdup("4711");
	ev.sender = strdup("attacker@evil.example");
	ev.recipient = strdup(recipient);
	ev.recipient_norm = strdup(recipient);
	ev.message_id = strdup(mid);
	ev.threat = CB_THREAT_VIRUS;
	ev.details = strdup("Trojan.Generic");
	cb_sha256_hex(seed, strlen(seed), ev.dedup_key);
	if (cb_store_ingest(store, raw, strlen(raw), "test", &ev, CB_REJECT_NONE, NULL,
			    &move_decision, &res, &err) < 0)
		fail_msg("cb_store_ingest: %s", err.msg);
	cb_event_clear(&ev);
	assert_true(res.job_id > 0);
	return res.job_id;
}

static struct cb_job get_job(struct cb_store *store, int64_t id)
{
	struct cb_job job;
	struct cb_err err = {{0}};

	if (cb_store_job_get(store, id, &job, &err) < 0)
		fail_msg("cb_store_job_get: %s", err.msg);
	return job;
}

static void drain(struct cb_config *cfg, const char *path, const struct cb_backend_ops *ops,
		  void *state, struct cb_executor_stats *stats)
{
	struct cb_executor *ex = NULL;
	struct cb_err err = {{0}};

	if (cb_executor_new(cfg, path, ops, state, &ex, &err) < 0)
		fail_msg("cb_executor_new: %s", err.msg);
	if (cb_executor_drain(ex, &err) < 0)
		fail_msg("cb_executor_drain: %s", err.msg);
	cb_executor_stats(ex, stats);
	cb_executor_free(ex);
}

struct attempt_count {
	int attempts;
	int with_request_id;
	int throttled;
};

static int count_attempt(const struct cb_audit_row *row, void *opaque)
{
	struct attempt_count *c = opaque;

	if (strcmp(row->kind, "attempt") != 0)
		return 0;
	c->attempts++;
	if (row->detail_json && strstr(row->detail_json, "rid-"))
		c->with_request_id++;
	if (row->detail_json && strstr(row->detail_json, "429"))
		c->throttled++;
	return 0;
}

static struct attempt_count count_attempts(struct cb_store *store, int64_t job_id)
{
	struct attempt_count c = {0};
	struct cb_err err = {{0}};

	if (cb_store_list_audit(store, job_id, count_attempt, &c, &err) < 0)
		fail_msg("cb_store_list_audit: %s", err.msg);
	return c;
}

/* Helpers without a store. */

static void retry_after_seconds(void **state)
{
	(void)state;
	assert_int_equal(cb_exec_parse_retry_after("10", 0), 10000);
	assert_int_equal(cb_exec_parse_retry_after(" 0 ", 0), 0);
	assert_int_equal(cb_exec_parse_retry_after("99999999999999999999999", 0),
			 CB_EXEC_MAX_SERVER_BACKOFF_MS);
	assert_int_equal(cb_exec_parse_retry_after("7200", 0), CB_EXEC_MAX_SERVER_BACKOFF_MS);
}

static void retry_after_http_date(void **state)
{
	/* Wed, 21 Oct 2015 07:28:00 GMT is 1445412480. */
	(void)state;
	assert_int_equal(cb_exec_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470),
			 10000);
	assert_int_equal(cb_exec_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412490), 0);
}

static void retry_after_rejects_garbage(void **state)
{
	(void)state;
	assert_int_equal(cb_exec_parse_retry_after("", 0), -1);
	assert_int_equal(cb_exec_parse_retry_after("  ", 0), -1);
	assert_int_equal(cb_exec_parse_retry_after("10s", 0), -1);
	assert_int_equal(cb_exec_parse_retry_after("-5", 0), -1);
	assert_int_equal(cb_exec_parse_retry_after("soon", 0), -1);
	assert_int_equal(cb_exec_parse_retry_after("1\r\nX-Evil: 1", 0), -1);
}

static void backoff_doubles_and_caps(void **state)
{
	struct cb_executor_config cfg = {.retry_base_ms = 30000, .retry_max_ms = 480000};

	(void)state;
	/* random 0 gives the lower bound (half), UINT32_MAX lands in the upper part. */
	assert_int_equal(cb_exec_backoff_ms(&cfg, 1, 0), 15000);
	assert_int_equal(cb_exec_backoff_ms(&cfg, 2, 0), 30000);
	assert_int_equal(cb_exec_backoff_ms(&cfg, 3, 0), 60000);
	assert_int_equal(cb_exec_backoff_ms(&cfg, 5, 0), 240000);
	assert_int_equal(cb_exec_backoff_ms(&cfg, 6, 0), 240000);
	assert_int_equal(cb_exec_backoff_ms(&cfg, 1000, 0), 240000);
	for (uint32_t r = 0; r < 100000; r += 997) {
		int64_t d = cb_exec_backoff_ms(&cfg, 2, r * 43013u);

		assert_true(d >= 30000);
		assert_true(d <= 60000);
	}
}

/* Log backend: a few hundred jobs through a real store. */

static void log_backend_finishes_all(void **state)
{
	enum { JOBS = 300 };
	char *path = test_store_path();
	struct cb_store *store = test_open_store(path);
	struct cb_executor_stats stats;
	struct cb_config cfg;
	int64_t ids[JOBS];
	int64_t counts[CB_JOB_STATE_COUNT];
	struct cb_err err = {{0}};

	(void)state;
	cb_config_defaults(&cfg);
	for (int i = 0; i < JOBS; i++) {
		char rcpt[64];

		snprintf(rcpt, sizeof(rcpt), "user%d@example.com", i % 30);
		ids[i] = add_job(store, rcpt, i);
	}

	drain(&cfg, path, &cb_backend_log, NULL, &stats);
	assert_int_equal(stats.done, JOBS);
	assert_int_equal(stats.claimed, JOBS);
	assert_int_equal(stats.active_jobs, 0);
	assert_int_equal(cb_store_count_jobs(store, counts, &err), 0);
	assert_int_equal(counts[CB_JOB_DONE], JOBS);
	assert_int_equal(counts[CB_JOB_RUNNING], 0);
	assert_int_equal(counts[CB_JOB_QUEUED], 0);
	for (int i = 0; i < JOBS; i += 37) {
		struct cb_job job = get_job(store, ids[i]);

		assert_int_equal(job.state, CB_JOB_DONE);
		assert_non_null(job.outcome);
		assert_non_null(strstr(job.outcome, "would move to junkemail"));
		cb_job_clear(&job);
	}
	cb_store_close(store);
	cb_config_free(&cfg);
	free(path);
}

/* Scripted backend: the outcome depends on the mailbox's local part. */

struct script_op {
	char mailbox[128];
};

static void script_open_key(void *state, const struct cb_job *job, char *out, size_t size)
{
	(void)state;
	snprintf(out, size, "script:%s", job->mailbox);
}

static void *script_start(void *state, const struct cb_job *job)
{
	struct script_op *op = calloc(1, sizeof(*op));

	(void)state;
	if (op)
		cb_strlcpy(op->mailbox, job->mailbox, sizeof(op->mailbox));
	return op;
}

static enum cb_op_step script_next(void *opaque, const struct cb_http_response *resp,
				   struct cb_http_request *req, struct cb_outcome *out)
{
	struct script_op *op = opaque;

	(void)resp;
	(void)req;
	out->retry_after_ms = -1;
	if (strncmp(op->mailbox, "missing", 7) == 0) {
		out->result = CB_RESULT_NOT_FOUND;
		cb_strlcpy(out->text, "not in any folder", sizeof(out->text));
	} else if (strncmp(op->mailbox, "flaky", 5) == 0) {
		out->result = CB_RESULT_TEMPORARY;
		out->retry_after_ms = 0;
		cb_strlcpy(out->text, "server busy", sizeof(out->text));
	} else if (strncmp(op->mailbox, "slow", 4) == 0) {
		out->result = CB_RESULT_TEMPORARY;
		out->retry_after_ms = 60000;
		cb_strlcpy(out->text, "server busy, back off 60 s", sizeof(out->text));
	} else if (strncmp(op->mailbox, "broken", 6) == 0) {
		out->result = CB_RESULT_PERMANENT;
		cb_strlcpy(out->text, "access denied: grant Mail.ReadWrite", sizeof(out->text));
	} else {
		out->result = CB_RESULT_DONE;
		cb_strlcpy(out->text, "moved to Junk Email", sizeof(out->text));
		cb_strlcpy(out->found_in, "Inbox", sizeof(out->found_in));
	}
	return CB_OP_DONE;
}

static void script_free(void *op)
{
	free(op);
}

static const struct cb_backend_ops script_backend = {
	.name = "script",
	.limit_key = script_open_key,
	.op_start = script_start,
	.op_next = script_next,
	.op_free = script_free,
};

static void outcomes_reach_their_states(void **state)
{
	char *path = test_store_path();
	struct cb_store *store = test_open_store(path);
	struct cb_executor_stats stats;
	struct cb_config cfg;
	int64_t done_id, missing_id, flaky_id, broken_id;
	struct cb_job job;

	(void)state;
	cb_config_defaults(&cfg);
	cfg.executor.not_found_searches = 3;
	cfg.executor.not_found_interval_ms = 0; /* re-search at once, so one drain covers all */
	cfg.executor.max_attempts = 4;
	done_id = add_job(store, "ok@example.com", 1);
	missing_id = add_job(store, "missing@example.com", 2);
	flaky_id = add_job(store, "flaky@example.com", 3);
	broken_id = add_job(store, "broken@example.com", 4);

	drain(&cfg, path, &script_backend, NULL, &stats);

	job = get_job(store, done_id);
	assert_int_equal(job.state, CB_JOB_DONE);
	assert_string_equal(job.found_in, "Inbox");
	assert_string_equal(job.outcome, "moved to Junk Email");
	cb_job_clear(&job);

	job = get_job(store, missing_id);
	assert_int_equal(job.state, CB_JOB_NOT_FOUND);
	assert_int_equal(job.searches, 3);
	assert_int_equal(job.attempts, 0);
	cb_job_clear(&job);

	job = get_job(store, flaky_id);
	assert_int_equal(job.state, CB_JOB_RETRY_QUEUE);
	assert_int_equal(job.attempts, 4);
	assert_string_equal(job.last_error, "server busy");
	cb_job_clear(&job);

	job = get_job(store, broken_id);
	assert_int_equal(job.state, CB_JOB_FINAL_ERROR);
	assert_non_null(strstr(job.last_error, "Mail.ReadWrite"));
	cb_job_clear(&job);

	assert_int_equal(stats.done, 1);
	assert_int_equal(stats.not_found, 1);
	assert_int_equal(stats.retry_queue, 1);
	assert_int_equal(stats.final_error, 1);
	assert_int_equal(stats.retry_wait, 2 + 3); /* two re-searches, three retries */
	cb_store_close(store);
	cb_config_free(&cfg);
	free(path);
}

static void server_hint_sets_retry_time(void **state)
{
	char *path = test_store_path();
	struct cb_store *store = test_open_store(path);
	struct cb_executor_stats stats;
	struct cb_config cfg;
	int64_t before, after, id;
	struct cb_job job;

	(void)state;
	cb_config_defaults(&cfg);
	id = add_job(store, "slow@example.com", 1);

	before = cb_now_ms();
	drain(&cfg, path, &script_backend, NULL, &stats);
	after = cb_now_ms();

	job = get_job(store, id);
	assert_int_equal(job.state, CB_JOB_RETRY_WAIT);
	assert_int_equal(job.attempts, 1);
	/* The hint is honoured exactly: no jitter, no earlier retry. */
	assert_true(job.next_attempt_ms >= before + 60000);
	assert_true(job.next_attempt_ms <= after + 60000);
	assert_int_equal(stats.next_retry_ms, job.next_attempt_ms);
	cb_job_clear(&job);
	cb_store_close(store);
	cb_config_free(&cfg);
	free(path);
}

static void interrupted_job_recovered(void **state)
{
	char *path = test_store_path();
	struct cb_store *store = test_open_store(path);
	struct cb_transition t = CB_TRANSITION_INIT;
	struct cb_executor_stats stats;
	struct cb_config cfg;
	struct cb_err err = {{0}};
	struct cb_job job;
	int64_t id;

	(void)state;
	cb_config_defaults(&cfg);
	id = add_job(store, "ok@example.com", 1);
	/* A run that was killed: the job stays in running. */
	assert_int_equal(cb_store_job_transition(store, id, CB_JOB_QUEUED, CB_JOB_RUNNING, &t, &err), 0);

	drain(&cfg, path, &script_backend, NULL, &stats);
	job = get_job(store, id);
	assert_int_equal(job.state, CB_JOB_DONE);
	assert_int_equal(job.may_have_acted, 1);
	cb_job_clear(&job);
	cb_store_close(store);
	cb_config_free(&cfg);
	free(path);
}

static void stop_before_run_returns(void **state)
{
	char *path = test_store_path();
	struct cb_store *store = test_open_store(path);
	struct cb_executor *ex = NULL;
	struct cb_config cfg;
	struct cb_err err = {{0}};
	struct cb_job job;
	int64_t id;

	(void)state;
	cb_config_defaults(&cfg);
	id = add_job(store, "ok@example.com", 1);
	assert_int_equal(cb_executor_new(&cfg, path, &script_backend, NULL, &ex, &err), 0);
	cb_executor_stop(ex, 1);
	assert_int_equal(cb_executor_run(ex, &err), 0);
	cb_executor_free(ex);

	job = get_job(store, id);
	assert_int_equal(job.state, CB_JOB_QUEUED);
	cb_job_clear(&job);
	cb_store_close(store);
	cb_config_free(&cfg);
	free(path);
}

/* HTTP backend against a small server on 127.0.0.1. */

#define SERVER_MAX_PATHS 8

struct server {
	int fd;
	int port;
	pthread_t thread;
	pthread_mutex_t lock;
	char paths[SERVER_MAX_PATHS][64];
	int current[SERVER_MAX_PATHS];
	int max_seen[SERVER_MAX_PATHS];
	int served;
	volatile int stopping;
};

struct connection {
	struct server *server;
	int fd;
};

static int path_slot(struct server *s, const char *path)
{
	for (int i = 0; i < SERVER_MAX_PATHS; i++) {
		if (s->paths[i][0] == '\0')
			cb_strlcpy(s->paths[i], path, sizeof(s->paths[i]));
		if (strcmp(s->paths[i], path) == 0)
			return i;
	}
	return SERVER_MAX_PATHS - 1;
}

static void *serve_connection(void *opaque)
{
	struct connection *c = opaque;
	struct server *s = c->server;
	struct timespec pause = {.tv_nsec = 20 * 1000 * 1000};
	char buf[4096], path[64] = "";
	char reply[512];
	ssize_t n;
	size_t len = 0;
	int slot, served;

	buf[0] = '\0';
	while (len < sizeof(buf) - 1 && !strstr(buf, "\r\n\r\n")) {
		n = read(c->fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
	}
	sscanf(buf, "GET %63s", path);

	pthread_mutex_lock(&s->lock);
	slot = path_slot(s, path);
	s->current[slot]++;
	if (s->current[slot] > s->max_seen[slot])
		s->max_seen[slot] = s->current[slot];
	served = ++s->served;
	pthread_mutex_unlock(&s->lock);

	/* Hold the request a little, so concurrent requests overlap. */
	nanosleep(&pause, NULL);

	if (strcmp(path, "/throttled") == 0)
		snprintf(reply, sizeof(reply),
			 "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 120\r\n"
			 "request-id: rid-%d\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
			 served);
	else
		snprintf(reply, sizeof(reply),
			 "HTTP/1.1 200 OK\r\nrequest-id: rid-%d\r\nContent-Length: 2\r\n"
			 "Connection: close\r\n\r\nok",
			 served);

	pthread_mutex_lock(&s->lock);
	s->current[slot]--;
	pthread_mutex_unlock(&s->lock);
	if (write(c->fd, reply, strlen(reply)) < 0)
		perror("write");
	close(c->fd);
	free(c);
	return NULL;
}

static void *serve(void *opaque)
{
	struct server *s = opaque;

	while (!s->stopping) {
		struct connection *c;
		pthread_t t;
		int fd = accept(s->fd, NULL, NULL);

		if (fd < 0)
			continue;
		c = calloc(1, sizeof(*c));
		c->server = s;
		c->fd = fd;
		if (pthread_create(&t, NULL, serve_connection, c) == 0)
			pthread_detach(t);
	}
	return NULL;
}

static void server_start(struct server *s)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	socklen_t alen = sizeof(addr);

	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s->fd >= 0);
	assert_int_equal(bind(s->fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(listen(s->fd, 128), 0);
	assert_int_equal(getsockname(s->fd, (struct sockaddr *)&addr, &alen), 0);
	s->port = ntohs(addr.sin_port);
	assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void server_stop(struct server *s)
{
	s->stopping = 1;
	shutdown(s->fd, SHUT_RDWR);
	close(s->fd);
	pthread_join(s->thread, NULL);
}

static int server_max_seen(struct server *s, const char *path)
{
	int max = 0;

	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < SERVER_MAX_PATHS; i++)
		if (strcmp(s->paths[i], path) == 0)
			max = s->max_seen[i];
	pthread_mutex_unlock(&s->lock);
	return max;
}

struct http_op {
	const struct server *server;
	char local[64];
};

static void *http_start(void *state, const struct cb_job *job)
{
	struct http_op *op = calloc(1, sizeof(*op));
	const char *at = strchr(job->mailbox, '@');
	size_t n = at ? (size_t)(at - job->mailbox) : strlen(job->mailbox);

	if (!op)
		return NULL;
	op->server = state;
	if (n >= sizeof(op->local))
		n = sizeof(op->local) - 1;
	memcpy(op->local, job->mailbox, n);
	return op;
}

static enum cb_op_step http_next(void *opaque, const struct cb_http_response *resp,
				 struct cb_http_request *req, struct cb_outcome *out)
{
	struct http_op *op = opaque;
	char url[128];

	if (!resp) {
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/%s", op->server->port, op->local);
		req->method = "GET";
		req->url = strdup(url);
		req->http_version = CURL_HTTP_VERSION_1_1;
		req->timeout_ms = 10000;
		req->step = "search";
		return CB_OP_REQUEST;
	}
	out->http_status = resp->status;
	out->retry_after_ms = -1;
	if (resp->status == 200) {
		out->result = CB_RESULT_DONE;
		cb_strlcpy(out->text, "moved", sizeof(out->text));
	} else {
		out->result = CB_RESULT_TEMPORARY;
		out->retry_after_ms = resp->retry_after_ms;
		snprintf(out->text, sizeof(out->text), "HTTP %ld", resp->status);
	}
	return CB_OP_DONE;
}

static const struct cb_backend_ops http_backend = {
	.name = "httptest",
	.limit_key = script_open_key,
	.op_start = http_start,
	.op_next = http_next,
	.op_free = script_free,
};

static void http_limits_and_back_off(void **state)
{
	enum { BUSY = 40, OTHERS = 6, THROTTLED = 5 };
	char *path = test_store_path();
	struct cb_store *store = test_open_store(path);
	struct cb_executor_stats stats;
	struct cb_config cfg;
	struct server server;
	int64_t busy_ids[BUSY], other_ids[OTHERS], throttled_ids[THROTTLED];
	int64_t before;
	int seq = 0, throttled_waiting = 0, throttled_attempts = 0;

	(void)state;
	cb_config_defaults(&cfg);
	cfg.executor.mailbox_concurrency = 3;
	server_start(&server);
	for (int i = 0; i < BUSY; i++)
		busy_ids[i] = add_job(store, "busy@example.com", seq++);
	for (int i = 0; i < THROTTLED; i++)
		throttled_ids[i] = add_job(store, "throttled@example.com", seq++);
	for (int i = 0; i < OTHERS; i++) {
		char rcpt[64];

		snprintf(rcpt, sizeof(rcpt), "other%d@example.com", i % 2);
		other_ids[i] = add_job(store, rcpt, seq++);
	}

	before = cb_now_ms();
	drain(&cfg, path, &http_backend, &server, &stats);
	server_stop(&server);

	/* Never more requests in flight per mailbox than the limit. */
	assert_true(server_max_seen(&server, "/busy") <= 3);
	assert_true(server_max_seen(&server, "/busy") >= 1);
	assert_true(server_max_seen(&server, "/other0") <= 3);

	for (int i = 0; i < BUSY; i++) {
		struct cb_job job = get_job(store, busy_ids[i]);
		struct attempt_count c = count_attempts(store, busy_ids[i]);

		assert_int_equal(job.state, CB_JOB_DONE);
		assert_int_equal(c.attempts, 1);
		assert_int_equal(c.with_request_id, 1);
		cb_job_clear(&job);
	}
	for (int i = 0; i < OTHERS; i++) {
		struct cb_job job = get_job(store, other_ids[i]);

		assert_int_equal(job.state, CB_JOB_DONE);
		cb_job_clear(&job);
	}

	/* A 429 with Retry-After: 120 blocks the throttled mailbox only, and all its jobs wait 120 s. */
	for (int i = 0; i < THROTTLED; i++) {
		struct cb_job job = get_job(store, throttled_ids[i]);
		struct attempt_count c = count_attempts(store, throttled_ids[i]);

		assert_int_equal(job.state, CB_JOB_RETRY_WAIT);
		assert_true(job.next_attempt_ms >= before + 119000);
		throttled_waiting++;
		throttled_attempts += c.attempts;
		cb_job_clear(&job);
	}
	/* The first 3 were in flight together (the concurrency); after the 429 no more were sent. */
	assert_int_equal(throttled_waiting, THROTTLED);
	assert_int_equal(throttled_attempts, 3);
	assert_int_equal(stats.throttled, 3);
	assert_int_equal(stats.done, BUSY + OTHERS);
	cb_store_close(store);
	cb_config_free(&cfg);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(retry_after_seconds),
		cmocka_unit_test(retry_after_http_date),
		cmocka_unit_test(retry_after_rejects_garbage),
		cmocka_unit_test(backoff_doubles_and_caps),
		cmocka_unit_test(log_backend_finishes_all),
		cmocka_unit_test(outcomes_reach_their_states),
		cmocka_unit_test(server_hint_sets_retry_time),
		cmocka_unit_test(interrupted_job_recovered),
		cmocka_unit_test(stop_before_run_returns),
		cmocka_unit_test(http_limits_and_back_off),
	};

	curl_global_init(CURL_GLOBAL_DEFAULT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
