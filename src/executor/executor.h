/*
 * executor.h: the executor, which turns stored jobs into backend requests
 * and outcomes.
 *
 * One executor thread runs cb_executor_run(): it owns one SQLite connection,
 * one curl multi handle, the backend's state machines, the limiter and the
 * timers, and it blocks in curl_multi_poll() with an eventfd as an extra
 * file descriptor. Other threads may call only cb_executor_wake(),
 * cb_executor_stop(), cb_executor_pause(), cb_executor_resume() and
 * cb_executor_stats(); everything else belongs to the thread that runs it.
 *
 * Untrusted input: HTTP response headers and bodies from the mailbox servers
 * (bodies are parsed by the backend; this module reads the status, the
 * request-id and Retry-After headers), and job rows read from the store.
 *
 * Job lifecycle (the store's state machine in store.h):
 *   claim      queued -> running, in id order, in batches
 *   DONE       running -> done
 *   NOT_FOUND  running -> retry_wait (next search in not_found_interval_ms)
 *              until not_found_searches searches were made, then not_found
 *   TEMPORARY  running -> retry_wait (Retry-After / BackOffMilliseconds hint,
 *              or jittered exponential back-off) until max_attempts failed
 *              attempts, then retry_queue
 *   PERMANENT  running -> final_error
 *   stop       running -> retry_wait due at once (attempts unchanged), so
 *              the next start runs it again; a job left in running by a crash
 *              is put back by cb_store_recover() at the next start.
 * See docs/executor.md for the scheduling model and the crash-safety argument.
 */
#ifndef CLAWBACK_EXECUTOR_EXECUTOR_H
#define CLAWBACK_EXECUTOR_EXECUTOR_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "base/err.h"
#include "config/config.h"
#include "store/store.h"

/* Maximum jobs held in memory at once (claimed and not finished); the rest wait in the store. */
#define CB_EXEC_MAX_ACTIVE 2048
/* Maximum jobs of one limit key held in memory at once, so one mailbox's burst never fills the executor. */
#define CB_EXEC_MAX_ACTIVE_PER_KEY 64
/* Jobs read from the store per page when claiming. */
#define CB_EXEC_CLAIM_BATCH 512
/* Maximum job rows read in one claim round (pages of CB_EXEC_CLAIM_BATCH). */
#define CB_EXEC_CLAIM_SCAN_MAX 4096
/* Maximum wait between two checks of the store for changes made by other processes. */
#define CB_EXEC_IDLE_CHECK_MS 500
/* Shortest time between two claim rounds started by finished jobs (not by wake-ups). */
#define CB_EXEC_CLAIM_INTERVAL_MS 50
/* Maximum server back-off honoured; a larger Retry-After or BackOffMilliseconds is cut to this. */
#define CB_EXEC_MAX_SERVER_BACKOFF_MS (60 * 60 * 1000)
/* Request timeout used when the backend sets none. */
#define CB_EXEC_DEFAULT_TIMEOUT_MS 60000
/* Connect timeout of every request. */
#define CB_EXEC_CONNECT_TIMEOUT_MS 15000
/*
 * Maximum connections per host; HTTP/2 requests share them. Servers allow
 * about 100 streams per connection (Node and nghttp2 default, and the
 * streams libcurl opens per connection by default), so 16 connections carry
 * the default global_concurrency of 1,200 requests with room to spare.
 */
#define CB_EXEC_MAX_HOST_CONNECTIONS 16
/* libcurl receive buffer per transfer, in bytes (libcurl's default is 16 KiB). */
#define CB_EXEC_RECV_BUFFER 4096L
/* libcurl upload buffer per transfer, in bytes: libcurl's minimum (its default is 64 KiB). */
#define CB_EXEC_UPLOAD_BUFFER 16384L
/* Maximum requests one operation may make, so a backend bug cannot loop forever. */
#define CB_EXEC_MAX_REQUESTS_PER_OP 1000

struct cb_executor;

/* Counters readable from any thread; a snapshot, each field read atomically. */
struct cb_executor_stats {
	int64_t active_jobs;       /* claimed, not finished */
	int64_t in_flight;         /* HTTP requests started, no response yet */
	int64_t waiting_requests;  /* requests queued behind the limits */
	int64_t claimed;           /* jobs claimed since start */
	int64_t done;              /* since start, per outcome */
	int64_t not_found;
	int64_t retry_wait;        /* moved to retry_wait (not-found re-search or temporary error) */
	int64_t retry_queue;
	int64_t final_error;
	int64_t requests;          /* HTTP requests finished */
	int64_t throttled;         /* responses with HTTP 429 or 503 */
	int64_t next_retry_ms;     /* earliest retry_wait job due (wall clock ms), 0 when none */
	int paused;
	int stopping;
};

/*
 * Creates an executor over the store at store_path (opened here, for this
 * executor's thread) with the backend and its open state (kept by the
 * caller, who closes it after cb_executor_free()). cfg must outlive the
 * executor.
 */
int cb_executor_new(const struct cb_config *cfg, const char *store_path,
		    const struct cb_backend_ops *backend, void *backend_state,
		    struct cb_executor **out, struct cb_err *err);

/*
 * Runs the loop until cb_executor_stop(). Starts with cb_store_recover().
 * Returns -1 only when the store or curl cannot be used at all (err contains the reason);
 * job failures are recorded on the jobs and logged.
 */
int cb_executor_run(struct cb_executor *ex, struct cb_err *err);

/*
 * Runs the loop until a claim round finds nothing due, nothing is in flight
 * and no queued request may start now (for `clawback replay` and the demo).
 * Requests held by a server back-off are put back, due when it ends. Jobs in
 * retry_wait that are due later stay there, and stats.next_retry_ms is
 * the time the first is due. Also returns early on cb_executor_stop().
 */
int cb_executor_drain(struct cb_executor *ex, struct cb_err *err);

/* Wakes the loop to look for new jobs (after a feed thread commits). Thread-safe. */
void cb_executor_wake(struct cb_executor *ex);

/*
 * Asks the loop to stop. graceful: claim nothing new, let requests in flight
 * finish for up to stop_timeout_ms, then put unfinished jobs back.
 * Not graceful: abort requests in flight at once. Thread-safe.
 */
void cb_executor_stop(struct cb_executor *ex, int graceful);

/* Claim nothing new while paused; requests in flight and started jobs finish. Thread-safe. */
void cb_executor_pause(struct cb_executor *ex);
void cb_executor_resume(struct cb_executor *ex);

void cb_executor_stats(const struct cb_executor *ex, struct cb_executor_stats *out);

void cb_executor_free(struct cb_executor *ex);

/* Helpers shared with the tests. */

/*
 * Parses a Retry-After header value: delay-seconds, or an HTTP date compared
 * with now_s (seconds since the epoch). Returns the delay in ms (0 for a past
 * date, at most CB_EXEC_MAX_SERVER_BACKOFF_MS), or -1 when invalid.
 */
int64_t cb_exec_parse_retry_after(const char *value, int64_t now_s);

/*
 * Returns the back-off before the next attempt after failed_attempts
 * failures (1 or more): retry_base_ms doubled per earlier failure, capped at
 * retry_max_ms, then jittered into [half, full] with random (any 32 bits).
 */
int64_t cb_exec_backoff_ms(const struct cb_executor_config *cfg, int64_t failed_attempts,
			   uint32_t random);

#endif
