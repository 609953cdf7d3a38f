/*
 * op.c: the per-job state machine of the Graph backend.
 *
 * Runs in the executor thread, one struct graph_op per job. Steps:
 *
 *   search ──(nextLink)──► search ... ─┬─ hits ──────────────────────────────► act
 *                                      └─ none ──► search_recoverable ─┬─ hits ──► act
 *                                                                      └─ none ──► not_found
 *   act: log only / dry run ─► folder names ─► done, touching nothing
 *        move ─► [destination] ─► move per hit ─► folder names ─► done
 *        soft delete ─► move per hit to recoverableitemsdeletions ─► folder names ─► done
 *        hard delete ─► permanentDelete per hit (soft delete where the cloud lacks it) ─► ...
 *   A 404 while acting means the id went stale: search again (CB_GRAPH_MAX_RESEARCH times).
 *   A 401 sends the same request once more with a new token.
 *
 * A fresh job that moves to a well-known folder makes two round trips before
 * the mail is moved: the search and the move, with the well-known name as
 * destinationId. The destination id is looked up first ([destination]) only
 * for a folder path (each segment found or created, cached per mailbox) and
 * for a job that may have acted before a crash (store.h: may_have_acted), so
 * that a hit already in the destination is skipped and never moved twice.
 * A fresh job compares the hits with the destination id when the cache has
 * it; otherwise a hit already in the destination is moved into the folder it
 * is in, which changes nothing, and the move response (parentFolderId equal
 * to the hit's) reports it as already in place. Every move response puts the
 * destination id into the cache. The folder display names for found_in are
 * looked up after acting (cached per mailbox), so they do not delay the
 * action; a failed name lookup after acting only leaves the name unknown.
 *
 * Untrusted input: the mailbox and Message-ID (from the feed, encoded by
 * odata.c) and every response (parsed by parse.c, classified by errors.c).
 * Counts from the peer are never trusted: hits are capped at CB_GRAPH_MAX_HITS
 * and pages at CB_GRAPH_MAX_SEARCH_PAGES, and a nextLink is followed only
 * when it points under the configured Graph root (the bearer token must not
 * go to another host).
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/graph/graph_internal.h"
#include "base/util.h"

/* Longest Message-ID searched (RFC 5322 caps a header line at 998 characters). */
#define GRAPH_MAX_MESSAGE_ID 998
/* Longest mailbox address (RFC 5321 path limit). */
#define GRAPH_MAX_MAILBOX 320

#define RECOVERABLE_NAME "Recoverable Items"
#define UNKNOWN_FOLDER "(unknown folder)"

enum op_state {
	OP_SEARCH,
	OP_SEARCH_RECOVERABLE,
	OP_DEST_WELLKNOWN,
	OP_DEST_LIST,
	OP_DEST_CREATE,
	OP_ACT,
	OP_FOLDER_NAME,
};

/*
 * Strings are allocated to size, so an operation waiting in the executor
 * costs a few hundred bytes (CB_EXEC_MAX_ACTIVE of them are held at once).
 */
struct graph_op {
	struct cb_graph *g;
	char *mailbox;
	char *message_id;
	enum cb_action_kind kind;
	int dry_run;
	char *folder; /* move destination as configured: a well-known name or a path */
	int may_have_acted; /* an earlier run was interrupted while acting */
	enum op_state state;

	/* The request in flight, kept to send it again after a 401. */
	const char *method;
	char *url;
	char *body;
	const char *step;
	char client_request_id[40];
	unsigned long token_generation;
	int auth_retried;

	struct graph_hit *hits; /* hit_count entries */
	size_t hit_count;
	size_t dropped; /* hits over CB_GRAPH_MAX_HITS */
	int pages;
	int truncated; /* paging stopped early */
	int researches;
	size_t cursor; /* hit whose action or folder name is next */

	char *dest_id; /* destination folder id, NULL while unknown */
	const char *dest_name; /* well-known destination sent as destinationId while dest_id is NULL */
	size_t segment_count;
	size_t segment_index;
	char *parent_id;
	int conflicts;

	int acted;
	int already;
	int left_deleted; /* move: hits the user already deleted (Recoverable Items) */
	int soft_fallback; /* hard delete done as soft delete: no permanentDelete in this cloud */
	int names_failed; /* a folder name lookup after acting failed: the rest stay unknown */
	char *purge_rejected; /* "HTTP 400 BadRequest" when Graph rejected permanentDelete */
};

static enum cb_op_step emit(struct graph_op *op, struct cb_http_request *req, struct cb_outcome *out);
static enum cb_op_step start_search(struct graph_op *op, enum op_state state,
				    struct cb_http_request *req, struct cb_outcome *out);
static enum cb_op_step begin_names(struct graph_op *op, struct cb_http_request *req,
				   struct cb_outcome *out);
static enum cb_op_step next_segment(struct graph_op *op, struct cb_http_request *req,
				    struct cb_outcome *out);
static enum cb_op_step next_act(struct graph_op *op, struct cb_http_request *req,
				struct cb_outcome *out);

static enum cb_op_step finish(struct cb_outcome *out, enum cb_result result, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum cb_op_step finish(struct cb_outcome *out, enum cb_result result, const char *fmt, ...)
{
	va_list ap;

	out->result = result;
	va_start(ap, fmt);
	vsnprintf(out->text, sizeof(out->text), fmt, ap);
	va_end(ap);
	return CB_OP_DONE;
}

static enum cb_op_step fail(struct graph_op *op, const struct cb_http_response *resp,
			    struct cb_outcome *out)
{
	graph_classify(resp, op->step, op->client_request_id, out);
	return CB_OP_DONE;
}

/* Ends the job with a temporary error for a response that could not be used. */
static enum cb_op_step fail_invalid(struct graph_op *op, const struct cb_http_response *resp,
				    const struct cb_err *err, struct cb_outcome *out)
{
	out->http_status = resp->status;
	graph_printable(out->request_id, sizeof(out->request_id), resp->request_id, 100);
	return finish(out, CB_RESULT_TEMPORARY, "%s response is invalid: %s (request-id %s, client-request-id %s)",
		      op->step, err->msg, out->request_id[0] ? out->request_id : "-",
		      op->client_request_id);
}

/* Sends a new request; takes url and body. */
static enum cb_op_step send_request(struct graph_op *op, struct cb_http_request *req,
			    struct cb_outcome *out, const char *method, char *url, char *body,
			    const char *step)
{
	free(op->url);
	free(op->body);
	op->method = method;
	op->url = url;
	op->body = body;
	op->step = step;
	op->auth_retried = 0;
	if (!url)
		return finish(out, CB_RESULT_TEMPORARY, "%s not sent: out of memory", step);
	return emit(op, req, out);
}

static enum cb_op_step emit(struct graph_op *op, struct cb_http_request *req, struct cb_outcome *out)
{
	const char *token = graph_token_get(op->g, cb_now_ms(), &op->token_generation, out);
	char *url = strdup(op->url);
	char *body = op->body ? strdup(op->body) : NULL;

	if (!token) {
		free(url);
		free(body);
		return CB_OP_DONE;
	}
	if (!url || (op->body && !body) ||
	    graph_request_build(op->g, req, op->method, url, body, token, op->step) < 0) {
		if (!req->url)
			free(url);
		if (!req->body)
			free(body);
		cb_http_request_clear(req);
		return finish(out, CB_RESULT_TEMPORARY, "%s not sent: out of memory", op->step);
	}
	cb_strlcpy(op->client_request_id, req->client_request_id, sizeof(op->client_request_id));
	return CB_OP_REQUEST;
}

/* Builds "{root}/v1.0/users/{mailbox}" followed by the formatted suffix. */
static char *user_url(struct graph_op *op, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static char *user_url(struct graph_op *op, const char *fmt, ...)
{
	struct cb_buf url;
	char suffix[CB_GRAPH_MAX_ID * 3 + 512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(suffix, sizeof(suffix), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(suffix))
		return NULL;
	cb_buf_init(&url, 0);
	if (cb_buf_printf(&url, "%s/v1.0/users/", op->g->ep.graph_root) < 0 ||
	    graph_pct_encode(&url, op->mailbox) < 0 || cb_buf_puts(&url, suffix) < 0) {
		cb_buf_free(&url);
		return NULL;
	}
	return cb_buf_steal(&url);
}

/* Percent-encodes an id for a path segment into out (sized for CB_GRAPH_MAX_ID). */
static void encode_id(const char *id, char *out, size_t size)
{
	struct cb_buf b;

	cb_buf_init(&b, size - 1);
	if (graph_pct_encode(&b, id) == 0)
		memcpy(out, b.data, b.len + 1);
	else
		out[0] = '\0';
	cb_buf_free(&b);
}

static char *json_body(const char *key, const char *value)
{
	json_t *obj = json_pack("{s:s}", key, value);
	char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;

	json_decref(obj);
	return text;
}

/* Cache keys: "n" (folder name) or "d" (destination id), the mailbox in lower case, then the value. */
static void cache_key(const struct graph_op *op, char kind, const char *value, char *out, size_t size)
{
	int n = snprintf(out, size, "%c\x1f", kind);

	for (const char *p = op->mailbox; *p && (size_t)n + 2 < size; p++)
		out[n++] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	snprintf(out + n, size - (size_t)n, "\x1f%s", value);
}

static const char *hit_folder_name(const struct graph_hit *h)
{
	if (h->in_recoverable)
		return RECOVERABLE_NAME;
	return h->folder_name ? h->folder_name : UNKNOWN_FOLDER;
}

/* ---- start and search ---- */

void *graph_op_start(void *state, const struct cb_job *job)
{
	struct graph_op *op = calloc(1, sizeof(*op));

	if (!op)
		return NULL;
	op->g = state;
	op->mailbox = cb_strdup(job->mailbox);
	op->message_id = cb_strdup(job->message_id);
	op->kind = job->action.kind;
	op->dry_run = job->action.dry_run;
	op->may_have_acted = job->may_have_acted;
	if (op->kind == CB_ACTION_MOVE)
		op->folder = strdup(job->action.folder);
	if ((job->mailbox && !op->mailbox) || (job->message_id && !op->message_id) ||
	    (op->kind == CB_ACTION_MOVE && !op->folder)) {
		graph_op_free(op);
		return NULL;
	}
	return op;
}

void graph_op_free(void *opaque)
{
	struct graph_op *op = opaque;

	if (!op)
		return;
	graph_hits_clear(op->hits, op->hit_count);
	free(op->hits);
	free(op->mailbox);
	free(op->message_id);
	free(op->folder);
	free(op->url);
	free(op->body);
	free(op->dest_id);
	free(op->parent_id);
	free(op->purge_rejected);
	free(op);
}

/*
 * Returns segment index of a path validated by count_segments() and sets
 * *len to its length.
 */
static const char *path_segment(const char *path, size_t index, size_t *len)
{
	for (size_t i = 0; i < index; i++)
		path += strcspn(path, "/") + 1;
	*len = strcspn(path, "/");
	return path;
}

/*
 * Counts the segments of a destination path: 1 to CB_GRAPH_MAX_PATH_DEPTH,
 * none empty, no control characters. Returns 0, or -1 when the path is invalid.
 */
static int count_segments(const char *path, size_t *count)
{
	const char *p = path;

	*count = 0;
	while (*p) {
		size_t n = strcspn(p, "/");

		if (n == 0 || *count >= CB_GRAPH_MAX_PATH_DEPTH)
			return -1;
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
				return -1;
		(*count)++;
		p += n;
		if (*p == '/' && *++p == '\0')
			return -1;
	}
	return *count ? 0 : -1;
}

static enum cb_op_step start_search(struct graph_op *op, enum op_state state,
				    struct cb_http_request *req, struct cb_outcome *out)
{
	const char *folder = state == OP_SEARCH_RECOVERABLE ? "recoverableitemsdeletions" : NULL;

	op->state = state;
	op->pages = 0;
	return send_request(op, req, out, "GET",
		    graph_search_url(op->g->ep.graph_root, op->mailbox, folder, op->message_id),
		    NULL, state == OP_SEARCH ? "search" : "search_recoverable");
}

static enum cb_op_step op_begin(struct graph_op *op, struct cb_http_request *req, struct cb_outcome *out)
{
	if (!op->mailbox || !*op->mailbox || strlen(op->mailbox) > GRAPH_MAX_MAILBOX)
		return finish(out, CB_RESULT_PERMANENT, "mailbox is empty or longer than %d characters",
			      GRAPH_MAX_MAILBOX);
	if (!op->message_id || !*op->message_id || strlen(op->message_id) > GRAPH_MAX_MESSAGE_ID)
		return finish(out, CB_RESULT_PERMANENT, "Message-ID is empty or longer than %d characters",
			      GRAPH_MAX_MESSAGE_ID);
	if (op->kind == CB_ACTION_SKIP)
		return finish(out, CB_RESULT_DONE, "nothing to do (the rule says skip)");
	/* An invalid path is the administrator's to fix: check it before searching. */
	if (op->kind == CB_ACTION_MOVE && !op->dry_run && count_segments(op->folder, &op->segment_count) < 0)
		return finish(out, CB_RESULT_PERMANENT,
			      "invalid destination folder path \"%s\": use a well-known name or segments separated by '/', at most %d levels, no empty segments",
			      op->folder, CB_GRAPH_MAX_PATH_DEPTH);
	return start_search(op, OP_SEARCH, req, out);
}

static enum cb_op_step after_search(struct graph_op *op, struct cb_http_request *req,
				    struct cb_outcome *out);

static enum cb_op_step searched(struct graph_op *op, struct cb_http_request *req, struct cb_outcome *out)
{
	if (op->hit_count == 0 && op->state == OP_SEARCH)
		return start_search(op, OP_SEARCH_RECOVERABLE, req, out);
	if (op->hit_count == 0)
		return finish(out, CB_RESULT_NOT_FOUND,
			      "not found in any folder (Recoverable Items searched too)%s",
			      op->truncated ? "; the search stopped after the page limit" : "");
	return after_search(op, req, out);
}

/*
 * Parses a search page into op->hits. The array is grown to CB_GRAPH_MAX_HITS
 * for the parse and shrunk to the hits found after it.
 */
static int parse_hits(struct graph_op *op, const struct cb_http_response *resp, char **next,
		      struct cb_err *err)
{
	size_t before = op->hit_count;
	struct graph_hit *hits = realloc(op->hits, CB_GRAPH_MAX_HITS * sizeof(*hits));
	int rc;

	if (!hits)
		return cb_err_set(err, "out of memory");
	op->hits = hits;
	rc = graph_parse_messages(resp->body.data, resp->body.len, op->message_id, op->hits,
				  CB_GRAPH_MAX_HITS, &op->hit_count, &op->dropped, next, err);
	for (size_t i = before; i < op->hit_count; i++)
		op->hits[i].in_recoverable = op->state == OP_SEARCH_RECOVERABLE;

	hits = realloc(op->hits, (op->hit_count ? op->hit_count : 1) * sizeof(*hits));
	if (hits)
		op->hits = hits;
	return rc;
}

static enum cb_op_step on_search(struct graph_op *op, const struct cb_http_response *resp,
				 struct cb_http_request *req, struct cb_outcome *out)
{
	char *next = NULL;
	struct cb_err err;

	if (!graph_response_ok(resp))
		return fail(op, resp, out);
	if (parse_hits(op, resp, &next, &err) < 0)
		return fail_invalid(op, resp, &err, out);

	if (next) {
		op->pages++;
		if (op->pages < CB_GRAPH_MAX_SEARCH_PAGES && graph_url_under(next, op->g->ep.graph_root))
			return send_request(op, req, out, "GET", next, NULL, op->step);
		op->truncated = 1;
		free(next);
	}
	return searched(op, req, out);
}

/* ---- folder names of the hits, for found_in ---- */

static enum cb_op_step finish_logged(struct graph_op *op, struct cb_outcome *out);
static enum cb_op_step finish_acted(struct graph_op *op, struct cb_outcome *out);

/* Tells whether the job only logs: nothing is acted on, and names are all it looks up. */
static int logs_only(const struct graph_op *op)
{
	return op->kind == CB_ACTION_LOG || op->dry_run;
}

static enum cb_op_step next_folder_name(struct graph_op *op, struct cb_http_request *req,
					struct cb_outcome *out)
{
	char key[CB_GRAPH_MAX_ID + GRAPH_MAX_MAILBOX + 8];
	char id[CB_GRAPH_MAX_ID * 3 + 1];

	for (; op->cursor < op->hit_count && !op->names_failed; op->cursor++) {
		struct graph_hit *h = &op->hits[op->cursor];
		const char *cached;

		if (h->in_recoverable || h->folder_name)
			continue;
		cache_key(op, 'n', h->parent_folder_id, key, sizeof(key));
		cached = graph_cache_get(&op->g->folders, key);
		if (cached) {
			/* A copy: the cache may replace its entry before this job ends. */
			h->folder_name = strdup(cached);
			continue;
		}
		encode_id(h->parent_folder_id, id, sizeof(id));
		return send_request(op, req, out, "GET", user_url(op, "/mailFolders/%s?$select=displayName", id),
			    NULL, "folder_name");
	}
	return logs_only(op) ? finish_logged(op, out) : finish_acted(op, out);
}

static enum cb_op_step begin_names(struct graph_op *op, struct cb_http_request *req,
				   struct cb_outcome *out)
{
	op->state = OP_FOLDER_NAME;
	op->cursor = 0;
	return next_folder_name(op, req, out);
}

static enum cb_op_step on_folder_name(struct graph_op *op, const struct cb_http_response *resp,
				      struct cb_http_request *req, struct cb_outcome *out)
{
	struct graph_hit *h = &op->hits[op->cursor];
	char key[CB_GRAPH_MAX_ID + GRAPH_MAX_MAILBOX + 8];
	char *name = NULL;

	if (!graph_response_ok(resp)) {
		graph_classify(resp, op->step, op->client_request_id, out);
		/*
		 * The name only labels the outcome. Before anything was acted on, a
		 * temporary error (throttling) ends the job so it runs again later.
		 * After acting, the outcome must record the action: the remaining
		 * names stay unknown, and no more lookups are sent to a server that
		 * pushes back.
		 */
		if (out->result == CB_RESULT_TEMPORARY && logs_only(op))
			return CB_OP_DONE;
		if (out->result == CB_RESULT_TEMPORARY)
			op->names_failed = 1;
		memset(out, 0, sizeof(*out));
		out->retry_after_ms = -1;
	} else if (graph_parse_folder(resp->body.data, resp->body.len, NULL, &name, NULL) == 0) {
		cache_key(op, 'n', h->parent_folder_id, key, sizeof(key));
		graph_cache_put(&op->g->folders, key, name);
		h->folder_name = name;
	}
	op->cursor++;
	return next_folder_name(op, req, out);
}

/* Writes the distinct folder names of the hits, comma-separated. */
static void found_in(const struct graph_op *op, char *out, size_t size)
{
	size_t len = 0;

	out[0] = '\0';
	for (size_t i = 0; i < op->hit_count; i++) {
		const char *name = hit_folder_name(&op->hits[i]);
		int seen = 0;

		for (size_t j = 0; j < i && !seen; j++)
			seen = strcmp(hit_folder_name(&op->hits[j]), name) == 0;
		if (seen)
			continue;
		len += (size_t)snprintf(out + len, size - len, "%s%s", len ? ", " : "", name);
		if (len >= size)
			break;
	}
}

/* ---- outcome texts ---- */

static void describe_plan(const struct graph_op *op, char *out, size_t size)
{
	switch (op->kind) {
	case CB_ACTION_MOVE:
		snprintf(out, size, "would move %zu message(s) to %s", op->hit_count, op->folder);
		break;
	case CB_ACTION_SOFT_DELETE:
		snprintf(out, size, "would soft-delete %zu message(s) (move to Recoverable Items)", op->hit_count);
		break;
	case CB_ACTION_HARD_DELETE:
		snprintf(out, size, "would purge %zu message(s) (%s)", op->hit_count,
			 op->g->ep.has_permanent_delete ? "permanentDelete"
							 : "soft delete: this cloud has no permanentDelete");
		break;
	default:
		snprintf(out, size, "would only log %zu message(s)", op->hit_count);
		break;
	}
}

static enum cb_op_step finish_found(struct graph_op *op, struct cb_outcome *out, const char *summary)
{
	char folders[sizeof(out->found_in)];

	found_in(op, folders, sizeof(folders));
	cb_strlcpy(out->found_in, folders, sizeof(out->found_in));
	return finish(out, CB_RESULT_DONE, "%s; found in %s%s%s", summary, folders,
		      op->dropped ? "; more copies than the per-job limit were left untouched" : "",
		      op->researches ? "; searched again after an id went stale" : "");
}

static enum cb_op_step finish_logged(struct graph_op *op, struct cb_outcome *out)
{
	char summary[300];

	if (op->dry_run)
		describe_plan(op, summary, sizeof(summary));
	else
		snprintf(summary, sizeof(summary), "logged only: %zu message(s), nothing changed", op->hit_count);
	return finish_found(op, out, summary);
}

static enum cb_op_step finish_acted(struct graph_op *op, struct cb_outcome *out)
{
	char summary[400];
	size_t n = 0;

	summary[0] = '\0';
	if (op->kind == CB_ACTION_MOVE) {
		if (op->acted)
			n += (size_t)snprintf(summary + n, sizeof(summary) - n, "moved %d message(s) to %s",
					      op->acted, op->folder);
		if (op->already)
			n += (size_t)snprintf(summary + n, sizeof(summary) - n, "%salready in place (%d in %s)",
					      n ? ", " : "", op->already, op->folder);
		if (op->left_deleted && n < sizeof(summary))
			snprintf(summary + n, sizeof(summary) - n,
				 "%s%d already deleted by the user (in Recoverable Items), left there",
				 n ? ", " : "", op->left_deleted);
	} else if (op->kind == CB_ACTION_HARD_DELETE && !op->soft_fallback) {
		snprintf(summary, sizeof(summary), "purged %d message(s) (permanentDelete)", op->acted);
	} else {
		if (op->acted)
			n += (size_t)snprintf(summary, sizeof(summary),
					      "soft-deleted %d message(s) (moved to Recoverable Items)", op->acted);
		if (op->already)
			n += (size_t)snprintf(summary + n, sizeof(summary) - n,
					      "%salready in place (%d in Recoverable Items)", n ? ", " : "",
					      op->already);
		if (op->soft_fallback && op->purge_rejected && n < sizeof(summary))
			snprintf(summary + n, sizeof(summary) - n,
				 "; not purged: permanentDelete is not available (%s)",
				 op->purge_rejected);
		else if (op->soft_fallback && n < sizeof(summary))
			snprintf(summary + n, sizeof(summary) - n,
				 "; not purged: permanentDelete is not available in the %s cloud",
				 op->g->ep.cloud);
	}
	return finish_found(op, out, summary);
}

/* ---- destination folder ---- */

static enum cb_op_step begin_acting(struct graph_op *op, struct cb_http_request *req,
				    struct cb_outcome *out)
{
	op->state = OP_ACT;
	op->cursor = 0;
	op->acted = op->already = op->left_deleted = 0;
	return next_act(op, req, out);
}

static void destination_key(const struct graph_op *op, char *key, size_t size)
{
	cache_key(op, 'd', op->folder, key, size);
}

/*
 * Decides how the move names its destination: the cached id, the well-known
 * name (a fresh job, no lookup), or an id looked up first (a path, or a job
 * that may have acted before a crash and must skip hits already moved).
 */
static enum cb_op_step start_destination(struct graph_op *op, struct cb_http_request *req,
					 struct cb_outcome *out)
{
	char key[CB_FOLDER_MAX + GRAPH_MAX_MAILBOX + 8];
	const char *cached, *wellknown, *first;
	size_t len;

	destination_key(op, key, sizeof(key));
	cached = graph_cache_get(&op->g->folders, key);
	if (cached && *cached) {
		free(op->dest_id);
		op->dest_id = strdup(cached);
		if (!op->dest_id)
			return finish(out, CB_RESULT_TEMPORARY, "out of memory");
		return begin_acting(op, req, out);
	}

	if (op->segment_count == 1 && graph_wellknown_folder(op->folder, &wellknown)) {
		op->dest_name = wellknown;
		if (!op->may_have_acted)
			return begin_acting(op, req, out);
		op->state = OP_DEST_WELLKNOWN;
		return send_request(op, req, out, "GET", user_url(op, "/mailFolders/%s?$select=id", wellknown),
			    NULL, "destination");
	}

	free(op->parent_id);
	op->segment_index = 0;
	first = path_segment(op->folder, 0, &len);
	op->parent_id = strndup(first, len);
	if (op->parent_id && graph_wellknown_folder(op->parent_id, &wellknown)) {
		free(op->parent_id);
		op->parent_id = strdup(wellknown);
		op->segment_index = 1;
	} else {
		free(op->parent_id);
		op->parent_id = strdup("msgfolderroot");
	}
	if (!op->parent_id)
		return finish(out, CB_RESULT_TEMPORARY, "out of memory");
	op->conflicts = 0;
	return next_segment(op, req, out);
}

/* Stores the destination id (taking it) and starts acting. */
static enum cb_op_step destination_found(struct graph_op *op, char *id, struct cb_http_request *req,
					 struct cb_outcome *out)
{
	char key[CB_FOLDER_MAX + GRAPH_MAX_MAILBOX + 8];

	free(op->dest_id);
	op->dest_id = id;
	destination_key(op, key, sizeof(key));
	graph_cache_put(&op->g->folders, key, id);
	return begin_acting(op, req, out);
}

/* Returns the current path segment as a new string, NULL when out of memory. */
static char *current_segment(const struct graph_op *op)
{
	size_t len;
	const char *seg = path_segment(op->folder, op->segment_index, &len);

	return strndup(seg, len);
}

static enum cb_op_step next_segment(struct graph_op *op, struct cb_http_request *req,
				    struct cb_outcome *out)
{
	char parent[CB_GRAPH_MAX_ID * 3 + 1];
	struct cb_buf filter;
	char *url, *segment;
	int rc;

	if (op->segment_index == op->segment_count) {
		char *id = op->parent_id;

		op->parent_id = NULL;
		return destination_found(op, id, req, out);
	}
	segment = current_segment(op);
	if (!segment)
		return finish(out, CB_RESULT_TEMPORARY, "out of memory");
	encode_id(op->parent_id, parent, sizeof(parent));
	cb_buf_init(&filter, 0);
	rc = graph_odata_eq(&filter, "displayName", segment);
	free(segment);
	if (rc < 0) {
		cb_buf_free(&filter);
		return finish(out, CB_RESULT_TEMPORARY, "out of memory");
	}
	url = user_url(op, "/mailFolders/%s/childFolders?$filter=%s&$select=id,displayName", parent,
		       filter.data);
	cb_buf_free(&filter);
	op->state = OP_DEST_LIST;
	return send_request(op, req, out, "GET", url, NULL, "find_folder");
}

static enum cb_op_step on_dest_wellknown(struct graph_op *op, const struct cb_http_response *resp,
					 struct cb_http_request *req, struct cb_outcome *out)
{
	char *id = NULL;
	struct cb_err err;

	if (!graph_response_ok(resp))
		return fail(op, resp, out);
	if (graph_parse_folder(resp->body.data, resp->body.len, &id, NULL, &err) < 0)
		return fail_invalid(op, resp, &err, out);
	return destination_found(op, id, req, out);
}

static enum cb_op_step on_dest_list(struct graph_op *op, const struct cb_http_response *resp,
				    struct cb_http_request *req, struct cb_outcome *out)
{
	char parent[CB_GRAPH_MAX_ID * 3 + 1];
	char *id = NULL, *segment, *body;
	struct cb_err err;

	if (!graph_response_ok(resp))
		return fail(op, resp, out);
	if (graph_parse_folder_list(resp->body.data, resp->body.len, &id, &err) < 0)
		return fail_invalid(op, resp, &err, out);
	if (id) {
		free(op->parent_id);
		op->parent_id = id;
		op->segment_index++;
		op->conflicts = 0;
		return next_segment(op, req, out);
	}
	encode_id(op->parent_id, parent, sizeof(parent));
	segment = current_segment(op);
	body = segment ? json_body("displayName", segment) : NULL;
	free(segment);
	if (!body)
		return finish(out, CB_RESULT_TEMPORARY, "out of memory");
	op->state = OP_DEST_CREATE;
	return send_request(op, req, out, "POST", user_url(op, "/mailFolders/%s/childFolders", parent),
		    body, "create_folder");
}

static enum cb_op_step on_dest_create(struct graph_op *op, const struct cb_http_response *resp,
				      struct cb_http_request *req, struct cb_outcome *out)
{
	char *id = NULL;
	struct cb_err err;

	/* 409 ErrorFolderExists: another job created it since our lookup, so look it up again. */
	if (resp->curl_code == CURLE_OK && resp->status == 409 &&
	    op->conflicts < CB_GRAPH_MAX_FOLDER_CONFLICTS) {
		op->conflicts++;
		return next_segment(op, req, out);
	}
	if (!graph_response_ok(resp))
		return fail(op, resp, out);
	if (graph_parse_folder(resp->body.data, resp->body.len, &id, NULL, &err) < 0)
		return fail_invalid(op, resp, &err, out);
	free(op->parent_id);
	op->parent_id = id;
	op->segment_index++;
	op->conflicts = 0;
	return next_segment(op, req, out);
}

/* ---- acting on each hit ---- */

static enum cb_op_step after_search(struct graph_op *op, struct cb_http_request *req,
				    struct cb_outcome *out)
{
	if (logs_only(op))
		return begin_names(op, req, out);
	if (op->kind == CB_ACTION_MOVE)
		return start_destination(op, req, out);
	op->soft_fallback = op->kind == CB_ACTION_HARD_DELETE && !op->g->ep.has_permanent_delete;
	return begin_acting(op, req, out);
}

static enum cb_op_step next_act(struct graph_op *op, struct cb_http_request *req,
				struct cb_outcome *out)
{
	char id[CB_GRAPH_MAX_ID * 3 + 1];
	int soft = op->kind == CB_ACTION_SOFT_DELETE || op->soft_fallback;

	for (; op->cursor < op->hit_count; op->cursor++) {
		struct graph_hit *h = &op->hits[op->cursor];

		encode_id(h->id, id, sizeof(id));
		if (op->kind == CB_ACTION_MOVE) {
			/* Moving a mail out of Recoverable Items would give it back to the user. */
			if (h->in_recoverable) {
				op->left_deleted++;
				continue;
			}
			if (op->dest_id && strcmp(h->parent_folder_id, op->dest_id) == 0) {
				op->already++;
				continue;
			}
			return send_request(op, req, out, "POST", user_url(op, "/messages/%s/move", id),
				    json_body("destinationId", op->dest_id ? op->dest_id : op->dest_name), "move");
		}
		if (soft) {
			if (h->in_recoverable) {
				op->already++;
				continue;
			}
			return send_request(op, req, out, "POST", user_url(op, "/messages/%s/move", id),
				    json_body("destinationId", "recoverableitemsdeletions"), "soft_delete");
		}
		/* Hard delete purges hits in Recoverable Items too. */
		return send_request(op, req, out, "POST", user_url(op, "/messages/%s/permanentDelete", id),
			    strdup(""), "hard_delete");
	}
	return begin_names(op, req, out);
}

/*
 * Counts a successful move of the current hit: already in place when the
 * message is in the folder it was found in, and the destination id (the
 * message's new parentFolderId) goes into the cache, so later hits and jobs
 * of this mailbox compare before they move. A response without a usable
 * parentFolderId counts as moved.
 */
static void count_move(struct graph_op *op, const struct cb_http_response *resp)
{
	const struct graph_hit *h = &op->hits[op->cursor];
	char key[CB_FOLDER_MAX + GRAPH_MAX_MAILBOX + 8];
	char *parent = NULL;

	if (graph_parse_moved(resp->body.data, resp->body.len, &parent, NULL) < 0) {
		op->acted++;
		return;
	}
	if (strcmp(parent, h->parent_folder_id) == 0)
		op->already++;
	else
		op->acted++;
	if (op->dest_id) {
		free(parent);
		return;
	}
	destination_key(op, key, sizeof(key));
	graph_cache_put(&op->g->folders, key, parent);
	op->dest_id = parent;
}

/*
 * Tells whether a failed permanentDelete means that the endpoint does not
 * exist here (a cloud or tenant without it): 400 BadRequest ("Resource not
 * found for the segment 'permanentDelete'"), or a 404 other than
 * ErrorItemNotFound for an item the search has just returned.
 */
static int purge_unavailable(const struct cb_http_response *resp, struct graph_error *e)
{
	if (resp->curl_code != CURLE_OK)
		return 0;
	graph_error_parse(resp, e);
	if (resp->status == 400)
		return strcmp(e->code, "BadRequest") == 0;
	return resp->status == 404 && strcmp(e->code, "ErrorItemNotFound") != 0;
}

static enum cb_op_step on_act(struct graph_op *op, const struct cb_http_response *resp,
			      struct cb_http_request *req, struct cb_outcome *out)
{
	char key[CB_FOLDER_MAX + GRAPH_MAX_MAILBOX + 8];
	struct graph_error e;

	if (graph_response_ok(resp)) {
		if (op->kind == CB_ACTION_MOVE)
			count_move(op, resp);
		else
			op->acted++;
		op->cursor++;
		return next_act(op, req, out);
	}

	/*
	 * Hard delete without permanentDelete: soft-delete this hit and the rest
	 * instead, as in a cloud known to lack it, and record that in the outcome.
	 * Leaving the mail in the mailbox would be worse.
	 */
	if (op->kind == CB_ACTION_HARD_DELETE && !op->soft_fallback &&
	    purge_unavailable(resp, &e)) {
		char rejected[96];

		snprintf(rejected, sizeof(rejected), "HTTP %ld %s", resp->status,
			 e.code[0] ? e.code : "without an error code");
		free(op->purge_rejected);
		op->purge_rejected = strdup(rejected);
		op->soft_fallback = 1;
		return next_act(op, req, out);
	}
	/*
	 * 404: the item moved since the search (a user or an inbox rule), or the
	 * cached destination folder was deleted. Forget the destination and search again.
	 */
	if (resp->curl_code == CURLE_OK && resp->status == 404 && op->researches < CB_GRAPH_MAX_RESEARCH) {
		op->researches++;
		if (op->kind == CB_ACTION_MOVE && op->dest_id) {
			destination_key(op, key, sizeof(key));
			graph_cache_put(&op->g->folders, key, "");
			free(op->dest_id);
			op->dest_id = NULL;
		}
		graph_hits_clear(op->hits, op->hit_count);
		op->hit_count = 0;
		op->dropped = 0;
		op->truncated = 0;
		return start_search(op, OP_SEARCH, req, out);
	}
	return fail(op, resp, out);
}

/* ---- entry point ---- */

enum cb_op_step graph_op_next(void *opaque, const struct cb_http_response *resp,
			      struct cb_http_request *req, struct cb_outcome *out)
{
	struct graph_op *op = opaque;

	memset(out, 0, sizeof(*out));
	out->retry_after_ms = -1;
	if (!resp)
		return op_begin(op, req, out);

	out->http_status = resp->status;
	graph_printable(out->request_id, sizeof(out->request_id), resp->request_id, 100);
	if (resp->curl_code == CURLE_OK && resp->status == 401 && !op->auth_retried) {
		op->auth_retried = 1;
		graph_token_invalidate(op->g, op->token_generation);
		return emit(op, req, out);
	}

	switch (op->state) {
	case OP_SEARCH:
	case OP_SEARCH_RECOVERABLE:
		return on_search(op, resp, req, out);
	case OP_FOLDER_NAME:
		return on_folder_name(op, resp, req, out);
	case OP_DEST_WELLKNOWN:
		return on_dest_wellknown(op, resp, req, out);
	case OP_DEST_LIST:
		return on_dest_list(op, resp, req, out);
	case OP_DEST_CREATE:
		return on_dest_create(op, resp, req, out);
	case OP_ACT:
		return on_act(op, resp, req, out);
	}
	return finish(out, CB_RESULT_PERMANENT, "internal error: unknown step");
}
