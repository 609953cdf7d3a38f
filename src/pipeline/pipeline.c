/*
 * pipeline.c: parse, decide and store received messages in batches; see
 * pipeline.h. Runs in the thread that owns the pipeline (a feed thread, or
 * the main thread of `clawback replay`). Input is untrusted bytes.
 */
#include "pipeline/pipeline.h"

#include <string.h>

#include "base/util.h"

void cb_pipeline_init(struct cb_pipeline *p, struct cb_store *store, const struct cb_ruleset *rules,
		      int global_dry_run, const char *source)
{
	memset(p, 0, sizeof(*p));
	p->store = store;
	p->rules = rules;
	p->global_dry_run = global_dry_run;
	p->source = source;
}

static int batch_open(struct cb_pipeline *p, struct cb_err *err)
{
	if (p->batch_count > 0)
		return 0;
	if (cb_store_begin(p->store, err) < 0)
		return -1;
	p->batch_started_ms = cb_mono_ms();
	return 0;
}

static void count_result(struct cb_pipeline *p, enum cb_event_status status)
{
	p->counts.received++;
	switch (status) {
	case CB_EVENT_ACCEPTED:
		p->counts.accepted++;
		break;
	case CB_EVENT_IGNORED:
		p->counts.ignored++;
		break;
	case CB_EVENT_REJECTED:
		p->counts.rejected++;
		break;
	case CB_EVENT_DUPLICATE:
		p->counts.duplicate++;
		break;
	}
}

/* Stores one message in the open batch and commits the batch when it is full or old. */
static int store_in_batch(struct cb_pipeline *p, const char *raw, size_t len,
			  const struct cb_event *ev, enum cb_event_reject reason, const char *detail,
			  const struct cb_decision *dec, struct cb_ingest_result *out,
			  struct cb_err *err)
{
	struct cb_ingest_result result;

	if (batch_open(p, err) < 0)
		return -1;
	if (cb_store_ingest(p->store, raw, len, p->source, ev, reason, detail, dec, &result, err) < 0) {
		cb_store_rollback(p->store);
		p->batch_count = 0;
		return -1;
	}
	p->batch_count++;
	count_result(p, result.status);
	if (out)
		*out = result;
	if (p->batch_count >= CB_PIPELINE_BATCH_MAX)
		return cb_pipeline_flush(p, 1, err);
	return cb_pipeline_flush(p, 0, err);
}

int cb_pipeline_submit(struct cb_pipeline *p, const char *raw, size_t len,
		       struct cb_ingest_result *out, struct cb_rule_match *match, struct cb_err *err)
{
	struct cb_event ev;
	struct cb_rule_match decided;
	struct cb_decision dec;
	enum cb_event_reject reason;
	char detail[512] = "";
	int rc;

	reason = cb_event_parse(raw, len, &ev, detail, sizeof(detail));
	if (reason != CB_REJECT_NONE)
		return store_in_batch(p, raw, len, NULL, reason, detail, NULL, out, err);

	memset(&dec, 0, sizeof(dec));
	if (ev.threat != CB_THREAT_NONE) {
		cb_rules_decide(p->rules, &ev, p->global_dry_run, &decided, NULL);
		dec.rule = decided.rule;
		dec.reason = decided.reason;
		dec.action = decided.action;
		if (match)
			*match = decided;
	}
	rc = store_in_batch(p, raw, len, &ev, CB_REJECT_NONE, NULL, ev.threat ? &dec : NULL, out, err);
	cb_event_clear(&ev);
	return rc;
}

int cb_pipeline_reject(struct cb_pipeline *p, const char *raw, size_t len,
		       enum cb_event_reject reason, const char *detail, struct cb_ingest_result *out,
		       struct cb_err *err)
{
	return store_in_batch(p, raw, len, NULL, reason, detail, NULL, out, err);
}

int cb_pipeline_flush(struct cb_pipeline *p, int force, struct cb_err *err)
{
	if (p->batch_count == 0)
		return 0;
	if (!force && cb_mono_ms() - p->batch_started_ms < CB_PIPELINE_BATCH_MS)
		return 0;
	p->batch_count = 0;
	if (cb_store_commit(p->store, err) < 0) {
		cb_store_rollback(p->store);
		return -1;
	}
	return 0;
}

int64_t cb_pipeline_flush_due_in(const struct cb_pipeline *p)
{
	int64_t left;

	if (p->batch_count == 0)
		return -1;
	left = CB_PIPELINE_BATCH_MS - (cb_mono_ms() - p->batch_started_ms);
	return left > 0 ? left : 0;
}
