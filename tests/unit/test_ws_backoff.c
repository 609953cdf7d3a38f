/* test_ws_backoff.c: the feed reconnect schedule with an injected random source. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "feed/backoff.h"

static uint64_t random_zero(void *ctx)
{
	(void)ctx;
	return 0;
}

static uint64_t random_max(void *ctx)
{
	(void)ctx;
	return UINT64_MAX;
}

static uint64_t random_sequence(void *ctx)
{
	uint64_t *next = ctx;

	return (*next)++;
}

static void backoff_lower_bound_doubles(void **state)
{
	static const int64_t expected[] = { 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000 };
	struct cb_backoff b;
	size_t i;

	(void)state;
	cb_backoff_init(&b, 1000, 60000, random_zero, NULL);
	for (i = 0; i < sizeof(expected) / sizeof(expected[0]); i++)
		assert_int_equal(cb_backoff_next(&b), expected[i]);
}

static void backoff_upper_bound_capped(void **state)
{
	struct cb_backoff b;
	int64_t d;
	int i;

	(void)state;
	cb_backoff_init(&b, 1000, 60000, random_max, NULL);
	/* UINT64_MAX % (half + 1) is some value in range: check the bounds, not the value. */
	for (i = 0; i < 200; i++) {
		d = cb_backoff_next(&b);
		assert_true(d >= 500);
		assert_true(d <= 60000);
	}
	assert_true(d >= 30000);
}

static void backoff_first_retry_within_one_second(void **state)
{
	uint64_t seq = 0;
	struct cb_backoff b;
	int i;

	(void)state;
	for (i = 0; i < 1000; i++) {
		cb_backoff_init(&b, 0, 0, random_sequence, &seq);
		int64_t d = cb_backoff_next(&b);

		assert_true(d >= 500);
		assert_true(d <= 1000);
	}
}

static void backoff_reset_starts_over(void **state)
{
	struct cb_backoff b;
	int i;

	(void)state;
	cb_backoff_init(&b, 1000, 60000, random_zero, NULL);
	for (i = 0; i < 10; i++)
		cb_backoff_next(&b);
	assert_int_equal(cb_backoff_next(&b), 30000);
	cb_backoff_reset(&b);
	assert_int_equal(cb_backoff_next(&b), 500);
}

static void backoff_many_attempts_no_overflow(void **state)
{
	struct cb_backoff b;
	int i;

	(void)state;
	cb_backoff_init(&b, 1000, 60000, random_zero, NULL);
	for (i = 0; i < 100000; i++)
		assert_int_equal(cb_backoff_next(&b) >= 500, 1);
	assert_int_equal(cb_backoff_next(&b), 30000);
}

static void backoff_defaults_and_clamp(void **state)
{
	struct cb_backoff b;

	(void)state;
	cb_backoff_init(&b, -5, 0, NULL, NULL);
	assert_int_equal(b.first_ms, CB_BACKOFF_DEFAULT_FIRST_MS);
	assert_int_equal(b.max_ms, CB_BACKOFF_DEFAULT_MAX_MS);
	cb_backoff_init(&b, 5000, 100, random_zero, NULL);
	assert_int_equal(b.max_ms, 5000);
	assert_int_equal(cb_backoff_next(&b), 2500);
	assert_int_equal(cb_backoff_next(&b), 2500);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(backoff_lower_bound_doubles),
		cmocka_unit_test(backoff_upper_bound_capped),
		cmocka_unit_test(backoff_first_retry_within_one_second),
		cmocka_unit_test(backoff_reset_starts_over),
		cmocka_unit_test(backoff_many_attempts_no_overflow),
		cmocka_unit_test(backoff_defaults_and_clamp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
