/*
 * odata.c: Graph URLs: cloud endpoints, percent-encoding, OData string
 * literals and the search URL.
 *
 * Runs in any thread. Untrusted input: the Message-ID and mailbox come from
 * the feed, so every byte outside the RFC 3986 unreserved set is
 * percent-encoded (a '+' left as is would reach Graph as a space, a '#' would
 * cut the URL) and every ' inside an OData literal is doubled.
 */
#include <string.h>
#include <strings.h>

#include "backend/graph/graph_internal.h"
#include "base/util.h"

struct cloud {
	const char *name;
	const char *login;
	const char *graph;
	int has_permanent_delete;
};

/*
 * Endpoints of the national clouds (Microsoft Graph "national cloud
 * deployments"). message permanentDelete is documented for the global
 * service only.
 */
static const struct cloud clouds[] = {
	{"global", "https://login.microsoftonline.com", "https://graph.microsoft.com", 1},
	{"usgov", "https://login.microsoftonline.us", "https://graph.microsoft.us", 0},
	{"usgov-dod", "https://login.microsoftonline.us", "https://dod-graph.microsoft.us", 0},
	{"china", "https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn", 0},
};

static const char *const wellknown_folders[] = {
	"archive",	 "clutter",	  "conflicts",	"conversationhistory",
	"deleteditems",	 "drafts",	  "inbox",	"junkemail",
	"localfailures", "msgfolderroot", "outbox",	"recoverableitemsdeletions",
	"scheduled",	 "searchfolders", "sentitems",	"serverfailures",
	"syncissues",
};

/* Copies url without trailing slashes into out; -1 when it does not fit or is not https. */
static int copy_root(char *out, size_t size, const char *url)
{
	size_t n = strlen(url);

	while (n > 0 && url[n - 1] == '/')
		n--;
	if (n == 0 || n >= size || strncasecmp(url, "https://", 8) != 0)
		return -1;
	memcpy(out, url, n);
	out[n] = '\0';
	return 0;
}

static const struct cloud *cloud_find(const char *name)
{
	if (!name || !*name)
		return &clouds[0];
	for (size_t i = 0; i < sizeof(clouds) / sizeof(clouds[0]); i++)
		if (strcmp(clouds[i].name, name) == 0)
			return &clouds[i];
	return NULL;
}

static int tenant_valid(const char *tenant)
{
	if (!tenant || !*tenant || strlen(tenant) > 128)
		return 0;
	for (const char *p = tenant; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_", *p))
			return 0;
	return 1;
}

int graph_endpoints_resolve(const struct cb_graph_config *cfg, struct graph_endpoints *ep,
			    struct cb_err *err)
{
	const struct cloud *cloud = cloud_find(cfg->cloud);
	char login[256];
	int n;

	memset(ep, 0, sizeof(*ep));
	if (!cloud)
		return cb_err_set(err, "graph.cloud \"%s\" is unknown: use global, usgov, usgov-dod or china",
				  cfg->cloud);
	if (!tenant_valid(cfg->tenant))
		return cb_err_set(err, "graph.tenant is missing or invalid: set the tenant id (a GUID) or its verified domain");
	cb_strlcpy(ep->cloud, cloud->name, sizeof(ep->cloud));
	ep->has_permanent_delete = cloud->has_permanent_delete;

	if (copy_root(login, sizeof(login), cfg->authority_url ? cfg->authority_url : cloud->login) < 0)
		return cb_err_set(err, "graph.authority_url must be an https:// URL of at most 255 characters");
	if (strstr(login, "/oauth2/"))
		n = snprintf(ep->token_url, sizeof(ep->token_url), "%s", login);
	else
		n = snprintf(ep->token_url, sizeof(ep->token_url), "%s/%s/oauth2/v2.0/token", login,
			     cfg->tenant);
	if (n < 0 || (size_t)n >= sizeof(ep->token_url))
		return cb_err_set(err, "graph.authority_url is too long");

	if (copy_root(ep->graph_root, sizeof(ep->graph_root), cfg->graph_url ? cfg->graph_url : cloud->graph) < 0)
		return cb_err_set(err, "graph.graph_url must be an https:// URL of at most 255 characters");
	/* The token's resource is the cloud's Graph service, even when graph_url points elsewhere. */
	snprintf(ep->scope, sizeof(ep->scope), "%s/.default", cloud->graph);
	return 0;
}

int graph_pct_encode(struct cb_buf *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		int unreserved = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
				 (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' ||
				 *p == '~';
		char enc[3] = {'%', hex[*p >> 4], hex[*p & 15]};

		if (unreserved ? cb_buf_append(out, p, 1) : cb_buf_append(out, enc, 3))
			return -1;
	}
	return 0;
}

int graph_odata_eq(struct cb_buf *out, const char *property, const char *value)
{
	struct cb_buf literal;
	int rc;

	cb_buf_init(&literal, 0);
	rc = cb_buf_printf(&literal, "%s eq '", property);
	for (const char *p = value; rc == 0 && *p; p++)
		rc = *p == '\'' ? cb_buf_puts(&literal, "''") : cb_buf_append(&literal, p, 1);
	if (rc == 0)
		rc = cb_buf_puts(&literal, "'");
	if (rc == 0)
		rc = graph_pct_encode(out, literal.data);
	cb_buf_free(&literal);
	return rc;
}

int graph_wellknown_folder(const char *name, const char **canonical)
{
	for (size_t i = 0; i < sizeof(wellknown_folders) / sizeof(wellknown_folders[0]); i++) {
		if (strcasecmp(name, wellknown_folders[i]) == 0) {
			if (canonical)
				*canonical = wellknown_folders[i];
			return 1;
		}
	}
	return 0;
}

int graph_url_under(const char *url, const char *root)
{
	size_t n = strlen(root);

	if (strncasecmp(url, root, n) != 0)
		return 0;
	/* "https://graph.microsoft.com.evil" must not pass as under "https://graph.microsoft.com". */
	return url[n] == '/' || url[n] == '?' || url[n] == '\0';
}

char *graph_search_url(const char *root, const char *mailbox, const char *folder,
		       const char *message_id)
{
	struct cb_buf url;
	int rc;

	cb_buf_init(&url, 0);
	rc = cb_buf_printf(&url, "%s/v1.0/users/", root);
	if (rc == 0)
		rc = graph_pct_encode(&url, mailbox);
	if (rc == 0 && folder)
		rc = cb_buf_printf(&url, "/mailFolders/%s", folder);
	if (rc == 0)
		rc = cb_buf_puts(&url, "/messages?$filter=");
	if (rc == 0)
		rc = graph_odata_eq(&url, "internetMessageId", message_id);
	if (rc == 0)
		rc = cb_buf_printf(&url, "&$select=id,internetMessageId,parentFolderId,subject&$top=%d",
				   CB_GRAPH_PAGE_SIZE);
	if (rc < 0) {
		cb_buf_free(&url);
		return NULL;
	}
	return cb_buf_steal(&url);
}
