/*
 * limiter.h: per-key request limits with FIFO queues and round-robin service.
 *
 * Runs in the executor thread only; no locks. Time is passed in by the caller
 * (monotonic milliseconds), so tests drive it with an injected clock.
 *
 * A limit key names what a backend's server counts requests against:
 * "graph:APP:mailbox" for Microsoft Graph (per application and mailbox),
 * "ews:SERVER" for Exchange Web Services (per server). For every key:
 *   - at most `concurrency` requests in flight ("ews:" keys use
 *     server_concurrency, every other key mailbox_concurrency);
 *   - for keys that are not "ews:", at most `rate` request starts in any
 *     interval of window_ms + CB_LIMIT_WINDOW_SLACK_MS (an exact sliding
 *     log of start times, not a token bucket: a full bucket plus its refill
 *     lets through up to twice the rate within one window);
 *   - no start before a back-off deadline set with cb_limiter_block();
 * and across all keys at most global_concurrency requests in flight.
 *
 * A request that cannot start waits in its key's FIFO queue. Keys whose head
 * request could start are served round-robin, one request per turn, so one
 * busy key never holds back the others. Keys whose head request continues an
 * operation (cb_limit_waiter.continues) go first: started jobs finish before
 * new ones start, instead of every claimed job making its first request before
 * any makes its second.
 *
 * Known limit: start times are ours, counted when the request is handed to
 * curl; the server counts arrivals. The slack covers arrival jitter of up to
 * CB_LIMIT_WINDOW_SLACK_MS.
 */
#ifndef CLAWBACK_EXECUTOR_LIMITER_H
#define CLAWBACK_EXECUTOR_LIMITER_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "executor/keytab.h"

/* Maximum limit key length accepted, in bytes ("graph:" + application id + ":" + a 320-byte address). */
#define CB_LIMIT_KEY_MAX 512
/* Added to the rate window, so requests delayed on the way still land in distinct windows. */
#define CB_LIMIT_WINDOW_SLACK_MS 5000
/* Prefix of the keys that get the per-server EWS concurrency limit and no rate limit. */
#define CB_LIMIT_EWS_PREFIX "ews:"

struct cb_limits {
	int64_t key_concurrency;    /* per non-EWS key; > 0 */
	int64_t key_rate;           /* starts per window per non-EWS key; 0 = no rate limit */
	int64_t window_ms;          /* rate window */
	int64_t server_concurrency; /* per "ews:" key; > 0 */
	int64_t global_concurrency; /* all keys together; > 0 */
};

/* A request waiting for its turn, embedded in the caller's request structure. */
struct cb_limit_waiter {
	struct cb_limit_waiter *next;
	/*
	 * Set by the caller before cb_limiter_enqueue(): the request continues an
	 * operation that has already made requests. Keys whose head request
	 * continues one are served before keys whose head request starts one.
	 */
	int continues;
};

struct cb_limit_key;
struct cb_limiter;

struct cb_limiter_counts {
	size_t keys;      /* keys in the table */
	size_t waiting;   /* requests queued on all keys */
	size_t in_flight; /* requests started and not yet released */
};

int cb_limiter_new(const struct cb_limits *limits, struct cb_limiter **out, struct cb_err *err);
/* Frees the limiter and every key; waiters are the caller's and are left alone. */
void cb_limiter_free(struct cb_limiter *l);

/*
 * Returns the key named name, creating it when needed, with one more
 * reference: a referenced key is never freed. Fails on an empty or too long
 * name, or when out of memory.
 */
int cb_limiter_ref(struct cb_limiter *l, const char *name, struct cb_limit_key **out,
		   struct cb_err *err);
/* Drops a reference; an idle key is freed later by cb_limiter_gc(). */
void cb_limiter_unref(struct cb_limiter *l, struct cb_limit_key *key);
size_t cb_limiter_key_refs(const struct cb_limit_key *key);
const char *cb_limiter_key_name(const struct cb_limit_key *key);
/* Requests of this key in flight. */
size_t cb_limiter_key_in_flight(const struct cb_limit_key *key);

/* Queues w behind the key's earlier waiters; the caller holds a reference to key. */
void cb_limiter_enqueue(struct cb_limiter *l, struct cb_limit_key *key, struct cb_limit_waiter *w,
			int64_t now_ms);

/*
 * Removes w from its key's queue when it is still waiting (for a stop or a
 * cancelled job); returns 1 when it was found.
 */
int cb_limiter_cancel(struct cb_limiter *l, struct cb_limit_key *key, struct cb_limit_waiter *w);

/*
 * Returns the next request that may start now and counts it as started and
 * in flight on its key (stored in *key_out), or NULL when none may start.
 */
struct cb_limit_waiter *cb_limiter_next(struct cb_limiter *l, int64_t now_ms,
					struct cb_limit_key **key_out);

/* Ends one in-flight request of key. */
void cb_limiter_release(struct cb_limiter *l, struct cb_limit_key *key, int64_t now_ms);

/* Lets no request of key start before until_ms (a server back-off); an earlier deadline stays. */
void cb_limiter_block(struct cb_limiter *l, struct cb_limit_key *key, int64_t until_ms);
int64_t cb_limiter_key_blocked_until(const struct cb_limit_key *key);

/*
 * Returns when cb_limiter_next() may return something: now_ms when a request
 * can start now, a later time when the earliest waiter is held by a deadline
 * or the rate window, or -1 when nothing waits on time (queues empty, or held
 * only by concurrency).
 */
int64_t cb_limiter_next_ready_ms(struct cb_limiter *l, int64_t now_ms);

/* Frees idle keys: no reference, nothing waiting or in flight, no start in the window, no block. */
void cb_limiter_gc(struct cb_limiter *l, int64_t now_ms);

void cb_limiter_counts(const struct cb_limiter *l, struct cb_limiter_counts *out);

#endif
