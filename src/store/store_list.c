/*
 * store_list.c: listings, counts, retention and attempt records.
 *
 * Runs in the control thread (console, CLI) for listings and counts, and in
 * the executor for attempt records and pruning. Filter values come from
 * console and CLI users: they are bound as named parameters, never pasted
 * into SQL; only the fixed clauses below are concatenated.
 */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/util.h"
#include "store/store_internal.h"

/* Rows deleted per transaction by cb_store_prune, so a large prune never holds the write lock long. */
#define PRUNE_CHUNK 1000
/* Maximum length of a listing query built from a filter (the fixed clauses need under 1 KiB). */
#define LIST_SQL_MAX 2048

/* Column names a filter applies to, which differ between events and jobs. */
struct filter_columns {
	const char *state;
	const char *recipient;
	const char *time;
	const char *event_id;
};

static const struct filter_columns event_columns = {"status", "recipient_norm", "received_ms", "id"};
static const struct filter_columns job_columns = {"state", "mailbox", "created_ms", "event_id"};

static int build_list_sql(struct cb_buf *sql, const char *select, const struct cb_filter *f,
			  const struct filter_columns *c)
{
	int rc = cb_buf_puts(sql, select);

	if (f->state >= 0)
		rc |= cb_buf_printf(sql, " AND %s = :state", c->state);
	if (f->recipient)
		rc |= cb_buf_printf(sql, " AND %s = lower(:recipient)", c->recipient);
	if (f->message_id)
		rc |= cb_buf_puts(sql, " AND message_id = :message_id");
	if (f->since_ms)
		rc |= cb_buf_printf(sql, " AND %s >= :since", c->time);
	if (f->until_ms)
		rc |= cb_buf_printf(sql, " AND %s < :until", c->time);
	if (f->event_id)
		rc |= cb_buf_printf(sql, " AND %s = :event_id", c->event_id);
	rc |= cb_buf_puts(sql, f->descending ? " ORDER BY id DESC" : " ORDER BY id");
	if (f->limit)
		rc |= cb_buf_puts(sql, " LIMIT :limit");
	return rc;
}

static void bind_named_text(sqlite3_stmt *st, const char *name, const char *value)
{
	int index = sqlite3_bind_parameter_index(st, name);

	if (index)
		sqlite3_bind_text(st, index, value, -1, SQLITE_TRANSIENT);
}

static void bind_named_int(sqlite3_stmt *st, const char *name, int64_t value)
{
	int index = sqlite3_bind_parameter_index(st, name);

	if (index)
		sqlite3_bind_int64(st, index, value);
}

static int prepare_list(struct cb_store *store, const char *select, const struct cb_filter *f,
			const struct filter_columns *c, const char *state_name, sqlite3_stmt **st,
			struct cb_err *err)
{
	struct cb_buf sql;
	int rc;

	cb_buf_init(&sql, LIST_SQL_MAX);
	if (build_list_sql(&sql, select, f, c) < 0) {
		cb_buf_free(&sql);
		return cb_err_set(err, "listing query longer than %d bytes", LIST_SQL_MAX);
	}
	rc = sqlite3_prepare_v2(store->db, sql.data, -1, st, NULL);
	cb_buf_free(&sql);
	if (rc != SQLITE_OK)
		return store_fail(store, err, "cannot prepare a listing");

	if (state_name)
		bind_named_text(*st, ":state", state_name);
	if (f->recipient)
		bind_named_text(*st, ":recipient", f->recipient);
	if (f->message_id)
		bind_named_text(*st, ":message_id", f->message_id);
	bind_named_int(*st, ":since", f->since_ms);
	bind_named_int(*st, ":until", f->until_ms);
	bind_named_int(*st, ":event_id", f->event_id);
	bind_named_int(*st, ":limit", f->limit > INT64_MAX ? INT64_MAX : (int64_t)f->limit);
	return 0;
}

static const char *column_text(sqlite3_stmt *st, int col)
{
	return (const char *)sqlite3_column_text(st, col);
}

static void read_event_row(sqlite3_stmt *st, struct cb_event_row *row)
{
	enum cb_event_status status = CB_EVENT_REJECTED;

	/* The CHECK constraint on events.status admits only the four known names. */
	cb_event_status_parse(column_text(st, 2), &status);
	memset(row, 0, sizeof(*row));
	row->id = sqlite3_column_int64(st, 0);
	row->received_ms = sqlite3_column_int64(st, 1);
	row->status = status;
	row->type = column_text(st, 3);
	row->recipient = column_text(st, 4);
	row->message_id = column_text(st, 5);
	row->reject_reason = column_text(st, 6);
	row->duplicate_of = sqlite3_column_int64(st, 7);
	row->source = column_text(st, 8);
	row->raw = sqlite3_column_blob(st, 9);
	row->raw_len = (size_t)sqlite3_column_bytes(st, 9);
	row->raw_size = sqlite3_column_int64(st, 10);
	row->reject_detail = column_text(st, 11);
	row->customer = column_text(st, 12);
	row->sender = column_text(st, 13);
	row->recipient_norm = column_text(st, 14);
	row->rmx_id = column_text(st, 15);
	row->ts_ms = sqlite3_column_int64(st, 16);
	row->threat = column_text(st, 17);
	row->details = column_text(st, 18);
	row->dedup_key = column_text(st, 19);
	if (!row->raw)
		row->raw = "";
}

int cb_store_list_events(struct cb_store *store, const struct cb_filter *f,
			 int (*fn)(const struct cb_event_row *row, void *ctx), void *ctx,
			 struct cb_err *err)
{
	static const char select[] =
		"SELECT id, received_ms, status, type, recipient, message_id, reject_reason, "
		"duplicate_of, source, raw, raw_size, reject_detail, customer, sender, recipient_norm, "
		"rmx_id, ts_ms, threat, details, dedup_key FROM events WHERE 1";
	struct cb_event_row row;
	sqlite3_stmt *st;
	int rc;

	if (prepare_list(store, select, f, &event_columns,
			 f->state >= 0 ? cb_event_status_name((enum cb_event_status)f->state) : NULL,
			 &st, err) < 0)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		read_event_row(st, &row);
		if (fn(&row, ctx) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	if (rc != SQLITE_DONE)
		store_fail(store, err, "cannot list events");
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int cb_store_list_jobs(struct cb_store *store, const struct cb_filter *f,
		       int (*fn)(const struct cb_job *job, void *ctx), void *ctx, struct cb_err *err)
{
	static const char select[] = "SELECT " STORE_JOB_COLUMNS " FROM jobs WHERE 1";
	static const char select_live[] =
		"SELECT " STORE_JOB_COLUMNS " FROM jobs WHERE deleted_ms IS NULL";
	struct cb_job job;
	sqlite3_stmt *st;
	int rc;

	if (prepare_list(store, f->include_deleted ? select : select_live, f, &job_columns,
			 f->state >= 0 ? cb_job_state_name((enum cb_job_state)f->state) : NULL, &st,
			 err) < 0)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int stop;

		if (store_read_job(st, &job, NULL, 0) < 0) {
			sqlite3_finalize(st);
			return cb_err_set(err, "out of memory listing jobs");
		}
		stop = fn(&job, ctx);
		cb_job_clear(&job);
		if (stop) {
			rc = SQLITE_DONE;
			break;
		}
	}
	if (rc != SQLITE_DONE)
		store_fail(store, err, "cannot list jobs");
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int list_audit_where(struct cb_store *store, const char *sql, int64_t id,
			    int (*fn)(const struct cb_audit_row *row, void *ctx), void *ctx,
			    struct cb_err *err)
{
	struct cb_audit_row row;
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(store->db, sql, -1, &st, NULL) != SQLITE_OK)
		return store_fail(store, err, "cannot prepare the audit listing");
	if (sqlite3_bind_parameter_count(st) > 0)
		sqlite3_bind_int64(st, 1, id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		row.id = sqlite3_column_int64(st, 0);
		row.at_ms = sqlite3_column_int64(st, 1);
		row.job_id = sqlite3_column_int64(st, 2);
		row.event_id = sqlite3_column_int64(st, 3);
		row.kind = column_text(st, 4);
		row.from_state = column_text(st, 5);
		row.to_state = column_text(st, 6);
		row.detail_json = column_text(st, 7);
		if (fn(&row, ctx) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	if (rc != SQLITE_DONE)
		store_fail(store, err, "cannot list the audit trail");
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

#define AUDIT_SELECT "SELECT id, at_ms, job_id, event_id, kind, from_state, to_state, detail FROM audit"

int cb_store_list_audit(struct cb_store *store, int64_t job_id,
			int (*fn)(const struct cb_audit_row *row, void *ctx), void *ctx,
			struct cb_err *err)
{
	if (job_id > 0)
		return list_audit_where(store, AUDIT_SELECT " WHERE job_id = ?1 ORDER BY id", job_id,
					fn, ctx, err);
	return list_audit_where(store, AUDIT_SELECT " ORDER BY id", 0, fn, ctx, err);
}

int cb_store_list_audit_event(struct cb_store *store, int64_t event_id,
			      int (*fn)(const struct cb_audit_row *row, void *ctx), void *ctx,
			      struct cb_err *err)
{
	return list_audit_where(store, AUDIT_SELECT " WHERE event_id = ?1 ORDER BY id", event_id, fn,
				ctx, err);
}

int cb_store_count_events(struct cb_store *store,
			  int (*fn)(const char *type, enum cb_event_status status, int64_t count,
				    void *ctx),
			  void *ctx, struct cb_err *err)
{
	static const char sql[] = "SELECT coalesce(type, ''), status, count(*) FROM events "
				  "GROUP BY 1, 2 ORDER BY 1, 2";
	enum cb_event_status status;
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(store->db, sql, -1, &st, NULL) != SQLITE_OK)
		return store_fail(store, err, "cannot count events");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		status = CB_EVENT_REJECTED;
		cb_event_status_parse(column_text(st, 1), &status);
		if (fn(column_text(st, 0), status, sqlite3_column_int64(st, 2), ctx) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	if (rc != SQLITE_DONE)
		store_fail(store, err, "cannot count events");
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int cb_store_count_jobs(struct cb_store *store, int64_t counts[CB_JOB_STATE_COUNT],
			struct cb_err *err)
{
	static const char sql[] = "SELECT state, count(*) FROM jobs WHERE deleted_ms IS NULL "
				  "GROUP BY state";
	enum cb_job_state state;
	sqlite3_stmt *st;
	int rc;

	memset(counts, 0, sizeof(int64_t) * CB_JOB_STATE_COUNT);
	if (sqlite3_prepare_v2(store->db, sql, -1, &st, NULL) != SQLITE_OK)
		return store_fail(store, err, "cannot count jobs");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		/* A row with an unknown state is counted where quarantine will put it. */
		if (cb_job_state_parse(column_text(st, 0), &state) < 0)
			state = CB_JOB_FINAL_ERROR;
		counts[state] += sqlite3_column_int64(st, 1);
	}
	if (rc != SQLITE_DONE)
		store_fail(store, err, "cannot count jobs");
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Runs one chunked DELETE in its own unit of work; *n is the number of rows it deleted. */
static int prune_chunk(struct cb_store *store, const char *sql, int64_t cutoff, int64_t *n,
		       struct cb_err *err)
{
	sqlite3_stmt *st;
	int rc;

	*n = 0;
	if (store_op_begin(store, err) < 0)
		return -1;
	rc = sqlite3_prepare_v2(store->db, sql, -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, cutoff);
		sqlite3_bind_int(st, 2, PRUNE_CHUNK);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
	}
	if (rc != SQLITE_DONE) {
		store_fail(store, err, "cannot prune the store");
		return store_op_end(store, -1, NULL);
	}
	*n = sqlite3_changes(store->db);
	return store_op_end(store, 0, err);
}

static int prune_all(struct cb_store *store, const char *sql, int64_t cutoff, int64_t *total,
		     struct cb_err *err)
{
	int64_t n;

	do {
		if (prune_chunk(store, sql, cutoff, &n, err) < 0)
			return -1;
		*total += n;
	} while (n == PRUNE_CHUNK);
	return 0;
}

int cb_store_prune(struct cb_store *store, int64_t now_ms, int64_t event_max_age_ms,
		   int64_t audit_max_age_ms, int64_t *deleted, struct cb_err *err)
{
	/* An event goes only when none of its jobs is still to be worked on or looked at. */
	static const char events_sql[] =
		"DELETE FROM events WHERE id IN (SELECT e.id FROM events e WHERE e.received_ms < ?1 "
		"AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.event_id = e.id "
		"AND j.deleted_ms IS NULL AND j.state NOT IN ('done', 'not_found', 'skipped')) "
		"ORDER BY e.id LIMIT ?2)";
	static const char audit_sql[] =
		"DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at_ms < ?1 "
		"ORDER BY id LIMIT ?2)";
	int64_t total = 0;
	int rc = 0;

	if (event_max_age_ms > 0)
		rc = prune_all(store, events_sql, now_ms - event_max_age_ms, &total, err);
	if (rc == 0 && audit_max_age_ms > 0)
		rc = prune_all(store, audit_sql, now_ms - audit_max_age_ms, &total, err);
	if (deleted)
		*deleted = total;
	return rc;
}

int cb_store_audit_attempt(struct cb_store *store, const struct cb_attempt *a, struct cb_err *err)
{
	sqlite3_stmt *st = store_stmt(store, ST_AUDIT_ATTEMPT, err);

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, cb_now_ms());
	sqlite3_bind_int64(st, 2, a->job_id);
	sqlite3_bind_int(st, 3, a->attempt);
	store_bind_text(st, 4, a->backend);
	store_bind_text(st, 5, a->step);
	store_bind_text(st, 6, a->request_id);
	store_bind_text(st, 7, a->client_request_id);
	if (a->http_status)
		sqlite3_bind_int64(st, 8, a->http_status);
	store_bind_text(st, 9, a->result);
	store_bind_text(st, 10, a->detail);
	sqlite3_bind_int64(st, 11, a->duration_ms);
	if (store_step_done(store, st, err, "cannot record the attempt") < 0) {
		sqlite3_clear_bindings(st);
		return -1;
	}
	sqlite3_clear_bindings(st);
	return 0;
}
