/*
 * pipeline.h: the path every received message takes before anything acts on
 * it: parse and validate, decide with the rules, store durably.
 *
 * Used by the feed threads of the daemon and by `clawback replay`, so both
 * treat events identically. Each user owns its own pipeline (and store
 * connection). Writes are grouped into batch transactions: a batch is
 * committed when it reaches CB_PIPELINE_BATCH_MAX messages or is
 * CB_PIPELINE_BATCH_MS old, so at most that window of received messages is
 * uncommitted at any moment. Nothing downstream sees an event before its batch
 * is committed.
 */
#ifndef CLAWBACK_PIPELINE_PIPELINE_H
#define CLAWBACK_PIPELINE_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "rules/rules.h"
#include "store/store.h"

/* Maximum messages in one batch transaction. */
#define CB_PIPELINE_BATCH_MAX 1000
/* Oldest uncommitted message of a batch, in ms: the loss window after a crash. */
#define CB_PIPELINE_BATCH_MS 100

struct cb_pipeline_counts {
	int64_t received;
	int64_t accepted;  /* PZD events with a new job */
	int64_t ignored;   /* other event types */
	int64_t rejected;  /* malformed */
	int64_t duplicate; /* repeats of a stored PZD event */
};

struct cb_pipeline {
	struct cb_store *store;            /* not owned */
	const struct cb_ruleset *rules;    /* not owned */
	int global_dry_run;
	const char *source;                /* "feed:NAME" or "replay:FILE", not owned */
	struct cb_pipeline_counts counts;  /* since the pipeline was set up */
	size_t batch_count;                /* messages in the open batch */
	int64_t batch_started_ms;          /* monotonic time of its first message */
};

void cb_pipeline_init(struct cb_pipeline *p, struct cb_store *store, const struct cb_ruleset *rules,
		      int global_dry_run, const char *source);

/*
 * Takes one received message (raw bytes, as they arrived) through parse,
 * rules and store, in the open batch (opening one when needed), and commits
 * the batch when it is full or old. out, when not NULL, receives the stored
 * ids and status; match, when not NULL, the rules' decision for a PZD event.
 * A malformed message is not an error here: it is stored as rejected.
 * Returns -1 only when the store fails. err then contains the reason, and
 * the batch is rolled back, so its messages must be submitted again.
 */
int cb_pipeline_submit(struct cb_pipeline *p, const char *raw, size_t len,
		       struct cb_ingest_result *out, struct cb_rule_match *match, struct cb_err *err);

/*
 * Stores a message that never reached the parser as rejected, with its bytes,
 * reason (CB_REJECT_TRANSPORT for a binary, cut or invalid UTF-8 WebSocket
 * message, CB_REJECT_TOO_LARGE for an over-long one) and detail.
 */
int cb_pipeline_reject(struct cb_pipeline *p, const char *raw, size_t len,
		       enum cb_event_reject reason, const char *detail, struct cb_ingest_result *out,
		       struct cb_err *err);

/* Commits the open batch if it is older than CB_PIPELINE_BATCH_MS (force: whatever its age). */
int cb_pipeline_flush(struct cb_pipeline *p, int force, struct cb_err *err);

/* ms until the open batch must be committed, or -1 when no batch is open (for poll timeouts). */
int64_t cb_pipeline_flush_due_in(const struct cb_pipeline *p);

#endif
