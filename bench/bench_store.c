/*
 * bench_store.c: throughput of the ingest path (parse + rules + store) on one
 * thread, with the store as the daemon runs it (WAL, synchronous=NORMAL) and
 * one transaction per batch of 1000 events.
 *
 * Generates N synthetic PZD events (unique Message-IDs and checksums, 5000
 * recipients, VIRUS and URL threats alternating) and prints events per second
 * for parse + rules alone and for parse + rules + ingest, both per second of
 * wall-clock time and per second of CPU time (user + system; the wall-clock
 * figure drops when other processes share the core), the store's share of
 * the CPU time, the database size and the peak RSS (getrusage ru_maxrss).
 * Formatting each event with snprintf is inside both measurements.
 * Usage: bench_store [N] [DIR] (defaults: 200000 events, a new directory
 * under /tmp, removed at the end). No assertions: this only measures.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "event/event.h"
#include "rules/rules.h"
#include "store/store.h"

/* Events per transaction, as the feed pipeline commits them. */
#define BENCH_BATCH 1000
/* Distinct recipients in the synthetic events. */
#define BENCH_RECIPIENTS 5000
/* Maximum length of a synthetic event, in bytes. */
#define BENCH_EVENT_MAX 2048

static const char rules_text[] =
	"[rule \"lookalike-senders\"]\n"
	"sender_domain = contoso.example.co, c0ntoso.example\n"
	"action = hard_delete\n"
	"dry_run = yes\n"
	"[rule \"trojans-to-junk\"]\n"
	"threat = VIRUS\n"
	"details = glob:Trojan.*\n"
	"action = move\n"
	"folder = junkemail\n"
	"[rule \"macro-documents\"]\n"
	"threat = VIRUS\n"
	"mime_type = regex:^application/vnd\\.ms-(excel|word)\\..*macroenabled\n"
	"action = move\n"
	"folder = Quarantine/PZD\n"
	"[rule \"phishing-urls\"]\n"
	"threat = URL\n"
	"action = soft_delete\n"
	"notify = recipient\n"
	"[default]\n"
	"action = log\n";

static size_t make_event(char *buf, size_t size, long i)
{
	/* Ten detections per second from 2026-11-30 07:00:00 UTC on, as a live feed sends them. */
	time_t at = (time_t)1796022000 + (time_t)(i / 10);
	long user = i % BENCH_RECIPIENTS;
	char ts[32];
	struct tm tm;
	int n;

	gmtime_r(&at, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S +0000", &tm);

	if (i % 2 == 0)
		n = snprintf(buf, size,
			     "{\"version\":\"1.0\",\"host\":\"events.retarus.com\",\"customer\":\"CUST0042\","
			     "\"class\":\"THREAT\",\"type\":\"PZD\",\"direction\":\"INBOUND\","
			     "\"status\":\"DETECTED\",\"ts\":\"%s\","
			     "\"sourceIp\":\"192.0.2.10\",\"sender\":\"billing@invoices.example.net\","
			     "\"recipient\":\"user%ld@contoso.example\","
			     "\"mimeId\":\"<bench.%ld@mx1.invoices.example.net>\","
			     "\"rmxId\":\"20261130-081402-%ld@mailin07\",\"metaData\":{\"threatType\":\"VIRUS\","
			     "\"hashFunction\":\"sha256\",\"checksum\":\"%064lx\","
			     "\"mimeType\":\"application/x-dosexec\",\"details\":\"Trojan.GenericKD.71234\"}}",
			     ts, user, i, i, i);
	else
		n = snprintf(buf, size,
			     "{\"version\":\"1.0\",\"host\":\"events.retarus.com\",\"customer\":\"CUST0042\","
			     "\"class\":\"THREAT\",\"type\":\"PZD\",\"direction\":\"INBOUND\","
			     "\"status\":\"DETECTED\",\"ts\":\"%s\","
			     "\"sourceIp\":\"203.0.113.55\",\"sender\":\"it-support@contoso-helpdesk.example\","
			     "\"recipient\":\"user%ld@contoso.example\","
			     "\"mimeId\":\"<bench.%ld@mail.gmail.example>\","
			     "\"rmxId\":\"20261130-082046-%ld@mailin01\",\"metaData\":{\"threatType\":\"URL\","
			     "\"uniformResourceLocator\":\"https://login.contoso-helpdesk.example/reset?u=%ld\","
			     "\"details\":\"884512\"}}",
			     ts, user, i, i, i);
	return n < 0 ? 0 : (size_t)n;
}

/* Parses and decides one event; returns 0 when it parsed as PZD. */
static int parse_and_decide(const struct cb_ruleset *rules, const char *raw, size_t len,
			    struct cb_event *ev, struct cb_rule_match *match)
{
	if (cb_event_parse(raw, len, ev, NULL, 0) != CB_REJECT_NONE)
		return -1;
	cb_rules_decide(rules, ev, 0, match, NULL);
	return 0;
}

/* CPU time (user + system) of this process so far, in ms. */
static int64_t cpu_ms(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

/* Events per second of wall-clock time and of CPU time for one measurement. */
struct rate {
	double wall;
	double cpu;
};

static struct rate rate_since(long n, int64_t wall_start, int64_t cpu_start)
{
	struct rate r;

	r.wall = (double)n * 1000.0 / (double)(cb_mono_ms() - wall_start + 1);
	r.cpu = (double)n * 1000.0 / (double)(cpu_ms() - cpu_start + 1);
	return r;
}

static struct rate measure_decide(const struct cb_ruleset *rules, long n)
{
	char raw[BENCH_EVENT_MAX];
	int64_t start = cb_mono_ms();
	int64_t cpu_start = cpu_ms();
	long failed = 0;

	for (long i = 0; i < n; i++) {
		size_t len = make_event(raw, sizeof(raw), i);
		struct cb_rule_match match;
		struct cb_event ev;

		if (parse_and_decide(rules, raw, len, &ev, &match) < 0)
			failed++;
		cb_event_clear(&ev);
	}
	if (failed)
		fprintf(stderr, "warning: %ld events were rejected by the parser\n", failed);
	return rate_since(n, start, cpu_start);
}

static int ingest_one(struct cb_store *store, const struct cb_ruleset *rules, long i,
		      struct cb_err *err)
{
	char raw[BENCH_EVENT_MAX];
	size_t len = make_event(raw, sizeof(raw), i);
	struct cb_rule_match match;
	struct cb_ingest_result res;
	struct cb_decision dec;
	struct cb_event ev;
	int rc;

	if (parse_and_decide(rules, raw, len, &ev, &match) < 0) {
		cb_event_clear(&ev);
		return cb_err_set(err, "synthetic event %ld was rejected by the parser", i);
	}
	dec.rule = match.rule;
	dec.reason = match.reason;
	dec.action = match.action;
	rc = cb_store_ingest(store, raw, len, "bench", &ev, CB_REJECT_NONE, NULL, &dec, &res, err);
	cb_event_clear(&ev);
	return rc;
}

static int ingest_all(struct cb_store *store, const struct cb_ruleset *rules, long n,
		      struct cb_err *err)
{

	for (long i = 0; i < n; i += BENCH_BATCH) {
		if (cb_store_begin(store, err) < 0)
			return -1;
		for (long k = i; k < n && k < i + BENCH_BATCH; k++) {
			if (ingest_one(store, rules, k, err) < 0) {
				cb_store_rollback(store);
				return -1;
			}
		}
		if (cb_store_commit(store, err) < 0)
			return -1;
	}
	return 0;
}

static long file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 200000;
	char dir[] = "/tmp/clawback-bench-XXXXXX";
	const char *base = argc > 2 ? argv[2] : NULL;
	char path[512], wal[520];
	struct cb_ruleset *rules = NULL;
	struct cb_store *store = NULL;
	struct cb_err err = {{0}};
	struct rusage ru;
	char *problems = NULL;
	struct rate decide, ingest;
	int64_t wall_start, cpu_start;

	if (n <= 0) {
		fprintf(stderr, "usage: bench_store [N] [DIR]: N must be a positive number of events\n");
		return 2;
	}
	if (!base && !(base = mkdtemp(dir))) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/bench.db", base);
	snprintf(wal, sizeof(wal), "%s-wal", path);
	if (cb_rules_load_text("bench-rules", rules_text, sizeof(rules_text) - 1, &rules, &problems,
			       &err) != 0) {
		fprintf(stderr, "rules: %s%s\n", err.msg, problems ? problems : "");
		return 1;
	}
	free(problems);
	if (cb_store_open(path, &store, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}

	decide = measure_decide(rules, n);
	wall_start = cb_mono_ms();
	cpu_start = cpu_ms();
	if (ingest_all(store, rules, n, &err) < 0) {
		fprintf(stderr, "ingest failed: %s\n", err.msg);
		return 1;
	}
	ingest = rate_since(n, wall_start, cpu_start);
	cb_store_close(store);
	getrusage(RUSAGE_SELF, &ru);

	printf("events=%ld batch=%d store=%s\n", n, BENCH_BATCH, path);
	printf("parse + rules:          %8.0f events/s wall, %8.0f events/s per CPU second\n",
	       decide.wall, decide.cpu);
	printf("parse + rules + ingest: %8.0f events/s wall, %8.0f events/s per CPU second\n",
	       ingest.wall, ingest.cpu);
	printf("store share of CPU time: %.0f%%\n", 100.0 * (1.0 - ingest.cpu / decide.cpu));
	printf("database: %.1f MiB (%.0f bytes/event), wal after close: %ld bytes\n",
	       (double)file_size(path) / (1024.0 * 1024.0), (double)file_size(path) / (double)n,
	       file_size(wal));
	printf("peak RSS: %ld KiB\n", ru.ru_maxrss);

	cb_rules_free(rules);
	if (base == dir) {
		unlink(path);
		unlink(wal);
		rmdir(dir);
	}
	return 0;
}
