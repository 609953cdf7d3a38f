/* log.c: the application log of log.h, to stderr or the journal. */
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <time.h>
#include <unistd.h>

static enum cb_log_level log_level = CB_LOG_INFO;
static int log_journal;
static void (*log_hook)(enum cb_log_level, const char *, void *);
static void *log_hook_ctx;

static const char *const level_names[] = {"debug", "info", "notice", "warning", "error", "fatal"};
/* syslog priorities for the journal's PRIORITY= field, by level. */
static const int level_priorities[] = {7, 6, 5, 4, 3, 2};

void cb_log_set_level(enum cb_log_level level)
{
	log_level = level;
}

enum cb_log_level cb_log_get_level(void)
{
	return log_level;
}

int cb_log_level_parse(const char *name, enum cb_log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]) - 1; i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum cb_log_level)i;
			return 0;
		}
	}
	return -1;
}

void cb_log_use_journal(int enable)
{
	log_journal = enable;
}

void cb_log_set_hook(void (*hook)(enum cb_log_level, const char *, void *), void *ctx)
{
	log_hook = hook;
	log_hook_ctx = ctx;
}

void cb_log(enum cb_log_level level, const char *fmt, ...)
{
	char message[4096];
	char line[4200];
	char stamp[32];
	struct timespec now;
	struct tm tm;
	va_list ap;
	int n;

	if (level < log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);

	if (log_journal) {
		sd_journal_send("MESSAGE=%s", message, "PRIORITY=%d", level_priorities[level],
				"SYSLOG_IDENTIFIER=clawback", NULL);
	} else {
		clock_gettime(CLOCK_REALTIME, &now);
		gmtime_r(&now.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
		n = snprintf(line, sizeof(line), "%s.%03ldZ clawback[%d] level=%s msg=%s\n", stamp,
			     now.tv_nsec / 1000000, (int)getpid(), level_names[level], message);
		if (n > (int)sizeof(line) - 1) {
			n = (int)sizeof(line) - 1;
			line[n - 1] = '\n';
		}
		/* One write per line keeps lines whole when threads log at once. */
		if (write(STDERR_FILENO, line, (size_t)n) < 0) {
			/* Nowhere left to report a failing stderr. */
		}
	}
	if (log_hook)
		log_hook(level, message, log_hook_ctx);
}

const char *cb_log_strn(struct cb_log_value *v, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t out = 0;
	size_t i;

	if (!s) {
		memcpy(v->text, "-", 2);
		return v->text;
	}
	v->text[out++] = '"';
	for (i = 0; i < n && i < CB_LOG_VALUE_MAX; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			v->text[out++] = '\\';
			v->text[out++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			v->text[out++] = '\\';
			v->text[out++] = 'x';
			v->text[out++] = hex[c >> 4];
			v->text[out++] = hex[c & 15];
		} else {
			v->text[out++] = (char)c;
		}
	}
	if (i < n) {
		memcpy(v->text + out, "...", 3);
		out += 3;
	}
	v->text[out++] = '"';
	v->text[out] = '\0';
	return v->text;
}

const char *cb_log_str(struct cb_log_value *v, const char *s)
{
	return cb_log_strn(v, s, s ? strlen(s) : 0);
}
