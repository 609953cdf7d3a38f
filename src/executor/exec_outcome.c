/*
 * exec_outcome.c: what the executor does with a finished operation: the
 * job's next state, its retry time, and the clean-up of the job in memory.
 *
 * Runs in the executor thread. Outcome texts come from the backend and may
 * quote server messages, so they reach the log only through cb_log_str().
 */
#include "executor/exec_internal.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"

static void stats_add(_Atomic int64_t *field, int64_t delta)
{
	atomic_fetch_add_explicit(field, delta, memory_order_relaxed);
}

int64_t cb_exec_backoff_ms(const struct cb_executor_config *cfg, int64_t failed_attempts,
			   uint32_t random)
{
	int64_t delay = cfg->retry_base_ms;
	int64_t half;

	for (int64_t i = 1; i < failed_attempts && delay < cfg->retry_max_ms; i++)
		delay *= 2;
	if (delay > cfg->retry_max_ms)
		delay = cfg->retry_max_ms;

	/* "Equal jitter": at least half the delay, so retries of one burst spread but never bunch up early. */
	half = delay / 2;
	return half + (int64_t)(random % (uint64_t)(delay - half + 1));
}

/* Returns the server's back-off hint for this run, capped, or -1 when there is none. */
static int64_t server_hint_ms(const struct exec_job *ej, const struct cb_outcome *out)
{
	int64_t hint = out->retry_after_ms >= 0 ? out->retry_after_ms : ej->server_backoff_ms;

	if (hint > CB_EXEC_MAX_SERVER_BACKOFF_MS)
		hint = CB_EXEC_MAX_SERVER_BACKOFF_MS;
	return hint;
}

/* Fills t and returns the next state for a temporary error. */
static enum cb_job_state plan_temporary(struct cb_executor *ex, struct exec_job *ej,
					const struct cb_outcome *out, struct cb_transition *t)
{
	int64_t failed = (int64_t)ej->job.attempts + 1;
	int64_t hint = server_hint_ms(ej, out);
	int64_t delay;

	t->add_attempts = 1;
	t->error = out->text;
	if (failed >= ex->limits.max_attempts)
		return CB_JOB_RETRY_QUEUE;

	if (hint >= 0) {
		/* Honour the server's hint exactly: earlier is throttled again, later wastes time. */
		delay = hint;
		cb_limiter_block(ex->limiter, ej->key, cb_mono_ms() + hint);
	} else {
		delay = cb_exec_backoff_ms(&ex->limits, failed, exec_random(ex));
	}
	t->next_attempt_ms = cb_now_ms() + delay;
	return CB_JOB_RETRY_WAIT;
}

/* Fills t and returns the next state for a search that found nothing. */
static enum cb_job_state plan_not_found(struct cb_executor *ex, struct exec_job *ej,
					const struct cb_outcome *out, struct cb_transition *t)
{
	t->add_searches = 1;
	t->outcome = out->text;
	if ((int64_t)ej->job.searches + 1 >= ex->limits.not_found_searches)
		return CB_JOB_NOT_FOUND;
	t->next_attempt_ms = cb_now_ms() + ex->limits.not_found_interval_ms;
	return CB_JOB_RETRY_WAIT;
}

static void count_outcome(struct cb_executor *ex, enum cb_job_state to)
{
	struct exec_stats *s = &ex->stats;

	switch (to) {
	case CB_JOB_DONE:
		stats_add(&s->done, 1);
		break;
	case CB_JOB_NOT_FOUND:
		stats_add(&s->not_found, 1);
		break;
	case CB_JOB_RETRY_WAIT:
		stats_add(&s->retry_wait, 1);
		break;
	case CB_JOB_RETRY_QUEUE:
		stats_add(&s->retry_queue, 1);
		break;
	default:
		stats_add(&s->final_error, 1);
		break;
	}
}

static void note_retry_time(struct cb_executor *ex, int64_t at_ms)
{
	if (at_ms <= 0)
		return;
	if (ex->next_retry_ms == 0 || at_ms < ex->next_retry_ms) {
		ex->next_retry_ms = at_ms;
		atomic_store_explicit(&ex->stats.next_retry_ms, at_ms, memory_order_relaxed);
	}
}

static void log_outcome(const struct exec_job *ej, const struct cb_outcome *out,
			enum cb_job_state to, int64_t next_attempt_ms)
{
	struct cb_log_value text, found;
	enum cb_log_level level = CB_LOG_INFO;

	if (to == CB_JOB_FINAL_ERROR || to == CB_JOB_RETRY_QUEUE)
		level = CB_LOG_WARNING;
	cb_log(level,
	       "job finished a run job=%lld event=%lld result=%s state=%s attempts=%d searches=%d "
	       "next_attempt_ms=%lld http_status=%ld outcome=%s found_in=%s",
	       (long long)ej->job.id, (long long)ej->job.event_id, cb_result_name(out->result),
	       cb_job_state_name(to), ej->job.attempts, ej->job.searches,
	       (long long)next_attempt_ms, out->http_status, cb_log_str(&text, out->text),
	       cb_log_str(&found, out->found_in[0] ? out->found_in : NULL));
}

void exec_job_finish(struct cb_executor *ex, struct exec_job *ej, const struct cb_outcome *out)
{
	struct cb_transition t = CB_TRANSITION_INIT;
	enum cb_job_state to;
	struct cb_err err;

	switch (out->result) {
	case CB_RESULT_DONE:
		to = CB_JOB_DONE;
		t.outcome = out->text;
		t.found_in = out->found_in[0] ? out->found_in : NULL;
		break;
	case CB_RESULT_NOT_FOUND:
		to = plan_not_found(ex, ej, out, &t);
		break;
	case CB_RESULT_TEMPORARY:
		to = plan_temporary(ex, ej, out, &t);
		break;
	case CB_RESULT_PERMANENT:
	default:
		to = CB_JOB_FINAL_ERROR;
		t.error = out->text;
		break;
	}

	/*
	 * A request that changes the mailbox (move, delete) may have been applied
	 * although no response said so (a reset or a timeout): the next run must
	 * look for hits already acted on, as after a crash.
	 */
	if (out->result != CB_RESULT_DONE && ej->sent_change)
		t.may_have_acted = 1;

	exec_txn_begin(ex);
	if (cb_store_job_transition(ex->store, ej->job.id, CB_JOB_RUNNING, to, &t, &err) < 0) {
		cb_error("executor cannot record a job's result job=%lld state=%s error=\"%s\"",
			 (long long)ej->job.id, cb_job_state_name(to), err.msg);
	} else {
		count_outcome(ex, to);
		if (to == CB_JOB_RETRY_WAIT)
			note_retry_time(ex, t.next_attempt_ms);
	}
	log_outcome(ej, out, to, t.next_attempt_ms);
	exec_job_free(ex, ej);
}

void exec_job_put_back(struct cb_executor *ex, struct exec_job *ej)
{
	struct cb_transition t = CB_TRANSITION_INIT;
	int64_t blocked_ms = cb_limiter_key_blocked_until(ej->key) - cb_mono_ms();
	struct cb_err err;

	/*
	 * Due at once (or when the key's server back-off ends), attempts
	 * unchanged: the next start runs it again, and the backend searches first.
	 */
	t.next_attempt_ms = cb_now_ms() + (blocked_ms > 0 ? blocked_ms : 0);
	if (ej->requests > 0)
		t.may_have_acted = 1;
	t.detail_json = "{\"reason\":\"executor stopped before the job finished\"}";
	if (cb_store_job_transition(ex->store, ej->job.id, CB_JOB_RUNNING, CB_JOB_RETRY_WAIT, &t,
				    &err) < 0)
		cb_error("executor cannot put a job back, the next start recovers it job=%lld "
			 "error=\"%s\"",
			 (long long)ej->job.id, err.msg);
	exec_job_free(ex, ej);
}

void exec_job_free(struct cb_executor *ex, struct exec_job *ej)
{
	exec_request_abort(ex, ej);
	if (ej->op)
		ex->backend->op_free(ej->op);
	cb_limiter_unref(ex->limiter, ej->key);

	if (ej->prev)
		ej->prev->next = ej->next;
	else
		ex->first = ej->next;
	if (ej->next)
		ej->next->prev = ej->prev;
	else
		ex->last = ej->prev;
	ex->active--;
	atomic_store_explicit(&ex->stats.active_jobs, (int64_t)ex->active, memory_order_relaxed);

	/* A finished job frees room: claim again when the last round left due jobs behind. */
	if (ex->claim_on_finish || ex->drain)
		ex->need_claim = 1;
	cb_job_clear(&ej->job);
	free(ej);
}
