/*
 * store.c: opening the store, transactions, the statement cache and ingest.
 *
 * Each thread that uses the store opens its own struct cb_store; a handle is
 * never shared between threads (the connection is opened with
 * SQLITE_OPEN_NOMUTEX). Ingest receives untrusted bytes from the feed: they
 * are stored as a BLOB, cut at CB_STORE_RAW_MAX, and only ever bound as
 * parameters, never pasted into SQL. See store.h for the state machine and
 * docs/store.md for the schema and the durability promise.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "store/store_internal.h"

static const char *const stmt_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_DATA_VERSION] = "PRAGMA data_version",
	[ST_DEDUP_LOOKUP] = "SELECT id FROM events WHERE dedup_key = ?1 AND status = 'accepted'",
	[ST_EVENT_INSERT] =
		"INSERT INTO events(received_ms, source, status, type, customer, sender, recipient, "
		"recipient_norm, message_id, rmx_id, ts_ms, threat, details, dedup_key, duplicate_of, "
		"reject_reason, reject_detail, raw, raw_size) "
		"VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, "
		"?18, ?19)",
	[ST_JOB_INSERT] =
		"INSERT INTO jobs(event_id, mailbox, message_id, state, rule, reason, action_kind, "
		"action_folder, dry_run, notify, created_ms, updated_ms) "
		"VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
	[ST_AUDIT_DECISION] =
		"INSERT INTO audit(at_ms, job_id, event_id, kind, to_state, detail) "
		"VALUES(?1, ?2, ?3, 'decision', ?4, json_patch('{}', json_object('rule', ?5, "
		"'reason', ?6, 'action', ?7, 'folder', nullif(?8, ''), "
		"'dry_run', json(CASE WHEN ?9 THEN 'true' ELSE 'false' END), 'notify', json(?10))))",
	[ST_JOB_TRANSITION] =
		"UPDATE jobs SET state = ?3, updated_ms = ?4, last_error = coalesce(?5, last_error), "
		"outcome = coalesce(?6, outcome), found_in = coalesce(?7, found_in), "
		"next_attempt_ms = CASE WHEN ?8 > 0 THEN ?8 ELSE next_attempt_ms END, "
		"attempts = CASE WHEN ?9 THEN 0 ELSE attempts + ?10 END, "
		"searches = CASE WHEN ?9 THEN 0 ELSE searches + ?11 END, "
		"may_have_acted = CASE WHEN ?12 < 0 THEN may_have_acted ELSE ?12 END "
		"WHERE id = ?1 AND state = ?2 AND deleted_ms IS NULL "
		"RETURNING event_id, attempts, searches",
	[ST_JOB_STATE] = "SELECT state, deleted_ms FROM jobs WHERE id = ?1",
	[ST_AUDIT_TRANSITION] =
		"INSERT INTO audit(at_ms, job_id, event_id, kind, from_state, to_state, detail) "
		"VALUES(?1, ?2, ?3, ?4, ?5, ?6, json_patch('{}', json_object('error', ?7, "
		"'outcome', ?8, 'found_in', ?9, 'next_attempt_ms', ?10, 'attempts', ?11, "
		"'searches', ?12, 'may_have_acted', ?13, 'detail', json(?14))))",
	[ST_PROMOTE_AUDIT] =
		"INSERT INTO audit(at_ms, job_id, event_id, kind, from_state, to_state, detail) "
		"SELECT ?1, id, event_id, 'transition', 'retry_wait', 'queued', "
		"json_object('next_attempt_ms', next_attempt_ms) FROM jobs "
		"WHERE state = 'retry_wait' AND next_attempt_ms <= ?2 AND deleted_ms IS NULL",
	[ST_PROMOTE] = "UPDATE jobs SET state = 'queued', updated_ms = ?1 "
		       "WHERE state = 'retry_wait' AND next_attempt_ms <= ?2 AND deleted_ms IS NULL",
	[ST_JOBS_QUEUED] = "SELECT " STORE_JOB_COLUMNS " FROM jobs "
			   "WHERE state = 'queued' AND id > ?1 AND deleted_ms IS NULL "
			   "ORDER BY id LIMIT ?2",
	[ST_QUARANTINE] = "UPDATE jobs SET state = 'final_error', last_error = ?3, updated_ms = ?4 "
			  "WHERE id = ?1 AND state IS ?2 RETURNING event_id",
	[ST_NEXT_WAKEUP] = "SELECT min(next_attempt_ms) FROM jobs WHERE state = 'retry_wait'",
	[ST_JOB_GET] = "SELECT " STORE_JOB_COLUMNS " FROM jobs WHERE id = ?1",
	[ST_RECOVER_AUDIT] =
		"INSERT INTO audit(at_ms, job_id, event_id, kind, from_state, to_state, detail) "
		"SELECT ?1, id, event_id, 'recover', 'running', 'queued', "
		"json_object('may_have_acted', json('true')) FROM jobs WHERE state = 'running'",
	[ST_RECOVER] = "UPDATE jobs SET state = 'queued', may_have_acted = 1, updated_ms = ?1 "
		       "WHERE state = 'running'",
	[ST_JOB_DELETE] = "UPDATE jobs SET deleted_ms = ?2, updated_ms = ?2 "
			  "WHERE id = ?1 AND state IN ('retry_queue', 'final_error') "
			  "AND deleted_ms IS NULL RETURNING event_id, state",
	[ST_AUDIT_ATTEMPT] =
		"INSERT INTO audit(at_ms, job_id, event_id, kind, detail) "
		"VALUES(?1, ?2, (SELECT event_id FROM jobs WHERE id = ?2), 'attempt', "
		"json_patch('{}', json_object('attempt', ?3, 'backend', ?4, 'step', ?5, "
		"'request_id', ?6, 'client_request_id', ?7, 'http_status', ?8, 'result', ?9, "
		"'detail', ?10, 'duration_ms', ?11)))",
};

static const char *const job_state_names[CB_JOB_STATE_COUNT] = {
	[CB_JOB_QUEUED] = "queued",
	[CB_JOB_RUNNING] = "running",
	[CB_JOB_DONE] = "done",
	[CB_JOB_NOT_FOUND] = "not_found",
	[CB_JOB_SKIPPED] = "skipped",
	[CB_JOB_RETRY_WAIT] = "retry_wait",
	[CB_JOB_RETRY_QUEUE] = "retry_queue",
	[CB_JOB_FINAL_ERROR] = "final_error",
};

static const char *const event_status_names[] = {
	[CB_EVENT_ACCEPTED] = "accepted",
	[CB_EVENT_IGNORED] = "ignored",
	[CB_EVENT_REJECTED] = "rejected",
	[CB_EVENT_DUPLICATE] = "duplicate",
};

const char *cb_job_state_name(enum cb_job_state state)
{
	if ((unsigned)state >= CB_JOB_STATE_COUNT)
		return "unknown";
	return job_state_names[state];
}

int cb_job_state_parse(const char *name, enum cb_job_state *out)
{
	if (!name)
		return -1;
	for (int i = 0; i < CB_JOB_STATE_COUNT; i++) {
		if (strcmp(name, job_state_names[i]) == 0) {
			*out = (enum cb_job_state)i;
			return 0;
		}
	}
	return -1;
}

const char *cb_event_status_name(enum cb_event_status status)
{
	if ((unsigned)status >= sizeof(event_status_names) / sizeof(event_status_names[0]))
		return "unknown";
	return event_status_names[status];
}

int cb_event_status_parse(const char *name, enum cb_event_status *out)
{
	if (!name)
		return -1;
	for (size_t i = 0; i < sizeof(event_status_names) / sizeof(event_status_names[0]); i++) {
		if (strcmp(name, event_status_names[i]) == 0) {
			*out = (enum cb_event_status)i;
			return 0;
		}
	}
	return -1;
}

int store_fail(struct cb_store *store, struct cb_err *err, const char *what)
{
	return cb_err_set(err, "%s: %s (store %s)", what, sqlite3_errmsg(store->db), store->path);
}

sqlite3_stmt *store_stmt(struct cb_store *store, enum store_stmt which, struct cb_err *err)
{
	if (store->stmts[which])
		return store->stmts[which];
	if (sqlite3_prepare_v3(store->db, stmt_sql[which], -1, SQLITE_PREPARE_PERSISTENT,
			       &store->stmts[which], NULL) != SQLITE_OK) {
		store_fail(store, err, "cannot prepare a statement");
		return NULL;
	}
	return store->stmts[which];
}

int store_step_done(struct cb_store *store, sqlite3_stmt *st, struct cb_err *err, const char *what)
{
	int rc = sqlite3_step(st);

	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		store_fail(store, err, what);
		sqlite3_reset(st);
		return -1;
	}
	sqlite3_reset(st);
	return 0;
}

int store_bind_text(sqlite3_stmt *st, int index, const char *s)
{
	if (!s)
		return sqlite3_bind_null(st, index);
	return sqlite3_bind_text(st, index, s, -1, SQLITE_TRANSIENT);
}

static int run(struct cb_store *store, enum store_stmt which, struct cb_err *err, const char *what)
{
	sqlite3_stmt *st = store_stmt(store, which, err);

	if (!st)
		return -1;
	return store_step_done(store, st, err, what);
}

int store_op_begin(struct cb_store *store, struct cb_err *err)
{
	if (store->in_batch && store->batch_failed)
		return cb_err_set(err, "an earlier write in this batch failed; roll the batch back "
				       "(store %s)", store->path);
	if (store->in_batch) {
		store->op_changes = sqlite3_total_changes64(store->db);
		return 0;
	}
	return run(store, ST_BEGIN, err, "cannot start a transaction");
}

int store_op_end(struct cb_store *store, int rc, struct cb_err *err)
{
	if (store->in_batch) {
		/* A failure after the first write leaves the batch half-written: it can only be rolled back. */
		if (rc < 0 && sqlite3_total_changes64(store->db) != store->op_changes)
			store->batch_failed = 1;
		return rc;
	}
	if (rc < 0) {
		run(store, ST_ROLLBACK, NULL, "");
		return rc;
	}
	if (run(store, ST_COMMIT, err, "cannot commit") < 0) {
		if (!sqlite3_get_autocommit(store->db))
			run(store, ST_ROLLBACK, NULL, "");
		return -1;
	}
	return 0;
}

/*
 * Steps "PRAGMA journal_mode = WAL" until it is not busy, for at most
 * CB_STORE_BUSY_TIMEOUT_MS, and returns 1 when the store is in WAL mode.
 * The retry is needed because SQLite may return SQLITE_BUSY for this pragma
 * without calling the busy handler, for example while another process
 * creates the store or holds a write lock on it.
 */
static int journal_mode_wal(sqlite3_stmt *st)
{
	int64_t deadline = cb_mono_ms() + CB_STORE_BUSY_TIMEOUT_MS;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_BUSY && cb_mono_ms() < deadline) {
		sqlite3_reset(st);
		usleep(5000);
	}
	return rc == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
}

static int open_pragmas(struct cb_store *store, struct cb_err *err)
{
	sqlite3_stmt *st;
	int wal;

	sqlite3_extended_result_codes(store->db, 1);
	sqlite3_busy_timeout(store->db, CB_STORE_BUSY_TIMEOUT_MS);
	if (sqlite3_prepare_v2(store->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK)
		return store_fail(store, err, "cannot open the store");
	wal = journal_mode_wal(st);
	sqlite3_finalize(st);
	if (!wal)
		return store_fail(store, err, "cannot switch the store to WAL mode");
	/*
	 * A checkpoint every 10000 pages (40 MiB of WAL) and a page cache larger
	 * than SQLite's 2 MiB default keep the random-order indexes from being
	 * read and checkpointed as often. The cache is 4 MiB per connection: 16 MiB
	 * was about 10% faster at ingest but added 10 MB to a campaign's peak
	 * memory, where the daemon holds several connections.
	 */
	if (sqlite3_exec(store->db,
			 "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; "
			 "PRAGMA temp_store = MEMORY; PRAGMA cache_size = -4096; "
			 "PRAGMA wal_autocheckpoint = 10000",
			 NULL, NULL, NULL) != SQLITE_OK)
		return store_fail(store, err, "cannot set the store's pragmas");
	return 0;
}

int cb_store_open(const char *path, struct cb_store **out, struct cb_err *err)
{
	struct cb_store *store = calloc(1, sizeof(*store));
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;

	*out = NULL;
	if (!store || !(store->path = strdup(path))) {
		free(store);
		return cb_err_set(err, "out of memory opening the store %s", path);
	}
	if (sqlite3_open_v2(path, &store->db, flags, NULL) != SQLITE_OK) {
		store_fail(store, err, "cannot open the store");
		cb_store_close(store);
		return -1;
	}
	if (open_pragmas(store, err) < 0 || store_migrate(store, err) < 0) {
		cb_store_close(store);
		return -1;
	}
	*out = store;
	return 0;
}

void cb_store_close(struct cb_store *store)
{
	if (!store)
		return;
	if (store->in_batch)
		cb_store_rollback(store);
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(store->stmts[i]);
	sqlite3_close(store->db);
	free(store->path);
	free(store);
}

int cb_store_begin(struct cb_store *store, struct cb_err *err)
{
	if (store->in_batch)
		return cb_err_set(err, "a transaction is already open on store %s", store->path);
	if (run(store, ST_BEGIN, err, "cannot start a transaction") < 0)
		return -1;
	store->in_batch = 1;
	return 0;
}

int cb_store_commit(struct cb_store *store, struct cb_err *err)
{
	if (!store->in_batch)
		return cb_err_set(err, "no transaction is open on store %s", store->path);
	if (store->batch_failed) {
		cb_store_rollback(store);
		return cb_err_set(err, "an earlier write in this batch failed, so the batch was rolled "
				       "back instead of committed (store %s)", store->path);
	}
	store->in_batch = 0;
	if (run(store, ST_COMMIT, err, "cannot commit") < 0) {
		if (!sqlite3_get_autocommit(store->db))
			run(store, ST_ROLLBACK, NULL, "");
		return -1;
	}
	return 0;
}

int cb_store_rollback(struct cb_store *store)
{
	if (!store->in_batch)
		return 0;
	store->in_batch = 0;
	store->batch_failed = 0;
	if (sqlite3_get_autocommit(store->db))
		return 0;
	return run(store, ST_ROLLBACK, NULL, "");
}

int64_t cb_store_data_version(struct cb_store *store)
{
	sqlite3_stmt *st = store_stmt(store, ST_DATA_VERSION, NULL);
	int64_t version = -1;

	if (!st)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return version;
}

static int lookup_accepted(struct cb_store *store, const char *dedup_key, int64_t *id,
			   struct cb_err *err)
{
	sqlite3_stmt *st = store_stmt(store, ST_DEDUP_LOOKUP, err);
	int rc;

	if (!st)
		return -1;
	*id = 0;
	sqlite3_bind_text(st, 1, dedup_key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_fail(store, err, "cannot look up the duplicate key");
	return 0;
}

int cb_store_event_seen(struct cb_store *store, const char *dedup_key, int *seen, struct cb_err *err)
{
	int64_t id;

	if (lookup_accepted(store, dedup_key, &id, err) < 0)
		return -1;
	*seen = id != 0;
	return 0;
}

/* Everything ingest writes for one message, gathered before the first INSERT. */
struct ingest {
	const char *raw;
	size_t raw_len;
	const char *source;
	const struct cb_event *ev;
	const char *reject_reason;
	const char *detail;
	const struct cb_decision *dec;
	int64_t now_ms;
};

static int insert_event(struct cb_store *store, const struct ingest *in,
			struct cb_ingest_result *out, struct cb_err *err)
{
	sqlite3_stmt *st = store_stmt(store, ST_EVENT_INSERT, err);
	const struct cb_event *ev = in->ev;
	size_t stored_len = in->raw_len > CB_STORE_RAW_MAX ? CB_STORE_RAW_MAX : in->raw_len;
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, in->now_ms);
	sqlite3_bind_text(st, 2, in->source, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, cb_event_status_name(out->status), -1, SQLITE_STATIC);
	if (ev) {
		store_bind_text(st, 4, ev->type);
		store_bind_text(st, 5, ev->customer);
		store_bind_text(st, 6, ev->sender);
		store_bind_text(st, 7, ev->recipient);
		store_bind_text(st, 8, ev->recipient_norm);
		store_bind_text(st, 9, ev->message_id);
		store_bind_text(st, 10, ev->rmx_id);
		if (ev->ts_ms)
			sqlite3_bind_int64(st, 11, ev->ts_ms);
		if (ev->threat != CB_THREAT_NONE)
			store_bind_text(st, 12, cb_threat_name(ev->threat));
		store_bind_text(st, 13, ev->details);
		if (ev->dedup_key[0])
			sqlite3_bind_text(st, 14, ev->dedup_key, -1, SQLITE_STATIC);
	}
	if (out->duplicate_of)
		sqlite3_bind_int64(st, 15, out->duplicate_of);
	store_bind_text(st, 16, in->reject_reason);
	store_bind_text(st, 17, in->detail);
	sqlite3_bind_blob(st, 18, in->raw ? in->raw : "", (int)stored_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 19, (int64_t)in->raw_len);

	rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		return store_fail(store, err, "cannot store the event");
	out->event_id = sqlite3_last_insert_rowid(store->db);
	return 0;
}

static int insert_job(struct cb_store *store, const struct ingest *in, enum cb_job_state state,
		      struct cb_ingest_result *out, struct cb_err *err)
{
	sqlite3_stmt *st = store_stmt(store, ST_JOB_INSERT, err);
	const struct cb_decision *dec = in->dec;
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, out->event_id);
	sqlite3_bind_text(st, 2, in->ev->recipient_norm, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, in->ev->message_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, cb_job_state_name(state), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, dec->rule ? dec->rule : "(default)", -1, SQLITE_STATIC);
	store_bind_text(st, 6, dec->reason);
	sqlite3_bind_text(st, 7, cb_action_kind_name(dec->action.kind), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, dec->action.folder, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 9, dec->action.dry_run ? 1 : 0);
	sqlite3_bind_int64(st, 10, dec->action.notify);
	sqlite3_bind_int64(st, 11, in->now_ms);

	rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		return store_fail(store, err, "cannot store the job");
	out->job_id = sqlite3_last_insert_rowid(store->db);
	return 0;
}

static const char *notify_json(unsigned notify)
{
	switch (notify & (CB_NOTIFY_ADMIN | CB_NOTIFY_RECIPIENT)) {
	case CB_NOTIFY_ADMIN:
		return "[\"admin\"]";
	case CB_NOTIFY_RECIPIENT:
		return "[\"recipient\"]";
	case CB_NOTIFY_ADMIN | CB_NOTIFY_RECIPIENT:
		return "[\"admin\",\"recipient\"]";
	default:
		return "[]";
	}
}

static int insert_decision_audit(struct cb_store *store, const struct ingest *in,
				 enum cb_job_state state, const struct cb_ingest_result *out,
				 struct cb_err *err)
{
	sqlite3_stmt *st = store_stmt(store, ST_AUDIT_DECISION, err);
	const struct cb_decision *dec = in->dec;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, in->now_ms);
	sqlite3_bind_int64(st, 2, out->job_id);
	sqlite3_bind_int64(st, 3, out->event_id);
	sqlite3_bind_text(st, 4, cb_job_state_name(state), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, dec->rule ? dec->rule : "(default)", -1, SQLITE_STATIC);
	store_bind_text(st, 6, dec->reason);
	sqlite3_bind_text(st, 7, cb_action_kind_name(dec->action.kind), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, dec->action.folder, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 9, dec->action.dry_run ? 1 : 0);
	sqlite3_bind_text(st, 10, notify_json(dec->action.notify), -1, SQLITE_STATIC);
	return store_step_done(store, st, err, "cannot record the decision");
}

static int check_ingest_args(const struct ingest *in, int pzd, struct cb_err *err)
{
	if (!in->source)
		return cb_err_set(err, "ingest needs a source name");
	if (!pzd)
		return 0;
	if (!in->dec)
		return cb_err_set(err, "ingest of a PZD event needs the rules' decision");
	if (!in->ev->recipient_norm || !in->ev->recipient_norm[0] || !in->ev->message_id ||
	    !in->ev->message_id[0] || !in->ev->dedup_key[0])
		return cb_err_set(err, "PZD event without recipient, Message-ID or duplicate key; "
				       "only events accepted by cb_event_parse() can be ingested");
	if (in->dec->action.kind == CB_ACTION_MOVE && !in->dec->action.folder[0])
		return cb_err_set(err, "rule '%s' moves without a folder",
				  in->dec->rule ? in->dec->rule : "(default)");
	return 0;
}

static int ingest_in_tx(struct cb_store *store, const struct ingest *in, int pzd,
			struct cb_ingest_result *out, struct cb_err *err)
{
	enum cb_job_state state;

	if (!in->ev)
		out->status = CB_EVENT_REJECTED;
	else if (!pzd)
		out->status = CB_EVENT_IGNORED;
	else if (lookup_accepted(store, in->ev->dedup_key, &out->duplicate_of, err) < 0)
		return -1;
	else
		out->status = out->duplicate_of ? CB_EVENT_DUPLICATE : CB_EVENT_ACCEPTED;

	if (insert_event(store, in, out, err) < 0)
		return -1;
	if (out->status != CB_EVENT_ACCEPTED)
		return 0;

	state = in->dec->action.kind == CB_ACTION_SKIP ? CB_JOB_SKIPPED : CB_JOB_QUEUED;
	if (insert_job(store, in, state, out, err) < 0)
		return -1;
	return insert_decision_audit(store, in, state, out, err);
}

int cb_store_ingest(struct cb_store *store, const char *raw, size_t raw_len, const char *source,
		    const struct cb_event *ev, enum cb_event_reject reason, const char *detail,
		    const struct cb_decision *dec, struct cb_ingest_result *out, struct cb_err *err)
{
	struct ingest in = {
		.raw = raw,
		.raw_len = raw_len,
		.source = source,
		.ev = ev,
		.reject_reason = ev ? NULL : cb_event_reject_name(reason),
		.detail = ev ? NULL : detail,
		.dec = dec,
		.now_ms = cb_now_ms(),
	};
	int pzd = ev && ev->type && strcmp(ev->type, "PZD") == 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (check_ingest_args(&in, pzd, err) < 0)
		return -1;
	if (store_op_begin(store, err) < 0)
		return -1;
	rc = ingest_in_tx(store, &in, pzd, out, err);
	rc = store_op_end(store, rc, err);
	if (rc < 0)
		memset(out, 0, sizeof(*out));
	return rc;
}
