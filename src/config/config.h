/*
 * config.h: the operator's settings, read from an INI file.
 *
 * Default path /etc/clawback/clawback.conf; `--config PATH` overrides it.
 * Unknown sections and keys, and invalid values, are errors naming file, line
 * and key. Secrets (feed token, client secret, private key, passwords) are
 * never in this file: a `*_file = PATH` key names a file holding the secret,
 * and a relative PATH is looked up in $CREDENTIALS_DIRECTORY (systemd
 * credentials) when that is set. Secrets are read with cb_secret_read() when
 * needed and never printed, logged or stored.
 */
#ifndef CLAWBACK_CONFIG_CONFIG_H
#define CLAWBACK_CONFIG_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define CB_CONFIG_DEFAULT_PATH "/etc/clawback/clawback.conf"
/* Most feeds one daemon runs (each has its own thread). */
#define CB_CONFIG_MAX_FEEDS 16
/* Largest config file read, in bytes. */
#define CB_CONFIG_MAX_BYTES (1024 * 1024)
/* Largest secret file read, in bytes (a PKCS#12 bundle with a chain fits). */
#define CB_SECRET_MAX_BYTES (64 * 1024)
/* The feed URL when [feed] sets none (the channel is sent as ?channel=). */
#define CB_FEED_DEFAULT_URL "wss://events.retarus.com/email/siem/v1/websocket"

struct cb_feed_config {
	char *name;       /* from [feed "name"] */
	char *url;        /* wss://events.retarus.com/email/siem/v1/websocket */
	char *channel;    /* 6 to 32 of [a-z0-9-], default "default" */
	char *token_file; /* secret */
	char *proxy;      /* http://host:port, or NULL to use the environment */
	char *proxy_user;
	char *proxy_password_file; /* secret */
	char *proxy_auth;          /* "basic", "ntlm", "any" */
	char *ca_file;
	int64_t ping_interval_ms;
	int64_t pong_timeout_ms;
};

struct cb_graph_config {
	int enabled;
	char *cloud; /* "global", "usgov" (L4), "usgov-dod" (L5), "china" */
	char *tenant;
	char *client_id;
	char *client_secret_file;  /* secret: a client secret, or */
	char *certificate_file;    /* a PEM certificate (with key_file), or a PKCS#12 bundle */
	char *key_file;            /* secret: PEM private key */
	char *pkcs12_password_file; /* secret */
	char *assertion_alg;       /* "PS256" (default) or "RS256" */
	char *authority_url;       /* overrides the cloud's login endpoint */
	char *graph_url;           /* overrides the cloud's Graph endpoint */
	char *ca_file;
	char *proxy;
	char *proxy_user;
	char *proxy_password_file; /* secret */
	char *proxy_auth;
	char *canary_mailbox; /* for `clawback doctor` */
	int64_t timeout_ms;
};

struct cb_executor_config {
	int64_t mailbox_concurrency;  /* Graph: requests in flight per (app, mailbox), default 4 */
	int64_t mailbox_rate;         /* Graph: requests per window per (app, mailbox), default 10000 */
	int64_t mailbox_window_ms;    /* default 600000 (10 minutes) */
	int64_t server_concurrency;   /* EWS: per server, default 10 */
	int64_t global_concurrency;   /* all backends, default 256 */
	int64_t max_attempts;         /* temporary errors, default 5 */
	int64_t retry_base_ms;        /* first back-off, default 30000 */
	int64_t retry_max_ms;         /* back-off cap, default 480000 */
	int64_t not_found_searches;   /* searches before not_found, default 4 */
	int64_t not_found_interval_ms; /* between searches, default 120000 */
	int64_t stop_timeout_ms;      /* graceful stop: in-flight requests, default 10000 */
};

struct cb_config {
	char *path; /* the file read */

	/* [general] */
	char *store_path;  /* default /var/lib/clawback/clawback.db */
	char *rules_path;  /* default /etc/clawback/rules.conf */
	char *backend;     /* "log", "graph", "ews" */
	int dry_run;       /* global switch: every rule only logs */
	int log_level;     /* enum cb_log_level */
	int64_t event_retention_ms; /* default 90 days */
	int64_t audit_retention_ms; /* default 90 days */

	struct cb_feed_config feeds[CB_CONFIG_MAX_FEEDS];
	size_t feed_count;

	struct cb_graph_config graph;
	struct cb_executor_config executor;
};

/* Fills cfg with the built-in defaults (no feeds, log backend). */
void cb_config_defaults(struct cb_config *cfg);

/*
 * Loads path into cfg (defaults first). Every problem found is appended to
 * problems as one line "FILE:LINE: [section] key: message"; returns the
 * number of problems (0 when valid) or -1 when the file cannot be read
 * (err contains the reason).
 */
int cb_config_load(const char *path, struct cb_config *cfg, char **problems, struct cb_err *err);
/*
 * The same, from text in memory. name appears in messages, and relative paths
 * (store, rules, ca_file, certificate_file) resolve against its folder. With a
 * name without '/', those paths stay relative.
 */
int cb_config_load_text(const char *name, const char *text, size_t len, struct cb_config *cfg, char **problems,
			struct cb_err *err);

/*
 * Checks every secret and certificate file the config names (exists, is a
 * regular file, readable, not larger than CB_SECRET_MAX_BYTES) and that
 * secret files are not readable by group or others. Each problem is appended
 * to problems as "FILE: [section] key: message"; returns their number. A
 * secret file with loose permissions is a problem here, for check-config,
 * but cb_secret_read() still reads it, so a running daemon does not stop over
 * a mode bit. Files found in $CREDENTIALS_DIRECTORY skip the mode check,
 * because systemd sets their access.
 */
int cb_config_check_files(const struct cb_config *cfg, char **problems);

void cb_config_free(struct cb_config *cfg);

/*
 * Reads the secret named by a *_file key. A relative path is resolved in
 * $CREDENTIALS_DIRECTORY, and is an error when that is not set. One trailing
 * newline ("\n" or "\r\n") is removed; an empty secret and a file larger
 * than CB_SECRET_MAX_BYTES are errors. The result is NUL-terminated (len
 * excludes the NUL). The caller frees it with cb_secret_free(), which wipes
 * it. Error messages name the path, never the content.
 */
int cb_secret_read(const char *path, char **out, size_t *len, struct cb_err *err);
/*
 * The same for binary secrets (a PKCS#12 bundle): the bytes are returned
 * unchanged, with no newline removed. Free with cb_secret_free().
 */
int cb_secret_read_raw(const char *path, char **out, size_t *len, struct cb_err *err);
/* Wipes the first len bytes of secret (explicit_bzero) and frees it; NULL is allowed. */
void cb_secret_free(char *secret, size_t len);

#endif
