/*
 * buf.h: a growable byte buffer with a maximum size.
 *
 * Buffers that collect bytes from outside (HTTP bodies, replayed lines,
 * files) are cb_bufs with a named limit, so a peer cannot make them grow
 * without bound. The data is always NUL-terminated for convenience, and the
 * terminator is not counted in len.
 */
#ifndef CLAWBACK_BASE_BUF_H
#define CLAWBACK_BASE_BUF_H

#include <stddef.h>

struct cb_buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max; /* appends beyond this many bytes fail; 0 means no limit */
};

void cb_buf_init(struct cb_buf *b, size_t max);
/* Appends n bytes; returns -1 (and leaves b unchanged) past max or when out of memory. */
int cb_buf_append(struct cb_buf *b, const void *p, size_t n);
int cb_buf_puts(struct cb_buf *b, const char *s);
int cb_buf_printf(struct cb_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cb_buf_reset(struct cb_buf *b);
/* Hands the data to the caller (who frees it) and empties b. Never NULL unless out of memory. */
char *cb_buf_steal(struct cb_buf *b);
void cb_buf_free(struct cb_buf *b);

#endif
