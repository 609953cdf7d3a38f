/*
 * feed.c: the feed thread of feed.h. One thread per feed runs connect,
 * receive, keepalive and reconnect; see feed.h for the delivery contract and
 * the loss window. Untrusted input is handled in ws.c; here close reasons
 * and rejection reasons pass through cb_log_str before they are logged.
 * The status struct is the only state shared with other threads, behind a
 * mutex.
 */
#include "feed/feed.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "feed/ws.h"

/* Rejected messages logged one by one per connection; after that every 1000th. */
#define FEED_REJECT_LOG_MAX 20

struct cb_feed {
	pthread_t thread;
	int stop_fd; /* written once by cb_feed_stop and never drained */
	int wake_fd;
	atomic_int stopping;

	char *name;
	char url[CB_FEED_MAX_URL];
	char *token_file;
	char *proxy;
	char *proxy_user;
	char *proxy_password_file;
	char *proxy_auth;
	char *ca_file;
	int64_t ping_interval_ms;
	int64_t pong_timeout_ms;
	struct cb_feed_tuning tuning;
	struct cb_feed_callbacks cb;
	void *ctx;

	pthread_mutex_t lock;
	struct cb_feed_status status;

	/* Feed thread only. */
	struct cb_backoff backoff;
	int64_t pong_deadline;
	size_t unflushed;
	int64_t unflushed_since;
	int callback_failed;
	uint64_t rejected_this_connection;
};

const char *cb_feed_state_name(enum cb_feed_state state)
{
	switch (state) {
	case CB_FEED_STARTING:
		return "starting";
	case CB_FEED_CONNECTING:
		return "connecting";
	case CB_FEED_CONNECTED:
		return "connected";
	case CB_FEED_WAITING:
		return "waiting";
	case CB_FEED_AUTH_FAILED:
		return "auth_failed";
	case CB_FEED_STOPPED:
		return "stopped";
	}
	return "unknown";
}

/* ---- status ---- */

void cb_feed_status(struct cb_feed *feed, struct cb_feed_status *out)
{
	pthread_mutex_lock(&feed->lock);
	*out = feed->status;
	pthread_mutex_unlock(&feed->lock);
}

static void status_changed(struct cb_feed *feed)
{
	struct cb_feed_status copy;

	if (!feed->cb.on_status)
		return;
	cb_feed_status(feed, &copy);
	feed->cb.on_status(feed->ctx, &copy);
}

static void set_state(struct cb_feed *feed, enum cb_feed_state state, int64_t next_attempt_ms)
{
	pthread_mutex_lock(&feed->lock);
	feed->status.state = state;
	feed->status.next_attempt_ms = next_attempt_ms;
	if (state != CB_FEED_CONNECTED)
		feed->status.connected_since_ms = 0;
	pthread_mutex_unlock(&feed->lock);
	status_changed(feed);
}

static void set_error(struct cb_feed *feed, const char *msg)
{
	pthread_mutex_lock(&feed->lock);
	cb_strlcpy(feed->status.last_error, msg, sizeof(feed->status.last_error));
	feed->status.last_error_ms = cb_now_ms();
	pthread_mutex_unlock(&feed->lock);
}

static void count(struct cb_feed *feed, uint64_t *counter)
{
	pthread_mutex_lock(&feed->lock);
	(*counter)++;
	pthread_mutex_unlock(&feed->lock);
}

/* ---- delivery ---- */

static int flush(struct cb_feed *feed)
{
	if (!feed->unflushed)
		return 0;
	feed->unflushed = 0;
	if (feed->cb.on_flush && feed->cb.on_flush(feed->ctx) < 0) {
		feed->callback_failed = 1;
		return -1;
	}
	return 0;
}

/* Counts one handed-over message and commits when the oldest waits CB_FEED_FLUSH_INTERVAL_MS. */
static int note_unflushed(struct cb_feed *feed)
{
	int64_t now = cb_mono_ms();

	if (feed->unflushed++ == 0)
		feed->unflushed_since = now;
	if (now - feed->unflushed_since >= CB_FEED_FLUSH_INTERVAL_MS)
		return flush(feed);
	return 0;
}

static int on_text(void *ctx, const char *data, size_t len)
{
	struct cb_feed *feed = ctx;

	if (feed->cb.on_message(feed->ctx, data, len) < 0) {
		feed->callback_failed = 1;
		return -1;
	}
	count(feed, &feed->status.messages);
	return note_unflushed(feed);
}

static int on_rejected(void *ctx, const char *data, size_t len, uint64_t full_len, const char *reason)
{
	struct cb_feed *feed = ctx;
	uint64_t n = ++feed->rejected_this_connection;
	struct cb_log_value v;

	if (n <= FEED_REJECT_LOG_MAX || n % 1000 == 0)
		cb_warn("feed message rejected feed=%s reason=%s size=%llu rejected_on_connection=%llu", feed->name,
			cb_log_str(&v, reason), (unsigned long long)full_len, (unsigned long long)n);
	if (feed->cb.on_rejected(feed->ctx, data, len, full_len, reason) < 0) {
		feed->callback_failed = 1;
		return -1;
	}
	count(feed, &feed->status.rejected);
	return note_unflushed(feed);
}

static void on_pong(void *ctx)
{
	struct cb_feed *feed = ctx;

	feed->pong_deadline = 0;
}

/* ---- one connection ---- */

struct secrets {
	char *token;
	size_t token_len;
	char *proxy_password;
	size_t proxy_password_len;
};

static int read_secrets(struct cb_feed *feed, struct secrets *s, struct cb_err *err)
{
	memset(s, 0, sizeof(*s));
	if (!feed->token_file)
		return cb_err_set(err, "feed %s has no token_file", feed->name);
	if (cb_secret_read(feed->token_file, &s->token, &s->token_len, err) < 0)
		return cb_err_prefix(err, "feed token: ");
	if (feed->proxy_password_file &&
	    cb_secret_read(feed->proxy_password_file, &s->proxy_password, &s->proxy_password_len, err) < 0)
		return cb_err_prefix(err, "feed proxy password: ");
	return 0;
}

static void free_secrets(struct secrets *s)
{
	if (s->token)
		cb_secret_free(s->token, s->token_len);
	if (s->proxy_password)
		cb_secret_free(s->proxy_password, s->proxy_password_len);
	memset(s, 0, sizeof(*s));
}

static int connect_feed(struct cb_feed *feed, struct cb_ws **ws, struct cb_ws_connect_info *info,
			struct cb_err *err)
{
	struct cb_ws_options opt;
	struct secrets s;
	int rc;

	memset(info, 0, sizeof(*info));
	if (read_secrets(feed, &s, err) < 0) {
		free_secrets(&s);
		return -1;
	}
	memset(&opt, 0, sizeof(opt));
	opt.url = feed->url;
	opt.bearer_token = s.token;
	opt.proxy = feed->proxy;
	opt.proxy_user = feed->proxy_user;
	opt.proxy_password = s.proxy_password;
	opt.proxy_auth = feed->proxy_auth;
	opt.ca_file = feed->ca_file;
	opt.connect_timeout_ms = feed->tuning.connect_timeout_ms;
	opt.handshake_timeout_ms = feed->tuning.connect_timeout_ms;
	opt.max_message = feed->tuning.max_message;
	opt.cancel_fd = feed->stop_fd;
	rc = cb_ws_connect(&opt, ws, info, err);
	free_secrets(&s);
	return rc;
}

static int64_t earliest(int64_t a, int64_t b)
{
	if (!a)
		return b;
	if (!b)
		return a;
	return a < b ? a : b;
}

struct session {
	struct cb_ws *ws;
	int64_t next_ping;
	int closing;
	int64_t close_deadline;
};

/* Sends PINGs on schedule and detects a dead connection; -1 ends the session. */
static int keepalive(struct cb_feed *feed, struct session *s, int64_t now, struct cb_err *err)
{
	if (!s->closing && now >= s->next_ping) {
		if (cb_ws_ping(s->ws, err) < 0)
			return -1;
		if (!feed->pong_deadline)
			feed->pong_deadline = now + feed->pong_timeout_ms;
		s->next_ping = now + feed->ping_interval_ms;
	}
	if (feed->pong_deadline && now >= feed->pong_deadline)
		return cb_err_set(err, "feed server sent no PONG within %lld ms; replacing the connection",
				  (long long)feed->pong_timeout_ms);
	return 0;
}

/* Waits for the socket, a timer or the stop request. */
static int wait_session(struct cb_feed *feed, struct session *s, int64_t now, struct cb_err *err)
{
	struct pollfd p[2] = { { .fd = cb_ws_fd(s->ws), .events = cb_ws_poll_events(s->ws) },
			       { .fd = feed->stop_fd, .events = POLLIN } };
	int64_t wake = earliest(s->closing ? s->close_deadline : s->next_ping, feed->pong_deadline);
	int64_t timeout;

	if (feed->unflushed)
		wake = earliest(wake, feed->unflushed_since + CB_FEED_FLUSH_INTERVAL_MS);
	timeout = wake - now;
	if (timeout < 0)
		timeout = 0;
	/* Once closing, the stop eventfd stays readable: leave it out or poll would spin. */
	if (poll(p, s->closing ? 1 : 2, (int)timeout) < 0 && errno != EINTR)
		return cb_err_set(err, "poll failed in the feed thread: %s", strerror(errno));
	if (p[0].revents & POLLOUT)
		return cb_ws_flush(s->ws, err);
	return 0;
}

static void start_closing(struct cb_feed *feed, struct session *s, int64_t now)
{
	struct cb_err ignored;

	s->closing = 1;
	s->close_deadline = now + feed->tuning.close_timeout_ms;
	cb_ws_close(s->ws, 1001, "client stopping", &ignored);
}

/* Runs one open connection until it ends or the feed stops; err contains the reason it ended. */
static void run_session(struct cb_feed *feed, struct cb_ws *ws, struct cb_err *err)
{
	struct session s = { .ws = ws, .next_ping = cb_mono_ms() + feed->ping_interval_ms };
	struct cb_ws_handlers handlers = { on_text, on_rejected, on_pong };

	feed->pong_deadline = 0;
	for (;;) {
		enum cb_ws_read_result r = cb_ws_read(ws, &handlers, feed, err);
		int64_t now;

		if (feed->callback_failed) {
			cb_ws_close(ws, 1011, "receiver cannot store events", NULL);
			cb_err_set(err, "the store could not take feed events; reconnecting later");
			return;
		}
		if (r == CB_WS_CLOSED || r == CB_WS_ERROR)
			return;
		if (r == CB_WS_AGAIN && flush(feed) < 0)
			continue; /* callback_failed is handled at the top */
		now = cb_mono_ms();
		if (feed->unflushed && now - feed->unflushed_since >= CB_FEED_FLUSH_INTERVAL_MS && flush(feed) < 0)
			continue;

		if (atomic_load(&feed->stopping) && !s.closing)
			start_closing(feed, &s, now);
		if (s.closing && (cb_ws_close_done(ws) || now >= s.close_deadline)) {
			cb_err_set(err, "feed stopped");
			return;
		}
		if (keepalive(feed, &s, now, err) < 0)
			return;
		if (r == CB_WS_MORE)
			continue;
		if (wait_session(feed, &s, now, err) < 0)
			return;
	}
}

static void log_disconnect(struct cb_feed *feed, struct cb_ws *ws, const struct cb_err *err, int64_t delay)
{
	struct cb_log_value reason, error;
	const char *close_reason;
	uint16_t code;

	cb_ws_close_info(ws, &code, &close_reason);
	cb_warn("feed connection lost feed=%s error=%s close_code=%u close_reason=%s retry_in_ms=%lld", feed->name,
		cb_log_str(&error, err->msg), code, cb_log_str(&reason, close_reason), (long long)delay);
}

/* Connects once and runs the connection; returns the delay before the next attempt. */
static int64_t attempt(struct cb_feed *feed)
{
	struct cb_ws_connect_info info;
	struct cb_ws *ws = NULL;
	struct cb_log_value v;
	struct cb_err err = { "" };
	int64_t connected_at, delay;

	set_state(feed, CB_FEED_CONNECTING, 0);
	count(feed, &feed->status.attempts);
	if (connect_feed(feed, &ws, &info, &err) < 0) {
		if (info.cancelled)
			return 0;
		set_error(feed, err.msg);
		pthread_mutex_lock(&feed->lock);
		feed->status.auth_failed = info.auth_problem;
		feed->status.http_status = info.http_status;
		pthread_mutex_unlock(&feed->lock);
		if (info.auth_problem) {
			delay = feed->tuning.auth_retry_ms;
			cb_error("feed authentication failed feed=%s http_status=%d error=%s retry_in_ms=%lld "
				 "hint=\"check the token file and the channel\"",
				 feed->name, info.http_status, cb_log_str(&v, err.msg), (long long)delay);
			set_state(feed, CB_FEED_AUTH_FAILED, cb_now_ms() + delay);
			return delay;
		}
		delay = cb_backoff_next(&feed->backoff);
		cb_warn("feed connect failed feed=%s error=%s retry_in_ms=%lld", feed->name, cb_log_str(&v, err.msg),
			(long long)delay);
		set_state(feed, CB_FEED_WAITING, cb_now_ms() + delay);
		return delay;
	}

	connected_at = cb_mono_ms();
	pthread_mutex_lock(&feed->lock);
	feed->status.connects++;
	feed->status.auth_failed = 0;
	feed->status.http_status = 0;
	feed->status.connected_since_ms = cb_now_ms();
	feed->status.state = CB_FEED_CONNECTED;
	pthread_mutex_unlock(&feed->lock);
	status_changed(feed);
	cb_notice("feed connected feed=%s", feed->name);
	feed->rejected_this_connection = 0;
	feed->callback_failed = 0;

	run_session(feed, ws, &err);
	flush(feed);
	if (atomic_load(&feed->stopping)) {
		cb_notice("feed disconnected feed=%s reason=stop", feed->name);
		cb_ws_free(ws);
		return 0;
	}

	if (cb_mono_ms() - connected_at >= feed->tuning.stable_ms)
		cb_backoff_reset(&feed->backoff);
	delay = cb_backoff_next(&feed->backoff);
	set_error(feed, err.msg);
	count(feed, &feed->status.reconnects);
	log_disconnect(feed, ws, &err, delay);
	cb_ws_free(ws);
	set_state(feed, CB_FEED_WAITING, cb_now_ms() + delay);
	return delay;
}

/* Waits delay ms, or less when woken or stopped. */
static void wait_retry(struct cb_feed *feed, int64_t delay)
{
	int64_t deadline = cb_mono_ms() + delay;

	while (!atomic_load(&feed->stopping)) {
		struct pollfd p[2] = { { .fd = feed->stop_fd, .events = POLLIN },
				       { .fd = feed->wake_fd, .events = POLLIN } };
		int64_t left = deadline - cb_mono_ms();
		uint64_t v;

		if (left <= 0)
			return;
		if (poll(p, 2, (int)left) < 0 && errno != EINTR)
			return; /* the caller's next attempt is still paced by the back-off */
		if (p[1].revents & POLLIN) {
			if (read(feed->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				return;
			cb_info("feed woken for an attempt now feed=%s", feed->name);
			return;
		}
	}
}

static void *feed_main(void *arg)
{
	struct cb_feed *feed = arg;

	while (!atomic_load(&feed->stopping)) {
		int64_t delay = attempt(feed);

		if (atomic_load(&feed->stopping))
			break;
		wait_retry(feed, delay);
	}
	set_state(feed, CB_FEED_STOPPED, 0);
	return NULL;
}

/* ---- start and stop ---- */

static void feed_free(struct cb_feed *feed)
{
	if (feed->stop_fd >= 0)
		close(feed->stop_fd);
	if (feed->wake_fd >= 0)
		close(feed->wake_fd);
	pthread_mutex_destroy(&feed->lock);
	free(feed->name);
	free(feed->token_file);
	free(feed->proxy);
	free(feed->proxy_user);
	free(feed->proxy_password_file);
	free(feed->proxy_auth);
	free(feed->ca_file);
	free(feed);
}

static void apply_tuning(struct cb_feed *feed, const struct cb_feed_tuning *t)
{
	if (t)
		feed->tuning = *t;
	if (feed->tuning.auth_retry_ms <= 0)
		feed->tuning.auth_retry_ms = CB_FEED_AUTH_RETRY_MS;
	if (feed->tuning.stable_ms <= 0)
		feed->tuning.stable_ms = CB_FEED_STABLE_MS;
	if (feed->tuning.connect_timeout_ms <= 0)
		feed->tuning.connect_timeout_ms = CB_FEED_CONNECT_TIMEOUT_MS;
	if (feed->tuning.close_timeout_ms <= 0)
		feed->tuning.close_timeout_ms = CB_FEED_CLOSE_TIMEOUT_MS;
	if (feed->tuning.max_message == 0)
		feed->tuning.max_message = CB_FEED_MAX_MESSAGE;
	cb_backoff_init(&feed->backoff, feed->tuning.backoff_first_ms, feed->tuning.backoff_max_ms,
			feed->tuning.random, feed->tuning.random_ctx);
}

static int copy_config(struct cb_feed *feed, const struct cb_feed_config *cfg, struct cb_err *err)
{
	feed->name = cb_strdup(cfg->name ? cfg->name : "default");
	feed->token_file = cb_strdup(cfg->token_file);
	feed->proxy = cb_strdup(cfg->proxy);
	feed->proxy_user = cb_strdup(cfg->proxy_user);
	feed->proxy_password_file = cb_strdup(cfg->proxy_password_file);
	feed->proxy_auth = cb_strdup(cfg->proxy_auth);
	feed->ca_file = cb_strdup(cfg->ca_file);
	if (!feed->name || (cfg->token_file && !feed->token_file) || (cfg->proxy && !feed->proxy) ||
	    (cfg->proxy_user && !feed->proxy_user) || (cfg->proxy_password_file && !feed->proxy_password_file) ||
	    (cfg->proxy_auth && !feed->proxy_auth) || (cfg->ca_file && !feed->ca_file))
		return cb_err_set(err, "out of memory copying the feed settings");

	feed->ping_interval_ms = cfg->ping_interval_ms > 0 ? cfg->ping_interval_ms : CB_FEED_DEFAULT_PING_INTERVAL_MS;
	if (feed->ping_interval_ms > CB_FEED_MAX_PING_INTERVAL_MS)
		feed->ping_interval_ms = CB_FEED_MAX_PING_INTERVAL_MS;
	feed->pong_timeout_ms = cfg->pong_timeout_ms > 0 ? cfg->pong_timeout_ms : CB_FEED_DEFAULT_PONG_TIMEOUT_MS;
	return 0;
}

static int check_config(const struct cb_feed_config *cfg, char *url, struct cb_err *err)
{
	struct cb_ws_url parts;

	if (!cfg->token_file)
		return cb_err_set(err, "feed %s: token_file is missing", cfg->name ? cfg->name : "default");
	if (cb_feed_compose_url(cfg->url, cfg->channel, url, CB_FEED_MAX_URL, err) < 0 ||
	    cb_ws_parse_url(url, &parts, err) < 0)
		return cb_err_prefix(err, "feed %s: ", cfg->name ? cfg->name : "default");
	return 0;
}

int cb_feed_start(const struct cb_feed_config *cfg, const struct cb_feed_tuning *tuning,
		  const struct cb_feed_callbacks *callbacks, void *ctx, struct cb_feed **out, struct cb_err *err)
{
	struct cb_feed *feed;
	int rc;

	*out = NULL;
	if (!callbacks || !callbacks->on_message || !callbacks->on_rejected)
		return cb_err_set(err, "feed callbacks on_message and on_rejected are required");
	feed = calloc(1, sizeof(*feed));
	if (!feed)
		return cb_err_set(err, "out of memory for the feed");
	feed->stop_fd = feed->wake_fd = -1;
	pthread_mutex_init(&feed->lock, NULL);
	feed->cb = *callbacks;
	feed->ctx = ctx;
	apply_tuning(feed, tuning);

	if (check_config(cfg, feed->url, err) < 0 || copy_config(feed, cfg, err) < 0) {
		feed_free(feed);
		return -1;
	}
	feed->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	feed->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (feed->stop_fd < 0 || feed->wake_fd < 0) {
		cb_err_set(err, "eventfd failed: %s", strerror(errno));
		feed_free(feed);
		return -1;
	}
	rc = pthread_create(&feed->thread, NULL, feed_main, feed);
	if (rc != 0) {
		cb_err_set(err, "cannot start the feed thread: %s", strerror(rc));
		feed_free(feed);
		return -1;
	}
	*out = feed;
	return 0;
}

static void signal_fd(int fd)
{
	uint64_t one = 1;

	/* An eventfd write only fails when the counter would overflow, which means it is already readable. */
	if (write(fd, &one, sizeof(one)) < 0)
		return;
}

void cb_feed_wake(struct cb_feed *feed)
{
	signal_fd(feed->wake_fd);
}

void cb_feed_stop(struct cb_feed *feed)
{
	if (!feed)
		return;
	atomic_store(&feed->stopping, 1);
	signal_fd(feed->stop_fd);
	pthread_join(feed->thread, NULL);
	feed_free(feed);
}
