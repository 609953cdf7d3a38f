/*
 * test_graph_parse.c: OData encoding, cloud endpoints, search page parsing
 * and the classification of error responses (garbage included).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/graph/graph_internal.h"

static void odata_encoding_table(void **state)
{
	static const struct {
		const char *in;
		const char *out;
	} rows[] = {
		{"<a@b>", "internetMessageId%20eq%20%27%3Ca%40b%3E%27"},
		{"a+b", "internetMessageId%20eq%20%27a%2Bb%27"},
		{"a/b=c", "internetMessageId%20eq%20%27a%2Fb%3Dc%27"},
		{"O'Brien", "internetMessageId%20eq%20%27O%27%27Brien%27"},
		{"#&%?", "internetMessageId%20eq%20%27%23%26%25%3F%27"},
		{"a b", "internetMessageId%20eq%20%27a%20b%27"},
		{"[x]{y}", "internetMessageId%20eq%20%27%5Bx%5D%7By%7D%27"},
		{"\xc3\xa4", "internetMessageId%20eq%20%27%C3%A4%27"},
		{"-._~", "internetMessageId%20eq%20%27-._~%27"},
		{"''", "internetMessageId%20eq%20%27%27%27%27%27%27"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct cb_buf b;

		cb_buf_init(&b, 0);
		assert_int_equal(graph_odata_eq(&b, "internetMessageId", rows[i].in), 0);
		assert_string_equal(b.data, rows[i].out);
		cb_buf_free(&b);
	}
}

static void url_under_root(void **state)
{
	(void)state;
	assert_true(graph_url_under("https://graph.microsoft.com/v1.0/x", "https://graph.microsoft.com"));
	assert_true(graph_url_under("https://graph.microsoft.com?x", "https://graph.microsoft.com"));
	assert_false(graph_url_under("https://graph.microsoft.com.evil/v1.0", "https://graph.microsoft.com"));
	assert_false(graph_url_under("https://graph.microsoft.com@evil/v1.0", "https://graph.microsoft.com"));
	assert_false(graph_url_under("http://graph.microsoft.com/v1.0", "https://graph.microsoft.com"));
}

static void endpoints_per_cloud(void **state)
{
	static const struct {
		const char *cloud;
		const char *token;
		const char *graph;
		int permanent_delete;
	} rows[] = {
		{"global", "https://login.microsoftonline.com/t.example/oauth2/v2.0/token", "https://graph.microsoft.com", 1},
		{"usgov", "https://login.microsoftonline.us/t.example/oauth2/v2.0/token", "https://graph.microsoft.us", 0},
		{"usgov-dod", "https://login.microsoftonline.us/t.example/oauth2/v2.0/token", "https://dod-graph.microsoft.us", 0},
		{"china", "https://login.chinacloudapi.cn/t.example/oauth2/v2.0/token", "https://microsoftgraph.chinacloudapi.cn", 0},
	};
	struct cb_graph_config cfg = {0};
	struct graph_endpoints ep;
	struct cb_err err;

	(void)state;
	cfg.tenant = "t.example";
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		cfg.cloud = (char *)rows[i].cloud;
		assert_int_equal(graph_endpoints_resolve(&cfg, &ep, &err), 0);
		assert_string_equal(ep.token_url, rows[i].token);
		assert_string_equal(ep.graph_root, rows[i].graph);
		assert_int_equal(ep.has_permanent_delete, rows[i].permanent_delete);
	}

	cfg.cloud = "global";
	cfg.authority_url = "https://127.0.0.1:8443/";
	cfg.graph_url = "https://127.0.0.1:8444//";
	assert_int_equal(graph_endpoints_resolve(&cfg, &ep, &err), 0);
	assert_string_equal(ep.token_url, "https://127.0.0.1:8443/t.example/oauth2/v2.0/token");
	assert_string_equal(ep.graph_root, "https://127.0.0.1:8444");
	assert_string_equal(ep.scope, "https://graph.microsoft.com/.default");

	cfg.graph_url = "http://plain.example";
	assert_int_equal(graph_endpoints_resolve(&cfg, &ep, &err), -1);
	cfg.graph_url = NULL;
	cfg.tenant = "t/../x";
	assert_int_equal(graph_endpoints_resolve(&cfg, &ep, &err), -1);
	cfg.tenant = "t.example";
	cfg.cloud = "mars";
	assert_int_equal(graph_endpoints_resolve(&cfg, &ep, &err), -1);
	assert_non_null(strstr(err.msg, "mars"));
}

static void search_page_parsed(void **state)
{
	const char *body =
		"{\"value\":[{\"id\":\"A\",\"parentFolderId\":\"P\",\"internetMessageId\":\"<m@x>\"},"
		"{\"id\":\"A\",\"parentFolderId\":\"P\",\"internetMessageId\":\"<m@x>\"},"
		"{\"id\":\"B c\",\"parentFolderId\":\"P\",\"internetMessageId\":\"<m@x>\"},"
		"{\"id\":\"C\",\"parentFolderId\":\"Q\",\"internetMessageId\":\"<M@X>\"},"
		"{\"id\":\"D\",\"internetMessageId\":\"<m@x>\"},"
		"null, 7, \"x\"],\"@odata.nextLink\":\"https://graph.test/next\"}";
	struct graph_hit hits[4];
	size_t n = 0, dropped = 0;
	char *next = NULL;
	struct cb_err err;

	(void)state;
	assert_int_equal(graph_parse_messages(body, strlen(body), "<m@x>", hits, 4, &n, &dropped, &next, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(hits[0].id, "A");
	assert_string_equal(hits[1].id, "C");
	assert_string_equal(hits[1].parent_folder_id, "Q");
	assert_string_equal(next, "https://graph.test/next");
	free(next);
	graph_hits_clear(hits, n);

	n = 0;
	assert_int_equal(graph_parse_messages("{\"value\":[]}", 12, "<m@x>", hits, 4, &n, &dropped, &next, &err), 0);
	assert_int_equal(n, 0);
	assert_null(next);
}

static void token_response_parsed(void **state)
{
	char *token = NULL;
	int64_t expires = 0;
	struct cb_err err;
	const char *ok = "{\"token_type\":\"Bearer\",\"expires_in\":3599,\"access_token\":\"eyJ.a.b\"}";
	const char *as_string = "{\"expires_in\":\"999999\",\"access_token\":\"t\"}";
	const char *bad[] = {"{\"access_token\":\"a\\r\\nX-Evil: 1\"}", "{\"access_token\":7}", "{}", "nope"};

	(void)state;
	assert_int_equal(graph_parse_token(ok, strlen(ok), &token, &expires, &err), 0);
	assert_string_equal(token, "eyJ.a.b");
	assert_int_equal(expires, 3599);
	free(token);
	assert_int_equal(graph_parse_token(as_string, strlen(as_string), &token, &expires, &err), 0);
	assert_int_equal(expires, 86400);
	free(token);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(graph_parse_token(bad[i], strlen(bad[i]), &token, &expires, &err), -1);
}

static void classify_one(long status, CURLcode code, const char *body, struct cb_outcome *out)
{
	struct cb_http_response resp;

	memset(&resp, 0, sizeof(resp));
	memset(out, 0, sizeof(*out));
	resp.status = status;
	resp.curl_code = code;
	resp.retry_after_ms = status == 429 ? 10000 : -1;
	cb_buf_init(&resp.body, 0);
	if (body)
		cb_buf_puts(&resp.body, body);
	graph_classify(&resp, "search", "cid-1", out);
	cb_buf_free(&resp.body);
}

static void classification_table(void **state)
{
	static const struct {
		long status;
		CURLcode code;
		const char *body;
		enum cb_result result;
		const char *text;
	} rows[] = {
		{429, CURLE_OK, "{\"error\":{\"code\":\"TooManyRequests\",\"message\":\"Please retry again later.\"}}", CB_RESULT_TEMPORARY, "throttled"},
		{503, CURLE_OK, "<html><body>Service Unavailable</body></html>", CB_RESULT_TEMPORARY, "not a JSON error object"},
		{504, CURLE_OK, "", CB_RESULT_TEMPORARY, "HTTP 504"},
		{0, CURLE_OPERATION_TIMEDOUT, NULL, CB_RESULT_TEMPORARY, "search failed"},
		{0, CURLE_RECV_ERROR, NULL, CB_RESULT_TEMPORARY, "cid-1"},
		{0, CURLE_PEER_FAILED_VERIFICATION, NULL, CB_RESULT_PERMANENT, "graph.ca_file"},
		{403, CURLE_OK, "{\"error\":{\"code\":\"ErrorAccessDenied\",\"message\":\"Access to OData is disabled.\"}}", CB_RESULT_PERMANENT, "grant Mail.ReadWrite application permission and admin consent, or check the application access policy"},
		{404, CURLE_OK, "{\"error\":{\"code\":\"MailboxNotEnabledForRESTAPI\",\"message\":\"REST API is not yet supported for this mailbox.\"}}", CB_RESULT_PERMANENT, "on premises"},
		{404, CURLE_OK, "{\"error\":{\"code\":\"ResourceNotFound\",\"message\":\"Resource could not be discovered.\"}}", CB_RESULT_PERMANENT, "mailbox is unknown"},
		{404, CURLE_OK, "{\"error\":{\"code\":\"ErrorInvalidUser\",\"message\":\"x\"}}", CB_RESULT_PERMANENT, "mailbox is unknown"},
		{400, CURLE_OK, "{\"error\":{\"code\":\"ErrorInvalidUrlQuery\",\"message\":\"x\"}}", CB_RESULT_PERMANENT, "clawback bug"},
		{407, CURLE_OK, NULL, CB_RESULT_PERMANENT, "proxy"},
		{500, CURLE_OK, "{\"error\":\"not an object\"}", CB_RESULT_TEMPORARY, "HTTP 500"},
		{502, CURLE_OK, "\x01\x02\xff garbage", CB_RESULT_TEMPORARY, "HTTP 502"},
		{418, CURLE_OK, "{\"error\":{\"code\":5}}", CB_RESULT_PERMANENT, "HTTP 418"},
		{400, CURLE_OK, "{\"error\":{\"code\":\"X\",\"innerError\":{\"code\":\"ErrorAccessDenied\",\"request-id\":\"inner-id\"}}}", CB_RESULT_PERMANENT, "inner-id"},
	};
	struct cb_outcome out;

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		classify_one(rows[i].status, rows[i].code, rows[i].body, &out);
		if (out.result != rows[i].result || !strstr(out.text, rows[i].text))
			fail_msg("row %zu: result %d, text \"%s\"", i, out.result, out.text);
	}
	classify_one(429, CURLE_OK, NULL, &out);
	assert_int_equal(out.retry_after_ms, 10000);
}

static void classification_huge_body(void **state)
{
	struct cb_outcome out;
	char *body = malloc(CB_GRAPH_MAX_ERROR_BODY * 2);

	(void)state;
	memset(body, '{', CB_GRAPH_MAX_ERROR_BODY * 2 - 1);
	body[CB_GRAPH_MAX_ERROR_BODY * 2 - 1] = '\0';
	classify_one(500, CURLE_OK, body, &out);
	assert_int_equal(out.result, CB_RESULT_TEMPORARY);
	assert_non_null(strstr(out.text, "not parsed"));
	free(body);
}

static void classification_controls_escaped(void **state)
{
	struct cb_outcome out;

	(void)state;
	classify_one(400, CURLE_OK, "{\"error\":{\"code\":\"Bad\\nCode\",\"message\":\"line\\r\\nforged=1\"}}", &out);
	assert_null(strchr(out.text, '\n'));
	assert_null(strchr(out.text, '\r'));
}

static void token_errors_hinted(void **state)
{
	static const struct {
		long status;
		const char *body;
		enum cb_result result;
		const char *text;
	} rows[] = {
		{401, "{\"error\":\"invalid_client\",\"error_description\":\"AADSTS7000215: Invalid client secret provided.\",\"error_codes\":[7000215],\"trace_id\":\"tr-1\"}", CB_RESULT_PERMANENT, "client_secret_file"},
		{400, "{\"error\":\"invalid_grant\",\"error_description\":\"AADSTS65001: The user or administrator has not consented\"}", CB_RESULT_PERMANENT, "admin consent"},
		{400, "{\"error\":\"invalid_request\",\"error_description\":\"AADSTS90002: Tenant not found\",\"error_codes\":[\"bad\"]}", CB_RESULT_PERMANENT, "graph.tenant"},
		{503, "", CB_RESULT_TEMPORARY, "token request"},
		{400, "<html>", CB_RESULT_PERMANENT, "token request failed"},
	};
	struct cb_http_response resp;
	struct cb_outcome out;

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		memset(&resp, 0, sizeof(resp));
		resp.status = rows[i].status;
		resp.retry_after_ms = -1;
		cb_buf_init(&resp.body, 0);
		cb_buf_puts(&resp.body, rows[i].body);
		graph_classify_token(&resp, &out);
		cb_buf_free(&resp.body);
		if (out.result != rows[i].result || !strstr(out.text, rows[i].text))
			fail_msg("row %zu: result %d, text \"%s\"", i, out.result, out.text);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(odata_encoding_table),
		cmocka_unit_test(url_under_root),
		cmocka_unit_test(endpoints_per_cloud),
		cmocka_unit_test(search_page_parsed),
		cmocka_unit_test(token_response_parsed),
		cmocka_unit_test(classification_table),
		cmocka_unit_test(classification_huge_body),
		cmocka_unit_test(classification_controls_escaped),
		cmocka_unit_test(token_errors_hinted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
