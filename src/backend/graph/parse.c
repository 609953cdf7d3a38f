/*
 * parse.c: parsers of Graph and token endpoint response bodies (jansson).
 *
 * Runs in the executor thread (and doctor's thread). Untrusted input: every
 * body comes from the network. Bodies are at most CB_HTTP_MAX_RESPONSE bytes
 * (the executor caps them); ids are capped at CB_GRAPH_MAX_ID, names at
 * CB_GRAPH_MAX_NAME, tokens at CB_GRAPH_MAX_TOKEN, and the number of hits
 * kept at the caller's max whatever the page holds.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backend/graph/graph_internal.h"

static json_t *load_object(const char *body, size_t len, struct cb_err *err)
{
	json_error_t jerr;
	json_t *root;

	if (!body || len == 0) {
		cb_err_set(err, "empty response body");
		return NULL;
	}
	root = json_loadb(body, len, 0, &jerr);
	if (!root) {
		cb_err_set(err, "response is not JSON (line %d: %s)", jerr.line, jerr.text);
		return NULL;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		cb_err_set(err, "response is not a JSON object");
		return NULL;
	}
	return root;
}

/* Returns the string member key when it is a string of 1 to max bytes, else NULL. */
static const char *get_string(json_t *obj, const char *key, size_t max)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max)
		return NULL;
	if (strlen(json_string_value(v)) != json_string_length(v))
		return NULL; /* an embedded NUL */
	return json_string_value(v);
}

/* Graph ids are base64-like; anything with controls, spaces or quotes is rejected. */
static int id_valid(const char *id)
{
	for (const unsigned char *p = (const unsigned char *)id; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f || *p == '"' || *p == '\\')
			return 0;
	return 1;
}

static int hit_seen(const struct graph_hit *hits, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(hits[i].id, id) == 0)
			return 1;
	return 0;
}

static int hit_add(struct graph_hit *hits, size_t *n, const char *id, const char *parent)
{
	struct graph_hit *h = &hits[*n];

	memset(h, 0, sizeof(*h));
	h->id = strdup(id);
	h->parent_folder_id = strdup(parent);
	if (!h->id || !h->parent_folder_id) {
		free(h->id);
		free(h->parent_folder_id);
		return -1;
	}
	(*n)++;
	return 0;
}

int graph_parse_messages(const char *body, size_t len, const char *message_id,
			 struct graph_hit *hits, size_t max, size_t *n, size_t *dropped,
			 char **next_link, struct cb_err *err)
{
	json_t *root = load_object(body, len, err);
	json_t *value, *item;
	const char *link;
	size_t i;

	*next_link = NULL;
	if (!root)
		return -1;
	value = json_object_get(root, "value");
	if (!json_is_array(value)) {
		json_decref(root);
		return cb_err_set(err, "search response has no \"value\" array");
	}

	json_array_foreach(value, i, item) {
		const char *id = get_string(item, "id", CB_GRAPH_MAX_ID);
		const char *parent = get_string(item, "parentFolderId", CB_GRAPH_MAX_ID);
		const char *imid = get_string(item, "internetMessageId", 4096);

		if (!id || !parent || !id_valid(id) || !id_valid(parent))
			continue;
		/* The filter matched it already; this guards against a peer returning other mail. */
		if (!imid || strcasecmp(imid, message_id) != 0)
			continue;
		if (hit_seen(hits, *n, id))
			continue;
		if (*n >= max) {
			(*dropped)++;
			continue;
		}
		if (hit_add(hits, n, id, parent) < 0) {
			json_decref(root);
			return cb_err_set(err, "out of memory");
		}
	}

	link = get_string(root, "@odata.nextLink", 8192);
	if (link && id_valid(link))
		*next_link = strdup(link);
	json_decref(root);
	return 0;
}

void graph_hits_clear(struct graph_hit *hits, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(hits[i].id);
		free(hits[i].parent_folder_id);
		free(hits[i].folder_name);
		memset(&hits[i], 0, sizeof(hits[i]));
	}
}

int graph_parse_folder(const char *body, size_t len, char **id, char **display_name,
		       struct cb_err *err)
{
	json_t *root = load_object(body, len, err);
	const char *v;
	int rc = 0;

	if (!root)
		return -1;
	if (id) {
		v = get_string(root, "id", CB_GRAPH_MAX_ID);
		*id = v && id_valid(v) ? strdup(v) : NULL;
		if (!*id)
			rc = cb_err_set(err, "folder response has no valid \"id\"");
	}
	if (display_name && rc == 0) {
		v = get_string(root, "displayName", CB_GRAPH_MAX_NAME);
		*display_name = v ? strdup(v) : NULL;
		if (!*display_name)
			rc = cb_err_set(err, "folder response has no valid \"displayName\"");
		if (rc < 0 && id) {
			free(*id);
			*id = NULL;
		}
	}
	json_decref(root);
	return rc;
}

int graph_parse_moved(const char *body, size_t len, char **parent_folder_id, struct cb_err *err)
{
	json_t *root = load_object(body, len, err);
	const char *v;

	*parent_folder_id = NULL;
	if (!root)
		return -1;
	v = get_string(root, "parentFolderId", CB_GRAPH_MAX_ID);
	if (v && id_valid(v))
		*parent_folder_id = strdup(v);
	json_decref(root);
	if (!*parent_folder_id)
		return cb_err_set(err, "move response has no valid \"parentFolderId\"");
	return 0;
}

int graph_parse_folder_list(const char *body, size_t len, char **id, struct cb_err *err)
{
	json_t *root = load_object(body, len, err);
	json_t *value, *first;
	const char *v;

	*id = NULL;
	if (!root)
		return -1;
	value = json_object_get(root, "value");
	if (!json_is_array(value)) {
		json_decref(root);
		return cb_err_set(err, "folder listing has no \"value\" array");
	}
	first = json_array_get(value, 0);
	if (first) {
		v = get_string(first, "id", CB_GRAPH_MAX_ID);
		if (!v || !id_valid(v)) {
			json_decref(root);
			return cb_err_set(err, "folder listing holds a folder without a valid \"id\"");
		}
		*id = strdup(v);
	}
	json_decref(root);
	return 0;
}

int graph_parse_token(const char *body, size_t len, char **token, int64_t *expires_in_s,
		      struct cb_err *err)
{
	json_t *root = load_object(body, len, err);
	const char *v;
	json_t *exp;
	int64_t seconds = 3599;

	*token = NULL;
	if (!root)
		return -1;
	v = get_string(root, "access_token", CB_GRAPH_MAX_TOKEN);
	/* The token goes into an HTTP header: printable characters only. */
	if (!v || !id_valid(v)) {
		json_decref(root);
		return cb_err_set(err, "token response has no valid \"access_token\"");
	}
	exp = json_object_get(root, "expires_in");
	if (json_is_integer(exp))
		seconds = json_integer_value(exp);
	else if (json_is_string(exp)) /* older endpoints send a string */
		seconds = strtoll(json_string_value(exp), NULL, 10);
	if (seconds < 60)
		seconds = 60;
	if (seconds > 86400)
		seconds = 86400;
	*expires_in_s = seconds;
	*token = strdup(v);
	json_decref(root);
	return *token ? 0 : cb_err_set(err, "out of memory");
}
