/* test_buf.c: the bounded buffer and the log value escaping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"

static void buf_append_within_max(void **state)
{
	struct cb_buf b;

	(void)state;
	cb_buf_init(&b, 8);
	assert_int_equal(cb_buf_puts(&b, "abcd"), 0);
	assert_int_equal(cb_buf_printf(&b, "%d", 1234), 0);
	assert_int_equal(b.len, 8);
	assert_string_equal(b.data, "abcd1234");
	cb_buf_free(&b);
}

static void buf_append_past_max_fails(void **state)
{
	struct cb_buf b;

	(void)state;
	cb_buf_init(&b, 4);
	assert_int_equal(cb_buf_puts(&b, "abc"), 0);
	assert_int_equal(cb_buf_puts(&b, "de"), -1);
	assert_int_equal(cb_buf_printf(&b, "%s", "xy"), -1);
	assert_int_equal(b.len, 3);
	assert_string_equal(b.data, "abc");
	cb_buf_free(&b);
}

static void buf_steal_empty_gives_string(void **state)
{
	struct cb_buf b;
	char *s;

	(void)state;
	cb_buf_init(&b, 0);
	s = cb_buf_steal(&b);
	assert_non_null(s);
	assert_string_equal(s, "");
	free(s);
}

static void log_value_escapes_controls(void **state)
{
	struct cb_log_value v;

	(void)state;
	assert_string_equal(cb_log_str(&v, "a\"b\\c\nd"), "\"a\\\"b\\\\c\\x0ad\"");
	assert_string_equal(cb_log_str(&v, NULL), "-");
}

static void log_value_caps_length(void **state)
{
	struct cb_log_value v;
	char big[CB_LOG_VALUE_MAX * 2];

	(void)state;
	memset(big, '\n', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cb_log_str(&v, big);
	assert_int_equal(strlen(v.text), 1 + CB_LOG_VALUE_MAX * 4 + 3 + 1);
	assert_memory_equal(v.text + strlen(v.text) - 4, "...\"", 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(buf_append_within_max),
		cmocka_unit_test(buf_append_past_max_fails),
		cmocka_unit_test(buf_steal_empty_gives_string),
		cmocka_unit_test(log_value_escapes_controls),
		cmocka_unit_test(log_value_caps_length),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
