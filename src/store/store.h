/*
 * store.h: the durable store (SQLite in WAL mode) and the job state machine.
 *
 * This module owns the schema, its migrations and every SQL statement; no
 * other module writes SQL. Each thread opens its own struct cb_store (one
 * SQLite connection each); SQLite serialises writers across connections and
 * processes.
 *
 * Tables:
 *   events  one row per received message, malformed and duplicate ones included,
 *           with its raw bytes. status is accepted (a PZD event with a job),
 *           ignored (another type, counted), rejected (with the reason) or
 *           duplicate (duplicate_of names the first copy).
 *   jobs    one row per accepted event and recipient, with the rule's decision.
 *   audit   append-only: every decision, state change and backend attempt.
 *
 * Job states and transitions (each is one transaction with one audit row):
 *
 *   queued ──► running ──► done          action applied, or mail already in place
 *     ▲  ▲        │ ├────► not_found     searched everywhere, re-search schedule over
 *     │  │        │ ├────► skipped       no rule matched, or the rule says skip
 *     │  └ retry_wait ◄──┤ temporary error, attempts left (next_attempt_ms set)
 *     │        │         └► final_error  permanent error: the administrator must act
 *     │        └────────► retry_queue    attempts exhausted: the administrator re-queues
 *     └──────────────────  requeue (from retry_queue or final_error, by the administrator)
 *
 * Invariants:
 *   1. An event row is committed before any job for it can be claimed.
 *   2. A job changes state only through cb_store_job_transition(), which checks the
 *      expected current state, so two writers cannot both move one job.
 *   3. A job found in running at start-up was interrupted: cb_store_recover() puts it
 *      back to queued with may_have_acted set, and its next run searches before acting.
 *   4. Rows read back are validated; a job row that fails validation is moved to
 *      final_error with the reason, never dropped.
 *   5. Secrets are never written here.
 *   6. At most one accepted event per duplicate key: a partial unique index
 *      (events.dedup_key WHERE status = 'accepted') enforces it in the database.
 *
 * Which function performs each transition (every one writes one audit row
 * in the same transaction; the audit kind is in brackets):
 *   (none)      -> queued | skipped  cb_store_ingest              [decision]
 *   queued      -> running           cb_store_job_transition      [transition]
 *   queued      -> final_error       cb_store_jobs_due, for a row that fails
 *                                    validation [quarantine], or the executor
 *                                    through cb_store_job_transition [transition]
 *   running     -> done | not_found | skipped | retry_wait | retry_queue | final_error
 *                                    cb_store_job_transition      [transition]
 *                                    (running -> skipped: the rule was disabled;
 *                                    running -> retry_queue: a temporary error
 *                                    with no attempts left)
 *   running     -> queued            cb_store_recover, at start-up [recover]
 *   retry_wait  -> queued            cb_store_jobs_due, when next_attempt_ms
 *                                    has passed [transition]
 *   retry_wait  -> retry_queue       cb_store_job_transition      [transition]
 *   retry_queue | final_error -> queued
 *                                    cb_store_job_requeue         [requeue]
 *   any unknown state string -> final_error
 *                                    cb_store_recover             [quarantine]
 * cb_store_job_transition accepts exactly the edges above that name it
 * (cb_job_transition_allowed() tells which), so queued -> skipped, for
 * example, is rejected: skipped is decided at ingest.
 *
 * Deleting (cb_store_job_delete) does not change the state: it marks a
 * retry_queue or final_error job as deleted (deleted_ms) and writes a
 * [delete] audit row. A deleted job keeps its row, its event and its audit
 * trail until retention prunes them; it is left out of listings (unless the
 * filter asks for it), counts, cb_store_jobs_due and re-queueing.
 *
 * Other audit kinds: [attempt] for each backend request (cb_store_audit_attempt).
 *
 * Durability: the connection runs in WAL mode with synchronous=NORMAL. A
 * committed transaction survives a crash of the process (kill -9, abort) at
 * any point. A power loss or kernel crash can lose the transactions committed
 * since the last WAL checkpoint, which runs every 10000 pages (40 MiB) of
 * WAL (the database stays consistent and every
 * transaction is either wholly present or wholly absent), because WAL
 * commits are not fsynced at synchronous=NORMAL. The Retarus feed has no
 * acknowledgement and no known replay, so events lost that way may never
 * arrive again.
 *
 * Threads: one struct cb_store per thread; a handle must not be used by two
 * threads at once (the connection is opened with SQLITE_OPEN_NOMUTEX). Writers
 * on different connections wait for each other up to CB_STORE_BUSY_TIMEOUT_MS.
 */
#ifndef CLAWBACK_STORE_STORE_H
#define CLAWBACK_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "event/event.h"
#include "rules/action.h"

struct cb_store;

/*
 * Largest raw message stored, in bytes. Longer messages (rejected as too
 * large by the parser) keep their first CB_STORE_RAW_MAX bytes, and
 * events.raw_size records the original length. Twice the parser's limit, so
 * every message the parser can accept is stored whole.
 */
#define CB_STORE_RAW_MAX (2 * CB_EVENT_MAX_BYTES)
/* How long a writer waits for another connection's write transaction, in ms. */
#define CB_STORE_BUSY_TIMEOUT_MS 10000

enum cb_job_state {
	CB_JOB_QUEUED = 0,
	CB_JOB_RUNNING,
	CB_JOB_DONE,
	CB_JOB_NOT_FOUND,
	CB_JOB_SKIPPED,
	CB_JOB_RETRY_WAIT,
	CB_JOB_RETRY_QUEUE,
	CB_JOB_FINAL_ERROR,
	CB_JOB_STATE_COUNT,
};

const char *cb_job_state_name(enum cb_job_state state);
int cb_job_state_parse(const char *name, enum cb_job_state *out);
/* Tells whether cb_store_job_transition accepts from -> to (1) or not (0). */
int cb_job_transition_allowed(enum cb_job_state from, enum cb_job_state to);

enum cb_event_status {
	CB_EVENT_ACCEPTED = 0,
	CB_EVENT_IGNORED,
	CB_EVENT_REJECTED,
	CB_EVENT_DUPLICATE,
};

const char *cb_event_status_name(enum cb_event_status status);
/* Parses a name of cb_event_status_name; returns -1 when unknown. */
int cb_event_status_parse(const char *name, enum cb_event_status *out);

/* The rules engine's decision for one event, recorded on its job. */
struct cb_decision {
	const char *rule;   /* rule name, or "(default)" when no rule matched */
	const char *reason; /* why it matched, for the audit trail */
	struct cb_action action;
};

/*
 * Opens (creating when missing) the store at path, enables WAL and applies
 * the pending migrations. Fails when the file belongs to another
 * application or has a newer schema than this binary supports.
 */
int cb_store_open(const char *path, struct cb_store **out, struct cb_err *err);
void cb_store_close(struct cb_store *store);

/*
 * Groups several writes in one transaction (used for batches); nesting is
 * not supported. The transaction is BEGIN IMMEDIATE: it takes the write lock
 * at once. A call inside the batch that fails before writing (invalid
 * arguments, a job in another state) leaves the batch usable. A call that
 * fails after writing a row (an SQLite error such as a full disk) marks the
 * batch failed. Later calls in it fail, and cb_store_commit() rolls the whole
 * batch back and returns -1, so nothing half-written is ever committed.
 */
int cb_store_begin(struct cb_store *store, struct cb_err *err);
int cb_store_commit(struct cb_store *store, struct cb_err *err);
int cb_store_rollback(struct cb_store *store);

/* Result of storing one received message. */
struct cb_ingest_result {
	int64_t event_id;
	int64_t job_id; /* 0 when no job was created */
	enum cb_event_status status;
	int64_t duplicate_of; /* for CB_EVENT_DUPLICATE */
};

/*
 * Stores one received message.
 *   ev == NULL: the message was rejected with reason/detail; stored as rejected.
 *   ev not PZD: stored as ignored.
 *   ev PZD and its dedup_key seen before: stored as duplicate, no job.
 *   ev PZD, new: stored as accepted with one job in state queued (or skipped
 *   when dec->action.kind is CB_ACTION_SKIP), and one audit row for the decision.
 * source names where it came from ("feed:main", "replay:file.jsonl").
 * Runs in the current transaction when one is open, otherwise in its own.
 * A PZD event must carry recipient_norm, message_id and dedup_key (as
 * cb_event_parse fills them) and a decision; a move needs a folder.
 * raw longer than CB_STORE_RAW_MAX is cut (see there).
 */
int cb_store_ingest(struct cb_store *store, const char *raw, size_t raw_len, const char *source,
		    const struct cb_event *ev, enum cb_event_reject reason, const char *detail,
		    const struct cb_decision *dec, struct cb_ingest_result *out, struct cb_err *err);

/* Tells whether a PZD event with this dedup key is already stored (for a decision before ingest). */
int cb_store_event_seen(struct cb_store *store, const char *dedup_key, int *seen, struct cb_err *err);

/* One job, as read back from the store. Strings are owned by the job. */
struct cb_job {
	int64_t id;
	int64_t event_id;
	char *mailbox;    /* normalised recipient */
	char *message_id; /* as sent, with angle brackets */
	enum cb_job_state state;
	char *rule;
	char *reason; /* why the rule matched, from the decision */
	struct cb_action action;
	int attempts;            /* backend attempts so far */
	int searches;            /* not-found searches so far */
	int64_t next_attempt_ms; /* retry_wait: when it becomes due */
	int may_have_acted;      /* 1 when an earlier run was interrupted while acting */
	char *last_error;
	char *outcome;  /* human-readable result, e.g. "moved to junkemail" */
	char *found_in; /* folder display name where the mail was found */
	int64_t created_ms;
	int64_t updated_ms;
	int64_t deleted_ms; /* when cb_store_job_delete marked it; 0 when not deleted */
};

void cb_job_clear(struct cb_job *job);
void cb_jobs_free(struct cb_job *jobs, size_t n);

/* Fields a transition may change; NULL / negative values leave a field as it is. */
struct cb_transition {
	const char *error;      /* sets last_error */
	const char *outcome;    /* sets outcome */
	const char *found_in;   /* sets found_in */
	int64_t next_attempt_ms; /* sets next_attempt_ms when > 0 */
	int add_attempts;       /* added to attempts */
	int add_searches;       /* added to searches */
	int reset_attempts;     /* 1: attempts = searches = 0 (requeue) */
	int may_have_acted;     /* -1 leave, 0 or 1 set */
	const char *detail_json; /* extra audit detail, a JSON object, or NULL */
};

#define CB_TRANSITION_INIT {.may_have_acted = -1}

/*
 * Moves job id from state from to state to, applying t, with an audit row,
 * in one transaction (or the current one). Fails with "job N is in state X"
 * when the job is not in from (or was deleted), and rejects transitions the
 * list above does not give to it. t may be NULL. The audit row's detail
 * contains error, outcome, found_in, next_attempt_ms, the attempts and searches
 * after the change, may_have_acted, and t->detail_json under "detail" (which
 * must be valid JSON, or the transition fails).
 */
int cb_store_job_transition(struct cb_store *store, int64_t id, enum cb_job_state from,
			    enum cb_job_state to, const struct cb_transition *t, struct cb_err *err);

/*
 * Reads up to max jobs that can run now, oldest first: queued ones, and
 * retry_wait ones whose next_attempt_ms <= now_ms (those are moved to queued
 * first, with an audit row each). after_id skips jobs with id <= after_id
 * (for paging). A queued row that fails validation is quarantined (moved to
 * final_error with the reason in last_error) and not returned. The caller
 * frees *out with cb_jobs_free(*out, *n).
 */
int cb_store_jobs_due(struct cb_store *store, int64_t now_ms, int64_t after_id, size_t max,
		      struct cb_job **out, size_t *n, struct cb_err *err);

/* Earliest next_attempt_ms of a retry_wait job, or 0 when there is none. */
int cb_store_next_wakeup(struct cb_store *store, int64_t *out_ms, struct cb_err *err);

/*
 * Reads one job, deleted ones included. A row that fails validation is
 * returned as final_error with last_error naming the problem (nothing is
 * written; cb_store_jobs_due and cb_store_recover quarantine it).
 */
int cb_store_job_get(struct cb_store *store, int64_t id, struct cb_job *out, struct cb_err *err);

/*
 * Moves every running job back to queued with may_have_acted = 1; *n tells
 * how many. Also quarantines rows whose state is not a known state name
 * (a scan of the jobs_state index). Run once at start-up, before the executor.
 */
int cb_store_recover(struct cb_store *store, size_t *n, struct cb_err *err);

/* One backend attempt, recorded in the audit trail. */
struct cb_attempt {
	int64_t job_id;
	int attempt;
	const char *backend;           /* "graph", "ews", "log" */
	const char *step;              /* "search", "move", "token", ... */
	const char *request_id;        /* the server's id (Graph request-id), or NULL */
	const char *client_request_id; /* ours */
	long http_status;              /* 0 when no response */
	const char *result;            /* "done", "temporary", "permanent", "not_found" */
	const char *detail;
	int64_t duration_ms;
};

int cb_store_audit_attempt(struct cb_store *store, const struct cb_attempt *a, struct cb_err *err);

/*
 * Filters for listings; zero / NULL fields match everything. For events,
 * state is a cb_event_status, recipient matches recipient_norm
 * (case-insensitively), since/until compare received_ms and event_id the id.
 * For jobs, state is a cb_job_state, recipient matches the mailbox,
 * since/until compare created_ms. until_ms is exclusive.
 */
struct cb_filter {
	int state; /* enum cb_job_state or cb_event_status, -1 for any */
	const char *recipient;
	const char *message_id;
	int64_t since_ms;
	int64_t until_ms;
	int64_t event_id;
	size_t limit; /* 0: no limit */
	int descending;      /* 1: newest (highest id) first */
	int include_deleted; /* jobs only: 1 lists deleted jobs too */
};

#define CB_FILTER_INIT {.state = -1}

/* One stored event, as listed. */
struct cb_event_row {
	int64_t id;
	int64_t received_ms;
	enum cb_event_status status;
	const char *type;
	const char *recipient;
	const char *message_id;
	const char *reject_reason;
	int64_t duplicate_of;
	const char *source;
	const char *raw; /* not NUL-terminated; may hold any bytes */
	size_t raw_len;  /* bytes stored */
	int64_t raw_size; /* bytes received; more than raw_len when cut at CB_STORE_RAW_MAX */
	const char *reject_detail;
	const char *customer;
	const char *sender;
	const char *recipient_norm;
	const char *rmx_id;
	int64_t ts_ms;
	const char *threat; /* "VIRUS", "URL" or NULL */
	const char *details;
	const char *dedup_key;
};

/*
 * Calls fn for each matching event / job in id order; fn returns non-zero to
 * stop. Row strings live until fn returns; absent fields are NULL. Jobs whose
 * row fails validation are passed as final_error with last_error saying why.
 */
int cb_store_list_events(struct cb_store *store, const struct cb_filter *f,
			 int (*fn)(const struct cb_event_row *row, void *ctx), void *ctx,
			 struct cb_err *err);
int cb_store_list_jobs(struct cb_store *store, const struct cb_filter *f,
		       int (*fn)(const struct cb_job *job, void *ctx), void *ctx, struct cb_err *err);

/* One audit row. */
struct cb_audit_row {
	int64_t id;
	int64_t at_ms;
	int64_t job_id;
	int64_t event_id;
	const char *kind; /* "decision", "transition", "requeue", "recover", "quarantine", "delete", "attempt" */
	const char *from_state; /* NULL for decision and attempt rows */
	const char *to_state;   /* NULL for attempt rows */
	const char *detail_json;
};

/* Calls fn for each audit row of job_id (every row when job_id is 0), oldest first. */
int cb_store_list_audit(struct cb_store *store, int64_t job_id,
			int (*fn)(const struct cb_audit_row *row, void *ctx), void *ctx,
			struct cb_err *err);
/* The same for every audit row of one event. */
int cb_store_list_audit_event(struct cb_store *store, int64_t event_id,
			      int (*fn)(const struct cb_audit_row *row, void *ctx), void *ctx,
			      struct cb_err *err);

/* Counts events per type and status ("PZD accepted 7"); fn is called once per group, type "" for events without one. */
int cb_store_count_events(struct cb_store *store,
			  int (*fn)(const char *type, enum cb_event_status status, int64_t count,
				    void *ctx),
			  void *ctx, struct cb_err *err);

/* Counts jobs per state into counts[CB_JOB_STATE_COUNT]; deleted jobs are not counted. */
int cb_store_count_jobs(struct cb_store *store, int64_t counts[CB_JOB_STATE_COUNT],
			struct cb_err *err);

/*
 * Deletes events (with their finished jobs) and audit rows older than the
 * given ages. Unfinished jobs and their events are kept whatever their age:
 * an event goes only when each of its jobs is done, not_found, skipped or
 * deleted. An age <= 0 keeps that table whole. Deletes in chunks of 1000
 * rows per transaction. *deleted (may be NULL) is the number of event and
 * audit rows deleted together; jobs deleted with their events are not
 * counted. Once an accepted event is pruned, a later copy of it is accepted
 * again.
 */
int cb_store_prune(struct cb_store *store, int64_t now_ms, int64_t event_max_age_ms,
		   int64_t audit_max_age_ms, int64_t *deleted, struct cb_err *err);

/*
 * Changes the administrator makes from the CLI or console. Re-queue moves a
 * retry_queue or final_error job to queued with attempts and searches reset
 * to 0. Delete marks a retry_queue or final_error job as deleted (see above);
 * both fail with the job's state for any other job.
 */
int cb_store_job_requeue(struct cb_store *store, int64_t id, struct cb_err *err);
int cb_store_job_delete(struct cb_store *store, int64_t id, struct cb_err *err);

/*
 * Returns SQLite's data_version: it changes when another connection (another
 * process, e.g. the CLI) commits, so the daemon can notice re-queued jobs.
 * Returns -1 when it cannot be read.
 */
int64_t cb_store_data_version(struct cb_store *store);

#endif
