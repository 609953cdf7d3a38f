/*
 * test_store.c: the durable store: schema migrations, ingest, the job state
 * machine, quarantine of invalid rows, listings, retention, and crash safety
 * (a child killed with SIGKILL in the middle of batches).
 *
 * Each test uses a fresh temporary directory. Rows are damaged with a second
 * SQLite connection, the way a manual edit or a bug would leave them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ctype.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "store/store.h"
#include "testutil.h"

#define DAY_MS (24 * 60 * 60 * 1000LL)

/* Runs SQL on a second connection, as a manual edit would. */
static void exec_sql(const char *path, const char *sql)
{
	sqlite3 *db;
	char *msg = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
	sqlite3_close(db);
}

static int64_t query_int(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t value = -1;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	if (sqlite3_step(st) == SQLITE_ROW)
		value = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return value;
}

static char *lower_dup(const char *s)
{
	char *d = strdup(s);

	assert_non_null(d);
	for (char *p = d; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

/* Fills ev like cb_event_parse would for a PZD (or other type) event; free with cb_event_clear. */
static void make_event(struct cb_event *ev, const char *type, const char *recipient,
		       const char *message_id, const char *key_seed)
{
	memset(ev, 0, sizeof(*ev));
	ev->type = strdup(type);
	ev->customer = strdup("4711");
	ev->sender = strdup("attacker@evil.example");
	ev->recipient = strdup(recipient);
	ev->recipient_norm = lower_dup(recipient);
	ev->message_id = strdup(message_id);
	ev->rmx_id = strdup("rmx-1");
	ev->ts_ms = 1700000000000LL;
	if (strcmp(type, "PZD") == 0) {
		ev->threat = CB_THREAT_VIRUS;
		ev->details = strdup("Trojan.Generic");
	}
	cb_sha256_hex(key_seed, strlen(key_seed), ev->dedup_key);
}

static const struct cb_decision move_decision = {
	.rule = "virus-to-junk",
	.reason = "threat=VIRUS",
	.action = {.kind = CB_ACTION_MOVE, .folder = "junkemail", .notify = CB_NOTIFY_ADMIN},
};

static const struct cb_decision skip_decision = {
	.rule = "(default)",
	.reason = "no rule matched",
	.action = {.kind = CB_ACTION_SKIP},
};

static int64_t ingest_pzd(struct cb_store *store, const char *recipient, const char *seed,
			  const struct cb_decision *dec, struct cb_ingest_result *res)
{
	struct cb_ingest_result local;
	struct cb_event ev;
	struct cb_err err = {{0}};
	char raw[256];

	if (!res)
		res = &local;
	snprintf(raw, sizeof(raw), "{\"type\":\"PZD\",\"recipient\":\"%s\",\"seed\":\"%s\"}",
		 recipient, seed);
	make_event(&ev, "PZD", recipient, "<m1@example.com>", seed);
	if (cb_store_ingest(store, raw, strlen(raw), "test", &ev, CB_REJECT_NONE, NULL, dec, res,
			    &err) < 0)
		fail_msg("cb_store_ingest: %s", err.msg);
	cb_event_clear(&ev);
	return res->job_id;
}

static void set_job_state(const char *path, int64_t id, const char *state)
{
	char sql[160];

	snprintf(sql, sizeof(sql), "UPDATE jobs SET state = '%s' WHERE id = %lld", state,
		 (long long)id);
	exec_sql(path, sql);
}

static enum cb_job_state job_state(struct cb_store *store, int64_t id)
{
	struct cb_job job;
	struct cb_err err = {{0}};
	enum cb_job_state state;

	if (cb_store_job_get(store, id, &job, &err) < 0)
		fail_msg("cb_store_job_get: %s", err.msg);
	state = job.state;
	cb_job_clear(&job);
	return state;
}

/* Collects audit rows of one job for checks. */
struct audit_seen {
	int count;
	char kind[16][24];
	char from[16][24];
	char to[16][24];
	char detail[16][512];
};

static int collect_audit(const struct cb_audit_row *row, void *ctx)
{
	struct audit_seen *seen = ctx;
	int i = seen->count;

	if (i >= 16)
		return 1;
	cb_strlcpy(seen->kind[i], row->kind, sizeof(seen->kind[i]));
	cb_strlcpy(seen->from[i], row->from_state ? row->from_state : "", sizeof(seen->from[i]));
	cb_strlcpy(seen->to[i], row->to_state ? row->to_state : "", sizeof(seen->to[i]));
	cb_strlcpy(seen->detail[i], row->detail_json, sizeof(seen->detail[i]));
	seen->count++;
	return 0;
}

static struct audit_seen audit_of(struct cb_store *store, int64_t job_id)
{
	struct audit_seen seen;
	struct cb_err err = {{0}};

	memset(&seen, 0, sizeof(seen));
	if (cb_store_list_audit(store, job_id, collect_audit, &seen, &err) < 0)
		fail_msg("cb_store_list_audit: %s", err.msg);
	return seen;
}

/* --- open and migrations --- */

static void open_creates_schema_and_reopens(void **state)
{
	char *path = test_store_path();
	struct cb_store *store;

	(void)state;
	store = test_open_store(path);
	assert_non_null(store);
	cb_store_close(store);
	assert_int_equal(query_int(path, "PRAGMA user_version"), 1);
	assert_int_equal(query_int(path, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' "
					 "AND name IN ('events', 'jobs', 'audit')"),
			 3);
	assert_int_equal(query_int(path, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' "
					 "AND name = 'events_dedup'"),
			 1);

	store = test_open_store(path);
	ingest_pzd(store, "a@example.com", "k1", &move_decision, NULL);
	cb_store_close(store);
	store = test_open_store(path);
	assert_int_equal(job_state(store, 1), CB_JOB_QUEUED);
	cb_store_close(store);
	assert_int_equal(query_int(path, "PRAGMA user_version"), 1);
	free(path);
}

static void open_uses_wal(void **state)
{
	char *path = test_store_path();
	struct cb_store *store;
	sqlite3 *db;
	sqlite3_stmt *st;

	(void)state;
	store = test_open_store(path);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	sqlite3_close(db);
	cb_store_close(store);
	free(path);
}

static void open_rejects_newer_schema(void **state)
{
	char *path = test_store_path();
	struct cb_store *store = test_open_store(path);
	struct cb_err err = {{0}};

	(void)state;
	cb_store_close(store);
	exec_sql(path, "PRAGMA user_version = 99");
	assert_int_equal(cb_store_open(path, &store, &err), -1);
	assert_null(store);
	assert_non_null(strstr(err.msg, "schema version 99"));
	assert_non_null(strstr(err.msg, "up to 1"));
	free(path);
}

static void open_rejects_other_application(void **state)
{
	char *path = test_store_path();
	struct cb_store *store = NULL;
	struct cb_err err = {{0}};

	(void)state;
	exec_sql(path, "PRAGMA application_id = 1234; CREATE TABLE t(x)");
	assert_int_equal(cb_store_open(path, &store, &err), -1);
	assert_non_null(strstr(err.msg, "another application"));
	free(path);
}

static void open_rejects_non_database(void **state)
{
	const char *dir = test_tmpdir();
	char *path = test_write_file(dir, "garbage.db", "this is not an SQLite file, it is text\n");
	struct cb_store *store = NULL;
	struct cb_err err = {{0}};

	(void)state;
	assert_int_equal(cb_store_open(path, &store, &err), -1);
	assert_null(store);
	assert_non_null(strstr(err.msg, path));
	free(path);
}

/* --- ingest --- */

static void ingest_accepted_creates_job(void **state)
{
	char *path = test_store_path();
	struct cb_store *store = test_open_store(path);
	struct cb_ingest_result res;
	struct cb_job job;
	struct audit_seen seen;
	struct cb_err err = {{0}};

	(void)state;
	ingest_pzd(store, "Alice@Example.COM", "k1", &move_decision, &res);
	assert_int_equal(res.status, CB_EVENT_ACCEPTED);
	assert_true(res.event_id > 0);
	assert_true(res.job_id > 0);
	assert_int_equal(res.duplicate_of, 0);

	assert_int_equal(cb_store_job_get(store, res.job_id, &job, &err), 0);
	assert_int_equal(job.state, CB_JOB_QUEUED);
	assert_int_equal(job.event_id, res.event_id);
	assert_string_equal(job.mailbox, "alice@example.com");
	assert_string_equal(job.message_id, "<m1@example.com>");
	assert_string_equal(job.rule, "virus-to-junk");
	assert_string_equal(job.reason, "threat=VIRUS");
	assert_int_equal(job.action.kind, CB_ACTION_MOVE);
	assert_string_equal(job.action.folder, "junkemail");
	assert_int_equal(job.action.notify, CB_NOTIFY_ADMIN);
	assert_int_equal(job.attempts, 0);
	assert_int_equal(job.deleted_ms, 0);
	cb_job_clear(&job);

	seen = audit_of(store, res.job_id);
	assert_int_equal(seen.count, 1);
	assert_string_equal(seen.kind[0], "decision");
	assert_string_equal(seen.to[0], "queued");
	assert_non_null(strstr(seen.detail[0], "\"rule\":\"virus-to-junk\""));
	assert_non_null(strstr(seen.detail[0], "\"action\":\"move\""));
	assert_non_null(strstr(seen.detail[0], "\"folder\":\"junkemail\""));
	assert_non_null(strstr(seen.detail[0], "\"notify\":[\"admin\"]"));
	cb_store_close(store);
	free(path);
}

static void ingest_skip_creates_skipped_job(void **state)
{
	char *path = test_store_path();
	struct cb_store *store = test_open_store(path);
	struct cb_ingest_result res;

	(void)state;
	ingest_pzd(store, "a@example.com", "k1", &skip_decision, &res);
	assert_int_equal(res.status, CB_EVENT_ACCEPTED);
	assert_true(res.job_id > 0);
	assert_int_equal(job_state(store, res.job_id), CB_JOB_SKIPPED);
	assert_string_equal(audit_of(store, res.job_id).to[0], "skipped");
	cb_store_close(store);
	free(path);
}

static void ingest_other_type_is_ignored(void **state)
{
	char *path = test_store_path();
	struct cb_store *store = test_open_store(path);
	struct cb_ingest_result res;
	struct cb_event ev;
	struct cb_err err = {{0}};

	(void)state;
	make_event(&ev, "MTA", "a@example.com", "<m1@example.com>", "mta1");
	assert_int_equal(cb_store_ingest(store, "{}", 2, "test", &ev, CB_REJECT_NONE, NULL, NULL,
					 &res, &err),
			 0);
	assert_int_equal(res.status, CB_EVENT_IGNORED);
	assert_int_equal(res.job_id, 0);
	assert_int_equal(query_int(path, "SELECT count(*) FROM jobs"), 0);
	assert_int_equal(query_int(path, "SELECT count(*) FROM events WHERE status = 'ignored' "
					 "AND type = 'MTA'"),
			 1);
	cb_event_clear(&ev);
	cb_store_close(store);
	free(path);
}

static void ingest_rejected_keeps_reason(void **state)
{
	char *path = test_store_path();
	struct cb_store *store = test_open_store(path);
	struct cb_ingest_result res;
	struct cb_err err = {{0}};
	static const char raw[] = "{\"type\":\"PZD\"";

	(void)state;
	assert_int_equal(cb_store_ingest(store, raw, sizeof(raw) - 1, "feed:main", NULL,
					 CB_REJECT_NOT_JSON, "unexpected end of input at 13",
					 NULL, &res, &err),
			 0);
	assert_int_equal(res.status, CB_EVENT_REJECTED);
	assert_int_equal(res.job_id, 0);
	assert_int_equal(query_int(path, "SELECT count(*) FROM events WHERE status = 'rejected' "
					 "AND reject_reason = 'not_json' "
					 "AND reject_detail = 'unexpected end of input at 13' "
					 "AND raw = CAST('{\"type\":\"PZD\"' AS BLOB)"),
			 1);
	cb_store_close(store);
	free(path);
}

static void ingest_duplicate_has_no_job(void **state)
{
	char *path = test_store_path();
	struct cb_store *store = test_open_store(path);
	struct cb_ingest_result first, second;
	struct cb_event ev;
	struct cb_err err = {{0}};
	int seen = -1;

	(void)state;
	make_event(&ev, "PZD", "a@example.com", "<m1@example.com>", "same");
	assert_int_equal(cb_store_event_seen(store, ev.dedup_key, &seen, &err), 0);
	assert_int_equal(seen, 0);

	ingest_pzd(store, "a@example.com", "same", &move_decision, &first);
	ingest_pzd(store, "a@example.com", "same", &move_decision, &second);
	assert_int_equal(first.status, CB_EVENT_ACCEPTED);
	assert_int_equal(second.status, CB_EVENT_DUPLICATE);
	assert_int_equal(second.duplicate_of, first.event_id);
	assert_int_equal(second.job_id, 0);
	assert_true(second.event_id > first.event_id);
	assert_int_equal(query_int(path, "SELECT count(*) FROM jobs"), 1);
	assert_int_equal(query_int(path, "SELECT count(*) FROM audit WHERE kind = 'decision'"), 1);

	assert_int_equal(cb_store_event_seen(store, ev.dedup_key, &seen, &err), 0);
	assert_int_equal(seen, 1);
	cb_event_clear(&ev);
	cb_store_close(store);
	free(path);
}

static void dedup_index_rejects_second_accepted(void **state)
{
	char *path = test_store_path();
	struct cb_store *store = test_open_store(path);
	sqlite3 *db;
	int rc;

	(void)state;
	ingest_pzd(store, "a@example.com", "same", &move_decision, NULL);
	cb_store_close(store);

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	rc = sqlite3_exec(db,
			  "INSERT INTO events(received_ms, source, status, dedup_key, raw, raw_size) "
			  "SELECT 1, 'manual', 'accepted', dedup_key, x'', 0 FROM events",
			  NULL, NULL, NULL);
	assert_int_equal(rc, SQLITE_CONSTRAINT);
	sqlite3_close(db);
	free(path);
}

static void ingest_cuts_oversized_raw(void **state)
{
	char *path = test_store_path();
	struct cb_store *store = test_open_store(path);
	size_t size = 1024 * 1024;
	char *raw = malloc(size);
	struct cb_ingest_result res;
	struct cb_err err = {{0}};

	(void)state;
	assert_non_null(raw);
	memset(raw, '[', size);
	assert_int_equal(cb_store_ingest(store, raw, size, "feed:main", NULL, CB_REJECT_TOO_LARGE,
					 "1048576 bytes", NULL, &res, &err),
			 0);
	assert_int_equal(query_int(path, "SELECT length(raw) FROM events"), CB_STORE_RAW_MAX);
	assert_int_equal(query_int(path, "SELECT raw_size FROM events"), (int64_t)size);
	free(raw);
	cb_store_close(store);
	free(path);
}

static int count_rows(const struct cb_event_row *row, void *ctx)
{
	static const char raw[] = "'); DROP TABLE events; --\0\xff\x01";

	assert_int_equal(row->raw_len, sizeof(raw) - 1);
	assert_memory_equal(row->raw, raw, sizeof(raw) - 1);
	(*(int *)ctx)++;
	return 0;
}

static void ingest_stores_hostile_bytes_verbatim(void **state)
{
	char *path = test_store_path();
	struct cb_store *store = test_open_store(path);
	static const char raw[] = "'); DROP TABLE events; --\0\xff\x01";
	struct cb_filter f = CB_FILTER_INIT;
	struct cb_ingest_result res;
	struct cb_err err = {{0}};
	int rows = 0;

	(void)state;
	assert_int_equal(cb_store_ingest(store, raw, sizeof(raw) - 1, "x'); --", NULL,
					 CB_REJECT_BAD_UTF8, "\"'; DELETE FROM jobs; --", NULL, &res,
					 &err),
			 0);
	assert_int_equal(cb_store_list_events(store, &f, count_rows, &rows, &err), 0);
	assert_int_equal(rows, 1);
	assert_int_equal(query_int(path, "SELECT count(*) FROM events WHERE source = 'x''); --'"), 1);
	cb_store_close(store);
	free(path);
}

static void ingest_rejects_pzd_without_decision(void **state)
{
	char *path = test_store_path();
	struct cb_store *store = test_open_store(path);
	struct cb_ingest_result res;
	struct cb_event ev;
	struct cb_err err = {{0}};

	(void)state;
	make_event(&ev, "PZD", "a@example.com", "<m1@example.com>", "k");
	assert_int_equal(cb_store_ingest(store, "{}", 2, "test", &ev, CB_REJECT_NONE, NULL, NULL,
					 &res, &err),
			 -1);
	assert_non_null(strstr(err.msg, "decision"));

	free(ev.recipient_norm);
	ev.recipient_norm = strdup("");
	assert_int_equal(cb_store_ingest(store, "{}", 2, "test", &ev, CB_REJECT_NONE, NULL,
					 &move_decision, &res, &err),
			 -1);
	assert_non_null(strstr(err.msg, "recipient"));
	assert_int_equal(query_int(path, "SELECT count(*) FROM events"), 0);
	cb_event_clear(&ev);
	cb_store_close(store);
	free(path);
}

static void batch_rollback_discards_all(void **state)
{
	char *path = test_store_path();
	struct cb_store *store = test_open_store(path);
	struct cb_err err = {{0}};

	(void)state;
	assert_int_equal(cb_store_begin(store, &err), 0);
	assert_int_equal(cb_store_begin(store, &err), -1);
	ingest_pzd(store, "a@example.com", "k1", &move_decision, NULL);
	ingest_pzd(store, "b@example.com", "k2", &move_decision, NULL);
	assert_int_equal(cb_store_rollback(store), 0);
	assert_int_equal(query_int(path, "SELECT count(*) FROM events"), 0);
	assert_int_equal(query_int(path, "SELECT count(*) FROM jobs"), 0);
	assert_int_equal(query_int(path, "SELECT count(*) FROM audit"), 0);
	assert_int_equal(cb_store_commit(store, &err), -1);
	cb_store_close(store);
	free(path);
}

static void batch_survives_failed_call(void **state)
{
	char *path = test_store_path();
	struct cb_store *store = test_open_store(path);
	struct cb_ingest_result res;
	struct cb_event ev;
	struct cb_err err = {{0}};

	(void)state;
	assert_int_equal(cb_store_begin(store, &err), 0);
	ingest_pzd(store, "a@example.com", "k1", &move_decision, NULL);
	make_event(&ev, "PZD", "b@example.com", "<m2@example.com>", "k2");
	assert_int_equal(cb_store_ingest(store, "{}", 2, "test", &ev, CB_REJECT_NONE, NULL, NULL,
					 &res, &err),
			 -1);
	cb_event_clear(&ev);
	ingest_pzd(store, "c@example.com", "k3", &move_decision, NULL);
	assert_int_equal(cb_store_commit(store, &err), 0);
	assert_int_equal(query_int(path, "SELECT count(*) FROM events"), 2);
	assert_int_equal(query_int(path, "SELECT count(*) FROM jobs"), 2);
	cb_store_close(store);
	free(path);
}

static void batch_failed_write_rolls_back(void **state)
{
	char *path = test_store_path();
	struct cb_store *store = test_open_store(path);
	struct cb_transition t = CB_TRANSITION_INIT;
	struct cb_ingest_result res;
	struct cb_event ev;
	struct cb_err err = {{0}};
	int64_t id;

	(void)state;
	assert_int_equal(cb_store_begin(store, &err), 0);
	id = ingest_pzd(store, "a@example.com", "k1", &move_decision, NULL);
	/* The job row changes, then the audit row fails: the batch is half-written. */
	t.detail_json = "not json";
	assert_int_equal(cb_store_job_transition(store, id, CB_JOB_QUEUED, CB_JOB_RUNNING, &t, &err),
			 -1);
	make_event(&ev, "PZD", "b@example.com", "<m2@example.com>", "k2");
	assert_int_equal(cb_store_ingest(store, "{}", 2, "test", &ev, CB_REJECT_NONE, NULL,
					 &move_decision, &res, &err),
			 -1);
	assert_non_null(strstr(err.msg, "earlier write"));
	cb_event_clear(&ev);
	assert_int_equal(cb_store_commit(store, &err), -1);
	assert_non_null(strstr(err.msg, "rolled back"));
	assert_int_equal(query_int(path, "SELECT count(*) FROM events"), 0);

	/* The store is usable again after the failed batch. */
	ingest_pzd(store, "c@example.com", "k3", &move_decision, NULL);
	assert_int_equal(query_int(path, "SELECT count(*) FROM events"), 1);
	cb_store_close(store);
	free(path);
}

/* --- transitions --- */

struct edge {
	enum cb_job_state from;
	enum cb_job_state to;
};

/* The edges of the diagram in store.h that cb_store_job_transition performs, written out again. */
static const struct edge allowed_edges[] = {
	{CB_JOB_QUEUED, CB_JOB_RUNNING},       {CB_JOB_QUEUED, CB_JOB_FINAL_ERROR},
	{CB_JOB_RUNNING, CB_JOB_DONE},         {CB_JOB_RUNNING, CB_JOB_NOT_FOUND},
	{CB_JOB_RUNNING, CB_JOB_SKIPPED},      {CB_JOB_RUNNING, CB_JOB_RETRY_WAIT},
	{CB_JOB_RUNNING, CB_JOB_RETRY_QUEUE},  {CB_JOB_RUNNING, CB_JOB_FINAL_ERROR},
	{CB_JOB_RETRY_WAIT, CB_JOB_QUEUED},    {CB_JOB_RETRY_WAIT, CB_JOB_RETRY_QUEUE},
	{CB_JOB_RETRY_QUEUE, CB_JOB_QUEUED},   {CB_JOB_FINAL_ERROR, CB_JOB_QUEUED},
};

static int edge_listed(enum cb_job_state from, enum cb_job_state to)
{
	for (size_t i = 0; i < sizeof(allowed_edges) / sizeof(allowed_edges[0]); i++) {
		if (allowed_edges[i].from == from && allowed_edges[i].to == to)
			return 1;
	}
	return 0;
}

static void transition_every_allowed_edge(void **state)
{
	char *path = test_store_path();
	struct cb_store *store = test_open_store(path);
	struct cb_err err = {{0}};

	(void)state;
	for (size_t i = 0; i < sizeof(allowed_edges) / sizeof(allowed_edges[0]); i++) {
		const struct edge *e = &allowed_edges[i];
		char seed[32];
		struct audit_seen seen;
		int64_t id;

		snprintf(seed, sizeof(seed), "edge%zu", i);
		id = ingest_pzd(store, "a@example.com", seed, &move_decision, NULL);
		set_job_state(path, id, cb_job_state_name(e->from));
		if (cb_store_job_transition(store, id, e->from, e->to, NULL, &err) < 0)
			fail_msg("%s -> %s: %s", cb_job_state_name(e->from), cb_job_state_name(e->to),
				 err.msg);
		assert_int_equal(job_state(store, id), e->to);

		seen = audit_of(store, id);
		assert_int_equal(seen.count, 2);
		assert_string_equal(seen.kind[1], "transition");
		assert_string_equal(seen.from[1], cb_job_state_name(e->from));
		assert_string_equal(seen.to[1], cb_job_state_name(e->to));
	}
	cb_store_close(store);
	free(path);
}

static void transition_forbidden_edges_rejected(void **state)
{
	char *path = test_store_path();
	struct cb_store *store = test_open_store(path);
	struct cb_err err = {{0}};
	int64_t id = ingest_pzd(store, "a@example.com", "k", &move_decision, NULL);
	int forbidden = 0;

	(void)state;
	for (int from = 0; from < CB_JOB_STATE_COUNT; from++) {
		for (int to = 0; to < CB_JOB_STATE_COUNT; to++) {
			int listed = edge_listed((enum cb_job_state)from, (enum cb_job_state)to);

			assert_int_equal(cb_job_transition_allowed((enum cb_job_state)from,
								   (enum cb_job_state)to),
					 listed);
			if (listed)
				continue;
			forbidden++;
			set_job_state(path, id, cb_job_state_name((enum cb_job_state)from));
			assert_int_equal(cb_store_job_transition(store, id, (enum cb_job_state)from,
								 (enum cb_job_state)to, NULL, &err),
					 -1);
			assert_non_null(strstr(err.msg, "not allowed"));
			assert_int_equal(job_state(store, id), from);
		}
	}
	assert_int_equal(forbidden, CB_JOB_STATE_COUNT * CB_JOB_STATE_COUNT - 12);
	assert_int_equal(audit_of(store, id).count, 1);
	assert_int_equal(cb_store_job_transition(store, id, CB_JOB_STATE_COUNT, CB_JOB_QUEUED, NULL,
						 &err),
			 -1);
	assert_int_equal(cb_job_transition_allowed(CB_JOB_QUEUED, CB_JOB_SKIPPED), 0);
	cb_store_close(store);
	free(path);
}

static void transition_stale_state_rejected(void **state)
{
	char *path = test_store_path();
	struct cb_store *store = test_open_store(path);
	struct cb_err err = {{0}};
	int64_t id = ingest_pzd(store, "a@example.com", "k", &move_decision, NULL);

	(void)state;
	assert_int_equal(cb_store_job_transition(store, id, CB_JOB_RUNNING, CB_JOB_DONE, NULL, &err),
			 -1);
	assert_non_null(strstr(err.msg, "is in state queued"));
	assert_int_equal(job_state(store, id), CB_JOB_QUEUED);
	assert_int_equal(audit_of(store, id).count, 1);

	assert_int_equal(cb_store_job_transition(store, id, CB_JOB_QUEUED, CB_JOB_RUNNING, NULL, &err),
			 0);
	assert_int_equal(cb_store_job_transition(store, id, CB_JOB_QUEUED, CB_JOB_RUNNING, NULL, &err),
			 -1);
	assert_non_null(strstr(err.msg, "is in state running"));

	assert_int_equal(cb_store_job_transition(store, 9999, CB_JOB_QUEUED, CB_JOB_RUNNING, NULL,
						 &err),
			 -1);
	assert_non_null(strstr(err.msg, "does not exist"));
	cb_store_close(store);
	free(path);
}

static void transition_applies_fields(void **state)
{
	char *path = test_store_path();
	struct cb_store *store = test_open_store(path);
	struct cb_transition t = CB_TRANSITION_INIT;
	struct cb_err err = {{0}};
	struct audit_seen seen;
	struct cb_job job;
	int64_t id = ingest_pzd(store, "a@example.com", "k", &move_decision, NULL);

	(void)state;
	assert_int_equal(cb_store_job_transition(store, id, CB_JOB_QUEUED, CB_JOB_RUNNING, NULL, &err),
			 0);
	t.error = "HTTP 503 from graph";
	t.next_attempt_ms = 123456;
	t.add_attempts = 1;
	t.add_searches = 1;
	t.may_have_acted = 1;
	t.detail_json = "{\"request_id\":\"r-1\"}";
	assert_int_equal(cb_store_job_transition(store, id, CB_JOB_RUNNING, CB_JOB_RETRY_WAIT, &t,
						 &err),
			 0);

	assert_int_equal(cb_store_job_get(store, id, &job, &err), 0);
	assert_int_equal(job.state, CB_JOB_RETRY_WAIT);
	assert_string_equal(job.last_error, "HTTP 503 from graph");
	assert_int_equal(job.next_attempt_ms, 123456);
	assert_int_equal(job.attempts, 1);
	assert_int_equal(job.searches, 1);
	assert_int_equal(job.may_have_acted, 1);
	assert_null(job.outcome);
	cb_job_clear(&job);

	seen = audit_of(store, id);
	assert_int_equal(seen.count, 3);
	assert_non_null(strstr(seen.detail[2], "\"error\":\"HTTP 503 from graph\""));
	assert_non_null(strstr(seen.detail[2], "\"next_attempt_ms\":123456"));
	assert_non_null(strstr(seen.detail[2], "\"attempts\":1"));
	assert_non_null(strstr(seen.detail[2], "\"detail\":{\"request_id\":\"r-1\"}"));
	assert_null(strstr(seen.detail[2], "outcome"));
	cb_store_close(store);
	free(path);
}

static void transition_invalid_detail_fails(void **state)
{
	char *path = test_store_path();
	struct cb_store *store = test_open_store(path);
	struct cb_transition t = CB_TRANSITION_INIT;
	struct cb_err err = {{0}};
	int64_t id = ingest_pzd(store, "a@example.com", "k", &move_decision, NULL);

	(void)state;
	t.detail_json = "{\"unterminated";
	assert_int_equal(cb_store_job_transition(store, id, CB_JOB_QUEUED, CB_JOB_RUNNING, &t, &err),
			 -1);
	assert_int_equal(job_state(store, id), CB_JOB_QUEUED);
	assert_int_equal(audit_of(store, id).count, 1);
	cb_store_close(store);
	free(path);
}

/* --- due jobs, recovery, quarantine --- */

static void jobs_due_orders_and_promotes(void **state)
{
	char *path = test_store_path();
	struct cb_store *store = test_open_store(path);
	struct cb_err err = {{0}};
	struct cb_job *jobs;
	struct audit_seen seen;
	size_t n;
	int64_t ids[6];
	int64_t wakeup;

	(void)state;
	for (int i = 0; i < 6; i++) {
		char seed[16];

		snprintf(seed, sizeof(seed), "due%d", i);
		ids[i] = ingest_pzd(store, "a@example.com", seed, &move_decision, NULL);
	}
	/* ids[1] waits until 1000 (due), ids[3] until 5000 (not due), ids[5] is done. */
	exec_sql(path, "UPDATE jobs SET state = 'retry_wait', next_attempt_ms = 1000 WHERE id = 2;"
		       "UPDATE jobs SET state = 'retry_wait', next_attempt_ms = 5000 WHERE id = 4;"
		       "UPDATE jobs SET state = 'done' WHERE id = 6");
	assert_int_equal(cb_store_next_wakeup(store, &wakeup, &err), 0);
	assert_int_equal(wakeup, 1000);

	assert_int_equal(cb_store_jobs_due(store, 2000, 0, 10, &jobs, &n, &err), 0);
	assert_int_equal(n, 4);
	assert_int_equal(jobs[0].id, ids[0]);
	assert_int_equal(jobs[1].id, ids[1]);
	assert_int_equal(jobs[2].id, ids[2]);
	assert_int_equal(jobs[3].id, ids[4]);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(jobs[i].state, CB_JOB_QUEUED);
	cb_jobs_free(jobs, n);

	assert_int_equal(job_state(store, ids[3]), CB_JOB_RETRY_WAIT);
	seen = audit_of(store, ids[1]);
	assert_int_equal(seen.count, 2);
	assert_string_equal(seen.from[1], "retry_wait");
	assert_string_equal(seen.to[1], "queued");
	assert_int_equal(cb_store_next_wakeup(store, &wakeup, &err), 0);
	assert_int_equal(wakeup, 5000);

	/* Paging: after the second job, at most two. */
	assert_int_equal(cb_store_jobs_due(store, 2000, ids[1], 2, &jobs, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(jobs[0].id, ids[2]);
	assert_int_equal(jobs[1].id, ids[4]);
	cb_jobs_free(jobs, n);

	assert_int_equal(cb_store_jobs_due(store, 2000, 0, 0, &jobs, &n, &err), 0);
	assert_int_equal(n, 0);
	cb_jobs_free(jobs, n);
	cb_store_close(store);
	free(path);
}

static void recover_requeues_running(void **state)
{
	char *path = test_store_path();
	struct cb_store *store = test_open_store(path);
	struct cb_err err = {{0}};
	struct audit_seen seen;
	struct cb_job job;
	size_t n = 0;
	int64_t a = ingest_pzd(store, "a@example.com", "k1", &move_decision, NULL);
	int64_t b = ingest_pzd(store, "b@example.com", "k2", &move_decision, NULL);

	(void)state;
	assert_int_equal(cb_store_job_transition(store, a, CB_JOB_QUEUED, CB_JOB_RUNNING, NULL, &err),
			 0);
	assert_int_equal(cb_store_recover(store, &n, &err), 0);
	assert_int_equal(n, 1);

	assert_int_equal(cb_store_job_get(store, a, &job, &err), 0);
	assert_int_equal(job.state, CB_JOB_QUEUED);
	assert_int_equal(job.may_have_acted, 1);
	cb_job_clear(&job);
	assert_int_equal(cb_store_job_get(store, b, &job, &err), 0);
	assert_int_equal(job.may_have_acted, 0);
	cb_job_clear(&job);

	seen = audit_of(store, a);
	assert_int_equal(seen.count, 3);
	assert_string_equal(seen.kind[2], "recover");
	assert_string_equal(seen.from[2], "running");
	assert_string_equal(seen.to[2], "queued");

	assert_int_equal(cb_store_recover(store, &n, &err), 0);
	assert_int_equal(n, 0);
	cb_store_close(store);
	free(path);
}

static void quarantine_moves_bad_rows(void **state)
{
	char *path = test_store_path();
	struct cb_store *store = test_open_store(path);
	struct cb_err err = {{0}};
	struct cb_job *jobs;
	struct cb_job job;
	struct audit_seen seen;
	size_t n;
	int64_t ids[5];

	(void)state;
	for (int i = 0; i < 5; i++) {
		char seed[16];

		snprintf(seed, sizeof(seed), "bad%d", i);
		ids[i] = ingest_pzd(store, "a@example.com", seed, &move_decision, NULL);
	}
	exec_sql(path, "UPDATE jobs SET action_kind = 'explode' WHERE id = 1;"
		       "UPDATE jobs SET mailbox = '' WHERE id = 2;"
		       "UPDATE jobs SET state = 'bogus' WHERE id = 4;"
		       "UPDATE jobs SET action_folder = '' WHERE id = 5");

	assert_int_equal(cb_store_jobs_due(store, 0, 0, 10, &jobs, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(jobs[0].id, ids[2]);
	cb_jobs_free(jobs, n);

	assert_int_equal(cb_store_job_get(store, ids[0], &job, &err), 0);
	assert_int_equal(job.state, CB_JOB_FINAL_ERROR);
	assert_non_null(strstr(job.last_error, "unknown action"));
	cb_job_clear(&job);
	assert_int_equal(cb_store_job_get(store, ids[1], &job, &err), 0);
	assert_int_equal(job.state, CB_JOB_FINAL_ERROR);
	assert_non_null(strstr(job.last_error, "empty mailbox"));
	cb_job_clear(&job);
	assert_int_equal(query_int(path, "SELECT count(*) FROM jobs WHERE state = 'final_error'"), 3);
	seen = audit_of(store, ids[4]);
	assert_string_equal(seen.kind[seen.count - 1], "quarantine");
	assert_string_equal(seen.from[seen.count - 1], "queued");
	assert_string_equal(seen.to[seen.count - 1], "final_error");

	/* The unknown state is read as final_error and quarantined by recovery. */
	assert_int_equal(cb_store_job_get(store, ids[3], &job, &err), 0);
	assert_int_equal(job.state, CB_JOB_FINAL_ERROR);
	assert_non_null(strstr(job.last_error, "unknown state"));
	cb_job_clear(&job);
	assert_int_equal(query_int(path, "SELECT count(*) FROM jobs WHERE state = 'bogus'"), 1);
	assert_int_equal(cb_store_recover(store, &n, &err), 0);
	assert_int_equal(query_int(path, "SELECT count(*) FROM jobs WHERE state = 'bogus'"), 0);
	seen = audit_of(store, ids[3]);
	assert_string_equal(seen.kind[seen.count - 1], "quarantine");
	assert_string_equal(seen.from[seen.count - 1], "bogus");
	assert_int_equal(query_int(path, "SELECT count(*) FROM jobs"), 5);
	cb_store_close(store);
	free(path);
}

/* --- administrator changes --- */

static void requeue_resets_attempts(void **state)
{
	char *path = test_store_path();
	struct cb_store *store = test_open_store(path);
	struct cb_err err = {{0}};
	struct audit_seen seen;
	struct cb_job job;
	int64_t id = ingest_pzd(store, "a@example.com", "k", &move_decision, NULL);

	(void)state;
	assert_int_equal(cb_store_job_requeue(store, id, &err), -1);
	assert_non_null(strstr(err.msg, "state queued"));

	exec_sql(path, "UPDATE jobs SET state = 'retry_queue', attempts = 5, searches = 2");
	assert_int_equal(cb_store_job_requeue(store, id, &err), 0);
	assert_int_equal(cb_store_job_get(store, id, &job, &err), 0);
	assert_int_equal(job.state, CB_JOB_QUEUED);
	assert_int_equal(job.attempts, 0);
	assert_int_equal(job.searches, 0);
	cb_job_clear(&job);
	seen = audit_of(store, id);
	assert_string_equal(seen.kind[seen.count - 1], "requeue");
	assert_string_equal(seen.from[seen.count - 1], "retry_queue");

	set_job_state(path, id, "final_error");
	assert_int_equal(cb_store_job_requeue(store, id, &err), 0);
	assert_int_equal(job_state(store, id), CB_JOB_QUEUED);
	assert_int_equal(cb_store_job_requeue(store, 4242, &err), -1);
	assert_non_null(strstr(err.msg, "does not exist"));
	cb_store_close(store);
	free(path);
}

static int count_jobs_cb(const struct cb_job *job, void *ctx)
{
	(void)job;
	(*(int *)ctx)++;
	return 0;
}

static void delete_marks_job(void **state)
{
	char *path = test_store_path();
	struct cb_store *store = test_open_store(path);
	struct cb_err err = {{0}};
	struct cb_filter f = CB_FILTER_INIT;
	struct audit_seen seen;
	struct cb_job job;
	int64_t counts[CB_JOB_STATE_COUNT];
	int listed = 0;
	int64_t id = ingest_pzd(store, "a@example.com", "k", &move_decision, NULL);

	(void)state;
	assert_int_equal(cb_store_job_delete(store, id, &err), -1);
	assert_non_null(strstr(err.msg, "state queued"));

	set_job_state(path, id, "final_error");
	assert_int_equal(cb_store_job_delete(store, id, &err), 0);
	assert_int_equal(cb_store_job_get(store, id, &job, &err), 0);
	assert_true(job.deleted_ms > 0);
	assert_int_equal(job.state, CB_JOB_FINAL_ERROR);
	cb_job_clear(&job);

	seen = audit_of(store, id);
	assert_string_equal(seen.kind[seen.count - 1], "delete");
	assert_string_equal(seen.from[seen.count - 1], "final_error");

	assert_int_equal(cb_store_job_delete(store, id, &err), -1);
	assert_non_null(strstr(err.msg, "was deleted"));
	assert_int_equal(cb_store_job_requeue(store, id, &err), -1);
	assert_non_null(strstr(err.msg, "was deleted"));
	assert_int_equal(cb_store_job_transition(store, id, CB_JOB_FINAL_ERROR, CB_JOB_QUEUED, NULL,
						 &err),
			 -1);

	assert_int_equal(cb_store_list_jobs(store, &f, count_jobs_cb, &listed, &err), 0);
	assert_int_equal(listed, 0);
	f.include_deleted = 1;
	assert_int_equal(cb_store_list_jobs(store, &f, count_jobs_cb, &listed, &err), 0);
	assert_int_equal(listed, 1);
	assert_int_equal(cb_store_count_jobs(store, counts, &err), 0);
	assert_int_equal(counts[CB_JOB_FINAL_ERROR], 0);
	cb_store_close(store);
	free(path);
}

/* --- retention --- */

static void prune_keeps_unfinished_jobs(void **state)
{
	char *path = test_store_path();
	struct cb_store *store = test_open_store(path);
	struct cb_err err = {{0}};
	int64_t deleted = 0;
	int64_t now = cb_now_ms();
	int64_t done = ingest_pzd(store, "a@example.com", "k1", &move_decision, NULL);
	int64_t queued = ingest_pzd(store, "b@example.com", "k2", &move_decision, NULL);
	int64_t removed = ingest_pzd(store, "c@example.com", "k3", &move_decision, NULL);
	int64_t retry = ingest_pzd(store, "d@example.com", "k4", &move_decision, NULL);

	(void)state;
	ingest_pzd(store, "a@example.com", "k1", &move_decision, NULL); /* a duplicate of done */
	set_job_state(path, done, "done");
	set_job_state(path, removed, "final_error");
	set_job_state(path, retry, "retry_wait");
	assert_int_equal(cb_store_job_delete(store, removed, &err), 0);

	/* Nothing is old yet. */
	assert_int_equal(cb_store_prune(store, now, 90 * DAY_MS, 90 * DAY_MS, &deleted, &err), 0);
	assert_int_equal(deleted, 0);

	assert_int_equal(cb_store_prune(store, now + 100 * DAY_MS, 90 * DAY_MS, 0, &deleted, &err), 0);
	assert_int_equal(deleted, 3);
	assert_int_equal(query_int(path, "SELECT count(*) FROM events"), 2);
	assert_int_equal(query_int(path, "SELECT count(*) FROM jobs"), 2);
	assert_int_equal(job_state(store, queued), CB_JOB_QUEUED);
	assert_int_equal(job_state(store, retry), CB_JOB_RETRY_WAIT);
	assert_true(query_int(path, "SELECT count(*) FROM audit") > 0);

	assert_int_equal(cb_store_prune(store, now + 100 * DAY_MS, 90 * DAY_MS, 30 * DAY_MS, &deleted,
					&err),
			 0);
	assert_int_equal(query_int(path, "SELECT count(*) FROM audit"), 0);
	assert_int_equal(query_int(path, "PRAGMA foreign_key_check"), -1);
	cb_store_close(store);
	free(path);
}

static void prune_handles_many_rows(void **state)
{
	char *path = test_store_path();
	struct cb_store *store = test_open_store(path);
	struct cb_err err = {{0}};
	int64_t deleted = 0;

	(void)state;
	assert_int_equal(cb_store_begin(store, &err), 0);
	for (int i = 0; i < 2500; i++) {
		char seed[16];

		snprintf(seed, sizeof(seed), "many%d", i);
		ingest_pzd(store, "a@example.com", seed, &skip_decision, NULL);
	}
	assert_int_equal(cb_store_commit(store, &err), 0);
	assert_int_equal(cb_store_prune(store, cb_now_ms() + 2 * DAY_MS, DAY_MS, DAY_MS, &deleted,
					&err),
			 0);
	assert_int_equal(deleted, 5000);
	assert_int_equal(query_int(path, "SELECT count(*) FROM events"), 0);
	assert_int_equal(query_int(path, "SELECT count(*) FROM jobs"), 0);
	cb_store_close(store);
	free(path);
}

/* --- listings and counts --- */

struct event_ids {
	int n;
	int64_t id[16];
};

static int collect_event_ids(const struct cb_event_row *row, void *ctx)
{
	struct event_ids *ids = ctx;

	if (ids->n < 16)
		ids->id[ids->n++] = row->id;
	return 0;
}

static struct event_ids list_events(struct cb_store *store, const struct cb_filter *f)
{
	struct event_ids ids = {0};
	struct cb_err err = {{0}};

	if (cb_store_list_events(store, f, collect_event_ids, &ids, &err) < 0)
		fail_msg("cb_store_list_events: %s", err.msg);
	return ids;
}

static int stop_after_first(const struct cb_event_row *row, void *ctx)
{
	(void)row;
	(*(int *)ctx)++;
	return 1;
}

static void list_events_filters(void **state)
{
	char *path = test_store_path();
	struct cb_store *store = test_open_store(path);
	struct cb_filter f = CB_FILTER_INIT;
	struct cb_ingest_result r1, r2, r3;
	struct cb_err err = {{0}};
	struct event_ids ids;
	int calls = 0;

	(void)state;
	ingest_pzd(store, "Alice@example.com", "k1", &move_decision, &r1);
	ingest_pzd(store, "bob@example.com", "k2", &move_decision, &r2);
	ingest_pzd(store, "alice@example.com", "k1", &move_decision, &r3);
	assert_int_equal(cb_store_ingest(store, "x", 1, "test", NULL, CB_REJECT_NOT_JSON, "x", NULL,
					 &r3, &err),
			 0);

	ids = list_events(store, &f);
	assert_int_equal(ids.n, 4);
	f.state = CB_EVENT_DUPLICATE;
	ids = list_events(store, &f);
	assert_int_equal(ids.n, 1);
	f.state = -1;
	f.recipient = "ALICE@example.com";
	ids = list_events(store, &f);
	assert_int_equal(ids.n, 2);
	assert_int_equal(ids.id[0], r1.event_id);
	f.descending = 1;
	f.limit = 1;
	ids = list_events(store, &f);
	assert_int_equal(ids.n, 1);
	assert_int_equal(ids.id[0], r1.event_id + 2);

	f = (struct cb_filter)CB_FILTER_INIT;
	f.event_id = r2.event_id;
	ids = list_events(store, &f);
	assert_int_equal(ids.n, 1);
	assert_int_equal(ids.id[0], r2.event_id);
	f.event_id = 0;
	f.message_id = "<m1@example.com>";
	f.until_ms = 1;
	ids = list_events(store, &f);
	assert_int_equal(ids.n, 0);
	f.until_ms = 0;
	f.since_ms = cb_now_ms() - 60000;
	ids = list_events(store, &f);
	assert_int_equal(ids.n, 3);

	f = (struct cb_filter)CB_FILTER_INIT;
	assert_int_equal(cb_store_list_events(store, &f, stop_after_first, &calls, &err), 0);
	assert_int_equal(calls, 1);
	cb_store_close(store);
	free(path);
}

static void list_jobs_filters(void **state)
{
	char *path = test_store_path();
	struct cb_store *store = test_open_store(path);
	struct cb_filter f = CB_FILTER_INIT;
	struct cb_ingest_result r;
	struct cb_err err = {{0}};
	int64_t counts[CB_JOB_STATE_COUNT];
	int n = 0;
	int64_t a = ingest_pzd(store, "a@example.com", "k1", &move_decision, NULL);

	(void)state;
	ingest_pzd(store, "b@example.com", "k2", &move_decision, &r);
	ingest_pzd(store, "b@example.com", "k3", &skip_decision, NULL);
	assert_int_equal(cb_store_job_transition(store, a, CB_JOB_QUEUED, CB_JOB_RUNNING, NULL, &err),
			 0);

	f.state = CB_JOB_QUEUED;
	assert_int_equal(cb_store_list_jobs(store, &f, count_jobs_cb, &n, &err), 0);
	assert_int_equal(n, 1);
	n = 0;
	f.state = -1;
	f.recipient = "B@EXAMPLE.COM";
	assert_int_equal(cb_store_list_jobs(store, &f, count_jobs_cb, &n, &err), 0);
	assert_int_equal(n, 2);
	n = 0;
	f.event_id = r.event_id;
	assert_int_equal(cb_store_list_jobs(store, &f, count_jobs_cb, &n, &err), 0);
	assert_int_equal(n, 1);

	assert_int_equal(cb_store_count_jobs(store, counts, &err), 0);
	assert_int_equal(counts[CB_JOB_QUEUED], 1);
	assert_int_equal(counts[CB_JOB_RUNNING], 1);
	assert_int_equal(counts[CB_JOB_SKIPPED], 1);
	assert_int_equal(counts[CB_JOB_DONE], 0);
	cb_store_close(store);
	free(path);
}

struct event_counts {
	int64_t pzd_accepted;
	int64_t pzd_duplicate;
	int64_t untyped_rejected;
};

static int collect_counts(const char *type, enum cb_event_status status, int64_t count, void *ctx)
{
	struct event_counts *c = ctx;

	if (strcmp(type, "PZD") == 0 && status == CB_EVENT_ACCEPTED)
		c->pzd_accepted = count;
	if (strcmp(type, "PZD") == 0 && status == CB_EVENT_DUPLICATE)
		c->pzd_duplicate = count;
	if (strcmp(type, "") == 0 && status == CB_EVENT_REJECTED)
		c->untyped_rejected = count;
	return 0;
}

static void count_events_by_type(void **state)
{
	char *path = test_store_path();
	struct cb_store *store = test_open_store(path);
	struct event_counts c = {0};
	struct cb_ingest_result r;
	struct cb_err err = {{0}};

	(void)state;
	ingest_pzd(store, "a@example.com", "k1", &move_decision, NULL);
	ingest_pzd(store, "a@example.com", "k2", &move_decision, NULL);
	ingest_pzd(store, "a@example.com", "k2", &move_decision, NULL);
	assert_int_equal(cb_store_ingest(store, "x", 1, "test", NULL, CB_REJECT_NOT_JSON, NULL, NULL,
					 &r, &err),
			 0);
	assert_int_equal(cb_store_count_events(store, collect_counts, &c, &err), 0);
	assert_int_equal(c.pzd_accepted, 2);
	assert_int_equal(c.pzd_duplicate, 1);
	assert_int_equal(c.untyped_rejected, 1);
	cb_store_close(store);
	free(path);
}

static void attempt_recorded_in_audit(void **state)
{
	char *path = test_store_path();
	struct cb_store *store = test_open_store(path);
	struct cb_attempt a = {
		.attempt = 1,
		.backend = "graph",
		.step = "search",
		.request_id = "req-\"1\"",
		.client_request_id = "c-1",
		.http_status = 429,
		.result = "temporary",
		.detail = "Retry-After: 10",
		.duration_ms = 52,
	};
	struct cb_err err = {{0}};
	struct audit_seen seen;
	int64_t id = ingest_pzd(store, "a@example.com", "k", &move_decision, NULL);

	(void)state;
	a.job_id = id;
	assert_int_equal(cb_store_audit_attempt(store, &a, &err), 0);
	seen = audit_of(store, id);
	assert_int_equal(seen.count, 2);
	assert_string_equal(seen.kind[1], "attempt");
	assert_non_null(strstr(seen.detail[1], "\"http_status\":429"));
	assert_non_null(strstr(seen.detail[1], "\"request_id\":\"req-\\\"1\\\"\""));
	assert_int_equal(query_int(path, "SELECT event_id FROM audit WHERE kind = 'attempt'"), 1);
	cb_store_close(store);
	free(path);
}

static void data_version_sees_other_commits(void **state)
{
	char *path = test_store_path();
	struct cb_store *store = test_open_store(path);
	struct cb_store *other = test_open_store(path);
	int64_t before, after;

	(void)state;
	before = cb_store_data_version(store);
	assert_true(before >= 0);
	ingest_pzd(other, "a@example.com", "k", &move_decision, NULL);
	after = cb_store_data_version(store);
	assert_true(after != before);
	assert_int_equal(cb_store_data_version(store), after);
	cb_store_close(other);
	cb_store_close(store);
	free(path);
}

/* --- crash safety --- */

#define CRASH_ROUNDS 8
#define CRASH_BATCH 200
#define CRASH_MAX_BATCHES 100000

/*
 * Child: ingests batches start-1 (a redelivery of the last batch, which must
 * become duplicates) and then start, start+1, ... and reports each committed
 * batch number on fd. Runs until killed.
 */
static void crash_child(const char *path, int start, int fd)
{
	struct cb_store *store = NULL;
	struct cb_err err;

	if (cb_store_open(path, &store, &err) < 0)
		_exit(2);
	for (int b = start > 0 ? start - 1 : 0; b < CRASH_MAX_BATCHES; b++) {
		char source[32];

		snprintf(source, sizeof(source), "batch:%d", b);
		if (cb_store_begin(store, &err) < 0)
			_exit(3);
		for (int i = 0; i < CRASH_BATCH; i++) {
			struct cb_ingest_result res;
			struct cb_event ev;
			char seed[32];
			char raw[1024];

			snprintf(seed, sizeof(seed), "%d/%d", b, i);
			memset(raw, 'x', sizeof(raw));
			snprintf(raw, 64, "{\"batch\":%d,\"i\":%d}", b, i);
			make_event(&ev, "PZD", "victim@example.com", "<crash@example.com>", seed);
			if (cb_store_ingest(store, raw, sizeof(raw), source, &ev, CB_REJECT_NONE, NULL,
					    &move_decision, &res, &err) < 0)
				_exit(4);
			cb_event_clear(&ev);
		}
		if (cb_store_commit(store, &err) < 0)
			_exit(5);
		if (write(fd, &b, sizeof(b)) != sizeof(b))
			_exit(6);
	}
	cb_store_close(store);
	_exit(0);
}

/* Checks the store after a kill; returns the number of whole batches. */
static int crash_check(const char *path, int reported)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int batches = 0;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);

	/* Per batch: all or nothing, for accepted events and for redelivered duplicates. */
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT CAST(substr(source, 7) AS INTEGER) AS b, "
					    "sum(status = 'accepted'), sum(status = 'duplicate') "
					    "FROM events GROUP BY b ORDER BY b",
					    -1, &st, NULL),
			 SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		assert_int_equal(sqlite3_column_int(st, 0), batches);
		assert_int_equal(sqlite3_column_int(st, 1), CRASH_BATCH);
		assert_int_equal(sqlite3_column_int(st, 2) % CRASH_BATCH, 0);
		batches++;
	}
	sqlite3_finalize(st);
	assert_true(batches > reported);

	/* Each detection once: one accepted event, one job and one decision per key. */
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT (SELECT count(*) FROM events WHERE status = 'accepted'),"
					    " (SELECT count(DISTINCT dedup_key) FROM events),"
					    " (SELECT count(*) FROM jobs),"
					    " (SELECT count(*) FROM audit WHERE kind = 'decision'),"
					    " (SELECT count(*) FROM events e WHERE status = 'duplicate' AND"
					    "  NOT EXISTS (SELECT 1 FROM events a WHERE a.id = e.duplicate_of))",
					    -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), batches * CRASH_BATCH);
	assert_int_equal(sqlite3_column_int(st, 1), batches * CRASH_BATCH);
	assert_int_equal(sqlite3_column_int(st, 2), batches * CRASH_BATCH);
	assert_int_equal(sqlite3_column_int(st, 3), batches * CRASH_BATCH);
	assert_int_equal(sqlite3_column_int(st, 4), 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return batches;
}

static void crash_kill_keeps_batches_whole(void **state)
{
	char *path = test_store_path();
	unsigned seed = (unsigned)time(NULL);
	int batches = 0;
	int killed_with_progress = 0;

	(void)state;
	print_message("crash test seed %u\n", seed);
	srand(seed);
	for (int round = 0; round < CRASH_ROUNDS; round++) {
		int fds[2];
		int reported = -1;
		int b;
		pid_t pid;
		struct cb_store *store;

		assert_int_equal(pipe(fds), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(fds[0]);
			crash_child(path, batches, fds[1]);
		}
		close(fds[1]);
		usleep((useconds_t)(20000 + rand() % 400000));
		assert_int_equal(kill(pid, SIGKILL), 0);
		assert_int_equal(waitpid(pid, NULL, 0), pid);
		while (read(fds[0], &b, sizeof(b)) == sizeof(b))
			reported = b;
		close(fds[0]);

		/* Reopening runs WAL recovery; the schema must still open. */
		store = test_open_store(path);
		cb_store_close(store);
		b = crash_check(path, reported);
		if (b > batches)
			killed_with_progress++;
		batches = b;
	}
	print_message("crash test: %d batches of %d committed over %d rounds, %d rounds with "
		      "progress\n",
		      batches, CRASH_BATCH, CRASH_ROUNDS, killed_with_progress);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(open_creates_schema_and_reopens),
		cmocka_unit_test(open_uses_wal),
		cmocka_unit_test(open_rejects_newer_schema),
		cmocka_unit_test(open_rejects_other_application),
		cmocka_unit_test(open_rejects_non_database),
		cmocka_unit_test(ingest_accepted_creates_job),
		cmocka_unit_test(ingest_skip_creates_skipped_job),
		cmocka_unit_test(ingest_other_type_is_ignored),
		cmocka_unit_test(ingest_rejected_keeps_reason),
		cmocka_unit_test(ingest_duplicate_has_no_job),
		cmocka_unit_test(dedup_index_rejects_second_accepted),
		cmocka_unit_test(ingest_cuts_oversized_raw),
		cmocka_unit_test(ingest_stores_hostile_bytes_verbatim),
		cmocka_unit_test(ingest_rejects_pzd_without_decision),
		cmocka_unit_test(batch_rollback_discards_all),
		cmocka_unit_test(batch_survives_failed_call),
		cmocka_unit_test(batch_failed_write_rolls_back),
		cmocka_unit_test(transition_every_allowed_edge),
		cmocka_unit_test(transition_forbidden_edges_rejected),
		cmocka_unit_test(transition_stale_state_rejected),
		cmocka_unit_test(transition_applies_fields),
		cmocka_unit_test(transition_invalid_detail_fails),
		cmocka_unit_test(jobs_due_orders_and_promotes),
		cmocka_unit_test(recover_requeues_running),
		cmocka_unit_test(quarantine_moves_bad_rows),
		cmocka_unit_test(requeue_resets_attempts),
		cmocka_unit_test(delete_marks_job),
		cmocka_unit_test(prune_keeps_unfinished_jobs),
		cmocka_unit_test(prune_handles_many_rows),
		cmocka_unit_test(list_events_filters),
		cmocka_unit_test(list_jobs_filters),
		cmocka_unit_test(count_events_by_type),
		cmocka_unit_test(attempt_recorded_in_audit),
		cmocka_unit_test(data_version_sees_other_commits),
		cmocka_unit_test(crash_kill_keeps_batches_whole),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
