/*
 * backend.h: the interface between the executor and a mailbox backend.
 *
 * A backend turns one job (mailbox, Message-ID, action) into a sequence of
 * HTTP requests, and each response into the next request or a final outcome.
 * It builds requests and parses responses only: the executor owns the curl
 * multi handle, scheduling, limits and retries. All backend functions run in
 * the executor thread.
 *
 * An operation is a small state machine: op_next() is called first with
 * resp == NULL, then once with each response, until it returns CB_OP_DONE.
 * Backends: "log" (records what it would do, no requests), "graph"
 * (Microsoft Graph), later "ews". The interface carries nothing specific to
 * Exchange, so IMAP or Gmail backends fit without change to the executor.
 */
#ifndef CLAWBACK_BACKEND_BACKEND_H
#define CLAWBACK_BACKEND_BACKEND_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "config/config.h"
#include "store/store.h"

/* Largest response body kept, in bytes (a page of 1000 message ids fits easily). */
#define CB_HTTP_MAX_RESPONSE (4 * 1024 * 1024)

struct cb_http_request {
	const char *method;         /* "GET", "POST", "DELETE", ... (static string) */
	char *url;                  /* owned */
	struct curl_slist *headers; /* owned */
	char *body;                 /* owned, may be NULL */
	size_t body_len;
	long http_version; /* CURL_HTTP_VERSION_2TLS (Graph) or CURL_HTTP_VERSION_1_1 (EWS) */
	long timeout_ms;
	const char *step;            /* "search", "move", "delete", ... for the audit trail */
	char client_request_id[40];  /* our id for this request, sent to the server */
};

void cb_http_request_clear(struct cb_http_request *req);

struct cb_http_response {
	long status;         /* 0 when no response arrived */
	CURLcode curl_code;  /* CURLE_OK when a response arrived */
	char curl_error[CURL_ERROR_SIZE];
	struct cb_buf body;  /* at most CB_HTTP_MAX_RESPONSE */
	char request_id[128];      /* the server's request id header, when present */
	int64_t retry_after_ms;    /* from Retry-After (seconds or HTTP date), -1 when absent */
	int64_t duration_ms;
};

enum cb_result {
	CB_RESULT_DONE = 0,  /* action applied, already in place, or logged */
	CB_RESULT_NOT_FOUND, /* the mail is in no folder of the mailbox */
	CB_RESULT_TEMPORARY, /* try again later (throttled, 5xx, network) */
	CB_RESULT_PERMANENT, /* the administrator must act (permission, unknown mailbox) */
};

const char *cb_result_name(enum cb_result result);

struct cb_outcome {
	enum cb_result result;
	char text[512];      /* "moved to Junk Email", or the error and what to do */
	char found_in[512];  /* folder display names where the mail was found, comma-separated */
	int64_t retry_after_ms; /* server back-off hint for TEMPORARY, -1 when none */
	long http_status;
	char request_id[128];
};

enum cb_op_step {
	CB_OP_REQUEST, /* req is filled: send it and call op_next with the response */
	CB_OP_DONE,    /* out is filled: the operation is over */
};

struct cb_backend;

struct cb_backend_ops {
	const char *name;
	int (*open)(const struct cb_config *cfg, void **state, struct cb_err *err);
	void (*close)(void *state);
	/* Writes the key of the limit this job counts against ("graph:APP:mailbox"). */
	void (*limit_key)(void *state, const struct cb_job *job, char *out, size_t size);
	void *(*op_start)(void *state, const struct cb_job *job);
	enum cb_op_step (*op_next)(void *op, const struct cb_http_response *resp,
				   struct cb_http_request *req, struct cb_outcome *out);
	void (*op_free)(void *op);
	/*
	 * Optional (may be NULL): applies the backend's TLS, CA file and proxy
	 * settings to each easy handle the executor makes for one of its
	 * requests, after the executor's own options.
	 */
	void (*configure_easy)(void *state, CURL *easy);
};

/* Finds a backend by name ("log", "graph"); NULL when unknown. */
const struct cb_backend_ops *cb_backend_find(const char *name);

#endif
