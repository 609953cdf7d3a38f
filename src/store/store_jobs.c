/*
 * store_jobs.c: the job state machine (transitions, due jobs, recovery,
 * re-queue and delete) and the validation of job rows read back.
 *
 * Runs in the thread that owns the struct cb_store: the executor moves jobs,
 * the control thread and the CLI re-queue and delete them. Rows read back are
 * untrusted in the sense that a crash, a manual edit or a bug may have left
 * them inconsistent: store_read_job() validates every field the executor
 * relies on, and a queued row that fails is moved to final_error (quarantined)
 * instead of being dropped or run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "store/store_internal.h"

/* Maximum length of the state string copied from a row that failed validation (for the audit row). */
#define BAD_STATE_MAX 64

/* allowed[from][to]: the edges of the diagram in store.h. */
static const unsigned char allowed[CB_JOB_STATE_COUNT][CB_JOB_STATE_COUNT] = {
	[CB_JOB_QUEUED] = {[CB_JOB_RUNNING] = 1, [CB_JOB_FINAL_ERROR] = 1},
	[CB_JOB_RUNNING] = {[CB_JOB_DONE] = 1,
			    [CB_JOB_NOT_FOUND] = 1,
			    [CB_JOB_SKIPPED] = 1,
			    [CB_JOB_RETRY_WAIT] = 1,
			    [CB_JOB_RETRY_QUEUE] = 1,
			    [CB_JOB_FINAL_ERROR] = 1},
	[CB_JOB_RETRY_WAIT] = {[CB_JOB_QUEUED] = 1, [CB_JOB_RETRY_QUEUE] = 1},
	[CB_JOB_RETRY_QUEUE] = {[CB_JOB_QUEUED] = 1},
	[CB_JOB_FINAL_ERROR] = {[CB_JOB_QUEUED] = 1},
};

int cb_job_transition_allowed(enum cb_job_state from, enum cb_job_state to)
{
	if ((unsigned)from >= CB_JOB_STATE_COUNT || (unsigned)to >= CB_JOB_STATE_COUNT)
		return 0;
	return allowed[from][to];
}

void cb_job_clear(struct cb_job *job)
{
	if (!job)
		return;
	free(job->mailbox);
	free(job->message_id);
	free(job->rule);
	free(job->reason);
	free(job->last_error);
	free(job->outcome);
	free(job->found_in);
	memset(job, 0, sizeof(*job));
}

void cb_jobs_free(struct cb_job *jobs, size_t n)
{
	if (!jobs)
		return;
	for (size_t i = 0; i < n; i++)
		cb_job_clear(&jobs[i]);
	free(jobs);
}

static int dup_column(sqlite3_stmt *st, int col, char **out)
{
	const char *s = (const char *)sqlite3_column_text(st, col);

	*out = NULL;
	if (!s)
		return 0;
	*out = strdup(s);
	return *out ? 0 : -1;
}

/* Returns NULL when the row is usable, or why it is not. */
static const char *validate_job(sqlite3_stmt *st, struct cb_job *job)
{
	const char *state = (const char *)sqlite3_column_text(st, 4);
	const char *kind = (const char *)sqlite3_column_text(st, 6);
	const char *folder = (const char *)sqlite3_column_text(st, 7);

	if (cb_job_state_parse(state, &job->state) < 0)
		return "unknown state";
	if (!kind || cb_action_kind_parse(kind, &job->action.kind) < 0)
		return "unknown action";
	if (!job->mailbox || !job->mailbox[0])
		return "empty mailbox";
	if (!job->message_id || !job->message_id[0])
		return "empty Message-ID";
	if (folder && cb_strlcpy(job->action.folder, folder, sizeof(job->action.folder)) < 0)
		return "folder longer than CB_FOLDER_MAX";
	if (job->action.kind == CB_ACTION_MOVE && !job->action.folder[0])
		return "move without a folder";
	return NULL;
}

int store_read_job(sqlite3_stmt *st, struct cb_job *job, char *bad_state, size_t bad_state_size)
{
	const char *problem;
	const char *state;
	char text[160];

	memset(job, 0, sizeof(*job));
	job->id = sqlite3_column_int64(st, 0);
	job->event_id = sqlite3_column_int64(st, 1);
	if (dup_column(st, 2, &job->mailbox) < 0 || dup_column(st, 3, &job->message_id) < 0 ||
	    dup_column(st, 5, &job->rule) < 0 || dup_column(st, 14, &job->last_error) < 0 ||
	    dup_column(st, 15, &job->outcome) < 0 || dup_column(st, 16, &job->found_in) < 0 ||
	    dup_column(st, 20, &job->reason) < 0)
		goto oom;
	job->action.dry_run = sqlite3_column_int(st, 8) != 0;
	job->action.notify = (unsigned)sqlite3_column_int64(st, 9);
	job->attempts = sqlite3_column_int(st, 10);
	job->searches = sqlite3_column_int(st, 11);
	job->next_attempt_ms = sqlite3_column_int64(st, 12);
	job->may_have_acted = sqlite3_column_int(st, 13) != 0;
	job->created_ms = sqlite3_column_int64(st, 17);
	job->updated_ms = sqlite3_column_int64(st, 18);
	job->deleted_ms = sqlite3_column_int64(st, 19);

	problem = validate_job(st, job);
	if (!problem)
		return 0;
	state = (const char *)sqlite3_column_text(st, 4);
	if (bad_state)
		cb_strlcpy(bad_state, state ? state : "", bad_state_size);
	snprintf(text, sizeof(text), "invalid job row: %s", problem);
	free(job->last_error);
	job->last_error = strdup(text);
	job->state = CB_JOB_FINAL_ERROR;
	if (!job->last_error)
		goto oom;
	return 1;

oom:
	cb_job_clear(job);
	return -1;
}

/* What one audit row of kind transition, requeue, quarantine or delete records. */
struct audit_change {
	int64_t job_id;
	int64_t event_id;
	const char *kind;
	const char *from;
	const char *to;
	const struct cb_transition *t;
	int attempts; /* after the change, or -1 to leave out */
	int searches;
};

static int insert_change_audit(struct cb_store *store, const struct audit_change *c,
			       struct cb_err *err)
{
	sqlite3_stmt *st = store_stmt(store, ST_AUDIT_TRANSITION, err);
	const struct cb_transition *t = c->t;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, cb_now_ms());
	sqlite3_bind_int64(st, 2, c->job_id);
	sqlite3_bind_int64(st, 3, c->event_id);
	sqlite3_bind_text(st, 4, c->kind, -1, SQLITE_STATIC);
	store_bind_text(st, 5, c->from);
	store_bind_text(st, 6, c->to);
	if (t) {
		store_bind_text(st, 7, t->error);
		store_bind_text(st, 8, t->outcome);
		store_bind_text(st, 9, t->found_in);
		if (t->next_attempt_ms > 0)
			sqlite3_bind_int64(st, 10, t->next_attempt_ms);
		if (t->may_have_acted >= 0)
			sqlite3_bind_int(st, 13, t->may_have_acted);
		store_bind_text(st, 14, t->detail_json);
	}
	if (c->attempts >= 0) {
		sqlite3_bind_int(st, 11, c->attempts);
		sqlite3_bind_int(st, 12, c->searches);
	}
	if (store_step_done(store, st, err, "cannot write the audit row") < 0) {
		sqlite3_clear_bindings(st);
		return -1;
	}
	sqlite3_clear_bindings(st);
	return 0;
}

/* Explains why a job could not be changed: it does not exist, was deleted, or is elsewhere. */
static int explain_job_state(struct cb_store *store, int64_t id, const char *action,
			     struct cb_err *err)
{
	sqlite3_stmt *st = store_stmt(store, ST_JOB_STATE, err);
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 1) != SQLITE_NULL)
		cb_err_set(err, "job %lld was deleted and cannot be %s", (long long)id, action);
	else if (rc == SQLITE_ROW)
		cb_err_set(err, "job %lld is in state %s and cannot be %s", (long long)id,
			   (const char *)sqlite3_column_text(st, 0), action);
	else if (rc == SQLITE_DONE)
		cb_err_set(err, "job %lld does not exist", (long long)id);
	else
		store_fail(store, err, "cannot read the job's state");
	sqlite3_reset(st);
	return -1;
}

static int transition_in_tx(struct cb_store *store, int64_t id, enum cb_job_state from,
			    enum cb_job_state to, const struct cb_transition *t, const char *kind,
			    struct cb_err *err)
{
	sqlite3_stmt *st = store_stmt(store, ST_JOB_TRANSITION, err);
	struct audit_change change = {.job_id = id, .kind = kind, .t = t};
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, cb_job_state_name(from), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, cb_job_state_name(to), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, cb_now_ms());
	store_bind_text(st, 5, t->error);
	store_bind_text(st, 6, t->outcome);
	store_bind_text(st, 7, t->found_in);
	sqlite3_bind_int64(st, 8, t->next_attempt_ms);
	sqlite3_bind_int(st, 9, t->reset_attempts ? 1 : 0);
	sqlite3_bind_int(st, 10, t->add_attempts);
	sqlite3_bind_int(st, 11, t->add_searches);
	sqlite3_bind_int(st, 12, t->may_have_acted < 0 ? -1 : t->may_have_acted != 0);

	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		change.event_id = sqlite3_column_int64(st, 0);
		change.attempts = sqlite3_column_int(st, 1);
		change.searches = sqlite3_column_int(st, 2);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_DONE) {
		explain_job_state(store, id, "moved", err);
		return cb_err_prefix(err, "cannot move job %lld from %s to %s: ", (long long)id,
				     cb_job_state_name(from), cb_job_state_name(to));
	}
	if (rc != SQLITE_ROW)
		return store_fail(store, err, "cannot change the job's state");

	change.from = cb_job_state_name(from);
	change.to = cb_job_state_name(to);
	return insert_change_audit(store, &change, err);
}

int cb_store_job_transition(struct cb_store *store, int64_t id, enum cb_job_state from,
			    enum cb_job_state to, const struct cb_transition *t, struct cb_err *err)
{
	static const struct cb_transition none = CB_TRANSITION_INIT;
	int rc;

	if (!cb_job_transition_allowed(from, to))
		return cb_err_set(err, "job %lld: the transition from %s to %s is not allowed",
				  (long long)id, cb_job_state_name(from), cb_job_state_name(to));
	if (store_op_begin(store, err) < 0)
		return -1;
	rc = transition_in_tx(store, id, from, to, t ? t : &none, "transition", err);
	return store_op_end(store, rc, err);
}

/* Moves a row that failed validation to final_error, matching the state string it had. */
static int quarantine(struct cb_store *store, int64_t id, const char *bad_state,
		      const char *reason, struct cb_err *err)
{
	sqlite3_stmt *st = store_stmt(store, ST_QUARANTINE, err);
	struct cb_transition t = CB_TRANSITION_INIT;
	struct audit_change change = {.job_id = id, .kind = "quarantine", .from = bad_state,
				      .to = "final_error", .t = &t, .attempts = -1};
	struct cb_log_value v, w;
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, bad_state, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, cb_now_ms());
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		change.event_id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_DONE)
		return 0; /* changed by another connection since it was read */
	if (rc != SQLITE_ROW)
		return store_fail(store, err, "cannot quarantine a job");

	t.error = reason;
	if (insert_change_audit(store, &change, err) < 0)
		return -1;
	cb_warn("job quarantined job=%lld state=%s error=%s", (long long)id,
		cb_log_str(&v, bad_state), cb_log_str(&w, reason));
	return 0;
}

/* A row found invalid while reading, quarantined once the reading statement is reset. */
struct bad_row {
	int64_t id;
	char state[BAD_STATE_MAX];
	char *reason;
};

struct job_list {
	struct cb_job *jobs;
	size_t n;
	size_t cap;
	struct bad_row *bad;
	size_t n_bad;
	size_t cap_bad;
};

static void job_list_free(struct job_list *l)
{
	cb_jobs_free(l->jobs, l->n);
	for (size_t i = 0; i < l->n_bad; i++)
		free(l->bad[i].reason);
	free(l->bad);
	memset(l, 0, sizeof(*l));
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
	size_t ncap = *cap ? *cap * 2 : 16;
	void *np;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	np = realloc(*p, ncap * size);
	if (!np)
		return -1;
	*p = np;
	*cap = ncap;
	return 0;
}

/* Reads the current row into l: as a job when valid, as a bad row when not. */
static int job_list_add(struct job_list *l, sqlite3_stmt *st)
{
	struct cb_job job;
	struct bad_row *bad;
	int rc;

	if (grow((void **)&l->jobs, &l->cap, l->n + 1, sizeof(*l->jobs)) < 0 ||
	    grow((void **)&l->bad, &l->cap_bad, l->n_bad + 1, sizeof(*l->bad)) < 0)
		return -1;
	bad = &l->bad[l->n_bad];
	rc = store_read_job(st, &job, bad->state, sizeof(bad->state));
	if (rc < 0)
		return -1;
	if (rc == 0) {
		l->jobs[l->n++] = job;
		return 0;
	}
	bad->id = job.id;
	bad->reason = job.last_error;
	job.last_error = NULL;
	cb_job_clear(&job);
	l->n_bad++;
	return 0;
}

static int quarantine_all(struct cb_store *store, struct job_list *l, struct cb_err *err)
{
	for (size_t i = 0; i < l->n_bad; i++) {
		if (quarantine(store, l->bad[i].id, l->bad[i].state, l->bad[i].reason, err) < 0)
			return -1;
	}
	return 0;
}

static int promote_due(struct cb_store *store, int64_t now_ms, struct cb_err *err)
{
	sqlite3_stmt *audit = store_stmt(store, ST_PROMOTE_AUDIT, err);
	sqlite3_stmt *update = store_stmt(store, ST_PROMOTE, err);

	if (!audit || !update)
		return -1;
	sqlite3_bind_int64(audit, 1, cb_now_ms());
	sqlite3_bind_int64(audit, 2, now_ms);
	if (store_step_done(store, audit, err, "cannot record due retries") < 0)
		return -1;
	sqlite3_bind_int64(update, 1, cb_now_ms());
	sqlite3_bind_int64(update, 2, now_ms);
	return store_step_done(store, update, err, "cannot queue due retries");
}

/* Reads one page of queued jobs after after_id; *full is set when the page was full. */
static int read_queued(struct cb_store *store, int64_t *after_id, size_t want, struct job_list *l,
		       int *full, struct cb_err *err)
{
	sqlite3_stmt *st = store_stmt(store, ST_JOBS_QUEUED, err);
	size_t rows = 0;
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, *after_id);
	sqlite3_bind_int64(st, 2, want > INT64_MAX ? INT64_MAX : (int64_t)want);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		rows++;
		*after_id = sqlite3_column_int64(st, 0);
		if (job_list_add(l, st) < 0) {
			sqlite3_reset(st);
			return cb_err_set(err, "out of memory reading jobs");
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_fail(store, err, "cannot read queued jobs");
	*full = rows == want;
	return 0;
}

static int jobs_due_in_tx(struct cb_store *store, int64_t now_ms, int64_t after_id, size_t max,
			  struct job_list *l, struct cb_err *err)
{
	int full = 1;

	if (promote_due(store, now_ms, err) < 0)
		return -1;
	while (full && l->n < max) {
		size_t done_bad = l->n_bad;

		if (read_queued(store, &after_id, max - l->n, l, &full, err) < 0)
			return -1;
		for (size_t i = done_bad; i < l->n_bad; i++) {
			if (quarantine(store, l->bad[i].id, l->bad[i].state, l->bad[i].reason, err) < 0)
				return -1;
		}
	}
	return 0;
}

int cb_store_jobs_due(struct cb_store *store, int64_t now_ms, int64_t after_id, size_t max,
		      struct cb_job **out, size_t *n, struct cb_err *err)
{
	struct job_list l = {0};
	int rc;

	*out = NULL;
	*n = 0;
	if (store_op_begin(store, err) < 0)
		return -1;
	rc = jobs_due_in_tx(store, now_ms, after_id, max, &l, err);
	rc = store_op_end(store, rc, err);
	if (rc < 0) {
		job_list_free(&l);
		return -1;
	}
	*out = l.jobs;
	*n = l.n;
	l.jobs = NULL;
	l.n = 0;
	job_list_free(&l);
	return 0;
}

int cb_store_next_wakeup(struct cb_store *store, int64_t *out_ms, struct cb_err *err)
{
	sqlite3_stmt *st = store_stmt(store, ST_NEXT_WAKEUP, err);
	int rc;

	*out_ms = 0;
	if (!st)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out_ms = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return store_fail(store, err, "cannot read the next retry time");
	return 0;
}

int cb_store_job_get(struct cb_store *store, int64_t id, struct cb_job *out, struct cb_err *err)
{
	sqlite3_stmt *st = store_stmt(store, ST_JOB_GET, err);
	int rc;

	memset(out, 0, sizeof(*out));
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && store_read_job(st, out, NULL, 0) < 0) {
		sqlite3_reset(st);
		return cb_err_set(err, "out of memory reading job %lld", (long long)id);
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return cb_err_set(err, "job %lld does not exist", (long long)id);
	if (rc != SQLITE_ROW)
		return store_fail(store, err, "cannot read the job");
	return 0;
}

/* Quarantines rows whose state string is not a known state (a full scan of jobs_state). */
static int quarantine_unknown_states(struct cb_store *store, struct cb_err *err)
{
	static const char sql[] = "SELECT " STORE_JOB_COLUMNS " FROM jobs WHERE state NOT IN "
				  "('queued', 'running', 'done', 'not_found', 'skipped', "
				  "'retry_wait', 'retry_queue', 'final_error')";
	struct job_list l = {0};
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(store->db, sql, -1, &st, NULL) != SQLITE_OK)
		return store_fail(store, err, "cannot scan jobs");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (job_list_add(&l, st) < 0) {
			rc = SQLITE_NOMEM;
			break;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		job_list_free(&l);
		return cb_err_set(err, "cannot scan jobs for unknown states (SQLite code %d)", rc);
	}
	rc = quarantine_all(store, &l, err);
	job_list_free(&l);
	return rc;
}

static int recover_in_tx(struct cb_store *store, size_t *n, struct cb_err *err)
{
	sqlite3_stmt *audit = store_stmt(store, ST_RECOVER_AUDIT, err);
	sqlite3_stmt *update = store_stmt(store, ST_RECOVER, err);

	if (!audit || !update)
		return -1;
	sqlite3_bind_int64(audit, 1, cb_now_ms());
	if (store_step_done(store, audit, err, "cannot record recovered jobs") < 0)
		return -1;
	sqlite3_bind_int64(update, 1, cb_now_ms());
	if (store_step_done(store, update, err, "cannot recover running jobs") < 0)
		return -1;
	*n = (size_t)sqlite3_changes(store->db);
	return quarantine_unknown_states(store, err);
}

int cb_store_recover(struct cb_store *store, size_t *n, struct cb_err *err)
{
	size_t count = 0;
	int rc;

	if (store_op_begin(store, err) < 0)
		return -1;
	rc = recover_in_tx(store, &count, err);
	rc = store_op_end(store, rc, err);
	if (n)
		*n = rc == 0 ? count : 0;
	return rc;
}

int cb_store_job_requeue(struct cb_store *store, int64_t id, struct cb_err *err)
{
	struct cb_transition t = CB_TRANSITION_INIT;
	struct cb_job job;
	enum cb_job_state from;
	int rc;

	if (cb_store_job_get(store, id, &job, err) < 0)
		return -1;
	from = job.state;
	rc = job.deleted_ms != 0;
	cb_job_clear(&job);
	if (rc)
		return cb_err_set(err, "job %lld was deleted and cannot be re-queued", (long long)id);
	if (from != CB_JOB_RETRY_QUEUE && from != CB_JOB_FINAL_ERROR)
		return cb_err_set(err, "job %lld is in state %s; only retry_queue and final_error "
				       "jobs can be re-queued",
				  (long long)id, cb_job_state_name(from));

	t.reset_attempts = 1;
	if (store_op_begin(store, err) < 0)
		return -1;
	rc = transition_in_tx(store, id, from, CB_JOB_QUEUED, &t, "requeue", err);
	return store_op_end(store, rc, err);
}

static int delete_in_tx(struct cb_store *store, int64_t id, struct cb_err *err)
{
	sqlite3_stmt *st = store_stmt(store, ST_JOB_DELETE, err);
	struct audit_change change = {.job_id = id, .kind = "delete", .attempts = -1};
	char state[BAD_STATE_MAX] = "";
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, cb_now_ms());
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		change.event_id = sqlite3_column_int64(st, 0);
		cb_strlcpy(state, (const char *)sqlite3_column_text(st, 1), sizeof(state));
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return explain_job_state(store, id, "deleted (only retry_queue and final_error jobs can)",
					 err);
	if (rc != SQLITE_ROW)
		return store_fail(store, err, "cannot delete the job");

	change.from = state;
	change.to = state;
	return insert_change_audit(store, &change, err);
}

int cb_store_job_delete(struct cb_store *store, int64_t id, struct cb_err *err)
{
	int rc;

	if (store_op_begin(store, err) < 0)
		return -1;
	rc = delete_in_tx(store, id, err);
	return store_op_end(store, rc, err);
}
