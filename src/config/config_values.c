/*
 * config_values.c: validators for single config values; see config_values.h.
 * Input is operator text that has already passed the INI reader's checks
 * (bounded lines, no control characters, valid UTF-8).
 */
#include "config/config_values.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/ini_reader.h"

int cb_config_parse_bool(const char *s, int *out)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

int cb_config_check_channel(const char *s, char *msg, size_t msg_size)
{
	char q[CB_CHANNEL_MAX * 4 + 16];
	size_t len = strlen(s);

	if (len < CB_CHANNEL_MIN || len > CB_CHANNEL_MAX || strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") != len) {
		snprintf(msg, msg_size, "invalid channel %s: use 6 to 32 characters of a-z, 0-9 and '-'",
			 cb_quote(q, sizeof(q), s, CB_CHANNEL_MAX + 1));
		return -1;
	}
	return 0;
}

static int is_loopback_host(const char *host, size_t len)
{
	if (len == 9 && strncasecmp(host, "localhost", 9) == 0)
		return 1;
	if (len == 5 && memcmp(host, "[::1]", 5) == 0)
		return 1;
	return len >= 4 && memcmp(host, "127.", 4) == 0 && strspn(host, "0123456789.") >= len;
}

/*
 * Splits "scheme://authority..." at the authority and checks the host and
 * port. Sets *rest to the first byte after the authority and *loopback.
 * Never copies s into msg, because the authority may hold a password.
 */
static int check_authority(const char *s, size_t scheme_len, const char **rest, int *loopback, char *msg,
			   size_t msg_size)
{
	const char *auth = s + scheme_len;
	size_t auth_len = strcspn(auth, "/?#");
	const char *host = auth;
	size_t host_len;
	const char *port = NULL;

	if (memchr(auth, '@', auth_len)) {
		snprintf(msg, msg_size, "user name or password in the URL is not allowed (the value is not shown): "
					"remove it; credentials belong in the *_file keys");
		return -1;
	}
	if (*host == '[') {
		const char *close = memchr(host, ']', auth_len);

		if (!close) {
			snprintf(msg, msg_size, "invalid IPv6 host in URL: missing ']'");
			return -1;
		}
		host_len = (size_t)(close - host) + 1;
		if (host_len < auth_len) {
			if (host[host_len] != ':') {
				snprintf(msg, msg_size, "invalid URL: expected ':PORT' after the IPv6 host");
				return -1;
			}
			port = host + host_len + 1;
		}
	} else {
		const char *colon = memchr(host, ':', auth_len);

		host_len = colon ? (size_t)(colon - host) : auth_len;
		if (colon)
			port = colon + 1;
		if (strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") < host_len) {
			snprintf(msg, msg_size, "invalid host in URL: use a DNS name or an IP address");
			return -1;
		}
	}
	if (host_len == 0) {
		snprintf(msg, msg_size, "URL has no host");
		return -1;
	}
	if (port) {
		size_t port_len = (size_t)(auth + auth_len - port);
		long value = port_len > 0 && port_len <= 5 && strspn(port, "0123456789") >= port_len
				     ? strtol(port, NULL, 10)
				     : 0;

		if (value < 1 || value > 65535) {
			snprintf(msg, msg_size, "invalid port in URL: use 1 to 65535");
			return -1;
		}
	}
	*loopback = is_loopback_host(host, host_len);
	*rest = auth + auth_len;
	return 0;
}

static int check_url_text(const char *s, char *msg, size_t msg_size)
{
	if (strlen(s) > CB_CONFIG_URL_MAX) {
		snprintf(msg, msg_size, "URL longer than %d bytes", CB_CONFIG_URL_MAX);
		return -1;
	}
	if (strpbrk(s, " \t\"<>\\")) {
		snprintf(msg, msg_size, "URL contains a blank, quote, '<', '>' or '\\': percent-encode it");
		return -1;
	}
	return 0;
}

/* Checks "channel=NAME" after '?'; anything else is rejected without echoing it (it may be a token). */
static int check_feed_query(const char *query, char **channel, char *msg, size_t msg_size)
{
	char q[CB_INI_MAX_NAME * 4 + 16];
	const char *other = query;
	size_t name_len;

	/* Names the first parameter that is not the leading channel=, e.g. "token" in "channel=x&token=y". */
	if (strncmp(query, "channel=", 8) == 0 && strchr(query, '&'))
		other = strchr(query, '&') + 1;
	name_len = strcspn(other, "=&");
	if (strncmp(query, "channel=", 8) != 0 || strchr(query, '&')) {
		char name[CB_INI_MAX_NAME + 1];

		snprintf(name, sizeof(name), "%.*s", (int)(name_len < CB_INI_MAX_NAME ? name_len : CB_INI_MAX_NAME),
			 other);
		snprintf(msg, msg_size,
			 "unsupported query parameter %s in the feed URL (its value is not shown): "
			 "the only parameter accepted is channel=NAME",
			 cb_quote(q, sizeof(q), name, CB_INI_MAX_NAME));
		return -1;
	}
	if (cb_config_check_channel(query + 8, msg, msg_size) < 0)
		return -1;
	*channel = strdup(query + 8);
	return *channel ? 0 : -1;
}

int cb_config_check_feed_url(const char *s, char **base, char **channel, char *msg, size_t msg_size)
{
	const char *rest;
	const char *query;
	size_t scheme_len;
	int loopback = 0;

	*base = NULL;
	*channel = NULL;
	if (check_url_text(s, msg, msg_size) < 0)
		return -1;
	if (strncasecmp(s, "wss://", 6) == 0) {
		scheme_len = 6;
	} else if (strncasecmp(s, "ws://", 5) == 0) {
		scheme_len = 5;
	} else {
		snprintf(msg, msg_size, "feed URL must start with wss:// (ws:// only for a loopback host)");
		return -1;
	}
	if (check_authority(s, scheme_len, &rest, &loopback, msg, msg_size) < 0)
		return -1;
	if (scheme_len == 5 && !loopback) {
		snprintf(msg, msg_size, "ws:// sends the token unencrypted: use wss:// (ws:// is accepted only for "
					"localhost, 127.0.0.0/8 and [::1], for tests)");
		return -1;
	}
	if (strchr(rest, '#')) {
		snprintf(msg, msg_size, "feed URL must not have a #fragment");
		return -1;
	}

	query = strchr(rest, '?');
	if (query && check_feed_query(query + 1, channel, msg, msg_size) < 0)
		return -1;
	*base = strndup(s, query ? (size_t)(query - s) : strlen(s));
	if (!*base) {
		free(*channel);
		*channel = NULL;
		return -1;
	}
	return 0;
}

int cb_config_check_https_url(const char *s, char *msg, size_t msg_size)
{
	const char *rest;
	size_t scheme_len;
	int loopback = 0;

	if (check_url_text(s, msg, msg_size) < 0)
		return -1;
	if (strncasecmp(s, "https://", 8) == 0) {
		scheme_len = 8;
	} else if (strncasecmp(s, "http://", 7) == 0) {
		scheme_len = 7;
	} else {
		snprintf(msg, msg_size, "URL must start with https:// (http:// only for a loopback host)");
		return -1;
	}
	if (check_authority(s, scheme_len, &rest, &loopback, msg, msg_size) < 0)
		return -1;
	if (scheme_len == 7 && !loopback) {
		snprintf(msg, msg_size, "http:// sends credentials unencrypted: use https:// (http:// is accepted "
					"only for localhost, 127.0.0.0/8 and [::1], for tests)");
		return -1;
	}
	return 0;
}

int cb_config_check_proxy_url(const char *s, char *msg, size_t msg_size)
{
	static const char *const schemes[] = {"http://", "https://", "socks4://", "socks4a://", "socks5://", "socks5h://"};
	const char *rest;
	int loopback;

	if (check_url_text(s, msg, msg_size) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		size_t n = strlen(schemes[i]);

		if (strncasecmp(s, schemes[i], n) == 0)
			return check_authority(s, n, &rest, &loopback, msg, msg_size);
	}
	snprintf(msg, msg_size, "proxy URL must start with http://, https://, socks4://, socks4a://, socks5:// "
				"or socks5h://");
	return -1;
}

int cb_config_check_guid(const char *s, char *msg, size_t msg_size)
{
	char q[64 * 4 + 16];
	int ok = strlen(s) == 36;

	for (size_t i = 0; ok && i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23)
			ok = s[i] == '-';
		else
			ok = strchr("0123456789abcdefABCDEF", s[i]) != NULL && s[i] != '\0';
	}
	if (!ok) {
		snprintf(msg, msg_size, "invalid GUID %s: use the form 11111111-2222-3333-4444-555555555555",
			 cb_quote(q, sizeof(q), s, 64));
		return -1;
	}
	return 0;
}

int cb_config_check_tenant(const char *s, char *msg, size_t msg_size)
{
	char q[64 * 4 + 16];
	size_t len = strlen(s);

	if (cb_config_check_guid(s, msg, msg_size) == 0)
		return 0;
	if (len == 0 || len > 253 || !strchr(s, '.') || s[0] == '.' || s[0] == '-' ||
	    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != len) {
		snprintf(msg, msg_size,
			 "invalid tenant %s: use the tenant id (a GUID) or a domain such as contoso.onmicrosoft.com",
			 cb_quote(q, sizeof(q), s, 64));
		return -1;
	}
	return 0;
}

int cb_config_check_address(const char *s, char *msg, size_t msg_size)
{
	char q[64 * 4 + 16];
	const char *at = strchr(s, '@');

	if (!at || at == s || at[1] == '\0' || strchr(at + 1, '@') || strpbrk(s, " \t") || strlen(s) > 320) {
		snprintf(msg, msg_size, "invalid mailbox address %s: use user@domain",
			 cb_quote(q, sizeof(q), s, 64));
		return -1;
	}
	return 0;
}

int cb_config_check_path(const char *s, char *msg, size_t msg_size)
{
	if (*s == '\0') {
		snprintf(msg, msg_size, "empty path");
		return -1;
	}
	if (strlen(s) > CB_CONFIG_PATH_MAX) {
		snprintf(msg, msg_size, "path longer than %d bytes", CB_CONFIG_PATH_MAX);
		return -1;
	}
	return 0;
}
