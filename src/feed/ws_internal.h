/*
 * ws_internal.h: a test seam of ws.c for unit tests and fuzz harnesses.
 * Nothing in the daemon includes it.
 *
 * cb_ws_open_memory() makes a struct cb_ws whose "socket" is a byte buffer
 * in memory, so cb_ws_read() runs the same frame parser, message assembly,
 * limits and handlers over those bytes as over a real connection.
 */
#ifndef CLAWBACK_FEED_WS_INTERNAL_H
#define CLAWBACK_FEED_WS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "feed/ws.h"

/*
 * Opens a connection that reads data (len bytes, not copied: keep it alive
 * until cb_ws_free) as the bytes the server sent behind its 101 response.
 * Reads return at most chunk bytes (0: no cap), and each read is followed by
 * one "would block", so cb_ws_read() returns CB_WS_AGAIN between chunks as it
 * does between socket reads. After the last byte the stream ends as if the
 * server closed TCP. Frames the connection sends (PONGs, close replies) are
 * encoded and dropped. max_message is as in struct cb_ws_options.
 */
int cb_ws_open_memory(const uint8_t *data, size_t len, size_t chunk, size_t max_message, struct cb_ws **out,
		      struct cb_err *err);

#endif
