/*
 * graph_backend.c: the "graph" backend's state (configuration copy, token
 * cache, folder cache) and its entry in the backend table.
 *
 * Runs in the executor thread. The folder cache maps (mailbox, folder id)
 * to display names and (mailbox, path) to destination folder ids; it holds
 * CB_GRAPH_FOLDER_CACHE entries and replaces them round robin, so a large
 * campaign cannot grow it. Folder ids are stable in Exchange Online, so
 * entries never expire; a deleted destination folder shows up as a 404 on
 * move, which drops the entry.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/graph/graph_internal.h"
#include "base/util.h"

const char *graph_cache_get(const struct graph_cache *c, const char *key)
{
	for (size_t i = 0; i < CB_GRAPH_FOLDER_CACHE; i++)
		if (c->entries[i].key && strcmp(c->entries[i].key, key) == 0)
			return c->entries[i].value;
	return NULL;
}

const char *graph_cache_put(struct graph_cache *c, const char *key, const char *value)
{
	struct graph_cache_entry *e = NULL;

	for (size_t i = 0; i < CB_GRAPH_FOLDER_CACHE && !e; i++)
		if (c->entries[i].key && strcmp(c->entries[i].key, key) == 0)
			e = &c->entries[i];
	if (!e) {
		e = &c->entries[c->next];
		c->next = (c->next + 1) % CB_GRAPH_FOLDER_CACHE;
	}
	free(e->key);
	free(e->value);
	e->key = strdup(key);
	e->value = strdup(value);
	if (!e->key || !e->value) {
		free(e->key);
		free(e->value);
		e->key = e->value = NULL;
	}
	return e->value;
}

void graph_cache_free(struct graph_cache *c)
{
	for (size_t i = 0; i < CB_GRAPH_FOLDER_CACHE; i++) {
		free(c->entries[i].key);
		free(c->entries[i].value);
	}
	memset(c, 0, sizeof(*c));
}

static void config_free(struct cb_graph_config *c)
{
	char **fields[] = {&c->cloud, &c->tenant, &c->client_id, &c->client_secret_file,
			   &c->certificate_file, &c->key_file, &c->pkcs12_password_file,
			   &c->assertion_alg, &c->authority_url, &c->graph_url, &c->ca_file,
			   &c->proxy, &c->proxy_user, &c->proxy_password_file, &c->proxy_auth,
			   &c->canary_mailbox};

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		free(*fields[i]);
		*fields[i] = NULL;
	}
}

static int config_copy(struct cb_graph_config *dst, const struct cb_graph_config *src)
{
	char **d[] = {&dst->cloud, &dst->tenant, &dst->client_id, &dst->client_secret_file,
		      &dst->certificate_file, &dst->key_file, &dst->pkcs12_password_file,
		      &dst->assertion_alg, &dst->authority_url, &dst->graph_url, &dst->ca_file,
		      &dst->proxy, &dst->proxy_user, &dst->proxy_password_file, &dst->proxy_auth,
		      &dst->canary_mailbox};
	char *const s[] = {src->cloud, src->tenant, src->client_id, src->client_secret_file,
			   src->certificate_file, src->key_file, src->pkcs12_password_file,
			   src->assertion_alg, src->authority_url, src->graph_url, src->ca_file,
			   src->proxy, src->proxy_user, src->proxy_password_file, src->proxy_auth,
			   src->canary_mailbox};

	*dst = *src;
	for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++)
		*d[i] = NULL;
	for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++) {
		*d[i] = s[i] && *s[i] ? strdup(s[i]) : NULL;
		if (s[i] && *s[i] && !*d[i])
			return -1;
	}
	return 0;
}

static int check_credentials(const struct cb_graph_config *cfg, struct cb_err *err)
{
	if (!cfg->client_id)
		return cb_err_set(err, "graph.client_id is missing: set the application (client) id");
	if (!cfg->client_secret_file && !cfg->certificate_file)
		return cb_err_set(err, "graph has no credential: set graph.client_secret_file or graph.certificate_file");
	if (cfg->assertion_alg && strcmp(cfg->assertion_alg, "PS256") != 0 &&
	    strcmp(cfg->assertion_alg, "RS256") != 0)
		return cb_err_set(err, "graph.assertion_alg \"%s\" is unknown: use PS256 or RS256",
				  cfg->assertion_alg);
	return 0;
}

int graph_open(const struct cb_graph_config *cfg, struct cb_graph **out, struct cb_err *err)
{
	struct cb_graph *g = calloc(1, sizeof(*g));

	if (!g)
		return cb_err_set(err, "out of memory");
	if (config_copy(&g->cfg, cfg) < 0) {
		graph_close(g);
		return cb_err_set(err, "out of memory");
	}
	if (graph_endpoints_resolve(&g->cfg, &g->ep, err) < 0 || check_credentials(&g->cfg, err) < 0) {
		graph_close(g);
		return -1;
	}
	if (g->cfg.proxy && g->cfg.proxy_password_file &&
	    cb_secret_read(g->cfg.proxy_password_file, &g->proxy_password, &g->proxy_password_len, err) < 0) {
		graph_close(g);
		return cb_err_prefix(err, "graph.proxy_password_file: ");
	}
	g->timeout_ms = cfg->timeout_ms > 0 ? (long)cfg->timeout_ms : CB_GRAPH_DEFAULT_TIMEOUT_MS;
	g->fetch_token = graph_token_fetch_blocking;
	*out = g;
	return 0;
}

void graph_close(struct cb_graph *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < CB_GRAPH_TOKEN_CACHE; i++) {
		if (g->tokens[i].access_token) {
			OPENSSL_cleanse(g->tokens[i].access_token, strlen(g->tokens[i].access_token));
			free(g->tokens[i].access_token);
		}
	}
	if (g->proxy_password)
		cb_secret_free(g->proxy_password, g->proxy_password_len);
	graph_cache_free(&g->folders);
	config_free(&g->cfg);
	free(g);
}

static int backend_open(const struct cb_config *cfg, void **state, struct cb_err *err)
{
	struct cb_graph *g;

	if (graph_open(&cfg->graph, &g, err) < 0)
		return -1;
	*state = g;
	return 0;
}

static void backend_close(void *state)
{
	graph_close(state);
}

/* Graph's limits count per (application, mailbox); mailbox addresses compare case-insensitively. */
static void backend_limit_key(void *state, const struct cb_job *job, char *out, size_t size)
{
	struct cb_graph *g = state;
	int n = snprintf(out, size, "graph:%s:", g->cfg.client_id);

	for (const char *p = job->mailbox; n >= 0 && (size_t)n + 1 < size && *p; p++)
		out[n++] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	if (n >= 0 && (size_t)n < size)
		out[n] = '\0';
}

static void backend_configure_easy(void *state, CURL *easy)
{
	graph_configure_easy(state, easy);
}

const struct cb_backend_ops cb_backend_graph = {
	.name = "graph",
	.open = backend_open,
	.close = backend_close,
	.limit_key = backend_limit_key,
	.op_start = graph_op_start,
	.op_next = graph_op_next,
	.op_free = graph_op_free,
	.configure_easy = backend_configure_easy,
};
