/*
 * feed_client_probe.c: a small driver of the feed client for end-to-end tests.
 *
 * Starts one feed thread (src/feed/feed.h) with the settings given on the
 * command line and prints one JSON object per line on stdout:
 *   {"kind":"message","data":...}    a message, printed when its batch is
 *                                     committed (on_flush), as a store would;
 *   {"kind":"flush","count":N}       a commit of N messages;
 *   {"kind":"rejected","reason":...,"size":N,"hex":...}
 *   {"kind":"status",...}            every status change;
 *   {"kind":"stopped"}               after a graceful stop.
 * Logs go to stderr. SIGTERM or SIGINT stops the feed gracefully; --run-ms
 * stops it after that many milliseconds. SIGUSR1 calls cb_feed_wake(). The e2e tests compile it against
 * the built libclawback_core.a until `clawback run` covers the same ground.
 */
#include <curl/curl.h>
#include <getopt.h>
#include <pthread.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/log.h"
#include "base/util.h"
#include "feed/feed.h"

struct probe {
	json_t *batch; /* messages received but not yet committed */
};

static void print_json(json_t *obj)
{
	char *line = json_dumps(obj, JSON_COMPACT);

	if (line) {
		fputs(line, stdout);
		fputc('\n', stdout);
		fflush(stdout);
	}
	free(line);
	json_decref(obj);
}

static int probe_message(void *ctx, const char *data, size_t len)
{
	struct probe *p = ctx;

	return json_array_append_new(p->batch, json_stringn(data, len));
}

static int probe_rejected(void *ctx, const char *data, size_t len, uint64_t full_len, const char *reason)
{
	char *hex = malloc(len * 2 + 1);
	size_t i;

	(void)ctx;
	if (!hex)
		return -1;
	for (i = 0; i < len; i++)
		snprintf(hex + i * 2, 3, "%02x", (unsigned char)data[i]);
	hex[len * 2] = '\0';
	print_json(json_pack("{s:s, s:s, s:I, s:I, s:s}", "kind", "rejected", "reason", reason, "size",
			     (json_int_t)full_len, "kept", (json_int_t)len, "hex", hex));
	free(hex);
	return 0;
}

static int probe_flush(void *ctx)
{
	struct probe *p = ctx;
	size_t i, n = json_array_size(p->batch);

	for (i = 0; i < n; i++)
		print_json(json_pack("{s:s, s:O}", "kind", "message", "data", json_array_get(p->batch, i)));
	print_json(json_pack("{s:s, s:I}", "kind", "flush", "count", (json_int_t)n));
	json_array_clear(p->batch);
	return 0;
}

static json_t *status_json(const char *kind, const struct cb_feed_status *st)
{
	return json_pack("{s:s, s:s, s:i, s:i, s:I, s:I, s:I, s:I, s:I, s:b, s:s}", "kind", kind, "state",
			 cb_feed_state_name(st->state), "http_status", st->http_status, "auth_failed", st->auth_failed,
			 "attempts", (json_int_t)st->attempts, "connects", (json_int_t)st->connects, "reconnects",
			 (json_int_t)st->reconnects, "messages", (json_int_t)st->messages, "rejected",
			 (json_int_t)st->rejected, "connected", st->connected_since_ms != 0, "last_error",
			 st->last_error);
}

static void probe_status(void *ctx, const struct cb_feed_status *st)
{
	(void)ctx;
	print_json(status_json("status", st));
}

static void usage(void)
{
	fputs("usage: feed_client_probe --url WSS_URL --token-file FILE [--channel NAME] [--ca-file FILE]\n"
	      "  [--proxy URL] [--proxy-user USER] [--proxy-password-file FILE] [--proxy-auth basic|ntlm|any]\n"
	      "  [--ping-ms MS] [--pong-ms MS] [--backoff-first-ms MS] [--backoff-max-ms MS]\n"
	      "  [--auth-retry-ms MS] [--stable-ms MS] [--max-message BYTES] [--run-ms MS]\n",
	      stderr);
}

static int64_t number(const char *s)
{
	int64_t v;

	if (cb_parse_int64(s, 0, INT64_MAX, &v) < 0) {
		fprintf(stderr, "feed_client_probe: invalid number: %s\n", s);
		exit(2);
	}
	return v;
}

static void parse_args(int argc, char **argv, struct cb_feed_config *cfg, struct cb_feed_tuning *t, int64_t *run_ms)
{
	static const struct option options[] = {
		{ "url", required_argument, NULL, 'u' },	   { "channel", required_argument, NULL, 'c' },
		{ "token-file", required_argument, NULL, 't' },	   { "ca-file", required_argument, NULL, 'a' },
		{ "proxy", required_argument, NULL, 'p' },	   { "proxy-user", required_argument, NULL, 'U' },
		{ "proxy-password-file", required_argument, NULL, 'P' },
		{ "proxy-auth", required_argument, NULL, 'A' },	   { "ping-ms", required_argument, NULL, 'i' },
		{ "pong-ms", required_argument, NULL, 'o' },	   { "backoff-first-ms", required_argument, NULL, 'f' },
		{ "backoff-max-ms", required_argument, NULL, 'm' }, { "auth-retry-ms", required_argument, NULL, 'r' },
		{ "stable-ms", required_argument, NULL, 's' },	   { "max-message", required_argument, NULL, 'x' },
		{ "run-ms", required_argument, NULL, 'R' },	   { NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 'u': cfg->url = optarg; break;
		case 'c': cfg->channel = optarg; break;
		case 't': cfg->token_file = optarg; break;
		case 'a': cfg->ca_file = optarg; break;
		case 'p': cfg->proxy = optarg; break;
		case 'U': cfg->proxy_user = optarg; break;
		case 'P': cfg->proxy_password_file = optarg; break;
		case 'A': cfg->proxy_auth = optarg; break;
		case 'i': cfg->ping_interval_ms = number(optarg); break;
		case 'o': cfg->pong_timeout_ms = number(optarg); break;
		case 'f': t->backoff_first_ms = number(optarg); break;
		case 'm': t->backoff_max_ms = number(optarg); break;
		case 'r': t->auth_retry_ms = number(optarg); break;
		case 's': t->stable_ms = number(optarg); break;
		case 'x': t->max_message = (size_t)number(optarg); break;
		case 'R': *run_ms = number(optarg); break;
		default: usage(); exit(2);
		}
	}
	if (!cfg->url || !cfg->token_file) {
		usage();
		exit(2);
	}
}

/* Waits for SIGTERM or SIGINT, or run_ms when positive; SIGUSR1 wakes the feed. */
static void wait_for_stop(struct cb_feed *feed, const sigset_t *set, int64_t run_ms)
{
	int64_t deadline = cb_mono_ms() + run_ms;

	for (;;) {
		int64_t left = deadline - cb_mono_ms();
		struct timespec timeout = { .tv_sec = left / 1000, .tv_nsec = (left % 1000) * 1000000 };
		int sig;

		if (run_ms > 0 && left <= 0)
			return;
		sig = run_ms > 0 ? sigtimedwait(set, NULL, &timeout) : sigwaitinfo(set, NULL);
		if (sig == SIGUSR1)
			cb_feed_wake(feed);
		else if (sig == SIGTERM || sig == SIGINT)
			return;
	}
}

int main(int argc, char **argv)
{
	struct cb_feed_config cfg;
	struct cb_feed_tuning tuning;
	struct cb_feed_callbacks callbacks = { probe_message, probe_rejected, probe_flush, probe_status };
	struct probe p = { json_array() };
	struct cb_feed *feed;
	struct cb_err err;
	int64_t run_ms = 0;
	sigset_t set;

	memset(&cfg, 0, sizeof(cfg));
	memset(&tuning, 0, sizeof(tuning));
	cfg.name = "probe";
	parse_args(argc, argv, &cfg, &tuning, &run_ms);
	cb_log_set_level(CB_LOG_DEBUG);
	curl_global_init(CURL_GLOBAL_DEFAULT);

	/* Block the stop signals before the feed thread starts, so only sigwait receives them. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	if (cb_feed_start(&cfg, &tuning, &callbacks, &p, &feed, &err) < 0) {
		fprintf(stderr, "feed_client_probe: %s\n", err.msg);
		return 1;
	}
	wait_for_stop(feed, &set, run_ms);
	cb_feed_stop(feed);
	print_json(json_pack("{s:s}", "kind", "stopped"));
	json_decref(p.batch);
	return 0;
}
