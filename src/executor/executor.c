/*
 * executor.c: the executor's lifecycle, its loop and the claiming of jobs.
 *
 * Runs in the executor thread; cb_executor_wake/stop/pause/resume/stats are
 * the only entry points for other threads (an eventfd write and atomics).
 * Job rows read from the store were validated by the store.
 */
#include "executor/exec_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"

/* How often idle limit keys are freed. */
#define EXEC_GC_INTERVAL_MS 60000

static void stats_set(_Atomic int64_t *field, int64_t value)
{
	atomic_store_explicit(field, value, memory_order_relaxed);
}

int cb_executor_new(const struct cb_config *cfg, const char *store_path,
		    const struct cb_backend_ops *backend, void *backend_state,
		    struct cb_executor **out, struct cb_err *err)
{
	const struct cb_executor_config *ec = &cfg->executor;
	struct cb_limits limits = {
		.key_concurrency = ec->mailbox_concurrency,
		.key_rate = ec->mailbox_rate,
		.window_ms = ec->mailbox_window_ms,
		.server_concurrency = ec->server_concurrency,
		.global_concurrency = ec->global_concurrency,
	};
	struct cb_executor *ex;

	if (ec->max_attempts < 1 || ec->retry_base_ms < 1 || ec->retry_max_ms < ec->retry_base_ms)
		return cb_err_set(err, "invalid executor settings: max_attempts and retry_base_ms must "
				       "be at least 1, and retry_max_ms at least retry_base_ms");

	ex = calloc(1, sizeof(*ex));
	if (!ex)
		return cb_err_set(err, "out of memory creating the executor");
	ex->cfg = cfg;
	ex->limits = *ec;
	ex->backend = backend;
	ex->backend_state = backend_state;
	ex->wake_fd = -1;
	if (getrandom(&ex->random_state, sizeof(ex->random_state), 0) !=
	    (ssize_t)sizeof(ex->random_state))
		ex->random_state = (uint64_t)cb_mono_ms() * 0x9e3779b97f4a7c15ULL;
	ex->random_state |= 1;

	if (cb_limiter_new(&limits, &ex->limiter, err) < 0)
		goto fail;
	ex->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (ex->wake_fd < 0) {
		cb_err_set(err, "cannot create the executor's eventfd: %s", strerror(errno));
		goto fail;
	}
	ex->multi = curl_multi_init();
	if (!ex->multi) {
		cb_err_set(err, "cannot create the curl multi handle");
		goto fail;
	}
	curl_multi_setopt(ex->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	curl_multi_setopt(ex->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)CB_EXEC_MAX_HOST_CONNECTIONS);
	if (cb_store_open(store_path, &ex->store, err) < 0) {
		cb_err_prefix(err, "executor: ");
		goto fail;
	}
	*out = ex;
	return 0;

fail:
	cb_executor_free(ex);
	return -1;
}

void cb_executor_free(struct cb_executor *ex)
{
	if (!ex)
		return;
	while (ex->first)
		exec_job_free(ex, ex->first);
	if (ex->multi)
		curl_multi_cleanup(ex->multi);
	if (ex->wake_fd >= 0)
		close(ex->wake_fd);
	cb_limiter_free(ex->limiter);
	cb_store_close(ex->store);
	free(ex);
}

void cb_executor_wake(struct cb_executor *ex)
{
	uint64_t one = 1;

	/* EAGAIN means the counter is already non-zero, so the loop wakes anyway. */
	if (write(ex->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		cb_warn("executor wake-up failed error=%d", errno);
}

void cb_executor_stop(struct cb_executor *ex, int graceful)
{
	int want = graceful ? EXEC_STOP_GRACEFUL : EXEC_STOP_NOW;
	int cur = atomic_load(&ex->stop_request);

	/* A stop now overrides a graceful stop, never the other way round. */
	while (cur < want && !atomic_compare_exchange_weak(&ex->stop_request, &cur, want))
		;
	cb_executor_wake(ex);
}

void cb_executor_pause(struct cb_executor *ex)
{
	atomic_store(&ex->paused, 1);
	cb_executor_wake(ex);
}

void cb_executor_resume(struct cb_executor *ex)
{
	atomic_store(&ex->paused, 0);
	cb_executor_wake(ex);
}

void cb_executor_stats(const struct cb_executor *ex, struct cb_executor_stats *out)
{
	const struct exec_stats *s = &ex->stats;

	memset(out, 0, sizeof(*out));
	out->active_jobs = atomic_load_explicit(&s->active_jobs, memory_order_relaxed);
	out->in_flight = atomic_load_explicit(&s->in_flight, memory_order_relaxed);
	out->waiting_requests = atomic_load_explicit(&s->waiting_requests, memory_order_relaxed);
	out->claimed = atomic_load_explicit(&s->claimed, memory_order_relaxed);
	out->done = atomic_load_explicit(&s->done, memory_order_relaxed);
	out->not_found = atomic_load_explicit(&s->not_found, memory_order_relaxed);
	out->retry_wait = atomic_load_explicit(&s->retry_wait, memory_order_relaxed);
	out->retry_queue = atomic_load_explicit(&s->retry_queue, memory_order_relaxed);
	out->final_error = atomic_load_explicit(&s->final_error, memory_order_relaxed);
	out->requests = atomic_load_explicit(&s->requests, memory_order_relaxed);
	out->throttled = atomic_load_explicit(&s->throttled, memory_order_relaxed);
	out->next_retry_ms = atomic_load_explicit(&s->next_retry_ms, memory_order_relaxed);
	out->paused = atomic_load(&ex->paused);
	out->stopping = atomic_load(&ex->stop_request) != EXEC_RUN;
}

uint32_t exec_random(struct cb_executor *ex)
{
	/* xorshift64*: enough for jitter and request ids' spread, not for secrets. */
	ex->random_state ^= ex->random_state >> 12;
	ex->random_state ^= ex->random_state << 25;
	ex->random_state ^= ex->random_state >> 27;
	return (uint32_t)((ex->random_state * 0x2545f4914f6cdd1dULL) >> 32);
}

/* Transactions: the writes of one loop turn share one transaction. */

void exec_txn_begin(struct cb_executor *ex)
{
	struct cb_err err;

	if (ex->in_txn)
		return;
	if (cb_store_begin(ex->store, &err) < 0) {
		/* Writes then run one transaction each, which is slower but still correct. */
		cb_warn("executor cannot begin a store transaction error=\"%s\"", err.msg);
		return;
	}
	ex->in_txn = 1;
}

void exec_txn_commit(struct cb_executor *ex)
{
	struct cb_err err;

	if (!ex->in_txn)
		return;
	ex->in_txn = 0;
	if (cb_store_commit(ex->store, &err) == 0)
		return;
	/*
	 * The jobs of this turn stay in running in the store. The next start's
	 * cb_store_recover() runs them again, which the backends make safe.
	 */
	cb_error("executor cannot commit job results, they run again after a restart error=\"%s\"",
		 err.msg);
	cb_store_rollback(ex->store);
}

/* Claiming. */

static void active_append(struct cb_executor *ex, struct exec_job *ej)
{
	ej->prev = ex->last;
	if (ex->last)
		ex->last->next = ej;
	else
		ex->first = ej;
	ex->last = ej;
	ex->active++;
	stats_set(&ex->stats.active_jobs, (int64_t)ex->active);
}

/* Returns the job's limit key with a reference, or NULL when its backlog is full or on error. */
static struct cb_limit_key *claim_key(struct cb_executor *ex, const struct cb_job *job)
{
	char name[CB_LIMIT_KEY_MAX + 2];
	struct cb_limit_key *key = NULL;
	struct cb_err err;

	name[0] = '\0';
	ex->backend->limit_key(ex->backend_state, job, name, sizeof(name));
	if (cb_limiter_ref(ex->limiter, name, &key, &err) < 0) {
		/* Too long or empty keys share one fallback key, so the job still runs, limited. */
		cb_warn("job has an invalid limit key, using the backend's shared key job=%lld "
			"error=\"%s\"",
			(long long)job->id, err.msg);
		if (cb_limiter_ref(ex->limiter, ex->backend->name, &key, &err) < 0)
			return NULL;
	}
	if (cb_limiter_key_refs(key) > CB_EXEC_MAX_ACTIVE_PER_KEY) {
		cb_limiter_unref(ex->limiter, key);
		return NULL;
	}
	return key;
}

/* Moves one due job to running and starts its operation; returns 1 when claimed. */
static int claim_job(struct cb_executor *ex, struct cb_job *job)
{
	struct cb_transition t = CB_TRANSITION_INIT;
	struct cb_limit_key *key;
	struct exec_job *ej;
	struct cb_err err;

	key = claim_key(ex, job);
	if (!key)
		return 0;
	ej = calloc(1, sizeof(*ej));
	if (!ej) {
		cb_limiter_unref(ex->limiter, key);
		return 0;
	}

	exec_txn_begin(ex);
	if (cb_store_job_transition(ex->store, job->id, CB_JOB_QUEUED, CB_JOB_RUNNING, &t, &err) < 0) {
		cb_warn("executor cannot claim job job=%lld error=\"%s\"", (long long)job->id, err.msg);
		cb_limiter_unref(ex->limiter, key);
		free(ej);
		return 0;
	}

	ej->job = *job;
	memset(job, 0, sizeof(*job)); /* the strings now belong to ej->job */
	ej->job.state = CB_JOB_RUNNING;
	ej->key = key;
	ej->server_backoff_ms = -1;
	active_append(ex, ej);
	atomic_fetch_add_explicit(&ex->stats.claimed, 1, memory_order_relaxed);

	ej->op = ex->backend->op_start(ex->backend_state, &ej->job);
	if (!ej->op) {
		struct cb_outcome out = {.result = CB_RESULT_TEMPORARY, .retry_after_ms = -1};

		cb_strlcpy(out.text, "out of memory starting the backend operation", sizeof(out.text));
		exec_job_finish(ex, ej, &out);
		return 1;
	}
	exec_job_begin(ex, ej);
	return 1;
}

struct claim_round {
	size_t scanned;
	size_t claimed;
	int left_behind; /* due jobs seen but not claimed (caps, errors) */
	int reached_end;
};

/* Reads one page of due jobs after *after and claims what the caps allow. Returns -1 on error. */
static int claim_page(struct cb_executor *ex, int64_t *after, struct claim_round *r)
{
	struct cb_job *jobs = NULL;
	size_t n = 0;
	struct cb_err err;

	exec_txn_begin(ex);
	if (cb_store_jobs_due(ex->store, cb_now_ms(), *after, CB_EXEC_CLAIM_BATCH, &jobs, &n, &err) < 0) {
		cb_error("executor cannot read due jobs error=\"%s\"", err.msg);
		return -1;
	}
	if (n < CB_EXEC_CLAIM_BATCH)
		r->reached_end = 1;

	for (size_t i = 0; i < n; i++) {
		if (ex->active >= CB_EXEC_MAX_ACTIVE) {
			/* Read this job again next round. */
			r->left_behind = 1;
			r->reached_end = 0;
			break;
		}
		*after = jobs[i].id;
		r->scanned++;
		if (claim_job(ex, &jobs[i]))
			r->claimed++;
		else
			r->left_behind = 1;
	}
	cb_jobs_free(jobs, n);
	return 0;
}

static void update_next_retry(struct cb_executor *ex)
{
	struct cb_err err;
	int64_t next = 0;

	if (cb_store_next_wakeup(ex->store, &next, &err) < 0) {
		cb_warn("executor cannot read the next retry time error=\"%s\"", err.msg);
		return;
	}
	ex->next_retry_ms = next;
	stats_set(&ex->stats.next_retry_ms, next);
}

/*
 * Claims due jobs, starting after claim_cursor and wrapping to the start of
 * the queue at its end, looking at no more than CB_EXEC_CLAIM_SCAN_MAX rows.
 */
static void claim_round(struct cb_executor *ex)
{
	struct claim_round r = {0};
	int64_t start = ex->claim_cursor;
	int64_t after = start;

	ex->need_claim = 0;
	ex->last_claim_mono = cb_mono_ms();
	while (!r.reached_end && r.scanned < CB_EXEC_CLAIM_SCAN_MAX &&
	       ex->active < CB_EXEC_MAX_ACTIVE) {
		if (claim_page(ex, &after, &r) < 0) {
			ex->need_claim = 1;
			return;
		}
	}

	ex->claim_cursor = r.reached_end ? 0 : after;
	ex->claim_on_finish = r.left_behind || ex->active >= CB_EXEC_MAX_ACTIVE;
	ex->last_round_claimed = r.claimed;
	/* A round that began mid-queue has not seen the jobs before its start yet. */
	if (r.reached_end && start != 0)
		ex->need_claim = 1;
	if (!r.reached_end && r.scanned >= CB_EXEC_CLAIM_SCAN_MAX)
		ex->need_claim = 1;
	update_next_retry(ex);
	if (r.claimed > 0)
		cb_debug("executor claimed jobs count=%zu active=%zu", r.claimed, ex->active);
}

/* The loop. */

static int claim_allowed(struct cb_executor *ex)
{
	return !ex->stopping && !atomic_load(&ex->paused);
}

/* Notices commits of other connections (CLI re-queues, feed threads) with a cheap pragma read. */
static void check_store_changes(struct cb_executor *ex, int64_t now)
{
	int64_t version;

	if (now - ex->last_version_check_mono < CB_EXEC_IDLE_CHECK_MS)
		return;
	ex->last_version_check_mono = now;
	version = cb_store_data_version(ex->store);
	if (version != ex->data_version) {
		ex->data_version = version;
		ex->need_claim = 1;
	}
	if (ex->next_retry_ms > 0 && cb_now_ms() >= ex->next_retry_ms)
		ex->need_claim = 1;
}

static int64_t min_timeout(int64_t timeout, int64_t candidate)
{
	if (candidate < 0)
		candidate = 0;
	return candidate < timeout ? candidate : timeout;
}

/* Returns how long curl_multi_poll may wait, in ms. */
static int64_t poll_timeout(struct cb_executor *ex, int64_t now)
{
	int64_t timeout = CB_EXEC_IDLE_CHECK_MS;
	int64_t ready;

	if (ex->need_claim && claim_allowed(ex))
		timeout = min_timeout(timeout, ex->last_claim_mono + CB_EXEC_CLAIM_INTERVAL_MS - now);
	if (ex->next_retry_ms > 0 && claim_allowed(ex))
		timeout = min_timeout(timeout, ex->next_retry_ms - cb_now_ms());
	ready = cb_limiter_next_ready_ms(ex->limiter, now);
	if (ready >= 0 && !ex->stopping)
		timeout = min_timeout(timeout, ready - now);
	if (ex->stopping)
		timeout = min_timeout(timeout, ex->stop_deadline_mono - now);
	return timeout;
}

static void read_wakeups(struct cb_executor *ex)
{
	uint64_t count;

	if (read(ex->wake_fd, &count, sizeof(count)) == (ssize_t)sizeof(count))
		ex->need_claim = 1;
}

static int wait_for_work(struct cb_executor *ex, int64_t now, struct cb_err *err)
{
	struct curl_waitfd extra = {.fd = ex->wake_fd, .events = CURL_WAIT_POLLIN};
	int running = 0;
	CURLMcode mc;

	mc = curl_multi_poll(ex->multi, &extra, 1, (int)poll_timeout(ex, now), NULL);
	if (mc != CURLM_OK)
		return cb_err_set(err, "curl_multi_poll failed: %s", curl_multi_strerror(mc));
	if (extra.revents)
		read_wakeups(ex);
	mc = curl_multi_perform(ex->multi, &running);
	if (mc != CURLM_OK)
		return cb_err_set(err, "curl_multi_perform failed: %s", curl_multi_strerror(mc));
	return 0;
}

/* Starts a stop when one was requested; returns 1 when the loop should end now. */
static int handle_stop(struct cb_executor *ex, int64_t now)
{
	int request = atomic_load(&ex->stop_request);
	struct cb_limiter_counts counts;

	if (request == EXEC_RUN)
		return 0;
	if (!ex->stopping) {
		ex->stopping = 1;
		ex->stop_deadline_mono = now;
		if (request == EXEC_STOP_GRACEFUL)
			ex->stop_deadline_mono += ex->limits.stop_timeout_ms;
		cb_notice("executor stopping active=%zu graceful=%d", ex->active,
			  request == EXEC_STOP_GRACEFUL);
	}
	if (request == EXEC_STOP_NOW)
		ex->stop_deadline_mono = now;

	cb_limiter_counts(ex->limiter, &counts);
	return counts.in_flight == 0 || now >= ex->stop_deadline_mono;
}

/* Puts every unfinished job back in the store (running -> retry_wait, due now). */
static void put_back_all(struct cb_executor *ex)
{
	size_t n = ex->active;

	while (ex->first) {
		exec_txn_begin(ex);
		exec_job_put_back(ex, ex->first);
	}
	exec_txn_commit(ex);
	if (n > 0)
		cb_notice("executor put unfinished jobs back count=%zu", n);
}

static void maybe_gc(struct cb_executor *ex, int64_t now)
{
	if (now - ex->last_gc_mono < EXEC_GC_INTERVAL_MS)
		return;
	ex->last_gc_mono = now;
	cb_limiter_gc(ex->limiter, now);
}

/*
 * Tells whether a drain is over: the last claim round found nothing to
 * claim, nothing is in flight, and no queued request may start now (those
 * left wait for a server back-off and are put back with its deadline).
 */
static int drain_finished(struct cb_executor *ex, int64_t now)
{
	struct cb_limiter_counts counts;

	if (ex->need_claim || ex->last_round_claimed > 0)
		return 0;
	cb_limiter_counts(ex->limiter, &counts);
	return counts.in_flight == 0 && cb_limiter_next_ready_ms(ex->limiter, now) != now;
}

static int recover(struct cb_executor *ex, struct cb_err *err)
{
	size_t n = 0;

	if (cb_store_recover(ex->store, &n, err) < 0)
		return cb_err_prefix(err, "executor cannot recover interrupted jobs: ");
	if (n > 0)
		cb_notice("executor put interrupted jobs back to queued count=%zu", n);
	return 0;
}

static int run_loop(struct cb_executor *ex, struct cb_err *err)
{
	int rc = 0;

	if (recover(ex, err) < 0)
		return -1;
	ex->need_claim = 1;
	ex->claim_cursor = 0;
	ex->stopping = 0;
	ex->data_version = cb_store_data_version(ex->store);
	ex->last_version_check_mono = cb_mono_ms();
	ex->last_gc_mono = ex->last_version_check_mono;
	cb_info("executor started backend=%s", ex->backend->name);

	for (;;) {
		int64_t now = cb_mono_ms();

		if (handle_stop(ex, now))
			break;
		check_store_changes(ex, now);
		if (ex->need_claim && claim_allowed(ex) &&
		    now - ex->last_claim_mono >= CB_EXEC_CLAIM_INTERVAL_MS)
			claim_round(ex);
		if (ex->drain && drain_finished(ex, now))
			break;
		if (!ex->stopping)
			exec_requests_start(ex);
		exec_txn_commit(ex);

		if (wait_for_work(ex, now, err) < 0) {
			rc = -1;
			break;
		}
		exec_requests_collect(ex);
		exec_txn_commit(ex);
		maybe_gc(ex, now);
	}

	put_back_all(ex);
	update_next_retry(ex);
	cb_info("executor stopped");
	return rc;
}

int cb_executor_run(struct cb_executor *ex, struct cb_err *err)
{
	ex->drain = 0;
	return run_loop(ex, err);
}

int cb_executor_drain(struct cb_executor *ex, struct cb_err *err)
{
	int rc;

	ex->drain = 1;
	rc = run_loop(ex, err);
	ex->drain = 0;
	return rc;
}
