/*
 * exec_internal.h: the executor's structures, shared by executor.c (the loop
 * and claiming), exec_http.c (curl requests) and exec_outcome.c (job results).
 * Everything here belongs to the executor thread, except the atomics.
 */
#ifndef CLAWBACK_EXECUTOR_EXEC_INTERNAL_H
#define CLAWBACK_EXECUTOR_EXEC_INTERNAL_H

#include <curl/curl.h>
#include <stdatomic.h>

#include "executor/executor.h"
#include "executor/limiter.h"

/* One claimed job: its store row, the backend operation and its current request. */
struct exec_job {
	struct exec_job *prev;
	struct exec_job *next;
	struct cb_job job;
	void *op;
	struct cb_limit_key *key;
	struct cb_limit_waiter waiter;
	int waiting;  /* the current request is queued in the limiter */
	CURL *easy;   /* the current request is in flight */
	struct cb_http_request req;
	size_t body_offset; /* bytes of req.body handed to curl so far */
	struct cb_http_response resp;
	int64_t started_mono;
	int requests;              /* requests made by this run */
	int sent_change;           /* this run handed curl a request other than GET */
	int64_t server_backoff_ms; /* last Retry-After of this run, -1 when none */
};

struct exec_stats {
	_Atomic int64_t active_jobs;
	_Atomic int64_t in_flight;
	_Atomic int64_t waiting_requests;
	_Atomic int64_t claimed;
	_Atomic int64_t done;
	_Atomic int64_t not_found;
	_Atomic int64_t retry_wait;
	_Atomic int64_t retry_queue;
	_Atomic int64_t final_error;
	_Atomic int64_t requests;
	_Atomic int64_t throttled;
	_Atomic int64_t next_retry_ms;
};

enum exec_stop {
	EXEC_RUN = 0,
	EXEC_STOP_GRACEFUL,
	EXEC_STOP_NOW,
};

struct cb_executor {
	const struct cb_config *cfg;
	struct cb_executor_config limits;
	struct cb_store *store;
	const struct cb_backend_ops *backend;
	void *backend_state;
	CURLM *multi;
	int wake_fd; /* eventfd */
	struct cb_limiter *limiter;

	struct exec_job *first; /* active jobs, in claim order */
	struct exec_job *last;
	size_t active;

	/* Claiming. */
	int need_claim;
	int claim_on_finish;   /* the last round left due jobs behind (caps): claim again when jobs end */
	int64_t claim_cursor;  /* the next round starts after this job id */
	int64_t last_claim_mono;
	size_t last_round_claimed;
	int64_t next_retry_ms; /* wall clock; 0: none */
	int64_t data_version;
	int64_t last_version_check_mono;
	int64_t last_gc_mono;

	int in_txn;
	int drain;
	int stopping;
	int64_t stop_deadline_mono;
	uint64_t random_state;

	atomic_int stop_request; /* enum exec_stop */
	atomic_int paused;
	struct exec_stats stats;
};

/* exec_http.c */
void exec_requests_start(struct cb_executor *ex);
void exec_requests_collect(struct cb_executor *ex);
void exec_request_abort(struct cb_executor *ex, struct exec_job *ej);
/* Calls the backend's op_next for the first time and queues its request or ends the job. */
void exec_job_begin(struct cb_executor *ex, struct exec_job *ej);

/* exec_outcome.c */
void exec_job_finish(struct cb_executor *ex, struct exec_job *ej, const struct cb_outcome *out);
void exec_job_put_back(struct cb_executor *ex, struct exec_job *ej);
void exec_job_free(struct cb_executor *ex, struct exec_job *ej);

/* executor.c */
void exec_txn_begin(struct cb_executor *ex);
void exec_txn_commit(struct cb_executor *ex);
uint32_t exec_random(struct cb_executor *ex);

#endif
