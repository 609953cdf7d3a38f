/*
 * fuzz_ws_frames.c: libFuzzer harness for the WebSocket frame and message
 * reader (cb_ws_read in src/feed/ws.c).
 *
 * Input layout: bits 0-6 of byte 0 set the read size (1 to 127 bytes per
 * read, 0 for the whole rest in one read), and bit 7 makes on_text return -1.
 * Byte 1 sets max_message: bit 7 selects the 1 MiB default, else 8 to 1024
 * bytes, so that small inputs reach the limit. The rest is the byte
 * stream the server sends behind its 101 response, read through the
 * in-memory seam of ws_internal.h until the stream ends, a close frame
 * arrives or a protocol error ends the connection.
 *
 * The handlers check the contract of ws.h and abort() when it breaks: a
 * delivered text message is NUL-terminated, valid UTF-8 and within
 * max_message, and a rejected message hands over at most CB_WS_REJECT_KEEP
 * bytes of its full size.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "feed/utf8.h"
#include "feed/ws.h"
#include "feed/ws_internal.h"

/* Maximum cb_ws_read() calls per input. Each call consumes at least one byte, so the cap is never reached. */
#define FUZZ_MAX_READ_CALLS (1024 * 1024)

struct fuzz_ctx {
	size_t max_message;
	int refuse_text;
};

/* volatile, so the compiler cannot drop the reads of the delivered bytes. */
static volatile size_t sink;

static void touch(const char *data, size_t len)
{
	for (size_t i = 0; i < len; i++)
		sink += (unsigned char)data[i];
}

static int on_text(void *ctx, const char *data, size_t len)
{
	struct fuzz_ctx *c = ctx;

	if (len > c->max_message || data[len] != '\0' || cb_utf8_valid(data, len) < 0)
		abort();
	touch(data, len);
	return c->refuse_text ? -1 : 0;
}

static int on_rejected(void *ctx, const char *data, size_t len, uint64_t full_len, const char *reason)
{
	(void)ctx;
	if (len > CB_WS_REJECT_KEEP || len > full_len || !reason || !reason[0])
		abort();
	touch(data, len);
	sink += strlen(reason);
	return 0;
}

static void on_pong(void *ctx)
{
	(void)ctx;
	sink++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct cb_ws_handlers handlers = { on_text, on_rejected, on_pong };
	struct fuzz_ctx ctx;
	struct cb_ws *ws;
	struct cb_err err;
	enum cb_ws_read_result r = CB_WS_AGAIN;
	uint16_t code;
	const char *reason;
	size_t chunk;

	if (size < 2)
		return 0;
	err.msg[0] = '\0';
	chunk = data[0] & 0x7f;
	ctx.refuse_text = (data[0] & 0x80) != 0;
	ctx.max_message = (data[1] & 0x80) ? CB_WS_DEFAULT_MAX_MESSAGE : 8 + (size_t)(data[1] & 0x7f) * 8;
	if (cb_ws_open_memory(data + 2, size - 2, chunk, ctx.max_message, &ws, &err) < 0)
		return 0;

	for (size_t calls = 0; calls < FUZZ_MAX_READ_CALLS; calls++) {
		r = cb_ws_read(ws, &handlers, &ctx, &err);
		if (r != CB_WS_AGAIN && r != CB_WS_MORE)
			break;
	}
	if (r == CB_WS_AGAIN || r == CB_WS_MORE)
		abort(); /* the stream ended, so the reader must have stopped */
	if (!err.msg[0])
		abort(); /* CB_WS_CLOSED and CB_WS_ERROR both fill err */

	cb_ws_close_info(ws, &code, &reason);
	if (strlen(reason) > CB_WS_MAX_CLOSE_REASON)
		abort();
	sink += code + (size_t)cb_ws_close_done(ws);
	if (cb_ws_close(ws, 1000, "fuzz", &err) < 0)
		sink++;
	cb_ws_free(ws);
	return 0;
}
