/* buf.c: the bounded growable buffer of buf.h. */
#include "base/buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cb_buf_init(struct cb_buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

static int buf_reserve(struct cb_buf *b, size_t extra)
{
	size_t need, cap;
	char *data;

	if (extra > SIZE_MAX - b->len - 1)
		return -1;
	need = b->len + extra;
	if (b->max && need > b->max)
		return -1;
	if (need + 1 <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < need + 1)
		cap = cap > SIZE_MAX / 2 ? need + 1 : cap * 2;
	data = realloc(b->data, cap);
	if (!data)
		return -1;
	b->data = data;
	b->cap = cap;
	b->data[b->len] = '\0';
	return 0;
}

int cb_buf_append(struct cb_buf *b, const void *p, size_t n)
{
	if (buf_reserve(b, n) < 0)
		return -1;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int cb_buf_puts(struct cb_buf *b, const char *s)
{
	return cb_buf_append(b, s, strlen(s));
}

int cb_buf_printf(struct cb_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || buf_reserve(b, (size_t)n) < 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void cb_buf_reset(struct cb_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

char *cb_buf_steal(struct cb_buf *b)
{
	char *data;

	if (!b->data && buf_reserve(b, 0) < 0)
		return NULL;
	if (!b->data)
		return NULL;
	data = b->data;
	b->data = NULL;
	b->len = b->cap = 0;
	return data;
}

void cb_buf_free(struct cb_buf *b)
{
	if (!b)
		return;
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
