/*
 * log.h: the application log.
 *
 * One line per event, "level=... msg=\"...\"" followed by key=value fields
 * (event=, job=, mailbox=, rule=, attempt=, request_id=, result=). Lines go to
 * stderr, or to the journal when stderr is connected to it ($JOURNAL_STREAM).
 * Thread-safe: each line is written with a single write call.
 *
 * Untrusted text (anything from the feed or from Exchange) must pass through
 * cb_log_str(), which escapes control characters and quotes, and caps the
 * length, so a hostile value cannot forge log lines. Secrets are never passed
 * to the log at all.
 */
#ifndef CLAWBACK_BASE_LOG_H
#define CLAWBACK_BASE_LOG_H

#include <stddef.h>

enum cb_log_level {
	CB_LOG_DEBUG,
	CB_LOG_INFO,
	CB_LOG_NOTICE,
	CB_LOG_WARNING,
	CB_LOG_ERROR,
	CB_LOG_FATAL,
};

/* Longest untrusted value kept in a log line; longer values end in "...". */
#define CB_LOG_VALUE_MAX 200

void cb_log_set_level(enum cb_log_level level);
enum cb_log_level cb_log_get_level(void);
/* Parses "debug", "info", "notice", "warning", "error"; returns -1 for anything else. */
int cb_log_level_parse(const char *name, enum cb_log_level *out);
/* Sends lines to the journal instead of stderr (decided once at start-up). */
void cb_log_use_journal(int enable);
/* Sends lines to a callback as well (tests, the console's log view). */
void cb_log_set_hook(void (*hook)(enum cb_log_level, const char *line, void *ctx), void *ctx);

/* Writes one line: fmt is the message and fields, e.g. "event stored event=%lld". */
void cb_log(enum cb_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define cb_debug(...) cb_log(CB_LOG_DEBUG, __VA_ARGS__)
#define cb_info(...) cb_log(CB_LOG_INFO, __VA_ARGS__)
#define cb_notice(...) cb_log(CB_LOG_NOTICE, __VA_ARGS__)
#define cb_warn(...) cb_log(CB_LOG_WARNING, __VA_ARGS__)
#define cb_error(...) cb_log(CB_LOG_ERROR, __VA_ARGS__)

/* Buffer for one escaped value: quotes, escapes and the "..." marker fit in it. */
struct cb_log_value {
	char text[CB_LOG_VALUE_MAX * 4 + 8];
};

/*
 * Returns s as a quoted, escaped, length-capped log value stored in v,
 * e.g. "\"O'Brien\\n...\"". NULL becomes "-".
 */
const char *cb_log_str(struct cb_log_value *v, const char *s);
/* The same for a counted byte string that may hold NUL bytes. */
const char *cb_log_strn(struct cb_log_value *v, const char *s, size_t n);

#endif
