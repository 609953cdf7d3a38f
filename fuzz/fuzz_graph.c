/*
 * fuzz_graph.c: libFuzzer harness for the Microsoft Graph response parsers
 * (src/backend/graph/parse.c) and the error classifier (errors.c).
 *
 * Input layout: an optional first line of 1 to 3 digits is the HTTP status
 * ("429\n{...}"; 0 means no response arrived, as after a timeout), else the
 * status is 400 and the whole input is the body. The body goes to every
 * parser: two pages of a message search into one hit list (as op.c follows
 * @odata.nextLink), a mailFolder, a childFolders listing, a token response,
 * and the Graph and token error classifiers.
 *
 * The harness aborts when a parser breaks its contract. Broken contracts are
 * more hits than max, a hit id or nextLink with a control, space or quote,
 * an expires_in outside [60, 86400], and an outcome text with a byte that is
 * not printable ASCII.
 * jansson is not instrumented, so the fuzzer steers by the coverage of
 * parse.c and errors.c alone.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/graph/graph_internal.h"

/* The Message-ID searched for; seeds use it in internetMessageId. */
#define FUZZ_MESSAGE_ID "<CAF+x9=Q/abc@mail.example.net>"
/* Hit list size: small, so that a few seed hits reach "dropped". */
#define FUZZ_MAX_HITS 4

/* volatile, so the compiler cannot drop the reads of the parsed strings. */
static volatile size_t sink;

/* Aborts unless s has only the characters that id_valid() in parse.c accepts. */
static void check_token_chars(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f || *p == '"' || *p == '\\')
			abort();
}

static void check_printable(const char *s, size_t size)
{
	const char *end = memchr(s, '\0', size);

	if (!end)
		abort();
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p >= 0x7f)
			abort();
}

/* Splits off a leading "NNN\n" status line; returns the status. */
static long split_status(const uint8_t **data, size_t *size)
{
	long status = 0;
	size_t i;

	for (i = 0; i < *size && i < 3 && data[0][i] >= '0' && data[0][i] <= '9'; i++)
		status = status * 10 + (data[0][i] - '0');
	if (i == 0 || i >= *size || data[0][i] != '\n')
		return 400;
	*data += i + 1;
	*size -= i + 1;
	return status;
}

static void fuzz_messages(const char *body, size_t len)
{
	struct graph_hit hits[FUZZ_MAX_HITS];
	size_t n = 0, dropped = 0;
	char *next_link = NULL;
	struct cb_err err;

	for (int page = 0; page < 2; page++) {
		if (graph_parse_messages(body, len, FUZZ_MESSAGE_ID, hits, FUZZ_MAX_HITS, &n, &dropped,
					 &next_link, &err) < 0)
			break;
		if (next_link) {
			check_token_chars(next_link);
			free(next_link);
			next_link = NULL;
		}
	}
	if (next_link || n > FUZZ_MAX_HITS)
		abort();
	for (size_t i = 0; i < n; i++) {
		check_token_chars(hits[i].id);
		check_token_chars(hits[i].parent_folder_id);
	}
	sink += dropped;
	graph_hits_clear(hits, n);
}

static void fuzz_folders(const char *body, size_t len)
{
	char *id = NULL, *name = NULL;
	struct cb_err err;

	if (graph_parse_folder(body, len, &id, &name, &err) == 0) {
		check_token_chars(id);
		sink += strlen(name);
	} else if (id || name) {
		abort();
	}
	free(id);
	free(name);

	id = NULL;
	if (graph_parse_folder(body, len, &id, NULL, &err) == 0)
		check_token_chars(id);
	free(id);

	name = NULL;
	if (graph_parse_folder(body, len, NULL, &name, &err) == 0)
		sink += strlen(name);
	free(name);

	id = NULL;
	if (graph_parse_folder_list(body, len, &id, &err) == 0 && id)
		check_token_chars(id);
	free(id);
}

static void fuzz_token(const char *body, size_t len)
{
	char *token = NULL;
	int64_t expires_in_s = 0;
	struct cb_err err;

	if (graph_parse_token(body, len, &token, &expires_in_s, &err) == 0) {
		check_token_chars(token);
		if (expires_in_s < 60 || expires_in_s > 86400)
			abort();
	} else if (token) {
		abort();
	}
	free(token);
}

static void fuzz_classify(struct cb_http_response *resp)
{
	struct cb_outcome out;
	struct graph_error e;

	graph_error_parse(resp, &e);
	check_printable(e.code, sizeof(e.code));
	check_printable(e.inner_code, sizeof(e.inner_code));
	check_printable(e.message, sizeof(e.message));
	check_printable(e.request_id, sizeof(e.request_id));
	sink += (size_t)graph_response_ok(resp);

	memset(&out, 0, sizeof(out));
	graph_classify(resp, "search", "3f8e2c1a-0000-4000-8000-000000000000", &out);
	check_printable(out.text, sizeof(out.text));
	check_printable(out.request_id, sizeof(out.request_id));
	if (out.result != CB_RESULT_TEMPORARY && out.result != CB_RESULT_PERMANENT)
		abort();

	memset(&out, 0, sizeof(out));
	graph_classify_token(resp, &out);
	check_printable(out.text, sizeof(out.text));
	check_printable(out.request_id, sizeof(out.request_id));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cb_http_response resp;

	memset(&resp, 0, sizeof(resp));
	resp.status = split_status(&data, &size);
	resp.curl_code = resp.status == 0 ? CURLE_OPERATION_TIMEDOUT : CURLE_OK;
	resp.retry_after_ms = resp.status == 429 || resp.status == 503 ? 10000 : -1;
	/* Half the inputs carry a request-id header, the others rely on innerError's. */
	if (size % 2)
		memcpy(resp.request_id, "94fb0a1c-header", sizeof("94fb0a1c-header"));

	/* The executor's body buffer: capped, NUL-terminated, data NULL when empty. */
	cb_buf_init(&resp.body, CB_HTTP_MAX_RESPONSE);
	if (size && cb_buf_append(&resp.body, data, size) < 0)
		abort();

	fuzz_messages(resp.body.data, resp.body.len);
	fuzz_folders(resp.body.data, resp.body.len);
	fuzz_token(resp.body.data, resp.body.len);
	fuzz_classify(&resp);
	cb_buf_free(&resp.body);
	return 0;
}
