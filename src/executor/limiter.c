/*
 * limiter.c: the per-key limits of limiter.h.
 *
 * Each key with waiting requests sits in at most one list: `ready_continue`
 * or `ready` (its head request may start now, and continues an operation or
 * starts one), `timed` (held until ready_at by a back-off deadline or the
 * rate window) or none (held by its concurrency limit, and placed again when
 * one of its requests ends). `ready_continue` is served before `ready`. The
 * global cap is checked before the ready lists are served, so keys stay ready
 * while it is reached.
 */
#include "executor/limiter.h"

#include <stdlib.h>
#include <string.h>

/* First size of a key's log of start times; it doubles up to the rate. */
#define START_LOG_MIN 8
/* Wait before trying again when the start log cannot grow (out of memory). */
#define START_LOG_RETRY_MS 1000

enum key_list {
	LIST_NONE = 0,
	LIST_READY,
	LIST_READY_CONTINUE,
	LIST_TIMED,
};

struct cb_limit_key {
	char *name;
	size_t refs;
	size_t in_flight;
	size_t concurrency;
	int64_t rate; /* 0: no rate limit */

	struct cb_limit_waiter *head;
	struct cb_limit_waiter *tail;
	size_t waiting;

	int64_t blocked_until;

	/* Ring of start times still inside the rate window, oldest first. */
	int64_t *starts;
	size_t starts_cap;
	size_t starts_first;
	size_t starts_len;

	enum key_list list;
	int64_t ready_at; /* LIST_TIMED: when to check again */
	struct cb_limit_key *prev;
	struct cb_limit_key *next;
};

struct key_list_head {
	struct cb_limit_key *first;
	struct cb_limit_key *last;
};

struct cb_limiter {
	struct cb_limits limits;
	int64_t window_ms; /* window plus slack */
	struct cb_keytab keys;
	struct key_list_head ready;
	struct key_list_head ready_continue;
	struct key_list_head timed;
	size_t in_flight;
	size_t waiting;
};

int cb_limiter_new(const struct cb_limits *limits, struct cb_limiter **out, struct cb_err *err)
{
	struct cb_limiter *l;

	if (limits->key_concurrency <= 0 || limits->server_concurrency <= 0 ||
	    limits->global_concurrency <= 0)
		return cb_err_set(err, "invalid limits: concurrency values must be at least 1");
	if (limits->key_rate < 0 || (limits->key_rate > 0 && limits->window_ms <= 0))
		return cb_err_set(err, "invalid limits: a rate needs a window of at least 1 ms");

	l = calloc(1, sizeof(*l));
	if (!l)
		return cb_err_set(err, "out of memory creating the limiter");
	l->limits = *limits;
	l->window_ms = limits->window_ms + CB_LIMIT_WINDOW_SLACK_MS;
	cb_keytab_init(&l->keys, 0);
	*out = l;
	return 0;
}

static void key_free(struct cb_limit_key *k)
{
	free(k->starts);
	free(k->name);
	free(k);
}

static int free_every_key(const char *name, void *value, void *ctx)
{
	(void)name;
	(void)ctx;
	key_free(value);
	return 1;
}

void cb_limiter_free(struct cb_limiter *l)
{
	if (!l)
		return;
	cb_keytab_sweep(&l->keys, free_every_key, NULL);
	cb_keytab_free(&l->keys);
	free(l);
}

/* List handling: a key is in at most one list at a time. */

static struct key_list_head *list_of(struct cb_limiter *l, enum key_list which)
{
	if (which == LIST_READY)
		return &l->ready;
	if (which == LIST_READY_CONTINUE)
		return &l->ready_continue;
	return &l->timed;
}

static void detach(struct cb_limiter *l, struct cb_limit_key *k)
{
	struct key_list_head *h;

	if (k->list == LIST_NONE)
		return;
	h = list_of(l, k->list);
	if (k->prev)
		k->prev->next = k->next;
	else
		h->first = k->next;
	if (k->next)
		k->next->prev = k->prev;
	else
		h->last = k->prev;
	k->prev = k->next = NULL;
	k->list = LIST_NONE;
}

static void append(struct cb_limiter *l, struct cb_limit_key *k, enum key_list which)
{
	struct key_list_head *h = list_of(l, which);

	k->list = which;
	k->next = NULL;
	k->prev = h->last;
	if (h->last)
		h->last->next = k;
	else
		h->first = k;
	h->last = k;
}

/* The rate window's log of start times. */

static void prune_starts(const struct cb_limiter *l, struct cb_limit_key *k, int64_t now_ms)
{
	while (k->starts_len > 0 && k->starts[k->starts_first] + l->window_ms <= now_ms) {
		k->starts_first = (k->starts_first + 1) % k->starts_cap;
		k->starts_len--;
	}
}

/* Makes room for one more start time; -1 when out of memory. */
static int reserve_start(struct cb_limit_key *k)
{
	size_t new_cap;
	int64_t *grown;

	if (k->starts_len < k->starts_cap)
		return 0;
	new_cap = k->starts_cap ? k->starts_cap * 2 : START_LOG_MIN;
	if ((int64_t)new_cap > k->rate)
		new_cap = (size_t)k->rate;
	grown = malloc(new_cap * sizeof(*grown));
	if (!grown)
		return -1;
	for (size_t i = 0; i < k->starts_len; i++)
		grown[i] = k->starts[(k->starts_first + i) % k->starts_cap];
	free(k->starts);
	k->starts = grown;
	k->starts_cap = new_cap;
	k->starts_first = 0;
	return 0;
}

static void record_start(struct cb_limit_key *k, int64_t now_ms)
{
	if (k->rate == 0)
		return;
	k->starts[(k->starts_first + k->starts_len) % k->starts_cap] = now_ms;
	k->starts_len++;
}

/*
 * Returns 0 when the key's head request may start now (global cap aside).
 * Otherwise returns 1 and sets *at to when to check again, or to -1 when
 * only the end of one of the key's requests can change the result.
 */
static int check_key(const struct cb_limiter *l, struct cb_limit_key *k, int64_t now_ms,
		     int64_t *at)
{
	if (k->blocked_until > now_ms) {
		*at = k->blocked_until;
		return 1;
	}
	if (k->in_flight >= k->concurrency) {
		*at = -1;
		return 1;
	}
	if (k->rate == 0)
		return 0;

	prune_starts(l, k, now_ms);
	if ((int64_t)k->starts_len >= k->rate) {
		*at = k->starts[k->starts_first] + l->window_ms;
		return 1;
	}
	if (reserve_start(k) != 0) {
		*at = now_ms + START_LOG_RETRY_MS;
		return 1;
	}
	return 0;
}

/* Puts k in the list its state calls for (at the tail, which makes the service round-robin). */
static void place(struct cb_limiter *l, struct cb_limit_key *k, int64_t now_ms)
{
	int64_t at;

	detach(l, k);
	if (k->waiting == 0)
		return;
	if (check_key(l, k, now_ms, &at) == 0) {
		append(l, k, k->head->continues ? LIST_READY_CONTINUE : LIST_READY);
	} else if (at >= 0) {
		k->ready_at = at;
		append(l, k, LIST_TIMED);
	}
}

int cb_limiter_ref(struct cb_limiter *l, const char *name, struct cb_limit_key **out,
		   struct cb_err *err)
{
	size_t len = strlen(name);
	struct cb_limit_key *k;
	int ews;

	if (len == 0 || len > CB_LIMIT_KEY_MAX)
		return cb_err_set(err, "invalid limit key: %zu bytes (1 to %d allowed)", len,
				  CB_LIMIT_KEY_MAX);

	k = cb_keytab_get(&l->keys, name);
	if (k) {
		k->refs++;
		*out = k;
		return 0;
	}

	k = calloc(1, sizeof(*k));
	if (!k || !(k->name = strdup(name))) {
		free(k);
		return cb_err_set(err, "out of memory adding a limit key");
	}
	ews = strncmp(name, CB_LIMIT_EWS_PREFIX, strlen(CB_LIMIT_EWS_PREFIX)) == 0;
	k->concurrency = (size_t)(ews ? l->limits.server_concurrency : l->limits.key_concurrency);
	k->rate = ews ? 0 : l->limits.key_rate;
	if (cb_keytab_put(&l->keys, k->name, k) != 0) {
		key_free(k);
		return cb_err_set(err, "out of memory adding a limit key");
	}
	k->refs = 1;
	*out = k;
	return 0;
}

void cb_limiter_unref(struct cb_limiter *l, struct cb_limit_key *key)
{
	(void)l;
	if (key->refs > 0)
		key->refs--;
}

size_t cb_limiter_key_refs(const struct cb_limit_key *key)
{
	return key->refs;
}

const char *cb_limiter_key_name(const struct cb_limit_key *key)
{
	return key->name;
}

size_t cb_limiter_key_in_flight(const struct cb_limit_key *key)
{
	return key->in_flight;
}

int64_t cb_limiter_key_blocked_until(const struct cb_limit_key *key)
{
	return key->blocked_until;
}

void cb_limiter_enqueue(struct cb_limiter *l, struct cb_limit_key *key, struct cb_limit_waiter *w,
			int64_t now_ms)
{
	w->next = NULL;
	if (key->tail)
		key->tail->next = w;
	else
		key->head = w;
	key->tail = w;
	key->waiting++;
	l->waiting++;
	if (key->list == LIST_NONE)
		place(l, key, now_ms);
}

int cb_limiter_cancel(struct cb_limiter *l, struct cb_limit_key *key, struct cb_limit_waiter *w)
{
	struct cb_limit_waiter **link = &key->head;
	struct cb_limit_waiter *prev = NULL;

	while (*link && *link != w) {
		prev = *link;
		link = &(*link)->next;
	}
	if (!*link)
		return 0;

	*link = w->next;
	if (key->tail == w)
		key->tail = prev;
	w->next = NULL;
	key->waiting--;
	l->waiting--;
	if (key->waiting == 0)
		detach(l, key);
	return 1;
}

/* Moves timed keys whose time has come back into the lists their state calls for. */
static void wake_timed(struct cb_limiter *l, int64_t now_ms)
{
	struct cb_limit_key *k = l->timed.first;

	while (k) {
		struct cb_limit_key *next = k->next;

		if (k->ready_at <= now_ms)
			place(l, k, now_ms);
		k = next;
	}
}

struct cb_limit_waiter *cb_limiter_next(struct cb_limiter *l, int64_t now_ms,
					struct cb_limit_key **key_out)
{
	if ((int64_t)l->in_flight >= l->limits.global_concurrency)
		return NULL;
	wake_timed(l, now_ms);

	for (;;) {
		struct cb_limit_key *k = l->ready_continue.first ? l->ready_continue.first : l->ready.first;
		struct cb_limit_waiter *w;
		int64_t at;

		if (!k)
			break;
		if (check_key(l, k, now_ms, &at) != 0) {
			place(l, k, now_ms);
			continue;
		}

		w = k->head;
		k->head = w->next;
		if (!k->head)
			k->tail = NULL;
		w->next = NULL;
		k->waiting--;
		l->waiting--;
		k->in_flight++;
		l->in_flight++;
		record_start(k, now_ms);

		place(l, k, now_ms);
		*key_out = k;
		return w;
	}
	return NULL;
}

void cb_limiter_release(struct cb_limiter *l, struct cb_limit_key *key, int64_t now_ms)
{
	if (key->in_flight > 0) {
		key->in_flight--;
		l->in_flight--;
	}
	if (key->list == LIST_NONE && key->waiting > 0)
		place(l, key, now_ms);
}

void cb_limiter_block(struct cb_limiter *l, struct cb_limit_key *key, int64_t until_ms)
{
	(void)l;
	/* A key already in the ready or timed list is checked again before it is served. */
	if (until_ms > key->blocked_until)
		key->blocked_until = until_ms;
}

int64_t cb_limiter_next_ready_ms(struct cb_limiter *l, int64_t now_ms)
{
	int64_t earliest = -1;

	if ((l->ready.first || l->ready_continue.first) &&
	    (int64_t)l->in_flight < l->limits.global_concurrency)
		return now_ms;
	for (struct cb_limit_key *k = l->timed.first; k; k = k->next) {
		int64_t at = k->ready_at > now_ms ? k->ready_at : now_ms;

		if (earliest < 0 || at < earliest)
			earliest = at;
	}
	return earliest;
}

struct gc_ctx {
	struct cb_limiter *limiter;
	int64_t now_ms;
};

static int collect_idle_key(const char *name, void *value, void *opaque)
{
	struct gc_ctx *ctx = opaque;
	struct cb_limit_key *k = value;

	(void)name;
	if (k->refs > 0 || k->waiting > 0 || k->in_flight > 0 || k->blocked_until > ctx->now_ms)
		return 0;
	prune_starts(ctx->limiter, k, ctx->now_ms);
	if (k->starts_len > 0)
		return 0;
	detach(ctx->limiter, k);
	key_free(k);
	return 1;
}

void cb_limiter_gc(struct cb_limiter *l, int64_t now_ms)
{
	struct gc_ctx ctx = {.limiter = l, .now_ms = now_ms};

	cb_keytab_sweep(&l->keys, collect_idle_key, &ctx);
}

void cb_limiter_counts(const struct cb_limiter *l, struct cb_limiter_counts *out)
{
	out->keys = l->keys.count;
	out->waiting = l->waiting;
	out->in_flight = l->in_flight;
}
