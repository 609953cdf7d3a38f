/*
 * ws_handshake.c: the pure parts of the WebSocket opening handshake
 * (RFC 6455 section 4): the key, the expected accept value, the URL split
 * and the check of the server's upgrade response. Runs in the feed thread;
 * the response header is untrusted and bounded by CB_WS_MAX_HANDSHAKE.
 */
#include "feed/ws.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/util.h"

/* The GUID every server appends to the key before hashing (RFC 6455 section 1.3). */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
/* Longest header line looked at in the upgrade response. */
#define WS_MAX_HEADER_LINE 4096

int cb_ws_make_key(char key[25])
{
	unsigned char nonce[16];

	if (RAND_bytes(nonce, sizeof(nonce)) != 1)
		return -1;
	EVP_EncodeBlock((unsigned char *)key, nonce, sizeof(nonce));
	return 0;
}

int cb_ws_accept_for_key(const char *key, char accept[29])
{
	char input[128];
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int digest_len = 0;
	int n;

	n = snprintf(input, sizeof(input), "%s%s", key, WS_GUID);
	if (n < 0 || (size_t)n >= sizeof(input))
		return -1;
	if (EVP_Digest(input, (size_t)n, digest, &digest_len, EVP_sha1(), NULL) != 1 || digest_len != 20)
		return -1;
	EVP_EncodeBlock((unsigned char *)accept, digest, 20);
	return 0;
}

/* Copies one part of u into out; a missing part gives "". */
static int url_part(CURLU *u, CURLUPart part, unsigned flags, char *out, size_t size)
{
	char *value = NULL;
	CURLUcode rc = curl_url_get(u, part, &value, flags);
	int ret = 0;

	out[0] = '\0';
	if (rc == CURLUE_OK)
		ret = cb_strlcpy(out, value, size);
	curl_free(value);
	return ret;
}

static int url_has_part(CURLU *u, CURLUPart part)
{
	char *value = NULL;
	CURLUcode rc = curl_url_get(u, part, &value, 0);

	curl_free(value);
	return rc == CURLUE_OK;
}

static int split_url(CURLU *u, const char *url, struct cb_ws_url *out, struct cb_err *err)
{
	char host[256], port[16], path[CB_WS_MAX_URL], query[CB_WS_MAX_URL];
	int n;

	if (curl_url_set(u, CURLUPART_URL, out->https_url, 0) != CURLUE_OK)
		return cb_err_set(err, "feed url %s is not a valid URL", url);
	if (url_has_part(u, CURLUPART_USER) || url_has_part(u, CURLUPART_FRAGMENT))
		return cb_err_set(err, "feed url %s must not contain user info or a #fragment", url);
	if (url_part(u, CURLUPART_HOST, 0, host, sizeof(host)) < 0 || !host[0])
		return cb_err_set(err, "feed url %s has no valid host", url);
	if (url_part(u, CURLUPART_PORT, CURLU_DEFAULT_PORT, port, sizeof(port)) < 0 ||
	    url_part(u, CURLUPART_PATH, 0, path, sizeof(path)) < 0 ||
	    url_part(u, CURLUPART_QUERY, 0, query, sizeof(query)) < 0)
		return cb_err_set(err, "feed url %s is too long", url);

	if (strcmp(port, "443") == 0)
		n = snprintf(out->host_header, sizeof(out->host_header), "%s", host);
	else
		n = snprintf(out->host_header, sizeof(out->host_header), "%s:%s", host, port);
	if (n < 0 || (size_t)n >= sizeof(out->host_header))
		return cb_err_set(err, "feed url %s: host name too long", url);
	n = snprintf(out->target, sizeof(out->target), "%s%s%s", path[0] ? path : "/", query[0] ? "?" : "",
		     query);
	if (n < 0 || (size_t)n >= sizeof(out->target))
		return cb_err_set(err, "feed url %s is too long", url);
	return 0;
}

int cb_ws_parse_url(const char *url, struct cb_ws_url *out, struct cb_err *err)
{
	CURLU *u;
	int n, ret;

	memset(out, 0, sizeof(*out));
	if (!url || strncasecmp(url, "wss://", 6) != 0)
		return cb_err_set(err, "feed url %s must start with wss:// (TLS is required)", url ? url : "(none)");
	if (strlen(url) >= CB_WS_MAX_URL - 2)
		return cb_err_set(err, "feed url is longer than %d bytes", CB_WS_MAX_URL - 2);
	n = snprintf(out->https_url, sizeof(out->https_url), "https://%s", url + 6);
	if (n < 0 || (size_t)n >= sizeof(out->https_url))
		return cb_err_set(err, "feed url is longer than %d bytes", CB_WS_MAX_URL - 2);

	u = curl_url();
	if (!u)
		return cb_err_set(err, "out of memory parsing the feed url");
	ret = split_url(u, url, out, err);
	curl_url_cleanup(u);
	return ret;
}

/* Parses "HTTP/1.1 101 ..." into *status; returns -1 when the line is not a status line. */
static int parse_status_line(const char *line, size_t len, int *status)
{
	int code = 0;
	size_t i;

	if (len < 12 || strncmp(line, "HTTP/1.", 7) != 0 || line[8] != ' ')
		return -1;
	for (i = 9; i < 12; i++) {
		if (line[i] < '0' || line[i] > '9')
			return -1;
		code = code * 10 + (line[i] - '0');
	}
	if (len > 12 && line[12] != ' ')
		return -1;
	*status = code;
	return 0;
}

/* Returns 1 when the comma-separated list value contains token (case-insensitive). */
static int list_has_token(const char *value, const char *token)
{
	size_t tlen = strlen(token);
	const char *p = value;

	while (*p) {
		const char *end;
		size_t len;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		end = p;
		while (*end && *end != ',')
			end++;
		len = (size_t)(end - p);
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len == tlen && strncasecmp(p, token, tlen) == 0)
			return 1;
		p = end;
	}
	return 0;
}

struct upgrade_headers {
	int upgrade_ok;
	int connection_ok;
	int accept_ok;
	int extension_seen;
	int protocol_seen;
};

/* Looks at one "Name: value" line. */
static void check_header_line(const char *line, const char *accept, struct upgrade_headers *h)
{
	const char *colon = strchr(line, ':');
	const char *value;
	size_t name_len, value_len;

	if (!colon)
		return;
	name_len = (size_t)(colon - line);
	value = colon + 1;
	while (*value == ' ' || *value == '\t')
		value++;
	value_len = strlen(value);
	while (value_len && (value[value_len - 1] == ' ' || value[value_len - 1] == '\t'))
		value_len--;

	if (name_len == 7 && strncasecmp(line, "Upgrade", 7) == 0)
		h->upgrade_ok = value_len == 9 && strncasecmp(value, "websocket", 9) == 0;
	else if (name_len == 10 && strncasecmp(line, "Connection", 10) == 0)
		h->connection_ok = list_has_token(value, "upgrade");
	else if (name_len == 20 && strncasecmp(line, "Sec-WebSocket-Accept", 20) == 0)
		h->accept_ok = value_len == strlen(accept) && strncmp(value, accept, value_len) == 0;
	else if (name_len == 24 && strncasecmp(line, "Sec-WebSocket-Extensions", 24) == 0)
		h->extension_seen = 1;
	else if (name_len == 22 && strncasecmp(line, "Sec-WebSocket-Protocol", 22) == 0)
		h->protocol_seen = 1;
}

static int check_headers(const char *p, const char *end, const char *accept, struct upgrade_headers *h,
			 struct cb_err *err)
{
	char line[WS_MAX_HEADER_LINE];

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t len = eol ? (size_t)(eol - p) : (size_t)(end - p);

		if (len && p[len - 1] == '\r')
			len--;
		if (len == 0)
			break;
		if (len >= sizeof(line))
			return cb_err_set(err, "upgrade response has a header line longer than %d bytes",
					  WS_MAX_HEADER_LINE);
		memcpy(line, p, len);
		line[len] = '\0';
		if (memchr(line, '\0', len))
			return cb_err_set(err, "upgrade response contains a NUL byte");
		check_header_line(line, accept, h);
		p = eol ? eol + 1 : end;
	}
	return 0;
}

int cb_ws_check_response(const char *head, size_t len, const char *key, int *status, struct cb_err *err)
{
	struct upgrade_headers h;
	char accept[29];
	const char *eol = memchr(head, '\n', len);
	size_t line_len = eol ? (size_t)(eol - head) : len;

	*status = 0;
	if (line_len && head[line_len - 1] == '\r')
		line_len--;
	if (parse_status_line(head, line_len, status) < 0)
		return cb_err_set(err, "upgrade response does not start with an HTTP/1.x status line");
	if (*status != 101)
		return cb_err_set(err, "server rejected the WebSocket upgrade with HTTP status %d", *status);
	if (cb_ws_accept_for_key(key, accept) < 0)
		return cb_err_set(err, "cannot compute Sec-WebSocket-Accept (OpenSSL SHA-1 failed)");

	memset(&h, 0, sizeof(h));
	if (check_headers(eol ? eol + 1 : head + len, head + len, accept, &h, err) < 0)
		return -1;
	if (!h.upgrade_ok || !h.connection_ok)
		return cb_err_set(err, "upgrade response 101 lacks \"Upgrade: websocket\" or \"Connection: Upgrade\"");
	if (!h.accept_ok)
		return cb_err_set(err, "upgrade response has a missing or wrong Sec-WebSocket-Accept");
	if (h.extension_seen || h.protocol_seen)
		return cb_err_set(err, "upgrade response selects an extension or subprotocol that was not offered");
	return 0;
}
