/*
 * utf8.h: an incremental UTF-8 validator for WebSocket text messages.
 *
 * Runs in the feed thread. The input is untrusted bytes from the network,
 * possibly split at any point across frames and reads. Validation follows
 * Unicode table 3-7 (well-formed byte sequences): overlong forms, UTF-16
 * surrogates (U+D800..U+DFFF) and code points above U+10FFFF are invalid, and
 * a message that ends inside a sequence is invalid.
 */
#ifndef CLAWBACK_FEED_UTF8_H
#define CLAWBACK_FEED_UTF8_H

#include <stddef.h>
#include <stdint.h>

struct cb_utf8 {
	uint64_t offset;     /* bytes consumed so far */
	uint64_t bad_offset; /* offset of the first invalid byte, when invalid */
	uint8_t need;        /* continuation bytes still expected */
	uint8_t low;         /* allowed range of the next continuation byte */
	uint8_t high;
	uint8_t invalid;     /* sticky: once set, later input is ignored */
};

void cb_utf8_init(struct cb_utf8 *u);
/* Consumes n bytes; returns 0 while the input is still valid, -1 once it is not. */
int cb_utf8_update(struct cb_utf8 *u, const void *data, size_t n);
/* Returns 0 when everything consumed is complete, valid UTF-8, -1 otherwise. */
int cb_utf8_finish(const struct cb_utf8 *u);
/* Validates a whole buffer; returns 0 when valid, -1 otherwise. */
int cb_utf8_valid(const void *data, size_t n);

#endif
