/*
 * graph_internal.h: the pieces of the Graph backend, shared by its files and
 * the unit tests. Nothing outside src/backend/graph and tests includes it.
 *
 * Every function runs in the thread that owns the struct cb_graph (the
 * executor thread for jobs, the calling thread for doctor).
 */
#ifndef CLAWBACK_BACKEND_GRAPH_INTERNAL_H
#define CLAWBACK_BACKEND_GRAPH_INTERNAL_H

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "base/buf.h"
#include "base/err.h"
#include "config/config.h"

/* Pages of one search followed: a Message-ID matches a handful of mails, 20 pages of 50 is plenty. */
#define CB_GRAPH_MAX_SEARCH_PAGES 20
/* Messages requested per search page ($top). */
#define CB_GRAPH_PAGE_SIZE 50
/* Hits acted on per job; duplicates of one Message-ID in one mailbox are few (journal, Sent Items). */
#define CB_GRAPH_MAX_HITS 32
/* Levels of a destination folder path ("Quarantine/PZD/2026" has 3). */
#define CB_GRAPH_MAX_PATH_DEPTH 16
/* Searches again after a 404 on an item id (the user or a rule moved it) before giving up. */
#define CB_GRAPH_MAX_RESEARCH 2
/* 409 ErrorFolderExists responses tolerated while creating one path segment. */
#define CB_GRAPH_MAX_FOLDER_CONFLICTS 2
/* Maximum length of an item or folder id accepted from Graph (real ids are about 150 characters). */
#define CB_GRAPH_MAX_ID 1024
/* Maximum length of a display name kept (Exchange allows 255 characters). */
#define CB_GRAPH_MAX_NAME 256
/* Maximum length of an access token accepted (real ones are 1.5 to 4 KB). */
#define CB_GRAPH_MAX_TOKEN 16384
/* Maximum size of an error body parsed as JSON. Larger bodies are reported by size only. */
#define CB_GRAPH_MAX_ERROR_BODY (64 * 1024)
/* Characters of a peer's error message kept in an outcome text. */
#define CB_GRAPH_MAX_PEER_TEXT 160
/*
 * A token is refreshed this long before it expires, or after half its
 * lifetime when that comes first (a token that lives under 10 minutes).
 */
#define CB_GRAPH_TOKEN_EARLY_MS (5 * 60 * 1000)
/* After a failed token request, jobs get the same error for this long instead of a new request. */
#define CB_GRAPH_TOKEN_FAIL_HOLD_MS (30 * 1000)
/* Lifetime of a client assertion. Entra ID documents 10 minutes as the maximum. */
#define CB_GRAPH_ASSERTION_LIFETIME_S 600
/* Folder names and destination ids kept per backend (mailbox, folder) pairs. */
#define CB_GRAPH_FOLDER_CACHE 1024
/* Token cache entries, one per (cloud, tenant, resource). */
#define CB_GRAPH_TOKEN_CACHE 4
/* Request timeout when graph.timeout_ms is not set. */
#define CB_GRAPH_DEFAULT_TIMEOUT_MS 30000

/* Endpoints of the configured cloud. */
struct graph_endpoints {
	char cloud[16];
	char token_url[512];   /* https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token */
	char graph_root[256];  /* https://graph.microsoft.com, without a trailing slash */
	char scope[300];       /* https://graph.microsoft.com/.default */
	int has_permanent_delete; /* message permanentDelete exists in this cloud */
};

int graph_endpoints_resolve(const struct cb_graph_config *cfg, struct graph_endpoints *ep,
			    struct cb_err *err);

/* ---- odata.c: URL building ---- */

/* Appends s percent-encoded: every byte but A-Z a-z 0-9 - . _ ~ becomes %XX. */
int graph_pct_encode(struct cb_buf *out, const char *s);
/* Appends the encoded OData filter "property eq 'value'" with ' doubled inside value. */
int graph_odata_eq(struct cb_buf *out, const char *property, const char *value);
/* Tells whether name is a well-known folder name (case-insensitive); writes its canonical form. */
int graph_wellknown_folder(const char *name, const char **canonical);
/* Tells whether url lies under root (same scheme, host and port, path below it). */
int graph_url_under(const char *url, const char *root);

/*
 * Builds the URL of a message search in mailbox by Message-ID; folder is NULL
 * for the whole mailbox or a well-known name. The caller frees the result.
 */
char *graph_search_url(const char *root, const char *mailbox, const char *folder,
		       const char *message_id);

/* ---- parse.c: response bodies ---- */

struct graph_hit {
	char *id;
	char *parent_folder_id;
	int in_recoverable; /* found by the Recoverable Items search */
	char *folder_name; /* display name of parent_folder_id, NULL until looked up */
};

/*
 * Parses one page of a message search. Appends to hits (up to max, counted in
 * *n, skipping ids already present and messages whose internetMessageId is
 * not message_id) and sets *next_link (caller frees, NULL on the last page).
 * *dropped counts hits over max.
 */
int graph_parse_messages(const char *body, size_t len, const char *message_id,
			 struct graph_hit *hits, size_t max, size_t *n, size_t *dropped,
			 char **next_link, struct cb_err *err);
void graph_hits_clear(struct graph_hit *hits, size_t n);

/* Parses a mailFolder: id and displayName (either may be NULL when not wanted). */
int graph_parse_folder(const char *body, size_t len, char **id, char **display_name,
		       struct cb_err *err);
/* Parses the message a move returns: its parentFolderId, the id of the folder it is in now. */
int graph_parse_moved(const char *body, size_t len, char **parent_folder_id, struct cb_err *err);
/* Parses a childFolders listing: *id is the first folder's id, NULL when the list is empty. */
int graph_parse_folder_list(const char *body, size_t len, char **id, struct cb_err *err);
/* Parses a token response; *expires_in_s is clamped to [60, 86400]. */
int graph_parse_token(const char *body, size_t len, char **token, int64_t *expires_in_s,
		      struct cb_err *err);

/* ---- errors.c: classification ---- */

/* The parts of a Graph or Entra ID error body that decisions use, as printable text. */
struct graph_error {
	char code[64];       /* error.code (Graph) or error (Entra ID) */
	char inner_code[64]; /* innermost innerError.code */
	char message[CB_GRAPH_MAX_PEER_TEXT + 8];
	char request_id[128];
	long aadsts; /* first Entra ID AADSTS code, 0 when none */
	int parsed;  /* 1 when the body was a JSON error object */
};

/* Fills e from a response body; never fails, garbage leaves fields empty. */
void graph_error_parse(const struct cb_http_response *resp, struct graph_error *e);
/* Tells whether resp is a 2xx response. */
int graph_response_ok(const struct cb_http_response *resp);
/*
 * Fills out (result, text, http_status, request_id, retry_after_ms) for a
 * failed Graph API response; step names what was tried ("search", "move").
 */
void graph_classify(const struct cb_http_response *resp, const char *step,
		    const char *client_request_id, struct cb_outcome *out);
/* The same for a failed token request, with hints for the AADSTS codes. */
void graph_classify_token(const struct cb_http_response *resp, struct cb_outcome *out);
/* Copies src into dst as printable ASCII, capped at max characters, "..." when cut. */
void graph_printable(char *dst, size_t size, const char *src, size_t max);

/* ---- jwt.c: client assertion ---- */

struct graph_key {
	EVP_PKEY *pkey;
	X509 *cert;
	OSSL_LIB_CTX *libctx; /* private context with the legacy provider, or NULL */
	OSSL_PROVIDER *providers[2]; /* legacy and default, loaded into libctx */
};

int graph_key_load(const struct cb_graph_config *cfg, struct graph_key *key, struct cb_err *err);
void graph_key_free(struct graph_key *key);
/* Signs an assertion; alg is "PS256" or "RS256". The caller frees *out. */
int graph_jwt_sign(const struct graph_key *key, const char *alg, const char *client_id,
		   const char *aud, int64_t now_s, char **out, struct cb_err *err);
/* Appends base64url without padding. */
int graph_b64url(struct cb_buf *out, const unsigned char *data, size_t len);
/* Writes a random (version 4) UUID, 36 characters and a NUL. */
void graph_uuid(char out[37]);

/* ---- graph_backend.c: backend state and caches ---- */

struct graph_cache_entry {
	char *key;
	char *value;
};

struct graph_cache {
	struct graph_cache_entry entries[CB_GRAPH_FOLDER_CACHE];
	size_t next; /* slot replaced next (round robin) */
};

const char *graph_cache_get(const struct graph_cache *c, const char *key);
/* Stores a copy of value; returns the stored copy, or NULL when out of memory. */
const char *graph_cache_put(struct graph_cache *c, const char *key, const char *value);
void graph_cache_free(struct graph_cache *c);

struct graph_token {
	char key[600]; /* cloud|tenant|scope */
	char *access_token;
	int64_t expires_ms;     /* wall clock */
	int64_t renew_ms;       /* wall clock: a new token is fetched from then on */
	int64_t failed_until_ms; /* a failed request is remembered until then */
	unsigned long generation; /* changes with every stored token */
	struct cb_outcome failure;
};

struct cb_graph;

/* Requests a token; fills *token and *expires_in_s, or out on failure. Replaceable in tests. */
typedef int (*graph_token_fetch_fn)(struct cb_graph *g, char **token, int64_t *expires_in_s,
				    struct cb_outcome *out);

struct cb_graph {
	struct cb_graph_config cfg; /* a deep copy of the strings */
	struct graph_endpoints ep;
	char *proxy_password; /* read once at open, wiped at close */
	size_t proxy_password_len;
	long timeout_ms;
	struct graph_token tokens[CB_GRAPH_TOKEN_CACHE];
	struct graph_cache folders;
	graph_token_fetch_fn fetch_token;
	unsigned long token_generation; /* last generation handed out */
};

int graph_open(const struct cb_graph_config *cfg, struct cb_graph **out, struct cb_err *err);
void graph_close(struct cb_graph *g);

/* ---- token.c ---- */

/*
 * Returns a valid access token (owned by the cache) or NULL with out filled.
 * Fetches one (blocking) when the cache has none or its renewal time
 * (CB_GRAPH_TOKEN_EARLY_MS before it expires, or half its lifetime) has come.
 */
const char *graph_token_get(struct cb_graph *g, int64_t now_ms, unsigned long *generation,
			    struct cb_outcome *out);
/* Drops the cached token when it is still the one of that generation (after a 401). */
void graph_token_invalidate(struct cb_graph *g, unsigned long generation);
/* Stores a token that expires in expires_in_s seconds. */
int graph_token_put(struct cb_graph *g, const char *token, int64_t now_ms, int64_t expires_in_s);
/* Builds the token request (its body contains the secret, so wipe it with graph_request_wipe). */
int graph_token_request(struct cb_graph *g, struct cb_http_request *req, struct cb_err *err);
/* The default fetcher: a blocking request to the token endpoint. */
int graph_token_fetch_blocking(struct cb_graph *g, char **token, int64_t *expires_in_s,
			       struct cb_outcome *out);

/* ---- http.c ---- */

/* Applies TLS, CA file and proxy settings to an easy handle (the configure_easy hook). */
void graph_configure_easy(struct cb_graph *g, CURL *easy);
/* Performs req with a blocking easy handle and fills resp (cb_buf_free(&resp->body) after). */
void graph_http_perform(struct cb_graph *g, const struct cb_http_request *req,
			struct cb_http_response *resp);
/* Fills req with method, url, headers (bearer token, ids, Prefer) and body; takes url and body. */
int graph_request_build(struct cb_graph *g, struct cb_http_request *req, const char *method,
			char *url, char *body, const char *token, const char *step);
/* Clears a request whose body contains a secret, wiping the body first. */
void graph_request_wipe(struct cb_http_request *req);

/* ---- op.c ---- */

void *graph_op_start(void *state, const struct cb_job *job);
enum cb_op_step graph_op_next(void *op, const struct cb_http_response *resp,
			      struct cb_http_request *req, struct cb_outcome *out);
void graph_op_free(void *op);

#endif
