/*
 * doctor.c: `clawback doctor` checks of the Graph setup, with blocking curl
 * requests in the calling thread (the CLI, never the executor).
 *
 * Prints one line per check and what to fix when it fails. The token and
 * every secret stay out of the output; peer texts are reduced to printable
 * ASCII by errors.c before they are printed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/graph/graph.h"
#include "backend/graph/graph_internal.h"
#include "base/util.h"

/* Sends a GET with the token and fills resp; the caller frees resp->body. */
static void doctor_get(struct cb_graph *g, const char *token, char *url, const char *step,
		       struct cb_http_response *resp, char client_request_id[40])
{
	struct cb_http_request req;

	if (graph_request_build(g, &req, "GET", url, NULL, token, step) < 0) {
		memset(resp, 0, sizeof(*resp));
		resp->curl_code = CURLE_OUT_OF_MEMORY;
		cb_buf_init(&resp->body, 0);
		cb_http_request_clear(&req);
		return;
	}
	cb_strlcpy(client_request_id, req.client_request_id, 40);
	graph_http_perform(g, &req, resp);
	cb_http_request_clear(&req);
}

static char *mailbox_url(struct cb_graph *g, const char *mailbox, const char *suffix)
{
	struct cb_buf url;

	cb_buf_init(&url, 0);
	if (cb_buf_printf(&url, "%s/v1.0/users/", g->ep.graph_root) < 0 ||
	    graph_pct_encode(&url, mailbox) < 0 || cb_buf_puts(&url, suffix) < 0) {
		cb_buf_free(&url);
		return NULL;
	}
	return cb_buf_steal(&url);
}

/* Prints the result of one GET check; returns 0 when it passed. */
static int check_get(struct cb_graph *g, const char *token, char *url, const char *what, FILE *out)
{
	struct cb_http_response resp;
	struct cb_outcome outcome;
	char client_request_id[40] = "-";
	int rc = 0;

	doctor_get(g, token, url, what, &resp, client_request_id);
	if (graph_response_ok(&resp)) {
		fprintf(out, "ok      %s\n", what);
	} else {
		memset(&outcome, 0, sizeof(outcome));
		graph_classify(&resp, what, client_request_id, &outcome);
		fprintf(out, "FAILED  %s\n", outcome.text);
		rc = -1;
	}
	cb_buf_free(&resp.body);
	return rc;
}

/* Opens the backend and gets a token, printing both checks. */
static int doctor_begin(const struct cb_config *cfg, struct cb_graph **g, const char **token, FILE *out)
{
	struct cb_outcome outcome;
	unsigned long generation;
	struct cb_err err;

	if (graph_open(&cfg->graph, g, &err) < 0) {
		fprintf(out, "FAILED  graph configuration: %s\n", err.msg);
		return -1;
	}
	fprintf(out, "ok      graph configuration (cloud %s, token endpoint %s, Graph %s)\n",
		(*g)->ep.cloud, (*g)->ep.token_url, (*g)->ep.graph_root);
	*token = graph_token_get(*g, cb_now_ms(), &generation, &outcome);
	if (!*token) {
		fprintf(out, "FAILED  %s\n", outcome.text);
		graph_close(*g);
		return -1;
	}
	fprintf(out, "ok      access token for %s (%s)\n", (*g)->ep.scope,
		(*g)->cfg.client_secret_file ? "client secret" : "certificate");
	return 0;
}

int cb_graph_doctor(const struct cb_config *cfg, FILE *out)
{
	struct cb_graph *g;
	const char *token;
	int rc = 0;

	if (doctor_begin(cfg, &g, &token, out) < 0)
		return -1;
	if (!g->cfg.canary_mailbox) {
		fprintf(out, "skipped mailbox checks: set graph.canary_mailbox to a mailbox the application may read\n");
		graph_close(g);
		return 0;
	}
	if (check_get(g, token, mailbox_url(g, g->cfg.canary_mailbox, "/mailFolders/inbox?$select=id,displayName"),
		      "read the canary mailbox's Inbox", out) < 0)
		rc = -1;
	if (check_get(g, token, mailbox_url(g, g->cfg.canary_mailbox, "/mailFolders/junkemail?$select=id,displayName"),
		      "read the canary mailbox's Junk Email folder", out) < 0)
		rc = -1;
	graph_close(g);
	return rc;
}

/* Looks up one path segment under parent; *id is NULL when it does not exist. */
static int find_child(struct cb_graph *g, const char *token, const char *parent, const char *name,
		      char **id, struct cb_outcome *outcome)
{
	struct cb_http_response resp;
	struct cb_buf suffix;
	char client_request_id[40] = "-";
	int rc = 0;

	*id = NULL;
	cb_buf_init(&suffix, 0);
	cb_buf_puts(&suffix, "/mailFolders/");
	graph_pct_encode(&suffix, parent);
	cb_buf_puts(&suffix, "/childFolders?$filter=");
	graph_odata_eq(&suffix, "displayName", name);
	cb_buf_puts(&suffix, "&$select=id");
	doctor_get(g, token, mailbox_url(g, g->cfg.canary_mailbox, suffix.data ? suffix.data : ""),
		   "find_folder", &resp, client_request_id);
	cb_buf_free(&suffix);
	if (!graph_response_ok(&resp)) {
		graph_classify(&resp, "find folder", client_request_id, outcome);
		rc = -1;
	} else if (graph_parse_folder_list(resp.body.data, resp.body.len, id, NULL) < 0) {
		snprintf(outcome->text, sizeof(outcome->text), "find folder: the response is invalid");
		rc = -1;
	}
	cb_buf_free(&resp.body);
	return rc;
}

static int walk_path(struct cb_graph *g, const char *token, const char *folder, FILE *out)
{
	char segment[CB_FOLDER_MAX + 1];
	const char *p = folder, *wellknown;
	char *parent = strdup("msgfolderroot");
	struct cb_outcome outcome;
	int first = 1;

	while (*p && parent) {
		size_t n = strcspn(p, "/");
		char *id = NULL;

		memcpy(segment, p, n);
		segment[n] = '\0';
		p += n + (p[n] == '/');
		if (n == 0)
			continue;
		if (first && graph_wellknown_folder(segment, &wellknown)) {
			free(parent);
			parent = strdup(wellknown);
			first = 0;
			continue;
		}
		first = 0;
		memset(&outcome, 0, sizeof(outcome));
		if (find_child(g, token, parent, segment, &id, &outcome) < 0) {
			fprintf(out, "FAILED  destination folder \"%s\": %s\n", folder, outcome.text);
			free(parent);
			return -1;
		}
		free(parent);
		if (!id) {
			fprintf(out, "ok      destination folder \"%s\": \"%s\" does not exist yet and would be created\n",
				folder, segment);
			return 0;
		}
		parent = id;
	}
	free(parent);
	fprintf(out, "ok      destination folder \"%s\" exists in the canary mailbox\n", folder);
	return 0;
}

int cb_graph_doctor_folder(const struct cb_config *cfg, const char *folder, FILE *out)
{
	struct cb_graph *g;
	const char *token;
	const char *wellknown;
	int rc;

	if (!folder || !*folder || strlen(folder) > CB_FOLDER_MAX) {
		fprintf(out, "FAILED  destination folder: empty or longer than %d characters\n", CB_FOLDER_MAX);
		return -1;
	}
	if (doctor_begin(cfg, &g, &token, out) < 0)
		return -1;
	if (!g->cfg.canary_mailbox) {
		fprintf(out, "FAILED  destination folder \"%s\": set graph.canary_mailbox to check it\n", folder);
		graph_close(g);
		return -1;
	}
	if (!strchr(folder, '/') && graph_wellknown_folder(folder, &wellknown)) {
		char suffix[128];

		snprintf(suffix, sizeof(suffix), "/mailFolders/%s?$select=id", wellknown);
		rc = check_get(g, token, mailbox_url(g, g->cfg.canary_mailbox, suffix),
			       "read the destination folder", out);
	} else {
		rc = walk_path(g, token, folder, out);
	}
	graph_close(g);
	return rc;
}
