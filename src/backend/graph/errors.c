/*
 * errors.c: classification of failed Graph and token responses into
 * temporary and permanent outcomes, with the text an administrator acts on.
 *
 * Runs in the executor thread (and doctor's thread). Untrusted input: error
 * bodies may be garbage, HTML pages from a proxy, empty or huge. Only bodies
 * up to CB_GRAPH_MAX_ERROR_BODY are parsed, decisions key on the HTTP status
 * and error.code (never on the message), and every peer string is reduced
 * to printable ASCII and capped before it reaches an outcome text.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/graph/graph_internal.h"
#include "base/util.h"

/* Nesting of innerError objects followed. */
#define GRAPH_MAX_INNER_DEPTH 8

#define HINT_PERMISSION \
	"grant Mail.ReadWrite application permission and admin consent, or check the application access policy"

void graph_printable(char *dst, size_t size, const char *src, size_t max)
{
	size_t j = 0;

	if (size == 0)
		return;
	for (size_t i = 0; src && src[i] && j + 1 < size; i++) {
		unsigned char c = (unsigned char)src[i];

		if (i >= max || j + 4 >= size) {
			if (j + 4 <= size) {
				memcpy(dst + j, "...", 3);
				j += 3;
			}
			break;
		}
		dst[j++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	dst[j] = '\0';
}

static void copy_member(char *dst, size_t size, json_t *obj, const char *key, size_t max)
{
	json_t *v = json_object_get(obj, key);

	if (json_is_string(v))
		graph_printable(dst, size, json_string_value(v), max);
}

/* Finds the first "AADSTS<digits>" in s. */
static long find_aadsts(const char *s)
{
	const char *p = s ? strstr(s, "AADSTS") : NULL;
	long code = 0;

	if (!p)
		return 0;
	for (p += 6; *p >= '0' && *p <= '9' && code < 100000000; p++)
		code = code * 10 + (*p - '0');
	return code;
}

static void parse_graph_error(json_t *error, struct graph_error *e)
{
	json_t *inner;
	int depth = 0;

	copy_member(e->code, sizeof(e->code), error, "code", 60);
	copy_member(e->message, sizeof(e->message), error, "message", CB_GRAPH_MAX_PEER_TEXT);
	inner = json_object_get(error, "innerError");
	if (!inner)
		inner = json_object_get(error, "innererror");
	while (json_is_object(inner) && depth++ < GRAPH_MAX_INNER_DEPTH) {
		copy_member(e->inner_code, sizeof(e->inner_code), inner, "code", 60);
		if (!e->request_id[0])
			copy_member(e->request_id, sizeof(e->request_id), inner, "request-id", 100);
		inner = json_object_get(inner, json_object_get(inner, "innerError") ? "innerError" : "innererror");
	}
}

static void parse_entra_error(json_t *root, struct graph_error *e)
{
	json_t *codes = json_object_get(root, "error_codes");
	json_t *desc = json_object_get(root, "error_description");

	copy_member(e->code, sizeof(e->code), root, "error", 60);
	copy_member(e->message, sizeof(e->message), root, "error_description", CB_GRAPH_MAX_PEER_TEXT);
	copy_member(e->request_id, sizeof(e->request_id), root, "trace_id", 100);
	if (json_is_array(codes) && json_is_integer(json_array_get(codes, 0)))
		e->aadsts = (long)json_integer_value(json_array_get(codes, 0));
	if (e->aadsts <= 0 || e->aadsts > 99999999)
		e->aadsts = json_is_string(desc) ? find_aadsts(json_string_value(desc)) : 0;
}

void graph_error_parse(const struct cb_http_response *resp, struct graph_error *e)
{
	json_t *root, *error;

	memset(e, 0, sizeof(*e));
	if (!resp->body.data || resp->body.len == 0 || resp->body.len > CB_GRAPH_MAX_ERROR_BODY)
		return;
	root = json_loadb(resp->body.data, resp->body.len, 0, NULL);
	if (!json_is_object(root)) {
		json_decref(root);
		return;
	}
	error = json_object_get(root, "error");
	if (json_is_object(error))
		parse_graph_error(error, e);
	else if (json_is_string(error))
		parse_entra_error(root, e);
	e->parsed = e->code[0] != '\0';
	json_decref(root);
}

int graph_response_ok(const struct cb_http_response *resp)
{
	return resp->curl_code == CURLE_OK && resp->status >= 200 && resp->status < 300;
}

static int code_is(const struct graph_error *e, const char *code)
{
	return strcmp(e->code, code) == 0 || strcmp(e->inner_code, code) == 0;
}

/* Curl failures that repeat until the configuration changes. */
static int curl_permanent(CURLcode code)
{
	switch (code) {
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_NOT_BUILT_IN:
		return 1;
	default:
		return 0;
	}
}

/* Chooses the result and the hint for an HTTP error; hint may stay empty. */
static enum cb_result classify_status(long status, const struct graph_error *e, const char **hint)
{
	*hint = "";
	if (status == 429 || status == 500 || status == 502 || status == 503 || status == 504) {
		*hint = status == 429 ? "throttled by Graph" : "Graph is unavailable";
		return CB_RESULT_TEMPORARY;
	}
	if (code_is(e, "MailboxNotEnabledForRESTAPI") || code_is(e, "extensionError")) {
		*hint = "the mailbox is on premises, unlicensed, inactive or a guest: Graph cannot reach it (use the ews backend for on-premises mailboxes)";
		return CB_RESULT_PERMANENT;
	}
	if (code_is(e, "ResourceNotFound") || code_is(e, "ErrorInvalidUser") ||
	    code_is(e, "ErrorNonExistentMailbox") || code_is(e, "Request_ResourceNotFound")) {
		*hint = "the mailbox is unknown: check the recipient address (the user key is the UPN or object id, which may differ from the SMTP address)";
		return CB_RESULT_PERMANENT;
	}
	if (status == 403 || code_is(e, "ErrorAccessDenied") || code_is(e, "AccessDenied") ||
	    code_is(e, "Authorization_RequestDenied")) {
		*hint = HINT_PERMISSION;
		return CB_RESULT_PERMANENT;
	}
	if (status == 401) {
		*hint = "the access token was rejected twice: check graph.tenant, graph.cloud and the application's credentials";
		return CB_RESULT_PERMANENT;
	}
	if (status == 407) {
		*hint = "the proxy rejected our credentials: check graph.proxy_user, graph.proxy_password_file and graph.proxy_auth";
		return CB_RESULT_PERMANENT;
	}
	if (code_is(e, "ErrorInvalidUrlQuery") || code_is(e, "BadRequest")) {
		*hint = "Graph rejected the request: report this as a clawback bug with the request-id";
		return CB_RESULT_PERMANENT;
	}
	if (status >= 500)
		return CB_RESULT_TEMPORARY;
	return CB_RESULT_PERMANENT;
}

static void describe_body(const struct cb_http_response *resp, const struct graph_error *e,
			  char *out, size_t size)
{
	if (e->parsed)
		snprintf(out, size, " %s%s%s \"%s\"", e->code, e->inner_code[0] ? "/" : "",
			 e->inner_code, e->message);
	else if (resp->body.len > CB_GRAPH_MAX_ERROR_BODY)
		snprintf(out, size, " (error body of %zu bytes not parsed)", resp->body.len);
	else if (resp->body.len > 0)
		snprintf(out, size, " (error body is not a JSON error object)");
	else
		out[0] = '\0';
}

static void fill_ids(const struct cb_http_response *resp, const struct graph_error *e,
		     struct cb_outcome *out)
{
	out->http_status = resp->status;
	if (resp->request_id[0])
		graph_printable(out->request_id, sizeof(out->request_id), resp->request_id, 100);
	else
		cb_strlcpy(out->request_id, e->request_id, sizeof(out->request_id));
}

void graph_classify(const struct cb_http_response *resp, const char *step,
		    const char *client_request_id, struct cb_outcome *out)
{
	struct graph_error e;
	char what[CB_GRAPH_MAX_PEER_TEXT + 160];
	const char *hint;

	graph_error_parse(resp, &e);
	fill_ids(resp, &e, out);
	out->retry_after_ms = -1;

	if (resp->curl_code != CURLE_OK || resp->status == 0) {
		char curl_text[CURL_ERROR_SIZE];

		graph_printable(curl_text, sizeof(curl_text), resp->curl_error[0] ? resp->curl_error : curl_easy_strerror(resp->curl_code), 200);
		out->result = curl_permanent(resp->curl_code) ? CB_RESULT_PERMANENT : CB_RESULT_TEMPORARY;
		snprintf(out->text, sizeof(out->text), "%s failed: %s%s (client-request-id %s)", step,
			 curl_text,
			 out->result == CB_RESULT_PERMANENT ? ": check graph.ca_file, graph.proxy and the Graph URL" : "",
			 client_request_id);
		return;
	}

	out->result = classify_status(resp->status, &e, &hint);
	if (out->result == CB_RESULT_TEMPORARY)
		out->retry_after_ms = resp->retry_after_ms;
	describe_body(resp, &e, what, sizeof(what));
	snprintf(out->text, sizeof(out->text), "%s failed: HTTP %ld%s%s%s (request-id %s, client-request-id %s)",
		 step, resp->status, what, hint[0] ? ": " : "", hint,
		 out->request_id[0] ? out->request_id : "-", client_request_id);
}

/* Hints for the Entra ID errors an administrator can fix. */
static const struct {
	long code;
	const char *hint;
} aadsts_hints[] = {
	{7000215, "the client secret is invalid: put the secret's value (not its id) in graph.client_secret_file"},
	{7000222, "the client secret has expired: create a new one and update graph.client_secret_file"},
	{700016, "the application was not found in the tenant: check graph.client_id and graph.tenant"},
	{90002, "the tenant was not found: check graph.tenant and graph.cloud"},
	{900023, "the tenant is invalid: check graph.tenant"},
	{65001, "admin consent is missing: grant admin consent for the application's Mail.ReadWrite permission"},
	{700027, "the certificate is not registered for the application, or the assertion signature is invalid: upload graph.certificate_file to the app registration"},
	{700024, "the client assertion is not within its valid time range: check the system clock"},
	{7000112, "the application is disabled in the tenant"},
	{50049, "unknown or invalid cloud instance: check graph.cloud and graph.authority_url"},
};

void graph_classify_token(const struct cb_http_response *resp, struct cb_outcome *out)
{
	struct graph_error e;
	char what[CB_GRAPH_MAX_PEER_TEXT + 160];
	const char *hint = "";

	if (resp->curl_code != CURLE_OK || resp->status == 0 || resp->status == 429 ||
	    resp->status >= 500 || resp->status == 407) {
		graph_classify(resp, "token request", "-", out);
		return;
	}
	graph_error_parse(resp, &e);
	fill_ids(resp, &e, out);
	out->retry_after_ms = -1;
	out->result = CB_RESULT_PERMANENT;
	for (size_t i = 0; i < sizeof(aadsts_hints) / sizeof(aadsts_hints[0]); i++)
		if (e.aadsts == aadsts_hints[i].code)
			hint = aadsts_hints[i].hint;
	if (!hint[0] && strcmp(e.code, "invalid_client") == 0)
		hint = "the client credentials were rejected: check graph.client_id and the secret or certificate";
	if (!hint[0] && strcmp(e.code, "unauthorized_client") == 0)
		hint = "the application is not allowed the client credentials flow in this tenant";
	describe_body(resp, &e, what, sizeof(what));
	snprintf(out->text, sizeof(out->text), "token request failed: HTTP %ld%s%s%s (trace-id %s)",
		 resp->status, what, hint[0] ? ": " : "", hint,
		 out->request_id[0] ? out->request_id : "-");
}
