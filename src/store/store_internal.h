/*
 * store_internal.h: what the store's source files share, and nothing else uses.
 *
 * One struct cb_store is one SQLite connection, used by one thread at a time.
 * Prepared statements are cached per connection and reset after each use.
 */
#ifndef CLAWBACK_STORE_STORE_INTERNAL_H
#define CLAWBACK_STORE_STORE_INTERNAL_H

#include <sqlite3.h>

#include "store/store.h"

/* Cached statements; the SQL of each is in stmt_sql[] in store.c. */
enum store_stmt {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_DATA_VERSION,
	ST_DEDUP_LOOKUP,
	ST_EVENT_INSERT,
	ST_JOB_INSERT,
	ST_AUDIT_DECISION,
	ST_JOB_TRANSITION,
	ST_JOB_STATE,
	ST_AUDIT_TRANSITION,
	ST_PROMOTE_AUDIT,
	ST_PROMOTE,
	ST_JOBS_QUEUED,
	ST_QUARANTINE,
	ST_NEXT_WAKEUP,
	ST_JOB_GET,
	ST_RECOVER_AUDIT,
	ST_RECOVER,
	ST_JOB_DELETE,
	ST_AUDIT_ATTEMPT,
	ST_COUNT,
};

struct cb_store {
	sqlite3 *db;
	char *path;
	int in_batch;       /* cb_store_begin() opened a transaction */
	int batch_failed;   /* a call inside the batch failed after writing: only rollback is left */
	int64_t op_changes; /* sqlite3_total_changes64() when the current call started */
	sqlite3_stmt *stmts[ST_COUNT];
};

/* Brings the schema up to date (store_schema.c); run before any statement is cached. */
int store_migrate(struct cb_store *store, struct cb_err *err);
/* Number of migrations in this binary, which is the newest schema version it supports. */
int store_schema_version_known(void);

/* Returns the cached statement, preparing it on first use; NULL with err set on failure. */
sqlite3_stmt *store_stmt(struct cb_store *store, enum store_stmt which, struct cb_err *err);

/* Fills err with "what: SQLite's message (path)" and returns -1. */
int store_fail(struct cb_store *store, struct cb_err *err, const char *what);

/*
 * Starts a unit of work: inside the caller's batch it only notes the change
 * count, otherwise it opens an immediate transaction of its own.
 * store_op_end() commits on rc == 0 and rolls back otherwise, and returns rc
 * (or -1 when the commit fails). Inside a batch, a call that fails after it
 * changed a row marks the batch failed: later calls fail and
 * cb_store_commit() rolls back. Savepoints would keep the batch usable, but
 * they cost about a fifth of the ingest time.
 */
int store_op_begin(struct cb_store *store, struct cb_err *err);
int store_op_end(struct cb_store *store, int rc, struct cb_err *err);

/* Runs a statement without results to completion and resets it. */
int store_step_done(struct cb_store *store, sqlite3_stmt *st, struct cb_err *err, const char *what);

/* Binds text, or NULL when s is NULL. */
int store_bind_text(sqlite3_stmt *st, int index, const char *s);

/* Column list and reader shared by every query that returns whole job rows. */
#define STORE_JOB_COLUMNS                                                                          \
	"id, event_id, mailbox, message_id, state, rule, action_kind, action_folder, dry_run, "   \
	"notify, attempts, searches, next_attempt_ms, may_have_acted, last_error, outcome, "       \
	"found_in, created_ms, updated_ms, deleted_ms, reason"

/*
 * Reads the current row of st (selected with STORE_JOB_COLUMNS) into job.
 * Returns 0, 1 when the row fails validation (job->state is then
 * CB_JOB_FINAL_ERROR and job->last_error names the problem, the state
 * string as stored is copied to bad_state), or -1 when out of memory.
 */
int store_read_job(sqlite3_stmt *st, struct cb_job *job, char *bad_state, size_t bad_state_size);

#endif
