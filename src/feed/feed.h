/*
 * feed.h: the Retarus SIEM feed client, one thread per configured feed.
 *
 * The thread keeps one WebSocket connection to the feed (ws.h), hands every
 * complete text message to on_message and every rejected one (binary,
 * invalid UTF-8, too large, cut short) to on_rejected with its raw bytes,
 * and reconnects with jittered exponential back-off (backoff.h). It runs a
 * poll() loop on the socket and two eventfds (stop, wake-up), never a sleep
 * loop. Keepalive: a PING every ping_interval_ms (at most 60 s, as Retarus
 * recommends, because it drops connections idle for 5 minutes); no matching
 * PONG within pong_timeout_ms means the connection is dead and is replaced.
 *
 * Delivery and the loss window: the feed has no acknowledgement and no
 * replay. A message is ours once on_message returns; the callback may batch
 * commits, and the thread calls on_flush when the socket has no more bytes
 * for now and at the latest flush_interval_ms (100 ms) after the first
 * unflushed message, and before it reconnects or stops. Events still in
 * kernel or TLS buffers, or in an uncommitted batch, are lost when the
 * process dies. When on_message, on_rejected or on_flush returns -1 (the
 * store cannot take events) the thread closes the connection with 1011 and
 * reconnects after back-off, so no more events are read than can be kept.
 *
 * An upgrade rejected with 400, 401 or 403 is an authentication problem:
 * it is logged with the status, shown in the status, and retried every
 * auth_retry_ms (5 minutes) instead of on the back-off schedule. The token
 * file is read again before every attempt, so a corrected token is picked
 * up; cb_feed_wake() makes the next attempt happen now.
 */
#ifndef CLAWBACK_FEED_FEED_H
#define CLAWBACK_FEED_FEED_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "config/config.h"
#include "feed/backoff.h"

/* Largest feed message delivered; a larger one is rejected, skipped, and the connection stays up. */
#define CB_FEED_MAX_MESSAGE (1024 * 1024)
/* Longest time between the first unflushed message and on_flush (the commit deadline). */
#define CB_FEED_FLUSH_INTERVAL_MS 100
/* Keepalive defaults, used when the config value is 0 or less. */
#define CB_FEED_DEFAULT_PING_INTERVAL_MS 30000
#define CB_FEED_DEFAULT_PONG_TIMEOUT_MS 20000
/* Retarus closes connections idle for 5 minutes and asks for a PING at least every 60 s. */
#define CB_FEED_MAX_PING_INTERVAL_MS 60000
/* Retry interval after the server rejected the token (400/401/403). */
#define CB_FEED_AUTH_RETRY_MS (5 * 60 * 1000)
/* A connection up this long resets the back-off schedule. */
#define CB_FEED_STABLE_MS 60000
/* TCP + proxy + TLS, and then the upgrade request and response. */
#define CB_FEED_CONNECT_TIMEOUT_MS 30000
#define CB_FEED_HANDSHAKE_TIMEOUT_MS 30000
/* How long a graceful stop waits for the server to answer our close frame. */
#define CB_FEED_CLOSE_TIMEOUT_MS 2000
/* Longest URL assembled from url and channel. */
#define CB_FEED_MAX_URL 2048

enum cb_feed_state {
	CB_FEED_STARTING,
	CB_FEED_CONNECTING,
	CB_FEED_CONNECTED,
	CB_FEED_WAITING,     /* waiting to retry after an error */
	CB_FEED_AUTH_FAILED, /* waiting to retry after a rejected token */
	CB_FEED_STOPPED,
};

struct cb_feed_status {
	enum cb_feed_state state;
	int64_t connected_since_ms; /* wall clock; 0 when not connected */
	int64_t next_attempt_ms;    /* wall clock of the next attempt while waiting, else 0 */
	uint64_t messages;          /* delivered to on_message */
	uint64_t rejected;          /* delivered to on_rejected */
	uint64_t attempts;          /* connection attempts */
	uint64_t connects;          /* attempts that reached the open WebSocket */
	uint64_t reconnects;        /* connections that ended and were replaced */
	int auth_failed;            /* 1 while the last attempt ended in 400/401/403 */
	int http_status;            /* status of the last rejected upgrade, 0 if none */
	int64_t last_error_ms;      /* wall clock */
	char last_error[CB_ERR_MAX];
};

struct cb_feed_callbacks {
	/* One complete, valid UTF-8 text message (NUL-terminated). 0, or -1 when it cannot be kept. */
	int (*on_message)(void *ctx, const char *data, size_t len);
	/*
	 * A message that is not delivered: data holds its first len bytes (up
	 * to CB_WS_REJECT_KEEP) of full_len, and reason names the cause. 0, or -1 when it
	 * cannot be kept.
	 */
	int (*on_rejected)(void *ctx, const char *data, size_t len, uint64_t full_len, const char *reason);
	/* Commit what on_message and on_rejected handed over. 0, or -1 on failure. May be NULL. */
	int (*on_flush)(void *ctx);
	/* The status changed (connected, disconnected, auth failure). Called in the feed thread. May be NULL. */
	void (*on_status)(void *ctx, const struct cb_feed_status *status);
};

/* Timing knobs; zero fields take the defaults above. Tests shorten them. */
struct cb_feed_tuning {
	int64_t backoff_first_ms;
	int64_t backoff_max_ms;
	int64_t auth_retry_ms;
	int64_t stable_ms;
	int64_t connect_timeout_ms;
	int64_t close_timeout_ms;
	size_t max_message;
	cb_random_fn random; /* NULL: OpenSSL */
	void *random_ctx;
};

struct cb_feed;

/*
 * Checks cfg, copies what it needs, and starts the thread. tuning may be
 * NULL. The callbacks run in the feed thread, and ctx is passed to each.
 * The caller must have called curl_global_init() before any thread starts.
 */
int cb_feed_start(const struct cb_feed_config *cfg, const struct cb_feed_tuning *tuning,
		  const struct cb_feed_callbacks *callbacks, void *ctx, struct cb_feed **out, struct cb_err *err);
/*
 * Stops the thread: a connected feed sends close 1001, delivers what still
 * arrives until the server answers (at most close_timeout_ms), flushes, and
 * the thread is joined. Frees feed. NULL is allowed.
 */
void cb_feed_stop(struct cb_feed *feed);
/* Makes a waiting feed try to connect now (after the token was changed). */
void cb_feed_wake(struct cb_feed *feed);
/* Copies the current status; safe from any thread. */
void cb_feed_status(struct cb_feed *feed, struct cb_feed_status *out);
const char *cb_feed_state_name(enum cb_feed_state state);

/*
 * Builds the connection URL from url and channel. The channel is 6 to 32 of
 * [a-z0-9-]; NULL means "default". A URL that already carries channel= keeps
 * it when channel is NULL or "default" (the config default) and is an error
 * when another channel is configured. Pure; exposed for tests.
 */
int cb_feed_compose_url(const char *url, const char *channel, char *out, size_t size, struct cb_err *err);
/* Returns 0 when name is a valid channel name. */
int cb_feed_channel_valid(const char *name);

#endif
