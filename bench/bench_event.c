/*
 * bench_event.c: throughput of the event parser alone (cb_event_parse).
 *
 * Parses the lines of tests/data/feed-sample.jsonl over and over, on one
 * thread, and prints events per second for the whole mix and for the PZD
 * lines alone. Usage: bench_event [SAMPLE_FILE] [SECONDS] (defaults: the
 * repository's sample file, 3 seconds per measurement). No assertions: the
 * unit tests check behaviour, this only measures.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "event/event.h"

/* Maximum number of sample lines read from the file. */
#define BENCH_MAX_LINES 64
/* Maximum length of a sample line, in bytes (one over the parser's own limit). */
#define BENCH_MAX_LINE (CB_EVENT_MAX_BYTES + 2)
/* Events parsed between two clock reads. */
#define BENCH_ROUND 10000

#ifndef BENCH_SAMPLE_FILE
#define BENCH_SAMPLE_FILE "tests/data/feed-sample.jsonl"
#endif

struct sample {
	char *text;
	size_t len;
	int is_pzd;
};

static int load_samples(const char *path, struct sample *samples, int max)
{
	static char line[BENCH_MAX_LINE];
	FILE *f = fopen(path, "r");
	int n = 0;

	if (!f) {
		perror(path);
		return -1;
	}
	while (n < max && fgets(line, sizeof(line), f)) {
		size_t len = strcspn(line, "\r\n");

		if (len == 0)
			continue;
		samples[n].text = malloc(len);
		if (!samples[n].text)
			break;
		memcpy(samples[n].text, line, len);
		samples[n].len = len;
		samples[n].is_pzd = strstr(line, "\"type\":\"PZD\"") != NULL;
		n++;
	}
	fclose(f);
	return n;
}

/* Parses the selected samples round-robin for about seconds; returns events per second. */
static double measure(const struct sample *samples, int n, int pzd_only, double seconds)
{
	int64_t start = cb_mono_ms();
	int64_t elapsed = 0;
	long events = 0;
	long rejected = 0;
	int i = 0;

	while (elapsed < (int64_t)(seconds * 1000)) {
		for (int k = 0; k < BENCH_ROUND; k++) {
			struct cb_event ev;

			do {
				i = (i + 1) % n;
			} while (pzd_only && !samples[i].is_pzd);
			if (cb_event_parse(samples[i].text, samples[i].len, &ev, NULL, 0) != CB_REJECT_NONE)
				rejected++;
			cb_event_clear(&ev);
		}
		events += BENCH_ROUND;
		elapsed = cb_mono_ms() - start;
	}
	if (rejected)
		fprintf(stderr, "warning: %ld of %ld events were rejected\n", rejected, events);
	return (double)events * 1000.0 / (double)elapsed;
}

int main(int argc, char **argv)
{
	struct sample samples[BENCH_MAX_LINES];
	const char *path = argc > 1 ? argv[1] : BENCH_SAMPLE_FILE;
	double seconds = argc > 2 ? strtod(argv[2], NULL) : 3.0;
	int n = load_samples(path, samples, BENCH_MAX_LINES);
	int pzd = 0;

	if (n <= 0) {
		fprintf(stderr, "no sample lines in %s\n", path);
		return 1;
	}
	for (int i = 0; i < n; i++)
		pzd += samples[i].is_pzd;

	printf("lines=%d pzd_lines=%d seconds=%.1f\n", n, pzd, seconds);
	printf("all lines: %.0f events/s\n", measure(samples, n, 0, seconds));
	if (pzd > 0)
		printf("PZD lines: %.0f events/s\n", measure(samples, n, 1, seconds));

	for (int i = 0; i < n; i++)
		free(samples[i].text);
	return 0;
}
