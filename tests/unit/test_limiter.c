/*
 * test_limiter.c: the executor's key table and request limiter, driven by an
 * injected clock (every call takes the time in ms).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "executor/keytab.h"
#include "executor/limiter.h"

/* A request in the tests: a waiter tagged with its key and arrival number. */
struct req {
	struct cb_limit_waiter w;
	int key;
	int seq;
};

static struct req *req_of(struct cb_limit_waiter *w)
{
	return (struct req *)((char *)w - offsetof(struct req, w));
}

static struct cb_limiter *limiter_with(int64_t conc, int64_t rate, int64_t window, int64_t global)
{
	struct cb_limits limits = {
		.key_concurrency = conc,
		.key_rate = rate,
		.window_ms = window,
		.server_concurrency = 2,
		.global_concurrency = global,
	};
	struct cb_limiter *l = NULL;
	struct cb_err err;

	assert_int_equal(cb_limiter_new(&limits, &l, &err), 0);
	return l;
}

static struct cb_limit_key *ref_key(struct cb_limiter *l, const char *name)
{
	struct cb_limit_key *k = NULL;
	struct cb_err err;

	assert_int_equal(cb_limiter_ref(l, name, &k, &err), 0);
	return k;
}

/* Key table. */

static void keytab_put_get_remove(void **state)
{
	struct cb_keytab t;
	char names[2000][24];

	(void)state;
	cb_keytab_init(&t, 0);
	for (int i = 0; i < 2000; i++) {
		snprintf(names[i], sizeof(names[i]), "graph:app:user%d@x", i);
		assert_int_equal(cb_keytab_put(&t, names[i], names[i]), 0);
	}
	assert_int_equal(t.count, 2000);
	for (int i = 0; i < 2000; i++)
		assert_ptr_equal(cb_keytab_get(&t, names[i]), names[i]);
	assert_null(cb_keytab_get(&t, "graph:app:nobody@x"));

	/* Removing every other key must keep the rest reachable (backward shift). */
	for (int i = 0; i < 2000; i += 2)
		assert_ptr_equal(cb_keytab_remove(&t, names[i]), names[i]);
	assert_int_equal(t.count, 1000);
	for (int i = 0; i < 2000; i++) {
		if (i % 2)
			assert_ptr_equal(cb_keytab_get(&t, names[i]), names[i]);
		else
			assert_null(cb_keytab_get(&t, names[i]));
	}
	assert_null(cb_keytab_remove(&t, names[0]));
	cb_keytab_free(&t);
}

static void keytab_colliding_seed_still_works(void **state)
{
	struct cb_keytab t;
	const char *names[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"};

	(void)state;
	/* A fixed seed and many deletes in one probe run exercise the wrap-around of the shift. */
	cb_keytab_init(&t, 12345);
	for (int round = 0; round < 50; round++) {
		for (size_t i = 0; i < 10; i++)
			assert_int_equal(cb_keytab_put(&t, names[i], (void *)names[i]), 0);
		for (size_t i = 0; i < 10; i += 3)
			assert_non_null(cb_keytab_remove(&t, names[i]));
		for (size_t i = 0; i < 10; i++) {
			if (i % 3 == 0)
				assert_null(cb_keytab_get(&t, names[i]));
			else
				assert_ptr_equal(cb_keytab_get(&t, names[i]), names[i]);
		}
	}
	cb_keytab_free(&t);
}

static int remove_even(const char *key, void *value, void *ctx)
{
	int *visits = ctx;

	(void)key;
	(*visits)++;
	return ((intptr_t)value % 2) == 0;
}

static void keytab_sweep_visits_once(void **state)
{
	struct cb_keytab t;
	char names[100][8];
	int visits = 0;

	(void)state;
	cb_keytab_init(&t, 0);
	for (intptr_t i = 0; i < 100; i++) {
		snprintf(names[i], sizeof(names[i]), "k%d", (int)i);
		assert_int_equal(cb_keytab_put(&t, names[i], (void *)i), 0);
	}
	cb_keytab_sweep(&t, remove_even, &visits);
	assert_int_equal(visits, 100);
	assert_int_equal(t.count, 50);
	assert_null(cb_keytab_get(&t, "k4"));
	assert_ptr_equal(cb_keytab_get(&t, "k5"), (void *)5);
	cb_keytab_free(&t);
}

/* Limiter. */

static void limiter_rejects_bad_limits(void **state)
{
	struct cb_limits limits = {.key_concurrency = 0, .server_concurrency = 1,
				   .global_concurrency = 1};
	struct cb_limiter *l = NULL;
	struct cb_err err;

	(void)state;
	assert_int_equal(cb_limiter_new(&limits, &l, &err), -1);
	limits.key_concurrency = 4;
	limits.key_rate = 10;
	limits.window_ms = 0;
	assert_int_equal(cb_limiter_new(&limits, &l, &err), -1);
	assert_null(l);
}

static void limiter_rejects_bad_keys(void **state)
{
	struct cb_limiter *l = limiter_with(4, 0, 0, 100);
	char big[CB_LIMIT_KEY_MAX + 2];
	struct cb_limit_key *k = NULL;
	struct cb_err err;

	(void)state;
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(cb_limiter_ref(l, big, &k, &err), -1);
	assert_non_null(strstr(err.msg, "invalid limit key"));
	assert_int_equal(cb_limiter_ref(l, "", &k, &err), -1);
	big[CB_LIMIT_KEY_MAX] = '\0';
	assert_int_equal(cb_limiter_ref(l, big, &k, &err), 0);
	cb_limiter_unref(l, k);
	cb_limiter_free(l);
}

static void limiter_concurrency_per_key(void **state)
{
	struct cb_limiter *l = limiter_with(4, 0, 0, 100);
	struct cb_limit_key *a = ref_key(l, "graph:app:a");
	struct cb_limit_key *got = NULL;
	struct req reqs[10] = {0};
	int started = 0;

	(void)state;
	for (int i = 0; i < 10; i++) {
		reqs[i].seq = i;
		cb_limiter_enqueue(l, a, &reqs[i].w, 0);
	}
	while (cb_limiter_next(l, 0, &got))
		started++;
	assert_int_equal(started, 4);
	assert_int_equal(cb_limiter_key_in_flight(a), 4);
	assert_int_equal(cb_limiter_next_ready_ms(l, 0), -1);

	/* Each release lets exactly one more start. */
	cb_limiter_release(l, a, 1);
	assert_non_null(cb_limiter_next(l, 1, &got));
	assert_ptr_equal(got, a);
	assert_null(cb_limiter_next(l, 1, &got));
	assert_int_equal(cb_limiter_key_in_flight(a), 4);

	for (int i = 0; i < 5; i++)
		cb_limiter_release(l, a, 2);
	while (cb_limiter_next(l, 2, &got))
		cb_limiter_release(l, got, 2);
	cb_limiter_unref(l, a);
	cb_limiter_free(l);
}

static void limiter_ews_keys_use_server_limit(void **state)
{
	struct cb_limiter *l = limiter_with(4, 3, 1000, 100);
	struct cb_limit_key *e = ref_key(l, "ews:mail.example.com");
	struct cb_limit_key *got = NULL;
	struct req reqs[6] = {0};
	int started = 0;

	(void)state;
	for (int i = 0; i < 6; i++)
		cb_limiter_enqueue(l, e, &reqs[i].w, 0);
	while (cb_limiter_next(l, 0, &got))
		started++;
	assert_int_equal(started, 2); /* server_concurrency */

	/* No rate limit on EWS keys: releasing and starting again never waits on a window. */
	for (int i = 0; i < 4; i++) {
		cb_limiter_release(l, e, 0);
		assert_non_null(cb_limiter_next(l, 0, &got));
	}
	cb_limiter_unref(l, e);
	cb_limiter_free(l);
}

static void limiter_window_rate(void **state)
{
	const int64_t window = 10000;
	const int64_t w = window + CB_LIMIT_WINDOW_SLACK_MS;
	struct cb_limiter *l = limiter_with(100, 5, window, 100);
	struct cb_limit_key *a = ref_key(l, "graph:app:a");
	struct cb_limit_key *got = NULL;
	struct req reqs[12] = {0};
	int64_t starts[12];
	int n = 0;

	(void)state;
	for (int i = 0; i < 12; i++)
		cb_limiter_enqueue(l, a, &reqs[i].w, 0);

	/* Five start at once, then nothing until the first start leaves the window. */
	for (int64_t now = 0; n < 12; now += 250) {
		while (cb_limiter_next(l, now, &got)) {
			starts[n++] = now;
			cb_limiter_release(l, got, now);
		}
		assert_true(now < 10 * w);
	}
	for (int i = 0; i < 5; i++)
		assert_int_equal(starts[i], 0);
	assert_int_equal(starts[5], w);
	assert_int_equal(starts[10], 2 * w);

	/* In every interval of one window (plus slack) there are at most 5 starts. */
	for (int i = 0; i < 12; i++) {
		int in_window = 0;

		for (int j = i; j < 12; j++)
			if (starts[j] < starts[i] + w)
				in_window++;
		assert_true(in_window <= 5);
	}
	cb_limiter_unref(l, a);
	cb_limiter_free(l);
}

static void limiter_window_reports_next_ready(void **state)
{
	struct cb_limiter *l = limiter_with(100, 2, 1000, 100);
	struct cb_limit_key *a = ref_key(l, "graph:app:a");
	struct cb_limit_key *got = NULL;
	struct req reqs[3] = {0};

	(void)state;
	for (int i = 0; i < 3; i++)
		cb_limiter_enqueue(l, a, &reqs[i].w, 100);
	assert_int_equal(cb_limiter_next_ready_ms(l, 100), 100);
	assert_non_null(cb_limiter_next(l, 100, &got));
	assert_non_null(cb_limiter_next(l, 300, &got));
	assert_null(cb_limiter_next(l, 300, &got));
	assert_int_equal(cb_limiter_next_ready_ms(l, 300), 100 + 1000 + CB_LIMIT_WINDOW_SLACK_MS);
	assert_null(cb_limiter_next(l, 1099 + CB_LIMIT_WINDOW_SLACK_MS, &got));
	assert_non_null(cb_limiter_next(l, 1100 + CB_LIMIT_WINDOW_SLACK_MS, &got));
	for (int i = 0; i < 3; i++)
		cb_limiter_release(l, a, 2000 + CB_LIMIT_WINDOW_SLACK_MS);
	cb_limiter_unref(l, a);
	cb_limiter_free(l);
}

static void limiter_fifo_per_key(void **state)
{
	struct cb_limiter *l = limiter_with(1, 0, 0, 100);
	struct cb_limit_key *a = ref_key(l, "graph:app:a");
	struct cb_limit_key *got = NULL;
	struct cb_limit_waiter *w;
	struct req reqs[20] = {0};

	(void)state;
	for (int i = 0; i < 20; i++) {
		reqs[i].seq = i;
		cb_limiter_enqueue(l, a, &reqs[i].w, 0);
	}
	for (int i = 0; i < 20; i++) {
		w = cb_limiter_next(l, i, &got);
		assert_non_null(w);
		assert_int_equal(req_of(w)->seq, i);
		assert_null(cb_limiter_next(l, i, &got));
		cb_limiter_release(l, got, i);
	}
	cb_limiter_unref(l, a);
	cb_limiter_free(l);
}

static void limiter_round_robin_fairness(void **state)
{
	struct cb_limiter *l = limiter_with(100, 0, 0, 1);
	struct cb_limit_key *keys[3];
	struct cb_limit_key *got = NULL;
	struct req reqs[3][50] = {0};
	int order[30];

	(void)state;
	keys[0] = ref_key(l, "graph:app:busy");
	keys[1] = ref_key(l, "graph:app:b");
	keys[2] = ref_key(l, "graph:app:c");

	/* The busy key queues 50 requests before the others queue theirs. */
	for (int i = 0; i < 50; i++) {
		reqs[0][i].key = 0;
		cb_limiter_enqueue(l, keys[0], &reqs[0][i].w, 0);
	}
	for (int k = 1; k < 3; k++) {
		for (int i = 0; i < 5; i++) {
			reqs[k][i].key = k;
			cb_limiter_enqueue(l, keys[k], &reqs[k][i].w, 0);
		}
	}

	/* With a global cap of 1, service alternates between the keys. */
	for (int i = 0; i < 30; i++) {
		struct cb_limit_waiter *w = cb_limiter_next(l, 0, &got);

		assert_non_null(w);
		order[i] = req_of(w)->key;
		assert_null(cb_limiter_next(l, 0, &got));
		cb_limiter_release(l, got, 0);
	}
	for (int i = 0; i < 15; i++)
		assert_int_equal(order[i], i % 3);
	for (int i = 15; i < 30; i++)
		assert_int_equal(order[i], 0);

	while (cb_limiter_next(l, 0, &got))
		cb_limiter_release(l, got, 0);
	for (int k = 0; k < 3; k++)
		cb_limiter_unref(l, keys[k]);
	cb_limiter_free(l);
}

static void limiter_global_cap(void **state)
{
	struct cb_limiter *l = limiter_with(4, 0, 0, 6);
	struct cb_limit_key *keys[4];
	struct cb_limit_key *got = NULL;
	struct req reqs[4][4] = {0};
	int started = 0;

	(void)state;
	for (int k = 0; k < 4; k++) {
		char name[32];

		snprintf(name, sizeof(name), "graph:app:%d", k);
		keys[k] = ref_key(l, name);
		for (int i = 0; i < 4; i++)
			cb_limiter_enqueue(l, keys[k], &reqs[k][i].w, 0);
	}
	while (cb_limiter_next(l, 0, &got))
		started++;
	assert_int_equal(started, 6);
	assert_int_equal(cb_limiter_next_ready_ms(l, 0), -1);
	cb_limiter_release(l, keys[0], 1);
	assert_int_equal(cb_limiter_next_ready_ms(l, 1), 1);
	assert_non_null(cb_limiter_next(l, 1, &got));
	assert_null(cb_limiter_next(l, 1, &got));

	for (int i = 0; i < 6; i++)
		cb_limiter_release(l, keys[i % 4], 2);
	while (cb_limiter_next(l, 2, &got))
		cb_limiter_release(l, got, 2);
	for (int k = 0; k < 4; k++)
		cb_limiter_unref(l, keys[k]);
	cb_limiter_free(l);
}

static void limiter_block_holds_one_key(void **state)
{
	struct cb_limiter *l = limiter_with(4, 0, 0, 100);
	struct cb_limit_key *a = ref_key(l, "graph:app:throttled");
	struct cb_limit_key *b = ref_key(l, "graph:app:other");
	struct cb_limit_key *got = NULL;
	struct req ra[3], rb[3];

	(void)state;
	cb_limiter_block(l, a, 5000);
	cb_limiter_block(l, a, 3000); /* an earlier deadline does not shorten the block */
	assert_int_equal(cb_limiter_key_blocked_until(a), 5000);
	for (int i = 0; i < 3; i++) {
		cb_limiter_enqueue(l, a, &ra[i].w, 100);
		cb_limiter_enqueue(l, b, &rb[i].w, 100);
	}

	/* Only the other key starts while the block lasts. */
	for (int i = 0; i < 3; i++) {
		assert_non_null(cb_limiter_next(l, 100, &got));
		assert_ptr_equal(got, b);
	}
	assert_null(cb_limiter_next(l, 100, &got));
	assert_int_equal(cb_limiter_next_ready_ms(l, 100), 5000);
	assert_null(cb_limiter_next(l, 4999, &got));
	assert_non_null(cb_limiter_next(l, 5000, &got));
	assert_ptr_equal(got, a);

	/* A block set while the key is ready is checked before its next start. */
	cb_limiter_block(l, a, 9000);
	assert_null(cb_limiter_next(l, 5000, &got));
	assert_int_equal(cb_limiter_next_ready_ms(l, 5000), 9000);
	assert_non_null(cb_limiter_next(l, 9000, &got));

	for (int i = 0; i < 3; i++)
		cb_limiter_release(l, b, 9000);
	cb_limiter_release(l, a, 9000);
	cb_limiter_release(l, a, 9000);
	while (cb_limiter_next(l, 9000, &got))
		cb_limiter_release(l, got, 9000);
	cb_limiter_unref(l, a);
	cb_limiter_unref(l, b);
	cb_limiter_free(l);
}

static void limiter_cancel_waiter(void **state)
{
	struct cb_limiter *l = limiter_with(1, 0, 0, 100);
	struct cb_limit_key *a = ref_key(l, "graph:app:a");
	struct cb_limit_key *got = NULL;
	struct cb_limiter_counts counts;
	struct req reqs[3] = {0};

	(void)state;
	for (int i = 0; i < 3; i++) {
		reqs[i].seq = i;
		cb_limiter_enqueue(l, a, &reqs[i].w, 0);
	}
	assert_int_equal(cb_limiter_cancel(l, a, &reqs[2].w), 1);
	assert_int_equal(cb_limiter_cancel(l, a, &reqs[2].w), 0);
	assert_int_equal(cb_limiter_cancel(l, a, &reqs[1].w), 1);
	cb_limiter_counts(l, &counts);
	assert_int_equal(counts.waiting, 1);
	assert_int_equal(req_of(cb_limiter_next(l, 0, &got))->seq, 0);
	assert_null(cb_limiter_next(l, 0, &got));

	/* The queue is usable after cancelling its tail. */
	cb_limiter_enqueue(l, a, &reqs[1].w, 0);
	cb_limiter_release(l, a, 1);
	assert_int_equal(req_of(cb_limiter_next(l, 1, &got))->seq, 1);
	cb_limiter_release(l, a, 1);
	cb_limiter_unref(l, a);
	cb_limiter_free(l);
}

/* A key whose next request continues a started operation is served before keys starting one. */
static void limiter_continuations_first(void **state)
{
	struct cb_limiter *l = limiter_with(4, 0, 0, 1);
	struct cb_limit_key *keys[4];
	struct cb_limit_key *got = NULL;
	struct cb_limit_waiter *w;
	struct req first[4] = {0};
	struct req next = {.key = 0, .seq = 100};

	(void)state;
	keys[0] = ref_key(l, "graph:app:a");
	keys[1] = ref_key(l, "graph:app:b");
	keys[2] = ref_key(l, "graph:app:c");
	keys[3] = ref_key(l, "graph:app:d");
	for (int i = 0; i < 4; i++) {
		first[i].key = i;
		first[i].seq = i;
		cb_limiter_enqueue(l, keys[i], &first[i].w, 0);
	}

	/* Key a's first request runs; its follow-up arrives after the first requests of b, c and d. */
	w = cb_limiter_next(l, 0, &got);
	assert_int_equal(req_of(w)->seq, 0);
	next.w.continues = 1;
	cb_limiter_enqueue(l, keys[0], &next.w, 1);
	cb_limiter_release(l, got, 1);

	w = cb_limiter_next(l, 1, &got);
	assert_non_null(w);
	assert_int_equal(req_of(w)->seq, 100);
	cb_limiter_release(l, got, 2);
	for (int i = 1; i < 4; i++) {
		w = cb_limiter_next(l, 2, &got);
		assert_non_null(w);
		assert_int_equal(req_of(w)->seq, i);
		cb_limiter_release(l, got, 2);
	}
	assert_null(cb_limiter_next(l, 2, &got));
	for (int i = 0; i < 4; i++)
		cb_limiter_unref(l, keys[i]);
	cb_limiter_free(l);
}

static void limiter_gc_keeps_window_state(void **state)
{
	struct cb_limiter *l = limiter_with(4, 1, 1000, 100);
	struct cb_limit_key *a = ref_key(l, "graph:app:a");
	struct cb_limit_key *got = NULL;
	struct cb_limiter_counts counts;
	struct req r1, r2;

	(void)state;
	cb_limiter_enqueue(l, a, &r1.w, 0);
	assert_non_null(cb_limiter_next(l, 0, &got));
	cb_limiter_release(l, a, 10);
	cb_limiter_unref(l, a);

	/* The key's start is still in the window: gc keeps it, so the rate still holds. */
	cb_limiter_gc(l, 20);
	cb_limiter_counts(l, &counts);
	assert_int_equal(counts.keys, 1);
	a = ref_key(l, "graph:app:a");
	cb_limiter_enqueue(l, a, &r2.w, 20);
	assert_null(cb_limiter_next(l, 20, &got));
	assert_non_null(cb_limiter_next(l, 1000 + CB_LIMIT_WINDOW_SLACK_MS, &got));
	cb_limiter_release(l, a, 1000 + CB_LIMIT_WINDOW_SLACK_MS);
	cb_limiter_unref(l, a);

	cb_limiter_gc(l, 3000 + 2 * CB_LIMIT_WINDOW_SLACK_MS);
	cb_limiter_counts(l, &counts);
	assert_int_equal(counts.keys, 0);
	cb_limiter_free(l);
}

static void limiter_many_keys_burst(void **state)
{
	enum { KEYS = 300, PER_KEY = 10 };
	struct cb_limiter *l = limiter_with(4, 0, 0, 64);
	struct cb_limit_key **keys = calloc(KEYS, sizeof(*keys));
	struct req *reqs = calloc(KEYS * PER_KEY, sizeof(*reqs));
	size_t *in_flight = calloc(KEYS, sizeof(*in_flight));
	struct cb_limit_key *got = NULL;
	struct cb_limiter_counts counts;
	int done = 0;

	(void)state;
	for (int k = 0; k < KEYS; k++) {
		char name[40];

		snprintf(name, sizeof(name), "graph:app:user%d@example.com", k);
		keys[k] = ref_key(l, name);
		for (int i = 0; i < PER_KEY; i++) {
			reqs[k * PER_KEY + i].key = k;
			cb_limiter_enqueue(l, keys[k], &reqs[k * PER_KEY + i].w, 0);
		}
	}

	/* Start what may start, then end the oldest half, until all are done. */
	while (done < KEYS * PER_KEY) {
		struct cb_limit_waiter *w;

		while ((w = cb_limiter_next(l, 0, &got))) {
			int k = req_of(w)->key;

			in_flight[k]++;
			assert_true(in_flight[k] <= 4);
			assert_ptr_equal(got, keys[k]);
		}
		cb_limiter_counts(l, &counts);
		assert_true(counts.in_flight <= 64);
		for (int k = 0; k < KEYS; k++) {
			if (in_flight[k] > 0) {
				in_flight[k]--;
				cb_limiter_release(l, keys[k], 0);
				done++;
			}
		}
	}
	cb_limiter_counts(l, &counts);
	assert_int_equal(counts.waiting, 0);
	assert_int_equal(counts.in_flight, 0);
	for (int k = 0; k < KEYS; k++)
		cb_limiter_unref(l, keys[k]);
	cb_limiter_gc(l, 0);
	cb_limiter_counts(l, &counts);
	assert_int_equal(counts.keys, 0);
	cb_limiter_free(l);
	free(keys);
	free(reqs);
	free(in_flight);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(keytab_put_get_remove),
		cmocka_unit_test(keytab_colliding_seed_still_works),
		cmocka_unit_test(keytab_sweep_visits_once),
		cmocka_unit_test(limiter_rejects_bad_limits),
		cmocka_unit_test(limiter_rejects_bad_keys),
		cmocka_unit_test(limiter_concurrency_per_key),
		cmocka_unit_test(limiter_ews_keys_use_server_limit),
		cmocka_unit_test(limiter_window_rate),
		cmocka_unit_test(limiter_window_reports_next_ready),
		cmocka_unit_test(limiter_fifo_per_key),
		cmocka_unit_test(limiter_round_robin_fairness),
		cmocka_unit_test(limiter_global_cap),
		cmocka_unit_test(limiter_block_holds_one_key),
		cmocka_unit_test(limiter_cancel_waiter),
		cmocka_unit_test(limiter_continuations_first),
		cmocka_unit_test(limiter_gc_keeps_window_state),
		cmocka_unit_test(limiter_many_keys_burst),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
