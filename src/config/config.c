/*
 * config.c: loads clawback.conf into struct cb_config (see config.h).
 *
 * Runs in the main thread (start, SIGHUP) and in `clawback check-config`.
 * The file is operator input: it passes the INI reader's limits, then every
 * key is looked up in a table of its section and checked for type and range.
 * All problems are collected (the load does not stop at the first one), each
 * as "FILE:LINE: [section] key: message". Values of keys that look like
 * secrets are never copied into messages.
 */
#include "config/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "config/config_values.h"
#include "config/ini_reader.h"

#define MS_PER_SECOND INT64_C(1000)
#define MS_PER_DAY (INT64_C(86400) * MS_PER_SECOND)
/* Maximum retention, in days (10 years). */
#define RETENTION_DAYS_MAX 3650
/* Maximum length of a short text value (a proxy user name), in bytes. */
#define TEXT_MAX 256

enum key_type {
	K_PATH,      /* a file path; relative ones resolve against the config file's folder */
	K_TEXT,      /* a short text such as a user name */
	K_SECRET_FILE, /* a path to a secret; relative ones resolve in $CREDENTIALS_DIRECTORY */
	K_BOOL,
	K_INT,       /* stored as is */
	K_SECONDS,   /* stored in ms */
	K_DAYS,      /* stored in ms */
	K_CHOICE,    /* one of choices */
	K_LOG_LEVEL,
	K_FEED_URL,
	K_CHANNEL,
	K_HTTPS_URL,
	K_PROXY_URL,
	K_GUID,
	K_TENANT,
	K_ADDRESS,
	K_INLINE_SECRET, /* always rejected: hint names the *_file key */
};

struct key_spec {
	const char *key;
	enum key_type type;
	size_t offset;
	int64_t min, max;
	const char *const *choices; /* K_CHOICE */
	const char *hint;           /* K_INLINE_SECRET: the key to use instead */
};

/* Section kinds; the index is also the row of the duplicate-key table. */
enum section_kind { S_GENERAL, S_GRAPH, S_EXECUTOR, S_FEED, S_NONE };

static const char *const backend_choices[] = {"log", "graph", "ews", NULL};
static const char *const proxy_auth_choices[] = {"basic", "ntlm", "any", NULL};
static const char *const cloud_choices[] = {"global", "usgov", "usgov-dod", "china", NULL};
static const char *const alg_choices[] = {"PS256", "RS256", NULL};

#define GEN(field) offsetof(struct cb_config, field)
#define FEED(field) offsetof(struct cb_feed_config, field)
#define GRAPH(field) offsetof(struct cb_graph_config, field)
#define EXEC(field) offsetof(struct cb_executor_config, field)

static const struct key_spec general_keys[] = {
	{"store", K_PATH, GEN(store_path), 0, 0, NULL, NULL},
	{"rules", K_PATH, GEN(rules_path), 0, 0, NULL, NULL},
	{"backend", K_CHOICE, GEN(backend), 0, 0, backend_choices, NULL},
	{"dry_run", K_BOOL, GEN(dry_run), 0, 0, NULL, NULL},
	{"log_level", K_LOG_LEVEL, GEN(log_level), 0, 0, NULL, NULL},
	{"event_retention_days", K_DAYS, GEN(event_retention_ms), 1, RETENTION_DAYS_MAX, NULL, NULL},
	{"audit_retention_days", K_DAYS, GEN(audit_retention_ms), 1, RETENTION_DAYS_MAX, NULL, NULL},
	{NULL, 0, 0, 0, 0, NULL, NULL},
};

static const struct key_spec feed_keys[] = {
	{"url", K_FEED_URL, FEED(url), 0, 0, NULL, NULL},
	{"channel", K_CHANNEL, FEED(channel), 0, 0, NULL, NULL},
	{"token_file", K_SECRET_FILE, FEED(token_file), 0, 0, NULL, NULL},
	{"token", K_INLINE_SECRET, 0, 0, 0, NULL, "token_file"},
	{"proxy", K_PROXY_URL, FEED(proxy), 0, 0, NULL, NULL},
	{"proxy_user", K_TEXT, FEED(proxy_user), 0, 0, NULL, NULL},
	{"proxy_password_file", K_SECRET_FILE, FEED(proxy_password_file), 0, 0, NULL, NULL},
	{"proxy_password", K_INLINE_SECRET, 0, 0, 0, NULL, "proxy_password_file"},
	{"proxy_auth", K_CHOICE, FEED(proxy_auth), 0, 0, proxy_auth_choices, NULL},
	{"ca_file", K_PATH, FEED(ca_file), 0, 0, NULL, NULL},
	/* Retarus closes a connection idle for 5 minutes and recommends a PING every 60 s. */
	{"ping_interval_seconds", K_SECONDS, FEED(ping_interval_ms), 5, 240, NULL, NULL},
	{"pong_timeout_seconds", K_SECONDS, FEED(pong_timeout_ms), 1, 120, NULL, NULL},
	{NULL, 0, 0, 0, 0, NULL, NULL},
};

static const struct key_spec graph_keys[] = {
	{"enabled", K_BOOL, GRAPH(enabled), 0, 0, NULL, NULL},
	{"cloud", K_CHOICE, GRAPH(cloud), 0, 0, cloud_choices, NULL},
	{"tenant", K_TENANT, GRAPH(tenant), 0, 0, NULL, NULL},
	{"client_id", K_GUID, GRAPH(client_id), 0, 0, NULL, NULL},
	{"client_secret_file", K_SECRET_FILE, GRAPH(client_secret_file), 0, 0, NULL, NULL},
	{"client_secret", K_INLINE_SECRET, 0, 0, 0, NULL, "client_secret_file"},
	{"certificate_file", K_PATH, GRAPH(certificate_file), 0, 0, NULL, NULL},
	{"key_file", K_SECRET_FILE, GRAPH(key_file), 0, 0, NULL, NULL},
	{"key", K_INLINE_SECRET, 0, 0, 0, NULL, "key_file"},
	{"pkcs12_password_file", K_SECRET_FILE, GRAPH(pkcs12_password_file), 0, 0, NULL, NULL},
	{"pkcs12_password", K_INLINE_SECRET, 0, 0, 0, NULL, "pkcs12_password_file"},
	{"assertion_alg", K_CHOICE, GRAPH(assertion_alg), 0, 0, alg_choices, NULL},
	{"authority_url", K_HTTPS_URL, GRAPH(authority_url), 0, 0, NULL, NULL},
	{"graph_url", K_HTTPS_URL, GRAPH(graph_url), 0, 0, NULL, NULL},
	{"ca_file", K_PATH, GRAPH(ca_file), 0, 0, NULL, NULL},
	{"proxy", K_PROXY_URL, GRAPH(proxy), 0, 0, NULL, NULL},
	{"proxy_user", K_TEXT, GRAPH(proxy_user), 0, 0, NULL, NULL},
	{"proxy_password_file", K_SECRET_FILE, GRAPH(proxy_password_file), 0, 0, NULL, NULL},
	{"proxy_password", K_INLINE_SECRET, 0, 0, 0, NULL, "proxy_password_file"},
	{"proxy_auth", K_CHOICE, GRAPH(proxy_auth), 0, 0, proxy_auth_choices, NULL},
	{"canary_mailbox", K_ADDRESS, GRAPH(canary_mailbox), 0, 0, NULL, NULL},
	{"timeout_seconds", K_SECONDS, GRAPH(timeout_ms), 1, 600, NULL, NULL},
	{"password", K_INLINE_SECRET, 0, 0, 0, NULL, "client_secret_file"},
	{NULL, 0, 0, 0, 0, NULL, NULL},
};

static const struct key_spec executor_keys[] = {
	/* Microsoft Graph allows 4 concurrent requests per (application, mailbox). */
	{"mailbox_concurrency", K_INT, EXEC(mailbox_concurrency), 1, 4, NULL, NULL},
	/* and 10,000 requests per 10 minutes per (application, mailbox). */
	{"mailbox_rate", K_INT, EXEC(mailbox_rate), 1, 10000, NULL, NULL},
	{"mailbox_window_seconds", K_SECONDS, EXEC(mailbox_window_ms), 1, 86400, NULL, NULL},
	{"server_concurrency", K_INT, EXEC(server_concurrency), 1, 1000, NULL, NULL},
	{"global_concurrency", K_INT, EXEC(global_concurrency), 1, 4096, NULL, NULL},
	{"max_attempts", K_INT, EXEC(max_attempts), 1, 100, NULL, NULL},
	{"retry_base_seconds", K_SECONDS, EXEC(retry_base_ms), 1, 86400, NULL, NULL},
	{"retry_max_seconds", K_SECONDS, EXEC(retry_max_ms), 1, 7 * 86400, NULL, NULL},
	{"not_found_searches", K_INT, EXEC(not_found_searches), 1, 100, NULL, NULL},
	{"not_found_interval_seconds", K_SECONDS, EXEC(not_found_interval_ms), 1, 86400, NULL, NULL},
	{"stop_timeout_seconds", K_SECONDS, EXEC(stop_timeout_ms), 1, 600, NULL, NULL},
	{NULL, 0, 0, 0, 0, NULL, NULL},
};

/* Keys per section table, for the duplicate-key table. */
#define MAX_SECTION_KEYS 32

struct load_state {
	struct cb_config *cfg;
	struct cb_problems problems;
	const char *file;        /* name used in messages */
	char *dir;               /* folder of the config file, for relative paths; NULL when none */
	enum section_kind kind;  /* current section */
	void *target;            /* struct the current section's keys fill, NULL to skip them */
	char label[96];          /* "[general]", "[feed \"x\"]" */
	int section_line;
	int section_lines[S_NONE];                          /* first line of each single section */
	int key_lines[S_FEED + CB_CONFIG_MAX_FEEDS][MAX_SECTION_KEYS]; /* 0 until a key is set */
	int feed_lines[CB_CONFIG_MAX_FEEDS];
	int graph_enabled_set;
	int out_of_memory;
};

static const struct key_spec *section_keys(enum section_kind kind)
{
	switch (kind) {
	case S_GENERAL:
		return general_keys;
	case S_GRAPH:
		return graph_keys;
	case S_EXECUTOR:
		return executor_keys;
	case S_FEED:
		return feed_keys;
	default:
		return NULL;
	}
}

void cb_config_defaults(struct cb_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->store_path = strdup("/var/lib/clawback/clawback.db");
	cfg->rules_path = strdup("/etc/clawback/rules.conf") /* CB_RULES_DEFAULT_PATH */;
	cfg->backend = strdup("log");
	cfg->log_level = CB_LOG_INFO;
	cfg->event_retention_ms = 90 * MS_PER_DAY;
	cfg->audit_retention_ms = 90 * MS_PER_DAY;

	cfg->graph.cloud = strdup("global");
	cfg->graph.assertion_alg = strdup("PS256");
	cfg->graph.timeout_ms = 30 * MS_PER_SECOND;

	cfg->executor.mailbox_concurrency = 4;
	cfg->executor.mailbox_rate = 10000;
	cfg->executor.mailbox_window_ms = 600 * MS_PER_SECOND;
	cfg->executor.server_concurrency = 10;
	/* Microsoft's 130,000 requests per 10 s per application at about 100 ms each (docs/configuration.md). */
	cfg->executor.global_concurrency = 1200;
	cfg->executor.max_attempts = 5;
	cfg->executor.retry_base_ms = 30 * MS_PER_SECOND;
	cfg->executor.retry_max_ms = 480 * MS_PER_SECOND;
	cfg->executor.not_found_searches = 4;
	cfg->executor.not_found_interval_ms = 120 * MS_PER_SECOND;
	cfg->executor.stop_timeout_ms = 10 * MS_PER_SECOND;
}

static void feed_defaults(struct cb_feed_config *feed, const char *name)
{
	memset(feed, 0, sizeof(*feed));
	feed->name = strdup(name);
	feed->url = strdup(CB_FEED_DEFAULT_URL);
	feed->channel = strdup("default");
	feed->ping_interval_ms = 30 * MS_PER_SECOND;
	feed->pong_timeout_ms = 15 * MS_PER_SECOND;
}

static void feed_free(struct cb_feed_config *feed)
{
	free(feed->name);
	free(feed->url);
	free(feed->channel);
	free(feed->token_file);
	free(feed->proxy);
	free(feed->proxy_user);
	free(feed->proxy_password_file);
	free(feed->proxy_auth);
	free(feed->ca_file);
	memset(feed, 0, sizeof(*feed));
}

void cb_config_free(struct cb_config *cfg)
{
	struct cb_graph_config *g = &cfg->graph;

	free(cfg->path);
	free(cfg->store_path);
	free(cfg->rules_path);
	free(cfg->backend);
	for (size_t i = 0; i < cfg->feed_count; i++)
		feed_free(&cfg->feeds[i]);
	free(g->cloud);
	free(g->tenant);
	free(g->client_id);
	free(g->client_secret_file);
	free(g->certificate_file);
	free(g->key_file);
	free(g->pkcs12_password_file);
	free(g->assertion_alg);
	free(g->authority_url);
	free(g->graph_url);
	free(g->ca_file);
	free(g->proxy);
	free(g->proxy_user);
	free(g->proxy_password_file);
	free(g->proxy_auth);
	free(g->canary_mailbox);
	memset(cfg, 0, sizeof(*cfg));
}

/* Replaces the string at *slot with a copy of value. */
static void set_string(struct load_state *st, char **slot, const char *value)
{
	char *copy = strdup(value);

	if (!copy) {
		st->out_of_memory = 1;
		return;
	}
	free(*slot);
	*slot = copy;
}

/* Stores a path, prefixing the config file's folder to a relative one. */
static void set_path(struct load_state *st, char **slot, const char *value)
{
	size_t size;
	char *joined;

	if (value[0] == '/' || !st->dir) {
		set_string(st, slot, value);
		return;
	}
	size = strlen(st->dir) + strlen(value) + 2;
	joined = malloc(size);
	if (!joined) {
		st->out_of_memory = 1;
		return;
	}
	snprintf(joined, size, "%s/%s", st->dir, value);
	free(*slot);
	*slot = joined;
}

static void report(struct load_state *st, int line, const char *key, const char *msg)
{
	if (key)
		cb_problems_add(&st->problems, "%s:%d: %s %s: %s", st->file, line, st->label, key, msg);
	else
		cb_problems_add(&st->problems, "%s:%d: %s: %s", st->file, line, st->label, msg);
}

static void format_choices(char *out, size_t size, const char *const *choices)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; choices[i] && used < size; i++)
		used += (size_t)snprintf(out + used, size - used, "%s%s", i ? ", " : "", choices[i]);
}

/* Applies a number: parse, range check, scale. */
static int apply_number(const struct key_spec *spec, const char *value, int64_t *slot, char *msg, size_t msg_size)
{
	static const char *const units[] = {[K_INT] = "", [K_SECONDS] = " seconds", [K_DAYS] = " days"};
	char q[64 * 4 + 16];
	int64_t n;

	if (cb_parse_int64(value, spec->min, spec->max, &n) < 0) {
		snprintf(msg, msg_size, "invalid value %s: use a whole number from %lld to %lld%s",
			 cb_quote(q, sizeof(q), value, 64), (long long)spec->min, (long long)spec->max,
			 units[spec->type]);
		return -1;
	}
	if (spec->type == K_SECONDS)
		n *= MS_PER_SECOND;
	else if (spec->type == K_DAYS)
		n *= MS_PER_DAY;
	*slot = n;
	return 0;
}

static int apply_choice(struct load_state *st, const struct key_spec *spec, const char *value, char **slot,
			char *msg, size_t msg_size)
{
	char q[64 * 4 + 16];
	char list[256];

	for (size_t i = 0; spec->choices[i]; i++) {
		if (strcmp(value, spec->choices[i]) == 0) {
			set_string(st, slot, value);
			return 0;
		}
	}
	format_choices(list, sizeof(list), spec->choices);
	snprintf(msg, msg_size, "invalid value %s: use one of %s", cb_quote(q, sizeof(q), value, 64), list);
	return -1;
}

/* Applies a feed URL; a ?channel= in it sets the channel. */
static int apply_feed_url(struct load_state *st, const char *value, char *msg, size_t msg_size)
{
	struct cb_feed_config *feed = st->target;
	char *base, *channel;

	if (cb_config_check_feed_url(value, &base, &channel, msg, msg_size) < 0)
		return -1;
	free(feed->url);
	feed->url = base;
	if (channel) {
		free(feed->channel);
		feed->channel = channel;
		st->key_lines[S_FEED + st->cfg->feed_count - 1][MAX_SECTION_KEYS - 1] = st->section_line;
	}
	return 0;
}

static int apply_value(struct load_state *st, const struct key_spec *spec, const char *value, char *msg,
		       size_t msg_size)
{
	char *base = st->target;
	char q[64 * 4 + 16];
	int rc = 0;

	switch (spec->type) {
	case K_PATH:
		rc = cb_config_check_path(value, msg, msg_size);
		if (rc == 0)
			set_path(st, (char **)(base + spec->offset), value);
		return rc;
	case K_SECRET_FILE:
		rc = cb_config_check_path(value, msg, msg_size);
		break;
	case K_TEXT:
		if (*value && strlen(value) <= TEXT_MAX)
			break;
		snprintf(msg, msg_size, "invalid value: use 1 to %d characters", TEXT_MAX);
		return -1;
	case K_BOOL:
		if (cb_config_parse_bool(value, (int *)(base + spec->offset)) == 0)
			return 0;
		snprintf(msg, msg_size, "invalid boolean %s: use yes/no, true/false, on/off or 1/0",
			 cb_quote(q, sizeof(q), value, 64));
		return -1;
	case K_INT:
	case K_SECONDS:
	case K_DAYS:
		return apply_number(spec, value, (int64_t *)(base + spec->offset), msg, msg_size);
	case K_CHOICE:
		return apply_choice(st, spec, value, (char **)(base + spec->offset), msg, msg_size);
	case K_LOG_LEVEL: {
		enum cb_log_level level;

		if (cb_log_level_parse(value, &level) == 0) {
			*(int *)(base + spec->offset) = (int)level;
			return 0;
		}
		snprintf(msg, msg_size, "invalid log level %s: use debug, info, notice, warning or error",
			 cb_quote(q, sizeof(q), value, 64));
		return -1;
	}
	case K_FEED_URL:
		return apply_feed_url(st, value, msg, msg_size);
	case K_CHANNEL:
		rc = cb_config_check_channel(value, msg, msg_size);
		break;
	case K_HTTPS_URL:
		rc = cb_config_check_https_url(value, msg, msg_size);
		break;
	case K_PROXY_URL:
		rc = cb_config_check_proxy_url(value, msg, msg_size);
		break;
	case K_GUID:
		rc = cb_config_check_guid(value, msg, msg_size);
		break;
	case K_TENANT:
		rc = cb_config_check_tenant(value, msg, msg_size);
		break;
	case K_ADDRESS:
		rc = cb_config_check_address(value, msg, msg_size);
		break;
	case K_INLINE_SECRET:
		snprintf(msg, msg_size,
			 "secrets are not accepted in the config file (the value is not shown): put the secret in a "
			 "file readable only by clawback and set %s = PATH (a relative PATH is looked up in "
			 "$CREDENTIALS_DIRECTORY)",
			 spec->hint);
		return -1;
	}
	if (rc == 0)
		set_string(st, (char **)(base + spec->offset), value);
	return rc;
}

/* Index of the duplicate-key row of the current section. */
static int key_row(const struct load_state *st)
{
	if (st->kind == S_FEED)
		return S_FEED + (int)st->cfg->feed_count - 1;
	return (int)st->kind;
}

static void on_key(struct load_state *st, const struct cb_ini_item *item)
{
	const struct key_spec *keys = section_keys(st->kind);
	char msg[768];
	int *first_line;
	size_t i;

	if (!st->target)
		return;
	for (i = 0; keys[i].key; i++) {
		if (strcmp(keys[i].key, item->key) == 0)
			break;
	}
	if (!keys[i].key) {
		size_t used = (size_t)snprintf(msg, sizeof(msg), "unknown key; valid keys are ");

		for (size_t k = 0; keys[k].key && used < sizeof(msg); k++) {
			if (keys[k].type != K_INLINE_SECRET)
				used += (size_t)snprintf(msg + used, sizeof(msg) - used, "%s%s",
							 k ? ", " : "", keys[k].key);
		}
		report(st, item->line, item->key, msg);
		return;
	}

	first_line = &st->key_lines[key_row(st)][i];
	if (*first_line && keys[i].type != K_INLINE_SECRET) {
		snprintf(msg, sizeof(msg), "duplicate key (first set on line %d)", *first_line);
		report(st, item->line, item->key, msg);
		return;
	}
	*first_line = item->line;
	if (st->kind == S_GRAPH && strcmp(item->key, "enabled") == 0)
		st->graph_enabled_set = 1;
	if (apply_value(st, &keys[i], item->value, msg, sizeof(msg)) < 0)
		report(st, item->line, item->key, msg);
}

static int check_feed_name(const char *name)
{
	size_t len = strlen(name);

	return len >= 1 && len <= CB_FEED_NAME_MAX &&
	       strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-_") == len;
}

static void open_feed(struct load_state *st, const struct cb_ini_item *item)
{
	struct cb_config *cfg = st->cfg;
	char msg[256];

	snprintf(st->label, sizeof(st->label), "[feed \"%.40s\"]", item->name ? item->name : "");
	if (!item->name || !check_feed_name(item->name)) {
		report(st, item->line, NULL, "feed name must be 1 to 32 characters of a-z, 0-9, '-' and '_': "
					     "write [feed \"NAME\"]");
		return;
	}
	for (size_t i = 0; i < cfg->feed_count; i++) {
		if (strcmp(cfg->feeds[i].name, item->name) == 0) {
			snprintf(msg, sizeof(msg), "duplicate feed (first defined on line %d)", st->feed_lines[i]);
			report(st, item->line, NULL, msg);
			return;
		}
	}
	if (cfg->feed_count >= CB_CONFIG_MAX_FEEDS) {
		snprintf(msg, sizeof(msg), "too many feeds: at most %d", CB_CONFIG_MAX_FEEDS);
		report(st, item->line, NULL, msg);
		return;
	}
	st->feed_lines[cfg->feed_count] = item->line;
	feed_defaults(&cfg->feeds[cfg->feed_count], item->name);
	cfg->feed_count++;
	st->target = &cfg->feeds[cfg->feed_count - 1];
	st->kind = S_FEED;
}

static void on_section(struct load_state *st, const struct cb_ini_item *item)
{
	static const char *const names[] = {"general", "graph", "executor"};
	char msg[128];

	st->target = NULL;
	st->kind = S_NONE;
	st->section_line = item->line;
	if (strcmp(item->section, "feed") == 0) {
		open_feed(st, item);
		return;
	}
	snprintf(st->label, sizeof(st->label), "[%.40s]", item->section);
	for (int k = 0; k < 3; k++) {
		if (strcmp(item->section, names[k]) != 0)
			continue;
		if (item->name) {
			report(st, item->line, NULL, "this section takes no name: write it without quotes");
			return;
		}
		if (st->section_lines[k]) {
			snprintf(msg, sizeof(msg), "duplicate section (first on line %d)", st->section_lines[k]);
			report(st, item->line, NULL, msg);
			return;
		}
		st->section_lines[k] = item->line;
		st->kind = (enum section_kind)k;
		st->target = k == S_GENERAL ? (void *)st->cfg
			     : k == S_GRAPH ? (void *)&st->cfg->graph
					    : (void *)&st->cfg->executor;
		return;
	}
	report(st, item->line, NULL, "unknown section; valid sections are [general], [feed \"NAME\"], [graph], "
				     "[executor]");
}

static void on_item(void *ctx, const struct cb_ini_item *item)
{
	struct load_state *st = ctx;

	switch (item->kind) {
	case CB_INI_SECTION:
		on_section(st, item);
		break;
	case CB_INI_KEY:
		on_key(st, item);
		break;
	case CB_INI_ERROR:
		cb_problems_add(&st->problems, "%s:%d: %s", st->file, item->line, item->value);
		break;
	}
}

/* Line of key in the table row, or fallback when the key was not set. */
static int line_of(const struct load_state *st, int row, const struct key_spec *keys, const char *key, int fallback)
{
	for (size_t i = 0; keys[i].key; i++) {
		if (strcmp(keys[i].key, key) == 0 && st->key_lines[row][i])
			return st->key_lines[row][i];
	}
	return fallback;
}

static void check_proxy_keys(struct load_state *st, int row, const struct key_spec *keys, int section_line,
			     const char *proxy, const char *user, const char *password_file, const char *auth)
{
	if (user && !password_file)
		report(st, line_of(st, row, keys, "proxy_user", section_line), "proxy_password_file",
		       "missing: proxy_user needs proxy_password_file");
	if (password_file && !user)
		report(st, line_of(st, row, keys, "proxy_password_file", section_line), "proxy_user",
		       "missing: proxy_password_file needs proxy_user");
	if ((user || auth) && !proxy)
		report(st, line_of(st, row, keys, user ? "proxy_user" : "proxy_auth", section_line), "proxy",
		       "missing: proxy_user and proxy_auth need proxy = URL");
}

static void check_feed(struct load_state *st, size_t index)
{
	struct cb_feed_config *feed = &st->cfg->feeds[index];
	int row = S_FEED + (int)index;
	int line = st->feed_lines[index];

	snprintf(st->label, sizeof(st->label), "[feed \"%.40s\"]", feed->name);
	if (!feed->token_file && !line_of(st, row, feed_keys, "token_file", 0))
		report(st, line, "token_file", "missing: set token_file = PATH to the file holding the Retarus token");
	/* The channel key (column 1) and a ?channel= in the URL (last column) must agree. */
	if (st->key_lines[row][1] && st->key_lines[row][MAX_SECTION_KEYS - 1]) {
		char q[CB_CHANNEL_MAX * 4 + 16];
		char msg[256];

		snprintf(msg, sizeof(msg), "the URL's ?channel= and the channel key both set the channel (now %s): "
					   "keep one",
			 cb_quote(q, sizeof(q), feed->channel, CB_CHANNEL_MAX));
		report(st, st->key_lines[row][1], "channel", msg);
	}
	check_proxy_keys(st, row, feed_keys, line, feed->proxy, feed->proxy_user, feed->proxy_password_file,
			 feed->proxy_auth);

	for (size_t j = 0; j < index; j++) {
		const struct cb_feed_config *other = &st->cfg->feeds[j];

		if (strcmp(other->url, feed->url) == 0 && strcmp(other->channel, feed->channel) == 0 &&
		    other->token_file && feed->token_file && strcmp(other->token_file, feed->token_file) == 0) {
			char msg[256];

			snprintf(msg, sizeof(msg), "same URL, channel and token as feed '%s': two connections on one "
						   "channel split its events; give each feed its own channel",
				 other->name);
			report(st, line, "channel", msg);
		}
	}
}

static void check_graph(struct load_state *st)
{
	struct cb_graph_config *g = &st->cfg->graph;
	int line = st->section_lines[S_GRAPH];
	int row = S_GRAPH;

	snprintf(st->label, sizeof(st->label), "[graph]");
	if (!line)
		line = line_of(st, S_GENERAL, general_keys, "backend", 1);
	if (!st->graph_enabled_set)
		g->enabled = strcmp(st->cfg->backend, "graph") == 0;
	if (strcmp(st->cfg->backend, "graph") == 0 && !g->enabled) {
		report(st, line_of(st, row, graph_keys, "enabled", line), "enabled",
		       "backend = graph needs the [graph] section enabled");
		return;
	}
	if (!g->enabled)
		return;
	/* A key that was set but invalid has been reported already. */
	if (!g->tenant && !line_of(st, row, graph_keys, "tenant", 0))
		report(st, line, "tenant", "missing: set tenant = the tenant id or domain");
	if (!g->client_id && !line_of(st, row, graph_keys, "client_id", 0))
		report(st, line, "client_id", "missing: set client_id = the application (client) id");
	if (!g->client_secret_file == !g->certificate_file)
		report(st, line, "client_secret_file",
		       "set exactly one of client_secret_file or certificate_file");
	if (g->key_file && !g->certificate_file)
		report(st, line_of(st, row, graph_keys, "key_file", line), "key_file",
		       "key_file needs certificate_file");
	if (g->pkcs12_password_file && (!g->certificate_file || g->key_file))
		report(st, line_of(st, row, graph_keys, "pkcs12_password_file", line), "pkcs12_password_file",
		       "pkcs12_password_file needs certificate_file holding a PKCS#12 bundle, without key_file");
	check_proxy_keys(st, row, graph_keys, line, g->proxy, g->proxy_user, g->proxy_password_file, g->proxy_auth);
}

static void check_executor(struct load_state *st)
{
	const struct cb_executor_config *e = &st->cfg->executor;

	snprintf(st->label, sizeof(st->label), "[executor]");
	if (e->retry_max_ms < e->retry_base_ms) {
		char msg[160];

		snprintf(msg, sizeof(msg), "retry_max_seconds (%lld) is below retry_base_seconds (%lld)",
			 (long long)(e->retry_max_ms / MS_PER_SECOND), (long long)(e->retry_base_ms / MS_PER_SECOND));
		report(st, line_of(st, S_EXECUTOR, executor_keys, "retry_max_seconds",
				   st->section_lines[S_EXECUTOR]),
		       "retry_max_seconds", msg);
	}
}

int cb_config_load_text(const char *name, const char *text, size_t len, struct cb_config *cfg, char **problems,
			struct cb_err *err)
{
	struct load_state *st = calloc(1, sizeof(*st));
	const char *slash = strrchr(name, '/');
	int count;

	cb_config_defaults(cfg);
	if (!st)
		return cb_err_set(err, "out of memory loading %s", name);
	st->cfg = cfg;
	st->file = name;
	st->kind = S_NONE;
	cb_problems_init(&st->problems);
	cfg->path = strdup(name);
	if (slash)
		st->dir = strndup(name, slash == name ? 1 : (size_t)(slash - name));

	if (cb_ini_parse(text, len, on_item, st) < 0)
		st->out_of_memory = 1;
	for (size_t i = 0; i < cfg->feed_count; i++)
		check_feed(st, i);
	check_graph(st);
	check_executor(st);

	count = cb_problems_finish(&st->problems, problems);
	free(st->dir);
	if (st->out_of_memory) {
		free(st);
		return cb_err_set(err, "out of memory loading %s", name);
	}
	free(st);
	return count;
}

int cb_config_load(const char *path, struct cb_config *cfg, char **problems, struct cb_err *err)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	if (cb_config_read_file(path, CB_CONFIG_MAX_BYTES, &text, &len, err) < 0) {
		cb_config_defaults(cfg);
		return cb_err_prefix(err, "cannot read config: ");
	}
	rc = cb_config_load_text(path, text, len, cfg, problems, err);
	free(text);
	return rc;
}
