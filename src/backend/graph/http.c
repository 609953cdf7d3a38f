/*
 * http.c: request building for the Graph backend, the per-handle TLS and
 * proxy settings, and a blocking transport for token requests and doctor.
 *
 * graph_configure_easy runs in the executor thread for every easy handle the
 * executor makes for this backend; graph_http_perform runs in the calling
 * thread and blocks it for one round trip (bounded by the request timeout).
 * Untrusted input: response headers and bodies, capped at
 * CB_HTTP_MAX_RESPONSE bytes.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backend/graph/graph_internal.h"
#include "base/util.h"

/* Largest Retry-After honoured, in seconds (one hour); larger hints are capped. */
#define GRAPH_MAX_RETRY_AFTER_S 3600

static long proxy_auth_mask(const char *name)
{
	if (!name || strcasecmp(name, "any") == 0)
		return (long)CURLAUTH_ANY;
	if (strcasecmp(name, "ntlm") == 0)
		return (long)CURLAUTH_NTLM;
	return (long)CURLAUTH_BASIC;
}

void graph_configure_easy(struct cb_graph *g, CURL *easy)
{
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
	if (g->cfg.ca_file)
		curl_easy_setopt(easy, CURLOPT_CAINFO, g->cfg.ca_file);
	if (g->cfg.proxy) {
		curl_easy_setopt(easy, CURLOPT_PROXY, g->cfg.proxy);
		curl_easy_setopt(easy, CURLOPT_PROXYAUTH, proxy_auth_mask(g->cfg.proxy_auth));
		if (g->cfg.proxy_user)
			curl_easy_setopt(easy, CURLOPT_PROXYUSERNAME, g->cfg.proxy_user);
		if (g->proxy_password)
			curl_easy_setopt(easy, CURLOPT_PROXYPASSWORD, g->proxy_password);
	}
}

int graph_request_build(struct cb_graph *g, struct cb_http_request *req, const char *method,
			char *url, char *body, const char *token, const char *step)
{
	struct curl_slist *h = NULL;
	char line[CB_GRAPH_MAX_TOKEN + 64];

	memset(req, 0, sizeof(*req));
	req->method = method;
	req->url = url;
	req->body = body;
	req->body_len = body ? strlen(body) : 0;
	req->http_version = CURL_HTTP_VERSION_2TLS;
	req->timeout_ms = g->timeout_ms;
	req->step = step;
	graph_uuid(req->client_request_id);
	if (!url)
		return -1;

	h = curl_slist_append(h, "Accept: application/json");
	if (token) {
		snprintf(line, sizeof(line), "Authorization: Bearer %s", token);
		h = h ? curl_slist_append(h, line) : NULL;
		OPENSSL_cleanse(line, sizeof(line));
		h = h ? curl_slist_append(h, "Prefer: IdType=\"ImmutableId\"") : NULL;
		snprintf(line, sizeof(line), "client-request-id: %s", req->client_request_id);
		h = h ? curl_slist_append(h, line) : NULL;
		h = h ? curl_slist_append(h, "return-client-request-id: true") : NULL;
		if (body)
			h = h ? curl_slist_append(h, "Content-Type: application/json") : NULL;
	} else if (body) {
		h = h ? curl_slist_append(h, "Content-Type: application/x-www-form-urlencoded") : NULL;
	}
	req->headers = h;
	return h ? 0 : -1;
}

void graph_request_wipe(struct cb_http_request *req)
{
	if (req->body)
		OPENSSL_cleanse(req->body, req->body_len);
	cb_http_request_clear(req);
}

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
	struct cb_buf *body = ctx;

	return cb_buf_append(body, data, size * n) == 0 ? size * n : 0;
}

/* Parses Retry-After: delay-seconds or an HTTP date. Returns ms, -1 when invalid. */
static int64_t parse_retry_after(const char *value)
{
	int64_t seconds;
	char text[64];
	time_t when;

	cb_strlcpy(text, value, sizeof(text));
	text[strcspn(text, "\r\n")] = '\0';
	if (cb_parse_int64(text, 0, INT32_MAX, &seconds) == 0)
		return (seconds > GRAPH_MAX_RETRY_AFTER_S ? GRAPH_MAX_RETRY_AFTER_S : seconds) * 1000;
	when = curl_getdate(text, NULL);
	if (when < 0)
		return -1;
	seconds = (int64_t)when - cb_now_ms() / 1000;
	if (seconds < 0)
		seconds = 0;
	return (seconds > GRAPH_MAX_RETRY_AFTER_S ? GRAPH_MAX_RETRY_AFTER_S : seconds) * 1000;
}

static size_t on_header(char *data, size_t size, size_t n, void *ctx)
{
	struct cb_http_response *resp = ctx;
	size_t len = size * n;
	char line[256];
	char *value;

	if (len >= sizeof(line))
		return len;
	memcpy(line, data, len);
	line[len] = '\0';
	value = strchr(line, ':');
	if (!value)
		return len;
	*value++ = '\0';
	value += strspn(value, " \t");
	value[strcspn(value, "\r\n")] = '\0';
	if (strcasecmp(line, "request-id") == 0)
		graph_printable(resp->request_id, sizeof(resp->request_id), value, 100);
	else if (strcasecmp(line, "retry-after") == 0)
		resp->retry_after_ms = parse_retry_after(value);
	return len;
}

void graph_http_perform(struct cb_graph *g, const struct cb_http_request *req,
			struct cb_http_response *resp)
{
	CURL *easy = curl_easy_init();
	int64_t started = cb_mono_ms();

	memset(resp, 0, sizeof(*resp));
	cb_buf_init(&resp->body, CB_HTTP_MAX_RESPONSE);
	resp->retry_after_ms = -1;
	if (!easy) {
		resp->curl_code = CURLE_OUT_OF_MEMORY;
		return;
	}
	graph_configure_easy(g, easy);
	curl_easy_setopt(easy, CURLOPT_URL, req->url);
	curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, req->method);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, req->headers);
	curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, req->http_version);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, req->timeout_ms);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, resp->curl_error);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, &resp->body);
	curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(easy, CURLOPT_HEADERDATA, resp);
	if (req->body) {
		curl_easy_setopt(easy, CURLOPT_POSTFIELDS, req->body);
		curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
	} else if (strcmp(req->method, "POST") == 0) {
		curl_easy_setopt(easy, CURLOPT_POSTFIELDS, "");
	} else if (strcmp(req->method, "GET") != 0) {
		curl_easy_setopt(easy, CURLOPT_NOBODY, strcmp(req->method, "HEAD") == 0 ? 1L : 0L);
	}

	resp->curl_code = curl_easy_perform(easy);
	if (resp->curl_code == CURLE_OK)
		curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &resp->status);
	else
		resp->status = 0;
	resp->duration_ms = cb_mono_ms() - started;
	curl_easy_cleanup(easy);
}
