/*
 * err.h: the error convention shared by every component.
 *
 * A function that can fail returns 0 on success and -1 on failure, and fills a
 * caller-provided struct cb_err with one sentence that names the failing value
 * and, where there is one, what to do. Such a function never logs: the caller
 * that decides what happens next logs once, with the ids involved.
 * A NULL err is allowed and discards the message.
 */
#ifndef CLAWBACK_BASE_ERR_H
#define CLAWBACK_BASE_ERR_H

#define CB_ERR_MAX 512

struct cb_err {
	char msg[CB_ERR_MAX];
};

/* Formats the message into err (when not NULL) and returns -1. */
int cb_err_set(struct cb_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefixes an existing message with more context ("file.conf:12: " + msg), returns -1. */
int cb_err_prefix(struct cb_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
