/*
 * test_graph_op.c: the Graph backend's per-job state machine, driven with
 * canned responses (no network): the requests it emits and its outcomes.
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

static int fetches;

static int fake_fetch(struct cb_graph *g, char **token, int64_t *expires_in_s, struct cb_outcome *out)
{
	(void)g;
	(void)out;
	fetches++;
	*token = strdup(fetches == 1 ? "token-one" : "token-two");
	*expires_in_s = 3600;
	return 0;
}

struct driver {
	struct cb_graph *g;
	void *op;
	struct cb_job job;
	struct cb_http_request req;
	struct cb_outcome out;
	enum cb_op_step step;
};

static void driver_open(struct driver *d, const char *cloud, enum cb_action_kind kind,
			const char *folder)
{
	struct cb_graph_config cfg = {0};
	struct cb_err err;

	memset(d, 0, sizeof(*d));
	fetches = 0;
	cfg.cloud = (char *)cloud;
	cfg.tenant = "contoso.example";
	cfg.client_id = "11111111-2222-3333-4444-555555555555";
	cfg.client_secret_file = "/nonexistent/secret";
	cfg.graph_url = "https://graph.test";
	assert_int_equal(graph_open(&cfg, &d->g, &err), 0);
	d->g->fetch_token = fake_fetch;
	d->job.mailbox = "Alice@Contoso.example";
	d->job.message_id = "<CAF+x9=Q/abc@mail.example.net>";
	d->job.action.kind = kind;
	if (folder)
		snprintf(d->job.action.folder, sizeof(d->job.action.folder), "%s", folder);
}

static void driver_start(struct driver *d)
{
	d->op = graph_op_start(d->g, &d->job);
	assert_non_null(d->op);
	d->step = graph_op_next(d->op, NULL, &d->req, &d->out);
}

/* Feeds one response; the previous request is released first. */
static void driver_reply(struct driver *d, long status, const char *body)
{
	struct cb_http_response resp;

	memset(&resp, 0, sizeof(resp));
	resp.status = status;
	resp.retry_after_ms = -1;
	cb_buf_init(&resp.body, CB_HTTP_MAX_RESPONSE);
	if (body)
		assert_int_equal(cb_buf_puts(&resp.body, body), 0);
	snprintf(resp.request_id, sizeof(resp.request_id), "req-%ld", status);
	if (status == 429)
		resp.retry_after_ms = 7000;
	cb_http_request_clear(&d->req);
	d->step = graph_op_next(d->op, &resp, &d->req, &d->out);
	cb_buf_free(&resp.body);
}

static void driver_close(struct driver *d)
{
	cb_http_request_clear(&d->req);
	graph_op_free(d->op);
	graph_close(d->g);
}

static int has_header(const struct cb_http_request *req, const char *line)
{
	for (const struct curl_slist *h = req->headers; h; h = h->next)
		if (strcmp(h->data, line) == 0)
			return 1;
	return 0;
}

static void expect_request(struct driver *d, const char *method, const char *url)
{
	assert_int_equal(d->step, CB_OP_REQUEST);
	assert_string_equal(d->req.method, method);
	assert_string_equal(d->req.url, url);
	assert_int_equal(d->req.http_version, CURL_HTTP_VERSION_2TLS);
}

#define SEARCH_URL                                                                          \
	"https://graph.test/v1.0/users/Alice%40Contoso.example/messages?$filter="              \
	"internetMessageId%20eq%20%27%3CCAF%2Bx9%3DQ%2Fabc%40mail.example.net%3E%27"            \
	"&$select=id,internetMessageId,parentFolderId,subject&$top=50"
#define RECOVERABLE_URL                                                                     \
	"https://graph.test/v1.0/users/Alice%40Contoso.example/mailFolders/recoverableitemsdeletions/messages?$filter=" \
	"internetMessageId%20eq%20%27%3CCAF%2Bx9%3DQ%2Fabc%40mail.example.net%3E%27"            \
	"&$select=id,internetMessageId,parentFolderId,subject&$top=50"
#define USER "https://graph.test/v1.0/users/Alice%40Contoso.example"
#define HIT(id, parent)                                                                     \
	"{\"id\":\"" id "\",\"parentFolderId\":\"" parent "\","                                 \
	"\"internetMessageId\":\"<CAF+x9=Q/abc@mail.example.net>\",\"subject\":\"Invoice\"}"

static void op_move_wellknown(void **state)
{
	struct driver d;

	(void)state;
	driver_open(&d, "global", CB_ACTION_MOVE, "junkemail");
	driver_start(&d);
	expect_request(&d, "GET", SEARCH_URL);
	assert_true(has_header(&d.req, "Authorization: Bearer token-one"));
	assert_true(has_header(&d.req, "Prefer: IdType=\"ImmutableId\""));
	assert_string_equal(d.req.step, "search");

	/* The move follows the search at once: the well-known name is the destinationId. */
	driver_reply(&d, 200, "{\"value\":[" HIT("m1", "F-inbox") "]}");
	expect_request(&d, "POST", USER "/messages/m1/move");
	assert_string_equal(d.req.body, "{\"destinationId\":\"junkemail\"}");
	assert_true(has_header(&d.req, "Content-Type: application/json"));
	driver_reply(&d, 201, "{\"id\":\"m1\",\"parentFolderId\":\"F-junk\"}");
	/* The name for found_in is looked up after the move. */
	expect_request(&d, "GET", USER "/mailFolders/F-inbox?$select=displayName");
	assert_string_equal(d.req.step, "folder_name");
	driver_reply(&d, 200, "{\"id\":\"F-inbox\",\"displayName\":\"Inbox\"}");

	assert_int_equal(d.step, CB_OP_DONE);
	assert_int_equal(d.out.result, CB_RESULT_DONE);
	assert_string_equal(d.out.found_in, "Inbox");
	assert_non_null(strstr(d.out.text, "moved 1 message(s) to junkemail"));
	assert_int_equal(fetches, 1);
	driver_close(&d);
}

/*
 * A fresh job does not know the destination id, so a hit already in Junk
 * Email is moved into the folder it is in. That changes nothing, and the
 * response's parentFolderId (the hit's own) reports it as already in place.
 */
static void op_move_already_in_place(void **state)
{
	struct driver d;

	(void)state;
	driver_open(&d, "global", CB_ACTION_MOVE, "junkemail");
	driver_start(&d);
	driver_reply(&d, 200, "{\"value\":[" HIT("m1", "F-junk") "]}");
	expect_request(&d, "POST", USER "/messages/m1/move");
	driver_reply(&d, 201, "{\"id\":\"m1\",\"parentFolderId\":\"F-junk\"}");
	expect_request(&d, "GET", USER "/mailFolders/F-junk?$select=displayName");
	driver_reply(&d, 200, "{\"displayName\":\"Junk Email\"}");
	assert_int_equal(d.step, CB_OP_DONE);
	assert_int_equal(d.out.result, CB_RESULT_DONE);
	assert_non_null(strstr(d.out.text, "already in place (1 in junkemail)"));
	assert_null(strstr(d.out.text, "moved"));
	assert_string_equal(d.out.found_in, "Junk Email");
	driver_close(&d);
}

/* The first move's response caches the destination id: the next job compares instead of moving. */
static void op_move_destination_cached(void **state)
{
	struct driver d;

	(void)state;
	driver_open(&d, "global", CB_ACTION_MOVE, "junkemail");
	driver_start(&d);
	driver_reply(&d, 200, "{\"value\":[" HIT("m1", "F-inbox") "]}");
	driver_reply(&d, 201, "{\"id\":\"m1\",\"parentFolderId\":\"F-junk\"}");
	driver_reply(&d, 200, "{\"displayName\":\"Inbox\"}");
	assert_int_equal(d.step, CB_OP_DONE);
	graph_op_free(d.op);

	driver_start(&d);
	driver_reply(&d, 200, "{\"value\":[" HIT("m2", "F-junk") "," HIT("m3", "F-inbox") "]}");
	/* m2 is in the cached destination: only m3 moves, to the id rather than the name. */
	expect_request(&d, "POST", USER "/messages/m3/move");
	assert_string_equal(d.req.body, "{\"destinationId\":\"F-junk\"}");
	driver_reply(&d, 201, "{\"id\":\"m3\",\"parentFolderId\":\"F-junk\"}");
	/* Inbox's name is cached from the first job, Junk Email's is not. */
	expect_request(&d, "GET", USER "/mailFolders/F-junk?$select=displayName");
	driver_reply(&d, 200, "{\"displayName\":\"Junk Email\"}");
	assert_int_equal(d.step, CB_OP_DONE);
	assert_int_equal(d.out.result, CB_RESULT_DONE);
	assert_non_null(strstr(d.out.text, "moved 1 message(s) to junkemail, already in place (1 in junkemail)"));
	assert_string_equal(d.out.found_in, "Junk Email, Inbox");
	driver_close(&d);
}

/* A job interrupted while acting looks the destination up first, so it never moves a mail twice. */
static void op_move_recovered_resolves_destination(void **state)
{
	struct driver d;

	(void)state;
	driver_open(&d, "global", CB_ACTION_MOVE, "Junkemail");
	d.job.may_have_acted = 1;
	driver_start(&d);
	expect_request(&d, "GET", SEARCH_URL);
	driver_reply(&d, 200, "{\"value\":[" HIT("m1", "F-junk") "]}");
	expect_request(&d, "GET", USER "/mailFolders/junkemail?$select=id");
	assert_string_equal(d.req.step, "destination");
	driver_reply(&d, 200, "{\"id\":\"F-junk\",\"displayName\":\"Junk Email\"}");
	expect_request(&d, "GET", USER "/mailFolders/F-junk?$select=displayName");
	driver_reply(&d, 200, "{\"displayName\":\"Junk Email\"}");
	assert_int_equal(d.step, CB_OP_DONE);
	assert_int_equal(d.out.result, CB_RESULT_DONE);
	assert_non_null(strstr(d.out.text, "already in place (1 in Junkemail)"));
	driver_close(&d);
}

/* After acting, a throttled name lookup leaves the name unknown and still reports the move. */
static void op_name_throttled_after_move(void **state)
{
	struct driver d;

	(void)state;
	driver_open(&d, "global", CB_ACTION_MOVE, "deleteditems");
	driver_start(&d);
	driver_reply(&d, 200, "{\"value\":[" HIT("m1", "F-inbox") "," HIT("m2", "F-sent") "]}");
	expect_request(&d, "POST", USER "/messages/m1/move");
	assert_string_equal(d.req.body, "{\"destinationId\":\"deleteditems\"}");
	driver_reply(&d, 201, "{\"id\":\"m1\",\"parentFolderId\":\"F-del\"}");
	expect_request(&d, "POST", USER "/messages/m2/move");
	assert_string_equal(d.req.body, "{\"destinationId\":\"F-del\"}");
	driver_reply(&d, 201, "{\"id\":\"m2\",\"parentFolderId\":\"F-del\"}");
	expect_request(&d, "GET", USER "/mailFolders/F-inbox?$select=displayName");
	driver_reply(&d, 429, "{\"error\":{\"code\":\"TooManyRequests\",\"message\":\"later\"}}");
	/* No lookup for F-sent: the server pushes back. */
	assert_int_equal(d.step, CB_OP_DONE);
	assert_int_equal(d.out.result, CB_RESULT_DONE);
	assert_non_null(strstr(d.out.text, "moved 2 message(s) to deleteditems"));
	assert_string_equal(d.out.found_in, "(unknown folder)");
	driver_close(&d);
}

/* A move response without a parentFolderId counts as moved. */
static void op_move_response_without_parent(void **state)
{
	struct driver d;

	(void)state;
	driver_open(&d, "global", CB_ACTION_MOVE, "junkemail");
	driver_start(&d);
	driver_reply(&d, 200, "{\"value\":[" HIT("m1", "F-junk") "]}");
	driver_reply(&d, 201, "<html>not json</html>");
	driver_reply(&d, 200, "{\"displayName\":\"Junk Email\"}");
	assert_int_equal(d.step, CB_OP_DONE);
	assert_int_equal(d.out.result, CB_RESULT_DONE);
	assert_non_null(strstr(d.out.text, "moved 1 message(s)"));
	driver_close(&d);
}

static void op_not_found_searches_recoverable(void **state)
{
	struct driver d;

	(void)state;
	driver_open(&d, "global", CB_ACTION_SOFT_DELETE, NULL);
	driver_start(&d);
	driver_reply(&d, 200, "{\"value\":[]}");
	expect_request(&d, "GET", RECOVERABLE_URL);
	assert_string_equal(d.req.step, "search_recoverable");
	driver_reply(&d, 200, "{\"value\":[]}");
	assert_int_equal(d.step, CB_OP_DONE);
	assert_int_equal(d.out.result, CB_RESULT_NOT_FOUND);
	driver_close(&d);
}

static void op_soft_delete_recoverable_is_in_place(void **state)
{
	struct driver d;

	(void)state;
	driver_open(&d, "global", CB_ACTION_SOFT_DELETE, NULL);
	driver_start(&d);
	driver_reply(&d, 200, "{\"value\":[]}");
	driver_reply(&d, 200, "{\"value\":[" HIT("m9", "F-rec") "]}");
	assert_int_equal(d.step, CB_OP_DONE);
	assert_int_equal(d.out.result, CB_RESULT_DONE);
	assert_non_null(strstr(d.out.text, "already in place"));
	assert_string_equal(d.out.found_in, "Recoverable Items");
	driver_close(&d);
}

static void op_hard_delete_purges_recoverable(void **state)
{
	struct driver d;

	(void)state;
	driver_open(&d, "global", CB_ACTION_HARD_DELETE, NULL);
	driver_start(&d);
	driver_reply(&d, 200, "{\"value\":[]}");
	driver_reply(&d, 200, "{\"value\":[" HIT("m9", "F-rec") "]}");
	expect_request(&d, "POST", USER "/messages/m9/permanentDelete");
	driver_reply(&d, 204, NULL);
	assert_int_equal(d.out.result, CB_RESULT_DONE);
	assert_non_null(strstr(d.out.text, "purged 1"));
	driver_close(&d);
}

static void op_hard_delete_national_cloud(void **state)
{
	struct driver d;

	(void)state;
	driver_open(&d, "usgov", CB_ACTION_HARD_DELETE, NULL);
	driver_start(&d);
	driver_reply(&d, 200, "{\"value\":[" HIT("m1", "F-inbox") "]}");
	expect_request(&d, "POST", USER "/messages/m1/move");
	assert_string_equal(d.req.body, "{\"destinationId\":\"recoverableitemsdeletions\"}");
	driver_reply(&d, 201, "{\"id\":\"m1\"}");
	driver_reply(&d, 200, "{\"displayName\":\"Inbox\"}");
	assert_int_equal(d.step, CB_OP_DONE);
	assert_int_equal(d.out.result, CB_RESULT_DONE);
	assert_non_null(strstr(d.out.text, "permanentDelete is not available in the usgov cloud"));
	driver_close(&d);
}

static void op_several_hits_all_acted(void **state)
{
	struct driver d;

	(void)state;
	driver_open(&d, "global", CB_ACTION_SOFT_DELETE, NULL);
	driver_start(&d);
	driver_reply(&d, 200, "{\"value\":[" HIT("m1", "F-inbox") "," HIT("m2", "F-sent") "," HIT("m3", "F-inbox") "]}");
	expect_request(&d, "POST", USER "/messages/m1/move");
	driver_reply(&d, 201, "{}");
	expect_request(&d, "POST", USER "/messages/m2/move");
	driver_reply(&d, 201, "{}");
	expect_request(&d, "POST", USER "/messages/m3/move");
	driver_reply(&d, 201, "{}");
	expect_request(&d, "GET", USER "/mailFolders/F-inbox?$select=displayName");
	driver_reply(&d, 200, "{\"displayName\":\"Inbox\"}");
	expect_request(&d, "GET", USER "/mailFolders/F-sent?$select=displayName");
	driver_reply(&d, 200, "{\"displayName\":\"Sent Items\"}");
	/* The third hit's folder name comes from the cache. */
	assert_int_equal(d.step, CB_OP_DONE);
	assert_int_equal(d.out.result, CB_RESULT_DONE);
	assert_string_equal(d.out.found_in, "Inbox, Sent Items");
	assert_non_null(strstr(d.out.text, "soft-deleted 3"));
	driver_close(&d);
}

static void op_follows_next_link(void **state)
{
	struct driver d;

	(void)state;
	driver_open(&d, "global", CB_ACTION_LOG, NULL);
	driver_start(&d);
	driver_reply(&d, 200, "{\"value\":[" HIT("m1", "F-inbox") "],\"@odata.nextLink\":\"https://graph.test/v1.0/users/x/messages?$skiptoken=abc\"}");
	expect_request(&d, "GET", "https://graph.test/v1.0/users/x/messages?$skiptoken=abc");
	/* A nextLink to another host is not followed: the token would go there. */
	driver_reply(&d, 200, "{\"value\":[" HIT("m2", "F-inbox") "],\"@odata.nextLink\":\"https://graph.test.evil/steal\"}");
	expect_request(&d, "GET", USER "/mailFolders/F-inbox?$select=displayName");
	driver_reply(&d, 200, "{\"displayName\":\"Inbox\"}");
	assert_int_equal(d.step, CB_OP_DONE);
	assert_int_equal(d.out.result, CB_RESULT_DONE);
	assert_non_null(strstr(d.out.text, "logged only: 2 message(s)"));
	driver_close(&d);
}

static void op_paging_is_bounded(void **state)
{
	struct driver d;
	int requests = 0;

	(void)state;
	driver_open(&d, "global", CB_ACTION_LOG, NULL);
	driver_start(&d);
	while (d.step == CB_OP_REQUEST && !strstr(d.req.url, "recoverable") && requests < 100) {
		requests++;
		driver_reply(&d, 200, "{\"value\":[],\"@odata.nextLink\":\"https://graph.test/v1.0/users/x/messages?$skiptoken=again\"}");
	}
	assert_int_equal(requests, CB_GRAPH_MAX_SEARCH_PAGES);
	expect_request(&d, "GET", RECOVERABLE_URL);
	driver_close(&d);
}

static void op_dry_run_touches_nothing(void **state)
{
	struct driver d;

	(void)state;
	driver_open(&d, "global", CB_ACTION_HARD_DELETE, NULL);
	d.job.action.dry_run = 1;
	driver_start(&d);
	driver_reply(&d, 200, "{\"value\":[" HIT("m1", "F-inbox") "]}");
	driver_reply(&d, 200, "{\"displayName\":\"Inbox\"}");
	assert_int_equal(d.step, CB_OP_DONE);
	assert_int_equal(d.out.result, CB_RESULT_DONE);
	assert_non_null(strstr(d.out.text, "would purge 1"));
	driver_close(&d);
}

static void op_path_created_after_conflict(void **state)
{
	struct driver d;

	(void)state;
	driver_open(&d, "global", CB_ACTION_MOVE, "Quarantine/PZD's");
	driver_start(&d);
	driver_reply(&d, 200, "{\"value\":[" HIT("m1", "F-inbox") "]}");
	expect_request(&d, "GET", USER "/mailFolders/msgfolderroot/childFolders?$filter=displayName%20eq%20%27Quarantine%27&$select=id,displayName");
	assert_string_equal(d.req.step, "find_folder");
	driver_reply(&d, 200, "{\"value\":[{\"id\":\"F-q\",\"displayName\":\"Quarantine\"}]}");
	expect_request(&d, "GET", USER "/mailFolders/F-q/childFolders?$filter=displayName%20eq%20%27PZD%27%27s%27&$select=id,displayName");
	driver_reply(&d, 200, "{\"value\":[]}");
	expect_request(&d, "POST", USER "/mailFolders/F-q/childFolders");
	assert_string_equal(d.req.body, "{\"displayName\":\"PZD's\"}");
	driver_reply(&d, 409, "{\"error\":{\"code\":\"ErrorFolderExists\",\"message\":\"exists\"}}");
	expect_request(&d, "GET", USER "/mailFolders/F-q/childFolders?$filter=displayName%20eq%20%27PZD%27%27s%27&$select=id,displayName");
	driver_reply(&d, 200, "{\"value\":[{\"id\":\"F-pzd\",\"displayName\":\"PZD's\"}]}");
	expect_request(&d, "POST", USER "/messages/m1/move");
	assert_string_equal(d.req.body, "{\"destinationId\":\"F-pzd\"}");
	driver_reply(&d, 201, "{}");
	expect_request(&d, "GET", USER "/mailFolders/F-inbox?$select=displayName");
	driver_reply(&d, 200, "{\"displayName\":\"Inbox\"}");
	assert_int_equal(d.step, CB_OP_DONE);
	assert_int_equal(d.out.result, CB_RESULT_DONE);
	driver_close(&d);
}

static void op_path_under_wellknown_created(void **state)
{
	struct driver d;

	(void)state;
	driver_open(&d, "global", CB_ACTION_MOVE, "Inbox/Phish");
	driver_start(&d);
	driver_reply(&d, 200, "{\"value\":[" HIT("m1", "F-inbox") "]}");
	expect_request(&d, "GET", USER "/mailFolders/inbox/childFolders?$filter=displayName%20eq%20%27Phish%27&$select=id,displayName");
	driver_reply(&d, 200, "{\"value\":[]}");
	expect_request(&d, "POST", USER "/mailFolders/inbox/childFolders");
	driver_reply(&d, 201, "{\"id\":\"F-phish\",\"displayName\":\"Phish\"}");
	expect_request(&d, "POST", USER "/messages/m1/move");
	assert_string_equal(d.req.body, "{\"destinationId\":\"F-phish\"}");
	driver_reply(&d, 201, "{}");
	driver_reply(&d, 200, "{\"displayName\":\"Inbox\"}");
	assert_int_equal(d.step, CB_OP_DONE);
	assert_int_equal(d.out.result, CB_RESULT_DONE);
	driver_close(&d);
}

static void op_invalid_path_is_permanent(void **state)
{
	const char *paths[] = {"a//b", "/a", "a/", "a/\x01"};

	(void)state;
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		struct driver d;

		driver_open(&d, "global", CB_ACTION_MOVE, paths[i]);
		/* Rejected before the search: nothing is sent. */
		driver_start(&d);
		assert_int_equal(d.step, CB_OP_DONE);
		assert_int_equal(d.out.result, CB_RESULT_PERMANENT);
		assert_non_null(strstr(d.out.text, "invalid destination folder path"));
		driver_close(&d);
	}
}

static void op_retries_once_after_401(void **state)
{
	struct driver d;

	(void)state;
	driver_open(&d, "global", CB_ACTION_LOG, NULL);
	driver_start(&d);
	driver_reply(&d, 401, "{\"error\":{\"code\":\"InvalidAuthenticationToken\",\"message\":\"expired\"}}");
	expect_request(&d, "GET", SEARCH_URL);
	assert_true(has_header(&d.req, "Authorization: Bearer token-two"));
	assert_int_equal(fetches, 2);
	driver_reply(&d, 401, "{\"error\":{\"code\":\"InvalidAuthenticationToken\",\"message\":\"expired\"}}");
	assert_int_equal(d.step, CB_OP_DONE);
	assert_int_equal(d.out.result, CB_RESULT_PERMANENT);
	assert_int_equal(d.out.http_status, 401);
	driver_close(&d);
}

static void op_stale_id_searches_again(void **state)
{
	struct driver d;

	(void)state;
	driver_open(&d, "global", CB_ACTION_SOFT_DELETE, NULL);
	driver_start(&d);
	driver_reply(&d, 200, "{\"value\":[" HIT("m1", "F-inbox") "]}");
	expect_request(&d, "POST", USER "/messages/m1/move");
	driver_reply(&d, 404, "{\"error\":{\"code\":\"ErrorItemNotFound\",\"message\":\"gone\"}}");
	expect_request(&d, "GET", SEARCH_URL);
	driver_reply(&d, 200, "{\"value\":[" HIT("m1b", "F-archive") "]}");
	expect_request(&d, "POST", USER "/messages/m1b/move");
	driver_reply(&d, 201, "{}");
	expect_request(&d, "GET", USER "/mailFolders/F-archive?$select=displayName");
	driver_reply(&d, 200, "{\"displayName\":\"Archive\"}");
	assert_int_equal(d.step, CB_OP_DONE);
	assert_int_equal(d.out.result, CB_RESULT_DONE);
	assert_string_equal(d.out.found_in, "Archive");
	assert_non_null(strstr(d.out.text, "searched again"));
	driver_close(&d);
}

static void op_throttled_is_temporary(void **state)
{
	struct driver d;

	(void)state;
	driver_open(&d, "global", CB_ACTION_LOG, NULL);
	driver_start(&d);
	driver_reply(&d, 429, "{\"error\":{\"code\":\"TooManyRequests\",\"message\":\"Please retry again later.\"}}");
	assert_int_equal(d.step, CB_OP_DONE);
	assert_int_equal(d.out.result, CB_RESULT_TEMPORARY);
	assert_int_equal(d.out.retry_after_ms, 7000);
	assert_string_equal(d.out.request_id, "req-429");
	driver_close(&d);
}

static void op_garbage_search_is_temporary(void **state)
{
	const char *bodies[] = {"<html>proxy</html>", "", "[1,2]", "{\"value\":3}", "{\"value\":[{\"id\":5}]}"};

	(void)state;
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		struct driver d;

		driver_open(&d, "global", CB_ACTION_LOG, NULL);
		driver_start(&d);
		driver_reply(&d, 200, bodies[i]);
		if (i == 4) {
			/* A hit without a usable id is skipped, so the search goes on. */
			expect_request(&d, "GET", RECOVERABLE_URL);
		} else {
			assert_int_equal(d.step, CB_OP_DONE);
			assert_int_equal(d.out.result, CB_RESULT_TEMPORARY);
			assert_non_null(strstr(d.out.text, "response is invalid"));
		}
		driver_close(&d);
	}
}

static void op_other_message_ids_ignored(void **state)
{
	struct driver d;

	(void)state;
	driver_open(&d, "global", CB_ACTION_LOG, NULL);
	driver_start(&d);
	driver_reply(&d, 200, "{\"value\":[{\"id\":\"x\",\"parentFolderId\":\"F\",\"internetMessageId\":\"<other@x>\"}]}");
	expect_request(&d, "GET", RECOVERABLE_URL);
	driver_close(&d);
}

static void op_hits_capped(void **state)
{
	struct driver d;
	struct cb_buf body;

	(void)state;
	cb_buf_init(&body, 0);
	cb_buf_puts(&body, "{\"value\":[");
	for (int i = 0; i < CB_GRAPH_MAX_HITS + 10; i++)
		cb_buf_printf(&body, "%s{\"id\":\"m%d\",\"parentFolderId\":\"F-inbox\",\"internetMessageId\":\"<CAF+x9=Q/abc@mail.example.net>\"}",
			      i ? "," : "", i);
	cb_buf_puts(&body, "]}");
	driver_open(&d, "global", CB_ACTION_LOG, NULL);
	driver_start(&d);
	driver_reply(&d, 200, body.data);
	driver_reply(&d, 200, "{\"displayName\":\"Inbox\"}");
	assert_int_equal(d.step, CB_OP_DONE);
	assert_non_null(strstr(d.out.text, "logged only: 32 message(s)"));
	assert_non_null(strstr(d.out.text, "per-job limit"));
	driver_close(&d);
	cb_buf_free(&body);
}

static void op_limit_key_per_mailbox(void **state)
{
	const struct cb_backend_ops *ops = cb_backend_find("graph");
	struct driver d;
	char key[128];

	(void)state;
	assert_non_null(ops);
	assert_non_null(ops->configure_easy);
	driver_open(&d, "global", CB_ACTION_LOG, NULL);
	ops->limit_key(d.g, &d.job, key, sizeof(key));
	assert_string_equal(key, "graph:11111111-2222-3333-4444-555555555555:alice@contoso.example");
	graph_close(d.g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(op_move_wellknown),
		cmocka_unit_test(op_move_already_in_place),
		cmocka_unit_test(op_move_destination_cached),
		cmocka_unit_test(op_move_recovered_resolves_destination),
		cmocka_unit_test(op_name_throttled_after_move),
		cmocka_unit_test(op_move_response_without_parent),
		cmocka_unit_test(op_not_found_searches_recoverable),
		cmocka_unit_test(op_soft_delete_recoverable_is_in_place),
		cmocka_unit_test(op_hard_delete_purges_recoverable),
		cmocka_unit_test(op_hard_delete_national_cloud),
		cmocka_unit_test(op_several_hits_all_acted),
		cmocka_unit_test(op_follows_next_link),
		cmocka_unit_test(op_paging_is_bounded),
		cmocka_unit_test(op_dry_run_touches_nothing),
		cmocka_unit_test(op_path_created_after_conflict),
		cmocka_unit_test(op_path_under_wellknown_created),
		cmocka_unit_test(op_invalid_path_is_permanent),
		cmocka_unit_test(op_retries_once_after_401),
		cmocka_unit_test(op_stale_id_searches_again),
		cmocka_unit_test(op_throttled_is_temporary),
		cmocka_unit_test(op_garbage_search_is_temporary),
		cmocka_unit_test(op_other_message_ids_ignored),
		cmocka_unit_test(op_hits_capped),
		cmocka_unit_test(op_limit_key_per_mailbox),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
