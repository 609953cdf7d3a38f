/*
 * ini_reader.h: the INI reader behind clawback.conf and rules.conf, and the
 * problem list both loaders fill.
 *
 * Runs in whichever thread loads a file (main thread at start and on SIGHUP,
 * control thread when the console saves rules, the CLI). The input is an
 * operator's file, so it is treated as untrusted text: lines are bounded, NUL
 * bytes, control characters and invalid UTF-8 are errors with a line number.
 *
 * Why not inih: Debian's libinih r55 header sets INI_HANDLER_LINENO 0, so
 * handlers get no line numbers. Its INI_MAX_LINE is 200, and a longer line is
 * silently parsed as two lines, which breaks long URL regexes. It also strips
 * inline comments after " ;" and joins indented continuation lines. Rules
 * need ';', '#' and long lines inside values, and every message needs its
 * line, so this reader is ours. The syntax it accepts is a strict subset of what inih accepts:
 *
 *   # comment            (a line whose first non-blank character is # or ;)
 *   [section]
 *   [section "name"]     (name: any printable text without '"' or '\')
 *   key = value          (key: [a-z0-9_]+; value: the rest of the line, trimmed)
 *
 * There are no inline comments: "# ..." after a value is part of the value.
 */
#ifndef CLAWBACK_CONFIG_INI_READER_H
#define CLAWBACK_CONFIG_INI_READER_H

#include <stddef.h>

#include "base/buf.h"

/* Maximum line length, in bytes (a long URL regex fits; a minified blob does not). */
#define CB_INI_MAX_LINE 8192
/* Maximum section or key name length, in bytes. */
#define CB_INI_MAX_NAME 64
/*
 * Problems kept as text per load; later ones are counted but not listed, so a
 * garbage file cannot produce megabytes of messages.
 */
#define CB_PROBLEMS_MAX_LISTED 100

enum cb_ini_kind {
	CB_INI_SECTION, /* a section header: section and name set, key and value NULL */
	CB_INI_KEY,     /* key = value inside the current section */
	CB_INI_ERROR,   /* a syntax error: value is the message, the line is skipped */
};

struct cb_ini_item {
	enum cb_ini_kind kind;
	int line;            /* 1-based */
	const char *section; /* NULL before the first section header */
	const char *name;    /* the quoted name of [section "name"], or NULL */
	const char *key;
	const char *value;
};

/*
 * Parses text (len bytes) and calls on_item for every section header, key and
 * syntax error, in file order. The strings live until on_item returns.
 * Returns -1 when out of memory, else 0 (syntax errors go to on_item).
 */
int cb_ini_parse(const char *text, size_t len, void (*on_item)(void *ctx, const struct cb_ini_item *item),
		 void *ctx);

/* A list of problem lines ("FILE:LINE: ... message\n") with a count. */
struct cb_problems {
	struct cb_buf text;
	int count;
};

void cb_problems_init(struct cb_problems *p);
/* Appends one line (a newline is added) and counts it. */
void cb_problems_add(struct cb_problems *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * Appends the collected lines to *out (allocating it when NULL), frees p and
 * returns the count. With out NULL the text is dropped.
 */
int cb_problems_finish(struct cb_problems *p, char **out);

/*
 * Writes s into out as a quoted value for a message: 'text', with control
 * characters, quotes and backslashes escaped and at most max_chars bytes of s
 * kept ("..." marks a cut). out_size must be at least 4 * max_chars + 8.
 */
const char *cb_quote(char *out, size_t out_size, const char *s, size_t max_chars);

#endif
