/*
 * token.c: OAuth 2.0 client credentials tokens for Graph, cached per
 * (cloud, tenant, resource).
 *
 * Runs in the thread that owns the struct cb_graph. A missing or expiring
 * token is fetched with a blocking request from inside op_next, so the
 * executor thread waits for one round trip to the token endpoint about once
 * an hour (tokens live 60 to 90 minutes and are renewed
 * CB_GRAPH_TOKEN_EARLY_MS early). Because the fetch is synchronous, only one
 * is ever in flight. A failed fetch is remembered for
 * CB_GRAPH_TOKEN_FAIL_HOLD_MS, so a down endpoint does not block the thread
 * once per job. Secrets (client secret, private key, the token) are never
 * logged or put in an error text; request bodies holding them are wiped.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/graph/graph_internal.h"
#include "base/util.h"

static struct graph_token *token_slot(struct cb_graph *g)
{
	char key[sizeof(g->tokens[0].key)];
	struct graph_token *empty = NULL;

	snprintf(key, sizeof(key), "%s|%s|%s", g->ep.cloud, g->cfg.tenant, g->ep.scope);
	for (size_t i = 0; i < CB_GRAPH_TOKEN_CACHE; i++) {
		if (strcmp(g->tokens[i].key, key) == 0)
			return &g->tokens[i];
		if (!empty && !g->tokens[i].key[0])
			empty = &g->tokens[i];
	}
	if (!empty)
		empty = &g->tokens[0];
	if (empty->access_token) {
		OPENSSL_cleanse(empty->access_token, strlen(empty->access_token));
		free(empty->access_token);
	}
	memset(empty, 0, sizeof(*empty));
	cb_strlcpy(empty->key, key, sizeof(empty->key));
	return empty;
}

static void token_drop(struct graph_token *t)
{
	if (t->access_token) {
		OPENSSL_cleanse(t->access_token, strlen(t->access_token));
		free(t->access_token);
	}
	t->access_token = NULL;
	t->expires_ms = 0;
	t->renew_ms = 0;
}

int graph_token_put(struct cb_graph *g, const char *token, int64_t now_ms, int64_t expires_in_s)
{
	struct graph_token *t = token_slot(g);
	int64_t early_ms;

	token_drop(t);
	t->access_token = strdup(token);
	t->expires_ms = now_ms + expires_in_s * 1000;
	/*
	 * Renewing a fixed CB_GRAPH_TOKEN_EARLY_MS early would treat a token that
	 * lives 5 minutes or less as expired at once, and fetch one per request.
	 */
	early_ms = expires_in_s * 1000 / 2;
	if (early_ms > CB_GRAPH_TOKEN_EARLY_MS)
		early_ms = CB_GRAPH_TOKEN_EARLY_MS;
	t->renew_ms = t->expires_ms - early_ms;
	t->failed_until_ms = 0;
	t->generation = ++g->token_generation;
	return t->access_token ? 0 : -1;
}

void graph_token_invalidate(struct cb_graph *g, unsigned long generation)
{
	struct graph_token *t = token_slot(g);

	if (t->access_token && t->generation == generation)
		token_drop(t);
}

const char *graph_token_get(struct cb_graph *g, int64_t now_ms, unsigned long *generation,
			    struct cb_outcome *out)
{
	struct graph_token *t = token_slot(g);
	char *token = NULL;
	int64_t expires_in_s = 0;

	if (t->access_token && t->renew_ms > now_ms) {
		*generation = t->generation;
		return t->access_token;
	}
	if (t->failed_until_ms > now_ms) {
		*out = t->failure;
		return NULL;
	}

	memset(out, 0, sizeof(*out));
	out->retry_after_ms = -1;
	if (g->fetch_token(g, &token, &expires_in_s, out) < 0) {
		t->failure = *out;
		t->failed_until_ms = now_ms + CB_GRAPH_TOKEN_FAIL_HOLD_MS;
		return NULL;
	}
	if (graph_token_put(g, token, now_ms, expires_in_s) < 0) {
		out->result = CB_RESULT_TEMPORARY;
		snprintf(out->text, sizeof(out->text), "token request failed: out of memory");
		t = NULL;
	}
	OPENSSL_cleanse(token, strlen(token));
	free(token);
	if (!t)
		return NULL;
	*generation = t->generation;
	return t->access_token;
}

/* Appends "&name=value" (value percent-encoded) to a form body. */
static int form_add(struct cb_buf *body, const char *name, const char *value)
{
	if (body->len && cb_buf_puts(body, "&") < 0)
		return -1;
	if (cb_buf_printf(body, "%s=", name) < 0)
		return -1;
	return graph_pct_encode(body, value);
}

/* Adds the credential: the client secret, or a signed assertion for the certificate. */
static int form_add_credential(struct cb_graph *g, struct cb_buf *body, struct cb_err *err)
{
	char *secret = NULL, *assertion = NULL;
	size_t secret_len = 0;
	struct graph_key key;
	int rc;

	if (g->cfg.client_secret_file) {
		if (cb_secret_read(g->cfg.client_secret_file, &secret, &secret_len, err) < 0)
			return -1;
		rc = form_add(body, "client_secret", secret);
		cb_secret_free(secret, secret_len);
		return rc;
	}
	if (graph_key_load(&g->cfg, &key, err) < 0)
		return -1;
	rc = graph_jwt_sign(&key, g->cfg.assertion_alg, g->cfg.client_id, g->ep.token_url,
			    cb_now_ms() / 1000, &assertion, err);
	graph_key_free(&key);
	if (rc < 0)
		return -1;
	rc = form_add(body, "client_assertion_type",
		      "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
	if (rc == 0)
		rc = form_add(body, "client_assertion", assertion);
	OPENSSL_cleanse(assertion, strlen(assertion));
	free(assertion);
	return rc;
}

int graph_token_request(struct cb_graph *g, struct cb_http_request *req, struct cb_err *err)
{
	struct cb_buf body;
	char *url = strdup(g->ep.token_url);
	char *text;

	cb_buf_init(&body, 0);
	if (!url)
		return cb_err_set(err, "out of memory");
	if (form_add(&body, "client_id", g->cfg.client_id) < 0 ||
	    form_add(&body, "scope", g->ep.scope) < 0 ||
	    form_add(&body, "grant_type", "client_credentials") < 0) {
		free(url);
		cb_buf_free(&body);
		return cb_err_set(err, "out of memory");
	}
	if (form_add_credential(g, &body, err) < 0) {
		free(url);
		OPENSSL_cleanse(body.data, body.len);
		cb_buf_free(&body);
		return -1;
	}
	text = cb_buf_steal(&body);
	if (graph_request_build(g, req, "POST", url, text, NULL, "token") < 0) {
		graph_request_wipe(req);
		return cb_err_set(err, "out of memory");
	}
	return 0;
}

int graph_token_fetch_blocking(struct cb_graph *g, char **token, int64_t *expires_in_s,
			       struct cb_outcome *out)
{
	struct cb_http_request req;
	struct cb_http_response resp;
	struct cb_err err;

	if (graph_token_request(g, &req, &err) < 0) {
		out->result = CB_RESULT_PERMANENT;
		snprintf(out->text, sizeof(out->text), "token request not sent: %s", err.msg);
		return -1;
	}
	graph_http_perform(g, &req, &resp);
	graph_request_wipe(&req);

	if (!graph_response_ok(&resp)) {
		graph_classify_token(&resp, out);
		cb_buf_free(&resp.body);
		return -1;
	}
	if (graph_parse_token(resp.body.data, resp.body.len, token, expires_in_s, &err) < 0) {
		out->result = CB_RESULT_TEMPORARY;
		out->http_status = resp.status;
		snprintf(out->text, sizeof(out->text), "token response is invalid: %s", err.msg);
		OPENSSL_cleanse(resp.body.data, resp.body.len);
		cb_buf_free(&resp.body);
		return -1;
	}
	OPENSSL_cleanse(resp.body.data, resp.body.len);
	cb_buf_free(&resp.body);
	return 0;
}
