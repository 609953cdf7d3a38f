/*
 * backoff.h: the reconnect schedule of the feed client.
 *
 * Exponential back-off with "equal jitter": retry n (counting from 0) waits a
 * random time in [base/2, base] where base = first_ms * 2^n, capped at max_ms.
 * With the defaults the first retry comes within 1 s and later ones within
 * 60 s. The random source is injected so tests can pin the schedule.
 * Pure code; runs in the feed thread.
 */
#ifndef CLAWBACK_FEED_BACKOFF_H
#define CLAWBACK_FEED_BACKOFF_H

#include <stdint.h>

/* Base delay of the first retry after a failed or lost connection. */
#define CB_BACKOFF_DEFAULT_FIRST_MS 1000
/* Longest delay between two attempts: long enough to spare a struggling server. */
#define CB_BACKOFF_DEFAULT_MAX_MS 60000

/* Returns a uniformly distributed 64-bit value. */
typedef uint64_t (*cb_random_fn)(void *ctx);

struct cb_backoff {
	int64_t first_ms;
	int64_t max_ms;
	unsigned attempt; /* retries since the last reset */
	cb_random_fn random;
	void *random_ctx;
};

/* Sets up b; first_ms/max_ms <= 0 take the defaults; random NULL uses OpenSSL's RAND_bytes. */
void cb_backoff_init(struct cb_backoff *b, int64_t first_ms, int64_t max_ms, cb_random_fn random,
		     void *random_ctx);
/* Returns the delay before the next attempt and advances the schedule. */
int64_t cb_backoff_next(struct cb_backoff *b);
/* Starts the schedule over (after a connection stayed up long enough). */
void cb_backoff_reset(struct cb_backoff *b);

#endif
