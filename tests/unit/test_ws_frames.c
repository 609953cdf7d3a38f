/*
 * test_ws_frames.c: the WebSocket frame and message reader of ws.c, run over
 * in-memory server bytes through cb_ws_open_memory (ws_internal.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "feed/ws.h"
#include "feed/ws_internal.h"

/* Messages and rejections recorded per test. */
#define MAX_SEEN 8

struct seen {
	int texts;
	char text[MAX_SEEN][64];
	int rejects;
	uint64_t reject_full_len[MAX_SEEN];
	char reject_reason[MAX_SEEN][160];
};

static int on_text(void *ctx, const char *data, size_t len)
{
	struct seen *s = ctx;

	if (s->texts < MAX_SEEN && len < sizeof(s->text[0]))
		memcpy(s->text[s->texts], data, len + 1);
	s->texts++;
	return 0;
}

static int on_rejected(void *ctx, const char *data, size_t len, uint64_t full_len, const char *reason)
{
	struct seen *s = ctx;

	(void)data;
	(void)len;
	if (s->rejects < MAX_SEEN) {
		s->reject_full_len[s->rejects] = full_len;
		snprintf(s->reject_reason[s->rejects], sizeof(s->reject_reason[0]), "%s", reason);
	}
	s->rejects++;
	return 0;
}

static const struct cb_ws_handlers handlers = { on_text, on_rejected, NULL };

/* Reads the whole stream as the feed thread would; returns the final result. */
static enum cb_ws_read_result read_all(const uint8_t *data, size_t len, size_t chunk, size_t max_message,
				       struct seen *s, struct cb_err *err, uint16_t *close_code)
{
	struct cb_ws *ws;
	enum cb_ws_read_result r;
	const char *reason;

	memset(s, 0, sizeof(*s));
	assert_int_equal(cb_ws_open_memory(data, len, chunk, max_message, &ws, err), 0);
	do
		r = cb_ws_read(ws, &handlers, s, err);
	while (r == CB_WS_AGAIN || r == CB_WS_MORE);
	cb_ws_close_info(ws, close_code, &reason);
	cb_ws_free(ws);
	return r;
}

static void text_frames_delivered(void **state)
{
	static const uint8_t stream[] = { 0x81, 2, '{', '}', 0x81, 3, '[', '1', ']' };
	struct seen s;
	struct cb_err err;
	uint16_t code;

	(void)state;
	assert_int_equal(read_all(stream, sizeof(stream), 0, 0, &s, &err, &code), CB_WS_CLOSED);
	assert_int_equal(s.texts, 2);
	assert_string_equal(s.text[0], "{}");
	assert_string_equal(s.text[1], "[1]");
	assert_int_equal(s.rejects, 0);
	assert_int_equal(code, 1006); /* the stream ended without a close frame */
}

static void fragments_read_bytewise(void **state)
{
	/* "Grü" split inside the two-byte ü, with a PING between the fragments. */
	static const uint8_t stream[] = { 0x01, 3, 'G', 'r', 0xc3, 0x89, 1, 'p', 0x80, 1, 0xbc };
	struct seen s;
	struct cb_err err;
	uint16_t code;

	(void)state;
	assert_int_equal(read_all(stream, sizeof(stream), 1, 0, &s, &err, &code), CB_WS_CLOSED);
	assert_int_equal(s.texts, 1);
	assert_string_equal(s.text[0], "Gr\xc3\xbc");
	assert_int_equal(s.rejects, 0);
}

static void invalid_utf8_rejected_and_continues(void **state)
{
	static const uint8_t stream[] = { 0x81, 2, 0xc3, 0x28, 0x82, 1, 0x00, 0x81, 2, '{', '}' };
	struct seen s;
	struct cb_err err;
	uint16_t code;

	(void)state;
	assert_int_equal(read_all(stream, sizeof(stream), 0, 0, &s, &err, &code), CB_WS_CLOSED);
	assert_int_equal(s.rejects, 2);
	assert_non_null(strstr(s.reject_reason[0], "not valid UTF-8"));
	assert_non_null(strstr(s.reject_reason[1], "binary"));
	assert_int_equal(s.texts, 1);
	assert_string_equal(s.text[0], "{}");
}

static void oversized_message_rejected(void **state)
{
	uint8_t stream[2 + 40 + 4];
	struct seen s;
	struct cb_err err;
	uint16_t code;

	(void)state;
	stream[0] = 0x81;
	stream[1] = 40;
	memset(stream + 2, 'a', 40);
	memcpy(stream + 42, "\x81\x02{}", 4);
	assert_int_equal(read_all(stream, sizeof(stream), 7, 16, &s, &err, &code), CB_WS_CLOSED);
	assert_int_equal(s.rejects, 1);
	assert_int_equal(s.reject_full_len[0], 40);
	assert_non_null(strstr(s.reject_reason[0], "exceeds the limit of 16 bytes"));
	assert_int_equal(s.texts, 1);
}

static void huge_length_cut_incomplete(void **state)
{
	/* A 64-bit length of 2^62 followed by three bytes, then the end of the stream. */
	static const uint8_t stream[] = { 0x81, 127, 0x40, 0, 0, 0, 0, 0, 0, 0, 'a', 'b', 'c' };
	struct seen s;
	struct cb_err err;
	uint16_t code;

	(void)state;
	assert_int_equal(read_all(stream, sizeof(stream), 0, 0, &s, &err, &code), CB_WS_CLOSED);
	assert_int_equal(s.texts, 0);
	assert_int_equal(s.rejects, 1);
	assert_int_equal(s.reject_full_len[0], 3);
	assert_non_null(strstr(s.reject_reason[0], "incomplete"));
}

static void close_frame_code_and_reason(void **state)
{
	static const uint8_t stream[] = { 0x88, 5, 0x03, 0xe8, 'b', 'y', 'e', 0x81, 2, '{', '}' };
	struct cb_ws *ws;
	struct seen s;
	struct cb_err err;
	uint16_t code;
	const char *reason;

	(void)state;
	memset(&s, 0, sizeof(s));
	assert_int_equal(cb_ws_open_memory(stream, sizeof(stream), 0, 0, &ws, &err), 0);
	assert_int_equal(cb_ws_read(ws, &handlers, &s, &err), CB_WS_CLOSED);
	cb_ws_close_info(ws, &code, &reason);
	assert_int_equal(code, 1000);
	assert_string_equal(reason, "bye");
	assert_int_equal(cb_ws_close_done(ws), 1); /* the reply went out and the frame behind is unread */
	assert_int_equal(s.texts, 0);
	cb_ws_free(ws);
}

static void protocol_errors_end_connection(void **state)
{
	static const struct {
		const char *name;
		uint8_t bytes[8];
		size_t len;
		const char *error;
	} cases[] = {
		{ "masked", { 0x81, 0x82, 1, 2, 3, 4, 'a', 'b' }, 8, "masked frame" },
		{ "rsv bits", { 0xc1, 1, 'a' }, 3, "reserved bits" },
		{ "opcode 3", { 0x83, 1, 'a' }, 3, "reserved opcode" },
		{ "continuation first", { 0x80, 1, 'a' }, 3, "continuation frame outside" },
		{ "text in fragmented", { 0x01, 1, 'a', 0x81, 1, 'b' }, 6, "new data message inside" },
		{ "fragmented ping", { 0x09, 1, 'a' }, 3, "invalid frame header" },
		{ "close 1 byte", { 0x88, 1, 3 }, 3, "1-byte payload" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct seen s;
		struct cb_err err;
		uint16_t code;

		err.msg[0] = '\0';
		print_message("case %s\n", cases[i].name);
		assert_int_equal(read_all(cases[i].bytes, cases[i].len, 0, 0, &s, &err, &code), CB_WS_ERROR);
		assert_non_null(strstr(err.msg, cases[i].error));
		assert_int_equal(s.texts, 0);
	}
}

static void cut_fragment_rejected(void **state)
{
	static const uint8_t stream[] = { 0x01, 2, '{', '"' };
	struct seen s;
	struct cb_err err;
	uint16_t code;

	(void)state;
	assert_int_equal(read_all(stream, sizeof(stream), 0, 0, &s, &err, &code), CB_WS_CLOSED);
	assert_int_equal(s.texts, 0);
	assert_int_equal(s.rejects, 1);
	assert_non_null(strstr(s.reject_reason[0], "incomplete"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(text_frames_delivered),
		cmocka_unit_test(fragments_read_bytewise),
		cmocka_unit_test(invalid_utf8_rejected_and_continues),
		cmocka_unit_test(oversized_message_rejected),
		cmocka_unit_test(huge_length_cut_incomplete),
		cmocka_unit_test(close_frame_code_and_reason),
		cmocka_unit_test(protocol_errors_end_connection),
		cmocka_unit_test(cut_fragment_rejected),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
