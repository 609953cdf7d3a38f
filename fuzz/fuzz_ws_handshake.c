/*
 * fuzz_ws_handshake.c: libFuzzer harness for the check of the server's
 * WebSocket upgrade response (cb_ws_check_response in src/feed/ws_handshake.c).
 *
 * Feeds arbitrary bytes as the response header block, capped at
 * CB_WS_MAX_HANDSHAKE and NUL-terminated as read_response() in ws.c leaves
 * it. The key is the sample nonce of RFC 6455 section 1.3, so a seed with
 * "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" passes the check.
 * A pass without status 101 aborts, as does a status outside 0 to 999.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "feed/ws.h"

#define FUZZ_KEY "dGhlIHNhbXBsZSBub25jZQ=="

static char head[CB_WS_MAX_HANDSHAKE + 1];

/* volatile, so the compiler cannot drop the read of the error message. */
static volatile size_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cb_err err;
	int status = -1;
	int rc;

	if (size > CB_WS_MAX_HANDSHAKE)
		size = CB_WS_MAX_HANDSHAKE;
	memcpy(head, data, size);
	head[size] = '\0';
	err.msg[0] = '\0';

	rc = cb_ws_check_response(head, size, FUZZ_KEY, &status, &err);
	if (status < 0 || status > 999)
		abort();
	if (rc == 0 && status != 101)
		abort();
	if (rc < 0 && !err.msg[0])
		abort();
	sink += strlen(err.msg);
	return 0;
}
