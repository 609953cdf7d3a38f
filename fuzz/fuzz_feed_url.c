/*
 * fuzz_feed_url.c: libFuzzer harness for the feed URL composer
 * (cb_feed_compose_url in src/feed/feed_url.c).
 *
 * Input layout: the configured url, then optionally a newline and the
 * configured channel (no newline: channel unset). Both come from the
 * configuration file, which an administrator writes but which may be
 * damaged. Each input is composed twice, into a buffer of CB_FEED_MAX_URL
 * bytes as the feed thread does and into a small one, so that truncation is
 * reached. The harness aborts when a success leaves an unterminated result,
 * one that does not start with the url, or one without "channel=".
 * A composed URL then goes to cb_ws_parse_url, as cb_ws_connect does with it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "feed/feed.h"
#include "feed/ws.h"

/* Size of the small output buffer: shorter than most real URLs. */
#define FUZZ_SMALL_OUT 48

static char input[2 * CB_FEED_MAX_URL + 2];
static char out[CB_FEED_MAX_URL];
static char small_out[FUZZ_SMALL_OUT];

static struct cb_ws_url parts;

static void compose(const char *url, const char *channel, char *dst, size_t size)
{
	struct cb_err err;

	err.msg[0] = '\0';
	memset(dst, 'X', size);
	if (cb_feed_compose_url(url, channel, dst, size, &err) < 0) {
		if (!err.msg[0])
			abort();
		return;
	}
	if (!memchr(dst, '\0', size))
		abort();
	if (strncmp(dst, url, strlen(url)) != 0 || !strstr(dst, "channel="))
		abort();

	err.msg[0] = '\0';
	if (cb_ws_parse_url(dst, &parts, &err) < 0 && !err.msg[0])
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *newline;
	const char *channel = NULL;

	if (size > sizeof(input) - 1)
		size = sizeof(input) - 1;
	memcpy(input, data, size);
	input[size] = '\0';
	newline = strchr(input, '\n');
	if (newline) {
		*newline = '\0';
		channel = newline + 1;
	}

	compose(input, channel, out, sizeof(out));
	compose(input, channel, small_out, sizeof(small_out));
	return 0;
}
