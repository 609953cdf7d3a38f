/*
 * log_backend.c: the "log" backend, which has no mailbox access and records
 * what the job would do. Used before a mailbox backend is configured, and by
 * `clawback replay` to try rules on real events without touching mailboxes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"

struct log_op {
	struct cb_action action;
};

static int log_open(const struct cb_config *cfg, void **state, struct cb_err *err)
{
	(void)cfg;
	(void)err;
	*state = NULL;
	return 0;
}

static void log_close(void *state)
{
	(void)state;
}

static void log_limit_key(void *state, const struct cb_job *job, char *out, size_t size)
{
	(void)state;
	snprintf(out, size, "log:%s", job->mailbox);
}

static void *log_op_start(void *state, const struct cb_job *job)
{
	struct log_op *op = calloc(1, sizeof(*op));

	(void)state;
	if (op)
		op->action = job->action;
	return op;
}

/* Describes the action as "would move to junkemail" into out. */
static void describe_action(const struct cb_action *action, char *out, size_t size)
{
	switch (action->kind) {
	case CB_ACTION_MOVE:
		snprintf(out, size, "would move to %s", action->folder);
		break;
	case CB_ACTION_SOFT_DELETE:
		snprintf(out, size, "would soft-delete (to Recoverable Items)");
		break;
	case CB_ACTION_HARD_DELETE:
		snprintf(out, size, "would hard-delete (purge)");
		break;
	case CB_ACTION_LOG:
		snprintf(out, size, "would only log");
		break;
	case CB_ACTION_SKIP:
		snprintf(out, size, "would do nothing");
		break;
	}
}

static enum cb_op_step log_op_next(void *opaque, const struct cb_http_response *resp,
				   struct cb_http_request *req, struct cb_outcome *out)
{
	struct log_op *op = opaque;
	char what[300];

	(void)resp;
	(void)req;
	memset(out, 0, sizeof(*out));
	describe_action(&op->action, what, sizeof(what));
	snprintf(out->text, sizeof(out->text), "%s%s (log backend: mailbox not searched)", what,
		 op->action.dry_run ? ", dry run" : "");
	out->result = CB_RESULT_DONE;
	out->retry_after_ms = -1;
	return CB_OP_DONE;
}

static void log_op_free(void *op)
{
	free(op);
}

const struct cb_backend_ops cb_backend_log = {
	.name = "log",
	.open = log_open,
	.close = log_close,
	.limit_key = log_limit_key,
	.op_start = log_op_start,
	.op_next = log_op_next,
	.op_free = log_op_free,
};
