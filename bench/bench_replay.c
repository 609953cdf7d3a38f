/*
 * bench_replay.c: throughput of the ingest pipeline (parse, rules, store) on
 * one core, with the store's durability settings as shipped (WAL,
 * synchronous=NORMAL, batches of CB_PIPELINE_BATCH_MAX).
 *
 * Usage: bench_replay [EVENTS] [RULES_FILE]
 * Prints events per second (wall clock, and per CPU second, which does not
 * depend on other load on the machine) and peak resident memory. Not a test: no assertions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base/util.h"
#include "pipeline/pipeline.h"

/* A rules file of realistic size: 20 rules, the first 19 of which miss a typical event. */
static char *make_rules(void)
{
	struct cb_buf b;

	cb_buf_init(&b, 0);
	for (int i = 0; i < 19; i++)
		cb_buf_printf(&b,
			      "[rule \"vip-%d\"]\nrecipient = glob:vip%d-*@contoso.example\n"
			      "details = regex:^(Emotet|Qakbot)\\.%d\naction = hard_delete\n\n",
			      i, i, i);
	cb_buf_puts(&b, "[rule \"virus\"]\nthreat = VIRUS\naction = move\nfolder = junkemail\n\n"
			"[default]\naction = log\n");
	return cb_buf_steal(&b);
}

static int make_event(char *out, size_t size, long n)
{
	return snprintf(out, size,
			"{\"version\":\"1.0\",\"host\":\"events.retarus.com\",\"customer\":\"CUST0042\","
			"\"class\":\"THREAT\",\"type\":\"PZD\",\"direction\":\"INBOUND\",\"status\":"
			"\"DETECTED\",\"ts\":\"2026-11-30 08:14:03 +0100\",\"sourceIp\":\"192.0.2.10\","
			"\"sender\":\"billing@invoices.example.net\",\"recipient\":"
			"\"user%06ld@contoso.example\",\"mimeId\":\"<20261130071402.4F2A1@mx1.invoices."
			"example.net>\",\"rmxId\":\"20261130-081402-AbCdEf-0@mailin07\",\"metaData\":{"
			"\"threatType\":\"VIRUS\",\"hashFunction\":\"sha256\",\"checksum\":"
			"\"9f2c8e41b7d0a3c5e6f718293a4b5c6d7e8f9012a3b4c5d6e7f8091a2b3c4d5e\","
			"\"mimeType\":\"application/x-dosexec\",\"details\":\"Trojan.GenericKD.71234\"}}",
			n);
}

int main(int argc, char **argv)
{
	long count = argc > 1 ? strtol(argv[1], NULL, 10) : 100000;
	char dir[] = "/tmp/clawback-bench-XXXXXX";
	char path[64], event[1024];
	struct cb_ruleset *rules = NULL;
	struct cb_store *store = NULL;
	struct cb_pipeline pipeline;
	struct rusage usage;
	char *problems = NULL, *text;
	struct cb_err err;
	int64_t start, elapsed;
	double cpu_start_ms, cpu_ms;

	if (count <= 0 || !mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/bench.db", dir);
	text = make_rules();
	if (cb_rules_load_text("bench-rules", text, strlen(text), &rules, &problems, &err) != 0) {
		fprintf(stderr, "rules: %s%s\n", problems ? problems : "", err.msg);
		return 1;
	}
	if (cb_store_open(path, &store, &err) < 0) {
		fprintf(stderr, "store: %s\n", err.msg);
		return 1;
	}
	cb_pipeline_init(&pipeline, store, rules, 0, "bench");

	getrusage(RUSAGE_SELF, &usage);
	cpu_start_ms = (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000.0 +
		       (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1000.0;
	start = cb_mono_ms();
	for (long i = 0; i < count; i++) {
		int len = make_event(event, sizeof(event), i);

		if (cb_pipeline_submit(&pipeline, event, (size_t)len, NULL, NULL, &err) < 0) {
			fprintf(stderr, "submit: %s\n", err.msg);
			return 1;
		}
	}
	if (cb_pipeline_flush(&pipeline, 1, &err) < 0) {
		fprintf(stderr, "flush: %s\n", err.msg);
		return 1;
	}
	elapsed = cb_mono_ms() - start;
	getrusage(RUSAGE_SELF, &usage);
	cpu_ms = (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000.0 +
		 (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1000.0 - cpu_start_ms;

	printf("replay pipeline: %ld PZD events in %lld ms = %.0f events/s wall (goal 20000: %.2fx)\n",
	       count, (long long)elapsed, count * 1000.0 / (double)(elapsed ? elapsed : 1),
	       count * 1000.0 / (double)(elapsed ? elapsed : 1) / 20000.0);
	printf("                 %.0f ms of CPU = %.0f events per CPU second (goal 20000: %.2fx)\n",
	       cpu_ms, count * 1000.0 / cpu_ms, count * 1000.0 / cpu_ms / 20000.0);
	printf("peak resident memory: %ld KiB\n", usage.ru_maxrss);

	cb_store_close(store);
	cb_rules_free(rules);
	free(text);
	free(problems);
	unlink(path);
	return 0;
}
