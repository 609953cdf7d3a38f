/* utf8.c: the incremental UTF-8 validator of utf8.h (Unicode table 3-7). */
#include "feed/utf8.h"

#include <string.h>

void cb_utf8_init(struct cb_utf8 *u)
{
	memset(u, 0, sizeof(*u));
}

/* Sets the expected sequence for lead byte c; returns -1 for a byte that cannot start one. */
static int utf8_start(struct cb_utf8 *u, uint8_t c)
{
	u->low = 0x80;
	u->high = 0xBF;
	if (c <= 0x7F) {
		u->need = 0;
	} else if (c >= 0xC2 && c <= 0xDF) {
		u->need = 1;
	} else if (c >= 0xE0 && c <= 0xEF) {
		u->need = 2;
		if (c == 0xE0)
			u->low = 0xA0; /* below is an overlong form */
		else if (c == 0xED)
			u->high = 0x9F; /* above are the surrogates U+D800..U+DFFF */
	} else if (c >= 0xF0 && c <= 0xF4) {
		u->need = 3;
		if (c == 0xF0)
			u->low = 0x90; /* below is an overlong form */
		else if (c == 0xF4)
			u->high = 0x8F; /* above is beyond U+10FFFF */
	} else {
		return -1; /* 0x80..0xC1 and 0xF5..0xFF never start a sequence */
	}
	return 0;
}

int cb_utf8_update(struct cb_utf8 *u, const void *data, size_t n)
{
	const uint8_t *p = data;
	size_t i;

	if (u->invalid)
		return -1;
	for (i = 0; i < n; i++) {
		uint8_t c = p[i];

		if (u->need == 0) {
			if (c <= 0x7F)
				continue;
			if (utf8_start(u, c) == 0)
				continue;
		} else if (c >= u->low && c <= u->high) {
			u->need--;
			u->low = 0x80;
			u->high = 0xBF;
			continue;
		}
		u->invalid = 1;
		u->bad_offset = u->offset + i;
		u->offset += n;
		return -1;
	}
	u->offset += n;
	return 0;
}

int cb_utf8_finish(const struct cb_utf8 *u)
{
	return u->invalid || u->need ? -1 : 0;
}

int cb_utf8_valid(const void *data, size_t n)
{
	struct cb_utf8 u;

	cb_utf8_init(&u);
	if (cb_utf8_update(&u, data, n) < 0)
		return -1;
	return cb_utf8_finish(&u);
}
