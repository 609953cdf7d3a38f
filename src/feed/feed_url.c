/* feed_url.c: the feed URL with its channel parameter (see cb_feed_compose_url in feed.h). */
#include "feed/feed.h"

#include <stdio.h>
#include <string.h>

/* Channel names: 6 to 32 of [a-z0-9-], the rule Retarus documents for the SIEM feed. */
#define CHANNEL_MIN 6
#define CHANNEL_MAX 32

static int channel_valid_n(const char *name, size_t len)
{
	size_t i;

	if (len < CHANNEL_MIN || len > CHANNEL_MAX)
		return -1;
	for (i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return -1;
	}
	return 0;
}

int cb_feed_channel_valid(const char *name)
{
	return name ? channel_valid_n(name, strlen(name)) : -1;
}

/* Finds "channel=" among the query parameters; sets *value and *len when present. */
static int find_channel_param(const char *query, const char **value, size_t *len)
{
	const char *p = query;

	while (p && *p) {
		const char *end = strchr(p, '&');
		size_t plen = end ? (size_t)(end - p) : strlen(p);

		if (plen >= 8 && strncmp(p, "channel=", 8) == 0) {
			*value = p + 8;
			*len = plen - 8;
			return 1;
		}
		p = end ? end + 1 : NULL;
	}
	return 0;
}

static int copy_url(char *out, size_t size, const char *url, const char *sep, const char *channel,
		    struct cb_err *err)
{
	int n = snprintf(out, size, "%s%s%s%s", url, sep, channel ? "channel=" : "", channel ? channel : "");

	if (n < 0 || (size_t)n >= size)
		return cb_err_set(err, "feed url is longer than %zu bytes", size - 1);
	return 0;
}

int cb_feed_compose_url(const char *url, const char *channel, char *out, size_t size, struct cb_err *err)
{
	const char *query, *value = NULL;
	const char *sep;
	size_t len = 0;

	if (!url || !url[0])
		return cb_err_set(err, "feed url is missing");
	if (strchr(url, '#'))
		return cb_err_set(err, "feed url %s must not contain a #fragment", url);
	if (channel && cb_feed_channel_valid(channel) < 0)
		return cb_err_set(err, "feed channel \"%s\" is invalid: use 6 to 32 characters from a-z, 0-9 and -",
				  channel);

	query = strchr(url, '?');
	if (query && find_channel_param(query + 1, &value, &len)) {
		if (channel_valid_n(value, len) < 0)
			return cb_err_set(err, "feed url %s has an invalid channel: use 6 to 32 characters from "
					  "a-z, 0-9 and -", url);
		if (channel && strcmp(channel, "default") != 0 &&
		    (strlen(channel) != len || strncmp(channel, value, len) != 0))
			return cb_err_set(err, "feed url %s names another channel than channel = %s; remove one of them",
					  url, channel);
		return copy_url(out, size, url, "", NULL, err);
	}

	if (!query)
		sep = "?";
	else if (query[1] == '\0' || url[strlen(url) - 1] == '&')
		sep = "";
	else
		sep = "&";
	return copy_url(out, size, url, sep, channel ? channel : "default", err);
}
