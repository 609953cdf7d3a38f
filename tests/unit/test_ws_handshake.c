/* test_ws_handshake.c: Sec-WebSocket-Accept, the upgrade response check and the feed URL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "feed/feed.h"
#include "feed/ws.h"

/* The example key and accept value of RFC 6455 section 1.3. */
#define RFC_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define RFC_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static void accept_matches_rfc_example(void **state)
{
	char accept[29];

	(void)state;
	assert_int_equal(cb_ws_accept_for_key(RFC_KEY, accept), 0);
	assert_string_equal(accept, RFC_ACCEPT);
}

static void key_is_base64_of_16_bytes(void **state)
{
	char a[25], b[25];

	(void)state;
	assert_int_equal(cb_ws_make_key(a), 0);
	assert_int_equal(cb_ws_make_key(b), 0);
	assert_int_equal(strlen(a), 24);
	assert_string_equal(a + 22, "==");
	assert_string_not_equal(a, b);
}

static int check(const char *head, int *status)
{
	return cb_ws_check_response(head, strlen(head), RFC_KEY, status, NULL);
}

static void response_101_accepted(void **state)
{
	int status;

	(void)state;
	assert_int_equal(check("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
			       "Connection: Upgrade\r\nSec-WebSocket-Accept: " RFC_ACCEPT "\r\n\r\n",
			       &status),
			 0);
	assert_int_equal(status, 101);
	/* Header names and the Upgrade/Connection values are case-insensitive; Connection is a list. */
	assert_int_equal(check("HTTP/1.1 101 OK\r\nupgrade: WebSocket\r\nconnection: keep-alive, upgrade\r\n"
			       "sec-websocket-accept:   " RFC_ACCEPT "  \r\n\r\n",
			       &status),
			 0);
}

static void response_rejections(void **state)
{
	struct cb_err err;
	int status;

	(void)state;
	assert_int_equal(check("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n", &status), -1);
	assert_int_equal(status, 401);
	assert_int_equal(check("HTTP/1.1 403 Forbidden\r\n\r\n", &status), -1);
	assert_int_equal(status, 403);
	assert_int_equal(check("garbage\r\n\r\n", &status), -1);
	assert_int_equal(status, 0);
	assert_int_equal(check("HTTP/1.1 10x Bad\r\n\r\n", &status), -1);
	assert_int_equal(status, 0);

	/* 101 with a wrong or missing accept value, or missing upgrade headers. */
	assert_int_equal(check("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
			       "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n",
			       &status),
			 -1);
	assert_int_equal(check("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", &status), -1);
	assert_int_equal(check("HTTP/1.1 101 OK\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " RFC_ACCEPT
			       "\r\n\r\n",
			       &status),
			 -1);
	assert_int_equal(check("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
			       "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
			       &status),
			 -1);

	assert_int_equal(cb_ws_check_response("HTTP/1.1 401 No\r\n\r\n", 19, RFC_KEY, &status, &err), -1);
	assert_non_null(strstr(err.msg, "401"));
}

static void response_long_header_line(void **state)
{
	static char head[8192];
	int status, n;

	(void)state;
	n = snprintf(head, sizeof(head), "HTTP/1.1 101 OK\r\nX-Long: ");
	memset(head + n, 'a', 5000);
	snprintf(head + n + 5000, sizeof(head) - (size_t)n - 5000, "\r\n\r\n");
	assert_int_equal(check(head, &status), -1);
}

static void url_split_parts(void **state)
{
	struct cb_ws_url u;

	(void)state;
	assert_int_equal(cb_ws_parse_url("wss://events.retarus.com/email/siem/v1/websocket?channel=default", &u, NULL),
			 0);
	assert_string_equal(u.https_url, "https://events.retarus.com/email/siem/v1/websocket?channel=default");
	assert_string_equal(u.host_header, "events.retarus.com");
	assert_string_equal(u.target, "/email/siem/v1/websocket?channel=default");

	assert_int_equal(cb_ws_parse_url("wss://127.0.0.1:8443/feed", &u, NULL), 0);
	assert_string_equal(u.host_header, "127.0.0.1:8443");
	assert_string_equal(u.target, "/feed");

	assert_int_equal(cb_ws_parse_url("wss://localhost", &u, NULL), 0);
	assert_string_equal(u.target, "/");
}

static void url_rejected_forms(void **state)
{
	struct cb_ws_url u;

	(void)state;
	assert_int_equal(cb_ws_parse_url("ws://events.retarus.com/x", &u, NULL), -1);
	assert_int_equal(cb_ws_parse_url("https://events.retarus.com/x", &u, NULL), -1);
	assert_int_equal(cb_ws_parse_url("wss://user:pw@events.retarus.com/x", &u, NULL), -1);
	assert_int_equal(cb_ws_parse_url("wss://events.retarus.com/x#frag", &u, NULL), -1);
	assert_int_equal(cb_ws_parse_url("wss://", &u, NULL), -1);
	assert_int_equal(cb_ws_parse_url("wss://bad host/x", &u, NULL), -1);
	assert_int_equal(cb_ws_parse_url(NULL, &u, NULL), -1);
}

static void channel_name_rules(void **state)
{
	(void)state;
	assert_int_equal(cb_feed_channel_valid("default"), 0);
	assert_int_equal(cb_feed_channel_valid("abc-12"), 0);
	assert_int_equal(cb_feed_channel_valid("abcdefghijklmnopqrstuvwxyz012345"), 0);
	assert_int_equal(cb_feed_channel_valid("abcde"), -1);
	assert_int_equal(cb_feed_channel_valid("abcdefghijklmnopqrstuvwxyz0123456"), -1);
	assert_int_equal(cb_feed_channel_valid("Default"), -1);
	assert_int_equal(cb_feed_channel_valid("chan_nel"), -1);
	assert_int_equal(cb_feed_channel_valid("chan&x=1"), -1);
	assert_int_equal(cb_feed_channel_valid(NULL), -1);
}

static void compose_url_cases(void **state)
{
	const char *base = "wss://events.retarus.com/email/siem/v1/websocket";
	char out[CB_FEED_MAX_URL];
	struct cb_err err;

	(void)state;
	assert_int_equal(cb_feed_compose_url(base, NULL, out, sizeof(out), NULL), 0);
	assert_string_equal(out, "wss://events.retarus.com/email/siem/v1/websocket?channel=default");
	assert_int_equal(cb_feed_compose_url(base, "clawback-1", out, sizeof(out), NULL), 0);
	assert_string_equal(out, "wss://events.retarus.com/email/siem/v1/websocket?channel=clawback-1");
	assert_int_equal(cb_feed_compose_url("wss://h/p?x=1", "clawback", out, sizeof(out), NULL), 0);
	assert_string_equal(out, "wss://h/p?x=1&channel=clawback");
	assert_int_equal(cb_feed_compose_url("wss://h/p?", "clawback", out, sizeof(out), NULL), 0);
	assert_string_equal(out, "wss://h/p?channel=clawback");

	/* A channel already in the URL is kept when the config has the default or the same one. */
	assert_int_equal(cb_feed_compose_url("wss://h/p?channel=second", "default", out, sizeof(out), NULL), 0);
	assert_string_equal(out, "wss://h/p?channel=second");
	assert_int_equal(cb_feed_compose_url("wss://h/p?channel=second", "second", out, sizeof(out), NULL), 0);
	assert_string_equal(out, "wss://h/p?channel=second");
	assert_int_equal(cb_feed_compose_url("wss://h/p?channel=second", "third1", out, sizeof(out), &err), -1);
	assert_non_null(strstr(err.msg, "third1"));

	assert_int_equal(cb_feed_compose_url("wss://h/p?channel=BAD", NULL, out, sizeof(out), NULL), -1);
	assert_int_equal(cb_feed_compose_url(base, "bad channel", out, sizeof(out), NULL), -1);
	assert_int_equal(cb_feed_compose_url(base, "x", out, sizeof(out), NULL), -1);
	assert_int_equal(cb_feed_compose_url("wss://h/p#f", NULL, out, sizeof(out), NULL), -1);
	assert_int_equal(cb_feed_compose_url(NULL, NULL, out, sizeof(out), NULL), -1);
	assert_int_equal(cb_feed_compose_url(base, NULL, out, 20, NULL), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(accept_matches_rfc_example),
		cmocka_unit_test(key_is_base64_of_16_bytes),
		cmocka_unit_test(response_101_accepted),
		cmocka_unit_test(response_rejections),
		cmocka_unit_test(response_long_header_line),
		cmocka_unit_test(url_split_parts),
		cmocka_unit_test(url_rejected_forms),
		cmocka_unit_test(channel_name_rules),
		cmocka_unit_test(compose_url_cases),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
