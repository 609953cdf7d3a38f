/* err.c: formatting of struct cb_err messages; see err.h for the convention. */
#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int cb_err_set(struct cb_err *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -1;
}

int cb_err_prefix(struct cb_err *err, const char *fmt, ...)
{
	char prefix[CB_ERR_MAX];
	char old[CB_ERR_MAX];
	va_list ap;

	if (!err)
		return -1;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	snprintf(err->msg, sizeof(err->msg), "%s%s", prefix, old);
	return -1;
}
