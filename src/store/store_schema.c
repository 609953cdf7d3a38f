/*
 * store_schema.c: the schema of the store as an ordered list of migrations.
 *
 * Runs in cb_store_open(), in whichever thread opens the store. PRAGMA
 * user_version holds the number of migrations applied; each migration runs in
 * the same immediate transaction as the user_version update, so a crash
 * leaves either the old or the new schema. A migration, once released, is
 * never edited: a schema change is a new entry at the end of the list.
 * A file whose user_version is higher than the number of migrations was
 * written by a newer clawback and is not opened.
 */
#include <stdio.h>
#include <string.h>

#include "store/store_internal.h"

/* Identifies a clawback store in the SQLite header ("CLAW" in ASCII). */
#define STORE_APPLICATION_ID 0x434c4157

static const char *const migrations[] = {
	/* 1: events, jobs, audit. */
	"CREATE TABLE events("
	"  id INTEGER PRIMARY KEY,"
	"  received_ms INTEGER NOT NULL,"
	"  source TEXT NOT NULL,"
	"  status TEXT NOT NULL CHECK (status IN ('accepted', 'ignored', 'rejected', 'duplicate')),"
	"  type TEXT,"
	"  customer TEXT,"
	"  sender TEXT,"
	"  recipient TEXT,"
	"  recipient_norm TEXT,"
	"  message_id TEXT,"
	"  rmx_id TEXT,"
	"  ts_ms INTEGER,"
	"  threat TEXT,"
	"  details TEXT,"
	"  dedup_key TEXT,"
	"  duplicate_of INTEGER REFERENCES events(id) ON DELETE SET NULL,"
	"  reject_reason TEXT,"
	"  reject_detail TEXT,"
	"  raw BLOB NOT NULL,"
	"  raw_size INTEGER NOT NULL,"
	"  CHECK (status <> 'accepted' OR dedup_key IS NOT NULL),"
	"  CHECK (status <> 'rejected' OR reject_reason IS NOT NULL)"
	") STRICT;"
	/* The duplicate guarantee: at most one accepted event per key. */
	"CREATE UNIQUE INDEX events_dedup ON events(dedup_key) WHERE status = 'accepted';"
	"CREATE INDEX events_received ON events(received_ms);"
	"CREATE INDEX events_duplicate_of ON events(duplicate_of) WHERE duplicate_of IS NOT NULL;"
	"CREATE TABLE jobs("
	"  id INTEGER PRIMARY KEY,"
	"  event_id INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,"
	"  mailbox TEXT NOT NULL,"
	"  message_id TEXT NOT NULL,"
	"  state TEXT NOT NULL,"
	"  rule TEXT NOT NULL,"
	"  reason TEXT,"
	"  action_kind TEXT NOT NULL,"
	"  action_folder TEXT NOT NULL DEFAULT '',"
	"  dry_run INTEGER NOT NULL DEFAULT 0,"
	"  notify INTEGER NOT NULL DEFAULT 0,"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  searches INTEGER NOT NULL DEFAULT 0,"
	"  next_attempt_ms INTEGER NOT NULL DEFAULT 0,"
	"  may_have_acted INTEGER NOT NULL DEFAULT 0,"
	"  last_error TEXT,"
	"  outcome TEXT,"
	"  found_in TEXT,"
	"  created_ms INTEGER NOT NULL,"
	"  updated_ms INTEGER NOT NULL,"
	"  deleted_ms INTEGER"
	") STRICT;"
	"CREATE INDEX jobs_state ON jobs(state);"
	"CREATE INDEX jobs_retry_due ON jobs(next_attempt_ms) WHERE state = 'retry_wait';"
	"CREATE INDEX jobs_mailbox ON jobs(mailbox);"
	"CREATE INDEX jobs_event ON jobs(event_id);"
	"CREATE TABLE audit("
	"  id INTEGER PRIMARY KEY,"
	"  at_ms INTEGER NOT NULL,"
	"  job_id INTEGER,"
	"  event_id INTEGER,"
	"  kind TEXT NOT NULL,"
	"  from_state TEXT,"
	"  to_state TEXT,"
	"  detail TEXT NOT NULL CHECK (json_valid(detail))"
	") STRICT;"
	"CREATE INDEX audit_job ON audit(job_id) WHERE job_id IS NOT NULL;"
	"CREATE INDEX audit_at ON audit(at_ms);",
};

#define MIGRATION_COUNT ((int)(sizeof(migrations) / sizeof(migrations[0])))

int store_schema_version_known(void)
{
	return MIGRATION_COUNT;
}

static int read_pragma_int(struct cb_store *store, const char *sql, int64_t *out, struct cb_err *err)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(store->db, sql, -1, &st, NULL) != SQLITE_OK)
		return store_fail(store, err, "cannot read the schema version");
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(st);
		return store_fail(store, err, "cannot read the schema version");
	}
	*out = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return 0;
}

static int check_identity(struct cb_store *store, int64_t version, struct cb_err *err)
{
	int64_t app_id;

	if (read_pragma_int(store, "PRAGMA application_id", &app_id, err) < 0)
		return -1;
	if (app_id != 0 && app_id != STORE_APPLICATION_ID)
		return cb_err_set(err,
				  "%s is an SQLite database of another application (application_id %lld); "
				  "set store_path to a clawback store or to a new file",
				  store->path, (long long)app_id);
	if (version > MIGRATION_COUNT)
		return cb_err_set(err,
				  "store %s has schema version %lld, but this clawback supports versions up to %d; "
				  "run a newer clawback or restore a backup made by this one",
				  store->path, (long long)version, MIGRATION_COUNT);
	return 0;
}

static int apply(struct cb_store *store, int from, struct cb_err *err)
{
	char sql[96];

	for (int i = from; i < MIGRATION_COUNT; i++) {
		if (sqlite3_exec(store->db, migrations[i], NULL, NULL, NULL) != SQLITE_OK) {
			store_fail(store, err, "schema migration failed");
			return cb_err_prefix(err, "migration %d: ", i + 1);
		}
	}
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d; PRAGMA application_id = %d",
		 MIGRATION_COUNT, STORE_APPLICATION_ID);
	if (sqlite3_exec(store->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return store_fail(store, err, "cannot record the schema version");
	return 0;
}

int store_migrate(struct cb_store *store, struct cb_err *err)
{
	int64_t version;

	if (sqlite3_exec(store->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return store_fail(store, err, "cannot lock the store for migration");
	if (read_pragma_int(store, "PRAGMA user_version", &version, err) < 0 ||
	    check_identity(store, version, err) < 0 ||
	    (version < MIGRATION_COUNT && apply(store, (int)version, err) < 0)) {
		sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	if (sqlite3_exec(store->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		store_fail(store, err, "cannot commit the schema migration");
		sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return 0;
}
