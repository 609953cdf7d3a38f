/*
 * exec_http.c: the executor's HTTP requests: queueing behind the limits,
 * curl easy handles on the multi handle, and responses back to the backend.
 *
 * Runs in the executor thread. Untrusted input: response headers (status
 * line, request-id, Retry-After) and bodies, capped at CB_HTTP_MAX_RESPONSE
 * bytes; header values are reduced to printable ASCII and capped.
 */
#include "executor/exec_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "base/log.h"
#include "base/util.h"

/* Maximum header line parsed, in bytes; longer lines are ignored. */
#define EXEC_HEADER_LINE_MAX 8192

static void stats_add(_Atomic int64_t *field, int64_t delta)
{
	atomic_fetch_add_explicit(field, delta, memory_order_relaxed);
}

static struct exec_job *job_of_waiter(struct cb_limit_waiter *w)
{
	return (struct exec_job *)((char *)w - offsetof(struct exec_job, waiter));
}

/* Header parsing. */

int64_t cb_exec_parse_retry_after(const char *value, int64_t now_s)
{
	int64_t seconds = 0;
	time_t when;

	while (*value == ' ' || *value == '\t')
		value++;
	if (*value == '\0')
		return -1;

	if (isdigit((unsigned char)*value)) {
		const char *p = value;

		for (; isdigit((unsigned char)*p); p++) {
			if (seconds <= CB_EXEC_MAX_SERVER_BACKOFF_MS / 1000)
				seconds = seconds * 10 + (*p - '0');
		}
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '\0')
			return -1;
	} else {
		when = curl_getdate(value, NULL);
		if (when < 0)
			return -1;
		seconds = (int64_t)when - now_s;
		if (seconds < 0)
			seconds = 0;
	}
	if (seconds > CB_EXEC_MAX_SERVER_BACKOFF_MS / 1000)
		return CB_EXEC_MAX_SERVER_BACKOFF_MS;
	return seconds * 1000;
}

/* Copies value into out as printable ASCII without spaces, so it is safe in logs and JSON. */
static void copy_header_value(char *out, size_t size, const char *value)
{
	size_t n = 0;

	for (const char *p = value; *p && n + 1 < size; p++) {
		unsigned char c = (unsigned char)*p;

		if (c > 0x20 && c < 0x7f && c != '"' && c != '\\')
			out[n++] = (char)c;
	}
	out[n] = '\0';
}

/* Returns the value of a header line "Name: value" when its name is name, else NULL. */
static const char *header_value(const char *line, const char *name)
{
	size_t n = strlen(name);

	if (strncasecmp(line, name, n) != 0 || line[n] != ':')
		return NULL;
	return line + n + 1;
}

static size_t on_header(char *data, size_t size, size_t count, void *ctx)
{
	struct cb_http_response *resp = ctx;
	size_t len = size * count;
	char line[EXEC_HEADER_LINE_MAX];
	const char *value;

	if (len >= sizeof(line))
		return len;
	memcpy(line, data, len);
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	line[len] = '\0';

	/* A new status line (after a 100 Continue or an auth round) starts a new header set. */
	if (strncmp(line, "HTTP/", 5) == 0) {
		resp->request_id[0] = '\0';
		resp->retry_after_ms = -1;
		return size * count;
	}
	if ((value = header_value(line, "request-id")) ||
	    (!resp->request_id[0] && (value = header_value(line, "x-ms-request-id"))))
		copy_header_value(resp->request_id, sizeof(resp->request_id), value);
	else if ((value = header_value(line, "retry-after")))
		resp->retry_after_ms = cb_exec_parse_retry_after(value, (int64_t)time(NULL));
	return size * count;
}

static size_t on_body(char *data, size_t size, size_t count, void *ctx)
{
	struct cb_http_response *resp = ctx;

	/* Returning less than offered makes curl fail the transfer with CURLE_WRITE_ERROR. */
	return cb_buf_append(&resp->body, data, size * count) == 0 ? size * count : 0;
}

/* Request setup. */

static void make_request_id(struct cb_executor *ex, char out[40])
{
	unsigned char b[16];

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
		for (size_t i = 0; i < sizeof(b); i += 4) {
			uint32_t r = exec_random(ex);

			memcpy(b + i, &r, 4);
		}
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	snprintf(out, 40, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
}

/* Gives the request a client-request-id when the backend set none, and sends it. */
static int ensure_client_request_id(struct cb_executor *ex, struct cb_http_request *req)
{
	char line[64];
	struct curl_slist *headers;

	if (req->client_request_id[0])
		return 0;
	make_request_id(ex, req->client_request_id);
	snprintf(line, sizeof(line), "client-request-id: %s", req->client_request_id);
	headers = curl_slist_append(req->headers, line);
	if (!headers)
		return -1;
	req->headers = headers;
	return 0;
}

static size_t read_body(char *out, size_t size, size_t count, void *ctx)
{
	struct exec_job *ej = ctx;
	size_t left = ej->req.body_len - ej->body_offset;
	size_t n = size * count < left ? size * count : left;

	if (n > 0)
		memcpy(out, ej->req.body + ej->body_offset, n);
	ej->body_offset += n;
	return n;
}

static int reject_rewind(void *ctx, curl_off_t offset, int origin)
{
	(void)ctx;
	(void)offset;
	(void)origin;
	return CURL_SEEKFUNC_CANTSEEK;
}

/*
 * Sets the method and body. A request with a body is read through a callback
 * that cannot rewind. libcurl (7.88) sends a request again on a fresh
 * connection when a reused connection dies before any response byte arrives,
 * although the server may have acted on it, and it must rewind the body to do
 * so. The rejected rewind fails the transfer with CURLE_SEND_FAIL_REWIND, a
 * temporary error, and the job's next run searches before it acts. So libcurl
 * never sends a move twice on its own.
 * NOTE: a request without a body (DELETE, an empty POST) needs no rewind, so
 * libcurl may still resend it; and a backend that needs multi-pass
 * authentication for a body (NTLM after a first 401) must send that
 * handshake without the body.
 */
static void set_method(CURL *easy, struct exec_job *ej)
{
	const struct cb_http_request *req = &ej->req;
	const char *method = req->method ? req->method : "GET";

	if (strcmp(method, "GET") == 0 && !req->body) {
		curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
		return;
	}
	ej->body_offset = 0;
	curl_easy_setopt(easy, CURLOPT_POST, 1L);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(req->body ? req->body_len : 0));
	curl_easy_setopt(easy, CURLOPT_READFUNCTION, read_body);
	curl_easy_setopt(easy, CURLOPT_READDATA, ej);
	curl_easy_setopt(easy, CURLOPT_SEEKFUNCTION, reject_rewind);
	if (strcmp(method, "POST") != 0)
		curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method);
}

static CURL *make_easy(struct cb_executor *ex, struct exec_job *ej)
{
	struct cb_http_request *req = &ej->req;
	struct cb_http_response *resp = &ej->resp;
	CURL *easy;

	if (!req->url || ensure_client_request_id(ex, req) < 0)
		return NULL;
	easy = curl_easy_init();
	if (!easy)
		return NULL;

	curl_easy_setopt(easy, CURLOPT_URL, req->url);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, ej);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(easy, CURLOPT_HTTP_VERSION,
			 req->http_version ? req->http_version : (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(easy, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS,
			 req->timeout_ms > 0 ? req->timeout_ms : (long)CB_EXEC_DEFAULT_TIMEOUT_MS);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)CB_EXEC_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, req->headers);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(easy, CURLOPT_HEADERDATA, resp);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, resp->curl_error);
	/*
	 * Small receive and upload buffers, because up to global_concurrency
	 * (1,200 by default) transfers run at once. With libcurl's defaults
	 * (16 KiB to receive, 64 KiB to upload, libcurl 7.88) a 10,000-mailbox
	 * campaign peaked at 89 MB, with these at 74 MB. Request bodies are small.
	 */
	curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, CB_EXEC_RECV_BUFFER);
	curl_easy_setopt(easy, CURLOPT_UPLOAD_BUFFERSIZE, CB_EXEC_UPLOAD_BUFFER);
	set_method(easy, ej);

	/* The backend's TLS, CA file and proxy settings come last and may tighten the above. */
	if (ex->backend->configure_easy)
		ex->backend->configure_easy(ex->backend_state, easy);
	return easy;
}

static void response_reset(struct cb_http_response *resp)
{
	cb_buf_free(&resp->body);
	memset(resp, 0, sizeof(*resp));
	cb_buf_init(&resp->body, CB_HTTP_MAX_RESPONSE);
	resp->retry_after_ms = -1;
}

/* Queueing and starting. */

static void queue_built_request(struct cb_executor *ex, struct exec_job *ej);

static void exec_request_queue(struct cb_executor *ex, struct exec_job *ej)
{
	/* A started job's next request goes first, so claimed jobs finish one by one. */
	ej->waiter.continues = ej->requests > 1;
	ej->waiting = 1;
	cb_limiter_enqueue(ex->limiter, ej->key, &ej->waiter, cb_mono_ms());
	stats_add(&ex->stats.waiting_requests, 1);
}

static void audit_attempt(struct cb_executor *ex, struct exec_job *ej, const char *step,
			  const char *client_request_id, const char *result)
{
	const struct cb_http_response *resp = &ej->resp;
	struct cb_attempt a = {
		.job_id = ej->job.id,
		.attempt = ej->job.attempts + ej->job.searches + 1,
		.backend = ex->backend->name,
		.step = step ? step : "request",
		.request_id = resp->request_id[0] ? resp->request_id : NULL,
		.client_request_id = client_request_id[0] ? client_request_id : NULL,
		.http_status = resp->status,
		.result = result,
		.detail = resp->curl_code != CURLE_OK ? resp->curl_error : NULL,
		.duration_ms = resp->duration_ms,
	};
	struct cb_err err;

	exec_txn_begin(ex);
	if (cb_store_audit_attempt(ex->store, &a, &err) < 0)
		cb_error("executor cannot record an attempt job=%lld error=\"%s\"",
			 (long long)ej->job.id, err.msg);
}

/*
 * Hands the finished request's response to the backend and records the
 * attempt with what the backend made of it: the outcome's result, or
 * "continue" when the backend went on with another request.
 */
static void deliver_response(struct cb_executor *ex, struct exec_job *ej)
{
	char client_request_id[sizeof(ej->req.client_request_id)];
	const char *step = ej->req.step;
	struct cb_outcome out;
	enum cb_op_step next;

	memcpy(client_request_id, ej->req.client_request_id, sizeof(client_request_id));
	cb_http_request_clear(&ej->req);
	memset(&out, 0, sizeof(out));
	out.retry_after_ms = -1;

	next = ex->backend->op_next(ej->op, &ej->resp, &ej->req, &out);
	audit_attempt(ex, ej, step, client_request_id,
		      next == CB_OP_REQUEST ? "continue" : cb_result_name(out.result));
	response_reset(&ej->resp);
	if (next == CB_OP_REQUEST)
		queue_built_request(ex, ej);
	else
		exec_job_finish(ex, ej, &out);
}

/* Records a request that could not be handed to curl as a failed attempt. */
static void fail_request(struct cb_executor *ex, struct exec_job *ej, const char *why)
{
	cb_limiter_release(ex->limiter, ej->key, cb_mono_ms());
	ej->resp.curl_code = CURLE_FAILED_INIT;
	cb_strlcpy(ej->resp.curl_error, why, sizeof(ej->resp.curl_error));
	deliver_response(ex, ej);
}

static void start_request(struct cb_executor *ex, struct exec_job *ej)
{
	CURL *easy;

	ej->waiting = 0;
	stats_add(&ex->stats.waiting_requests, -1);
	response_reset(&ej->resp);
	ej->started_mono = cb_mono_ms();

	easy = make_easy(ex, ej);
	if (!easy) {
		fail_request(ex, ej, "cannot set up the request (no URL, or out of memory)");
		return;
	}
	if (curl_multi_add_handle(ex->multi, easy) != CURLM_OK) {
		curl_easy_cleanup(easy);
		fail_request(ex, ej, "cannot add the request to the curl multi handle");
		return;
	}
	ej->easy = easy;
	if (ej->req.method && strcmp(ej->req.method, "GET") != 0)
		ej->sent_change = 1;
	stats_add(&ex->stats.in_flight, 1);
}

void exec_requests_start(struct cb_executor *ex)
{
	struct cb_limit_waiter *w;
	struct cb_limit_key *key;

	while ((w = cb_limiter_next(ex->limiter, cb_mono_ms(), &key)))
		start_request(ex, job_of_waiter(w));
}

/* Queues the request the backend has just built, unless the operation made too many. */
static void queue_built_request(struct cb_executor *ex, struct exec_job *ej)
{
	struct cb_outcome out;

	if (++ej->requests <= CB_EXEC_MAX_REQUESTS_PER_OP) {
		exec_request_queue(ex, ej);
		return;
	}
	cb_http_request_clear(&ej->req);
	memset(&out, 0, sizeof(out));
	out.result = CB_RESULT_PERMANENT;
	out.retry_after_ms = -1;
	snprintf(out.text, sizeof(out.text),
		 "the %s backend made more than %d requests for one job; this is a bug, "
		 "please report it",
		 ex->backend->name, CB_EXEC_MAX_REQUESTS_PER_OP);
	exec_job_finish(ex, ej, &out);
}

void exec_job_begin(struct cb_executor *ex, struct exec_job *ej)
{
	struct cb_outcome out;

	memset(&out, 0, sizeof(out));
	out.retry_after_ms = -1;
	if (ex->backend->op_next(ej->op, NULL, &ej->req, &out) == CB_OP_REQUEST)
		queue_built_request(ex, ej);
	else
		exec_job_finish(ex, ej, &out);
}

/* Notes server back-pressure: a 429 or 503 with Retry-After blocks the whole key. */
static void note_throttling(struct cb_executor *ex, struct exec_job *ej)
{
	const struct cb_http_response *resp = &ej->resp;

	if (resp->status != 429 && resp->status != 503)
		return;
	stats_add(&ex->stats.throttled, 1);
	if (resp->retry_after_ms < 0)
		return;
	ej->server_backoff_ms = resp->retry_after_ms;
	cb_limiter_block(ex->limiter, ej->key, cb_mono_ms() + resp->retry_after_ms);
	cb_info("server asked to back off key=%s status=%ld retry_after_ms=%lld job=%lld",
		cb_limiter_key_name(ej->key), resp->status, (long long)resp->retry_after_ms,
		(long long)ej->job.id);
}

void exec_requests_collect(struct cb_executor *ex)
{
	struct CURLMsg *msg;
	int left = 0;

	while ((msg = curl_multi_info_read(ex->multi, &left))) {
		struct exec_job *ej = NULL;
		int64_t now = cb_mono_ms();

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&ej);
		ej->resp.curl_code = msg->data.result;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &ej->resp.status);
		ej->resp.duration_ms = now - ej->started_mono;
		if (ej->resp.curl_code != CURLE_OK && !ej->resp.curl_error[0])
			cb_strlcpy(ej->resp.curl_error, curl_easy_strerror(ej->resp.curl_code),
				   sizeof(ej->resp.curl_error));

		curl_multi_remove_handle(ex->multi, msg->easy_handle);
		curl_easy_cleanup(msg->easy_handle);
		ej->easy = NULL;
		stats_add(&ex->stats.in_flight, -1);
		stats_add(&ex->stats.requests, 1);
		cb_limiter_release(ex->limiter, ej->key, now);

		note_throttling(ex, ej);
		deliver_response(ex, ej);
	}
}

void exec_request_abort(struct cb_executor *ex, struct exec_job *ej)
{
	if (ej->easy) {
		curl_multi_remove_handle(ex->multi, ej->easy);
		curl_easy_cleanup(ej->easy);
		ej->easy = NULL;
		stats_add(&ex->stats.in_flight, -1);
		cb_limiter_release(ex->limiter, ej->key, cb_mono_ms());
	}
	if (ej->waiting) {
		cb_limiter_cancel(ex->limiter, ej->key, &ej->waiter);
		ej->waiting = 0;
		stats_add(&ex->stats.waiting_requests, -1);
	}
	cb_http_request_clear(&ej->req);
	cb_buf_free(&ej->resp.body);
}
