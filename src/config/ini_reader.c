/*
 * ini_reader.c: the line-numbered INI reader and the problem list of
 * ini_reader.h. Reads operator files (untrusted text); every line is bounded
 * by CB_INI_MAX_LINE and checked for NUL, control characters and UTF-8.
 */
#include "config/ini_reader.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Total text kept in a problem list (CB_PROBLEMS_MAX_LISTED lines of a few hundred bytes). */
#define PROBLEMS_MAX_BYTES (256 * 1024)

struct ini_state {
	char *section;
	char *name;
	void (*on_item)(void *ctx, const struct cb_ini_item *item);
	void *ctx;
};

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Returns the length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
	size_t need;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		need = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		need = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		need = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < need)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((need == 3 && cp < 0x800) || (need == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	if (cp >= 0xd800 && cp <= 0xdfff)
		return 0;
	return need;
}

/* Returns NULL when the line is clean, else a message naming the first bad byte. */
static const char *check_line(const char *line, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = (unsigned char)line[i];
		size_t n;

		if (c == '\0')
			return "NUL byte in line";
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return "control character in line";
		n = utf8_sequence((const unsigned char *)line + i, len - i);
		if (n == 0)
			return "invalid UTF-8 in line";
		i += n;
	}
	return NULL;
}

static void emit_error(struct ini_state *st, int line, const char *msg)
{
	struct cb_ini_item item = {
		.kind = CB_INI_ERROR, .line = line, .section = st->section, .name = st->name, .value = msg,
	};

	st->on_item(st->ctx, &item);
}

static int is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* Parses "[section]" or "[section "name"]" held in s (trimmed, starts with '['). */
static int parse_section(struct ini_state *st, int line, char *s)
{
	size_t len = strlen(s);
	char *p = s + 1;
	char *section, *name = NULL;

	if (s[len - 1] != ']') {
		emit_error(st, line, "section header must end with ']' (no text after it)");
		return 0;
	}
	s[len - 1] = '\0';
	section = p;
	while (is_name_char(*p))
		p++;
	if (p == section || (size_t)(p - section) > CB_INI_MAX_NAME) {
		emit_error(st, line, "section name must be 1 to 64 characters of [a-z0-9_-]");
		return 0;
	}
	if (*p) {
		char *end;

		if (!is_blank(*p)) {
			emit_error(st, line, "section name must be 1 to 64 characters of [a-z0-9_-]");
			return 0;
		}
		*p++ = '\0';
		while (is_blank(*p))
			p++;
		end = p + strlen(p);
		while (end > p && is_blank(end[-1]))
			end--;
		if (*p != '"' || end - p < 2 || end[-1] != '"') {
			emit_error(st, line, "section name must be written [section \"name\"] with the name in double quotes");
			return 0;
		}
		end[-1] = '\0';
		name = p + 1;
		if (*name == '\0' || strpbrk(name, "\"\\")) {
			emit_error(st, line, "quoted section name must not be empty or contain '\"' or '\\'");
			return 0;
		}
	}

	free(st->section);
	free(st->name);
	st->section = strdup(section);
	st->name = name ? strdup(name) : NULL;
	if (!st->section || (name && !st->name))
		return -1;

	struct cb_ini_item item = {
		.kind = CB_INI_SECTION, .line = line, .section = st->section, .name = st->name,
	};
	st->on_item(st->ctx, &item);
	return 0;
}

/* Parses "key = value" held in s (trimmed, not empty, not a comment). */
static void parse_key(struct ini_state *st, int line, char *s)
{
	char *eq = strchr(s, '=');
	char *key_end, *value;

	if (!eq) {
		emit_error(st, line, "expected 'key = value', a [section] header or a # comment");
		return;
	}
	key_end = eq;
	while (key_end > s && is_blank(key_end[-1]))
		key_end--;
	*key_end = '\0';
	for (char *k = s; *k; k++) {
		if (!is_name_char(*k) || *k == '-') {
			emit_error(st, line, "key must be 1 to 64 characters of [a-z0-9_]");
			return;
		}
	}
	if (key_end == s || (size_t)(key_end - s) > CB_INI_MAX_NAME) {
		emit_error(st, line, "key must be 1 to 64 characters of [a-z0-9_]");
		return;
	}
	if (!st->section) {
		emit_error(st, line, "key outside any section: add a [section] header above it");
		return;
	}
	value = eq + 1;
	while (is_blank(*value))
		value++;

	struct cb_ini_item item = {
		.kind = CB_INI_KEY, .line = line, .section = st->section, .name = st->name, .key = s, .value = value,
	};
	st->on_item(st->ctx, &item);
}

static int parse_line(struct ini_state *st, int line, const char *start, size_t len, char *scratch)
{
	const char *bad;
	char *s, *end;

	if (len > 0 && start[len - 1] == '\r')
		len--;
	if (len > CB_INI_MAX_LINE) {
		emit_error(st, line, "line longer than 8192 bytes");
		return 0;
	}
	bad = check_line(start, len);
	if (bad) {
		emit_error(st, line, bad);
		return 0;
	}
	memcpy(scratch, start, len);
	scratch[len] = '\0';

	s = scratch;
	while (is_blank(*s))
		s++;
	end = s + strlen(s);
	while (end > s && is_blank(end[-1]))
		end--;
	*end = '\0';
	if (*s == '\0' || *s == '#' || *s == ';')
		return 0;
	if (*s == '[')
		return parse_section(st, line, s);
	parse_key(st, line, s);
	return 0;
}

int cb_ini_parse(const char *text, size_t len, void (*on_item)(void *ctx, const struct cb_ini_item *item),
		 void *ctx)
{
	struct ini_state st = {.on_item = on_item, .ctx = ctx};
	char *scratch = malloc(CB_INI_MAX_LINE + 1);
	size_t pos = 0;
	int line = 0;
	int rc = 0;

	if (!scratch)
		return -1;
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		pos = 3;
	while (pos < len && rc == 0) {
		const char *start = text + pos;
		const char *nl = memchr(start, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - start) : len - pos;

		line++;
		rc = parse_line(&st, line, start, n, scratch);
		pos += n + (nl ? 1 : 0);
	}
	free(scratch);
	free(st.section);
	free(st.name);
	return rc;
}

void cb_problems_init(struct cb_problems *p)
{
	cb_buf_init(&p->text, PROBLEMS_MAX_BYTES);
	p->count = 0;
}

void cb_problems_add(struct cb_problems *p, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	p->count++;
	if (p->count > CB_PROBLEMS_MAX_LISTED)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	cb_buf_puts(&p->text, line);
	cb_buf_puts(&p->text, "\n");
}

int cb_problems_finish(struct cb_problems *p, char **out)
{
	int count = p->count;

	if (count > CB_PROBLEMS_MAX_LISTED)
		cb_buf_printf(&p->text, "(%d more problems not listed)\n", count - CB_PROBLEMS_MAX_LISTED);
	if (out && p->text.len > 0) {
		size_t old = *out ? strlen(*out) : 0;
		char *joined = realloc(*out, old + p->text.len + 1);

		if (joined) {
			memcpy(joined + old, p->text.data, p->text.len + 1);
			*out = joined;
		}
	}
	cb_buf_free(&p->text);
	return count;
}

const char *cb_quote(char *out, size_t out_size, const char *s, size_t max_chars)
{
	size_t o = 0;
	size_t i;

	if (!s)
		s = "";
	out[o++] = '\'';
	for (i = 0; s[i] && i < max_chars && o + 8 < out_size; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f) {
			o += (size_t)snprintf(out + o, out_size - o, "\\x%02x", c);
		} else if (c == '\'' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else {
			out[o++] = (char)c;
		}
	}
	if (s[i] && o + 5 < out_size) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o++] = '\'';
	out[o] = '\0';
	return out;
}
