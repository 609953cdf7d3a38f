/* test_ws_utf8.c: the incremental UTF-8 validator used for feed text messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "feed/utf8.h"

struct utf8_case {
	const char *name;
	const char *bytes;
	size_t len;
	int valid;
};

#define CASE(name, bytes, valid) { name, bytes, sizeof(bytes) - 1, valid }

static const struct utf8_case cases[] = {
	CASE("empty", "", 1),
	CASE("ascii", "{\"type\":\"PZD\"}", 1),
	CASE("two-byte umlaut", "M\xc3\xbcller", 1),
	CASE("three-byte euro", "\xe2\x82\xac", 1),
	CASE("four-byte emoji", "\xf0\x9f\x98\x80", 1),
	CASE("max code point U+10FFFF", "\xf4\x8f\xbf\xbf", 1),
	CASE("last before surrogates U+D7FF", "\xed\x9f\xbf", 1),
	CASE("first after surrogates U+E000", "\xee\x80\x80", 1),
	CASE("NUL byte is valid UTF-8", "a\x00" "b", 1),
	CASE("overlong slash C0 AF", "\xc0\xaf", 0),
	CASE("overlong C1 BF", "\xc1\xbf", 0),
	CASE("overlong three-byte E0 80 AF", "\xe0\x80\xaf", 0),
	CASE("overlong three-byte E0 9F BF", "\xe0\x9f\xbf", 0),
	CASE("overlong four-byte F0 8F BF BF", "\xf0\x8f\xbf\xbf", 0),
	CASE("surrogate U+D800", "\xed\xa0\x80", 0),
	CASE("surrogate U+DFFF", "\xed\xbf\xbf", 0),
	CASE("above U+10FFFF F4 90", "\xf4\x90\x80\x80", 0),
	CASE("lead byte F5", "\xf5\x80\x80\x80", 0),
	CASE("byte FF", "a\xff", 0),
	CASE("lone continuation", "\x80", 0),
	CASE("truncated two-byte", "a\xc3", 0),
	CASE("truncated three-byte", "\xe2\x82", 0),
	CASE("truncated four-byte", "\xf0\x9f\x98", 0),
	CASE("lead byte then ascii", "\xc3" "a", 0),
	CASE("continuation missing in middle", "\xe2\x82" "a", 0),
};

static void utf8_table_whole_buffer(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got = cb_utf8_valid(cases[i].bytes, cases[i].len) == 0;

		if (got != cases[i].valid)
			fail_msg("case \"%s\": expected %s", cases[i].name, cases[i].valid ? "valid" : "invalid");
	}
}

/* Every case split at every position must give the same answer as the whole buffer. */
static void utf8_table_split_everywhere(void **state)
{
	size_t i, cut;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (cut = 0; cut <= cases[i].len; cut++) {
			struct cb_utf8 u;
			int got;

			cb_utf8_init(&u);
			cb_utf8_update(&u, cases[i].bytes, cut);
			cb_utf8_update(&u, cases[i].bytes + cut, cases[i].len - cut);
			got = cb_utf8_finish(&u) == 0;
			if (got != cases[i].valid)
				fail_msg("case \"%s\" split at %zu: expected %s", cases[i].name, cut,
					 cases[i].valid ? "valid" : "invalid");
		}
	}
}

static void utf8_reports_bad_offset(void **state)
{
	struct cb_utf8 u;

	(void)state;
	cb_utf8_init(&u);
	assert_int_equal(cb_utf8_update(&u, "abc", 3), 0);
	assert_int_equal(cb_utf8_update(&u, "d\xff" "e", 3), -1);
	assert_int_equal(u.bad_offset, 4);
	assert_int_equal(cb_utf8_update(&u, "ok", 2), -1);
	assert_int_equal(cb_utf8_finish(&u), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(utf8_table_whole_buffer),
		cmocka_unit_test(utf8_table_split_everywhere),
		cmocka_unit_test(utf8_reports_bad_offset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
