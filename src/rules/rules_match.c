/*
 * rules_match.c: cb_rules_decide, the decision for one event.
 *
 * Runs in feed threads, replay and the console's rule tester, possibly at
 * once on one ruleset: the ruleset is read-only here, each call allocates its
 * own PCRE2 match data, and the only shared write is an atomic flag per rule.
 * The event's strings are untrusted. They reach only strcasecmp, fnmatch and
 * PCRE2 (under the match, depth and heap limits), and the explain text quotes
 * them with control characters escaped.
 */
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "config/ini_reader.h"
#include "rules/rules_internal.h"

/* Bytes of an event value or pattern quoted in an explain line. */
#define EXPLAIN_VALUE_MAX 120
/* Patterns listed in an explain line before "...". */
#define EXPLAIN_PATTERNS_MAX 5

enum match_result { MATCH_NO, MATCH_YES, MATCH_ABSENT };

struct match_call {
	const struct cb_ruleset *rules;
	pcre2_match_data *md; /* created on the first regex evaluation */
	int limit_hit;        /* the last condition tried hit a PCRE2 limit */
};

static const char *domain_of(const char *address)
{
	const char *at = address ? strrchr(address, '@') : NULL;

	return at && at[1] ? at + 1 : NULL;
}

static const char *event_value(const struct cb_event *ev, enum rule_field field)
{
	const char *recipient = ev->recipient_norm ? ev->recipient_norm : ev->recipient;

	switch (field) {
	case RF_CUSTOMER:
		return ev->customer;
	case RF_RECIPIENT_DOMAIN:
		return domain_of(recipient);
	case RF_RECIPIENT:
		return recipient;
	case RF_SENDER_DOMAIN:
		return domain_of(ev->sender);
	case RF_SENDER:
		return ev->sender;
	case RF_HASH_FUNCTION:
		return ev->hash_function;
	case RF_HASH:
		return ev->checksum;
	case RF_MIME_TYPE:
		return ev->mime_type;
	case RF_DETAILS:
		return ev->details;
	case RF_URL:
		return ev->url;
	case RF_THREAT:
	case RF_COUNT:
		break;
	}
	return NULL;
}

static int regex_match(struct match_call *call, const struct rule_pattern *p, const char *value)
{
	int rc;

	if (!call->md) {
		call->md = pcre2_match_data_create(1, NULL);
		if (!call->md)
			return 0;
	}
	rc = pcre2_match(p->re, (PCRE2_SPTR)value, strlen(value), 0, 0, call->md, call->rules->match_context);
	if (rc >= 0)
		return 1;
	if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT ||
	    rc == PCRE2_ERROR_JIT_STACKLIMIT)
		call->limit_hit = 1;
	return 0;
}

static int pattern_match(struct match_call *call, enum rule_field field, const struct rule_pattern *p,
			 const char *value)
{
	int caseless = cb_rule_field_caseless(field);

	switch (p->kind) {
	case PAT_EXACT:
		return caseless ? strcasecmp(p->text, value) == 0 : strcmp(p->text, value) == 0;
	case PAT_GLOB:
		return fnmatch(p->text, value, caseless ? FNM_CASEFOLD : 0) == 0;
	case PAT_REGEX:
		return regex_match(call, p, value);
	}
	return 0;
}

/* Tries one condition; on a match *which is the index of the pattern that matched. */
static enum match_result condition_match(struct match_call *call, const struct cb_event *ev, enum rule_field field,
					 const struct rule_condition *c, size_t *which)
{
	const char *value;

	call->limit_hit = 0;
	if (field == RF_THREAT) {
		for (size_t i = 0; i < c->count; i++) {
			if (c->patterns[i].threat == ev->threat) {
				*which = i;
				return MATCH_YES;
			}
		}
		return MATCH_NO;
	}
	value = event_value(ev, field);
	if (!value)
		return MATCH_ABSENT;
	for (size_t i = 0; i < c->count; i++) {
		if (pattern_match(call, field, &c->patterns[i], value)) {
			*which = i;
			return MATCH_YES;
		}
	}
	return MATCH_NO;
}

static const char *pattern_prefix(const struct rule_pattern *p)
{
	if (p->kind == PAT_GLOB)
		return "glob:";
	if (p->kind == PAT_REGEX)
		return "regex:";
	return "";
}

static void append_reason(char *reason, size_t size, size_t *used, enum rule_field field,
			  const struct rule_pattern *p)
{
	int n;

	if (*used >= size)
		return;
	if (field == RF_THREAT)
		n = snprintf(reason + *used, size - *used, "%sthreat=%s", *used ? " " : "", cb_threat_name(p->threat));
	else
		n = snprintf(reason + *used, size - *used, "%s%s%s%s%s", *used ? " " : "", cb_rule_field_name(field),
			     p->kind == PAT_EXACT ? "=" : "~", pattern_prefix(p), p->text);
	if (n > 0)
		*used += (size_t)n;
}

static void explain_pattern(struct cb_buf *explain, const struct rule_pattern *p, enum rule_field field)
{
	char q[EXPLAIN_VALUE_MAX * 4 + 8];

	if (field == RF_THREAT)
		cb_buf_puts(explain, cb_threat_name(p->threat));
	else
		cb_buf_printf(explain, "%s%s", pattern_prefix(p), cb_quote(q, sizeof(q), p->text, EXPLAIN_VALUE_MAX));
}

/* Writes why condition c failed: "recipient_domain 'fabrikam.example' != 'contoso.example'". */
static void explain_failure(struct cb_buf *explain, const struct cb_event *ev, enum rule_field field,
			    const struct rule_condition *c, enum match_result result, int limit_hit)
{
	char q[EXPLAIN_VALUE_MAX * 4 + 8];
	const char *value = field == RF_THREAT ? cb_threat_name(ev->threat) : event_value(ev, field);

	if (result == MATCH_ABSENT) {
		cb_buf_printf(explain, "%s absent from the event", cb_rule_field_name(field));
		return;
	}
	cb_buf_printf(explain, "%s %s ", cb_rule_field_name(field), cb_quote(q, sizeof(q), value, EXPLAIN_VALUE_MAX));
	if (c->count == 1)
		cb_buf_puts(explain, c->patterns[0].kind == PAT_EXACT || field == RF_THREAT ? "!= " : "does not match ");
	else
		cb_buf_puts(explain, "matches none of ");
	for (size_t i = 0; i < c->count && i < EXPLAIN_PATTERNS_MAX; i++) {
		if (i)
			cb_buf_puts(explain, ", ");
		explain_pattern(explain, &c->patterns[i], field);
	}
	if (c->count > EXPLAIN_PATTERNS_MAX)
		cb_buf_printf(explain, ", ... (%zu patterns)", c->count);
	if (limit_hit)
		cb_buf_printf(explain, " (a regex hit the PCRE2 match limit of %d and counts as no match)",
			      CB_RULES_MATCH_LIMIT);
}

static void warn_limit_once(const struct cb_ruleset *rules, size_t index, enum rule_field field)
{
	struct cb_log_value name;

	if (atomic_exchange(&rules->limit_warned[index], 1))
		return;
	cb_warn("rule regex hit the PCRE2 match limit and counts as no match; simplify the pattern rule=%s "
		"field=%s limit=%d (logged once per rule)",
		cb_log_str(&name, rules->rules[index].name), cb_rule_field_name(field), CB_RULES_MATCH_LIMIT);
}

/*
 * Tries rule index against ev. Returns 1 on a match with which[] set for the
 * reason, else 0 after writing the failed condition to explain (when set).
 */
static int rule_match(struct match_call *call, size_t index, const struct cb_event *ev, size_t which[RF_COUNT],
		      struct cb_buf *explain)
{
	const struct rule *r = &call->rules->rules[index];

	for (int f = 0; f < RF_COUNT; f++) {
		const struct rule_condition *c = &r->conds[f];
		enum match_result result;

		if (c->count == 0)
			continue;
		result = condition_match(call, ev, (enum rule_field)f, c, &which[f]);
		if (call->limit_hit)
			warn_limit_once(call->rules, index, (enum rule_field)f);
		if (result == MATCH_YES)
			continue;
		if (explain) {
			cb_buf_printf(explain, "rule '%s': no match: ", r->name);
			explain_failure(explain, ev, (enum rule_field)f, c, result, call->limit_hit);
			cb_buf_puts(explain, "\n");
		}
		return 0;
	}
	return 1;
}

static void fill_match(const struct rule *r, const size_t which[RF_COUNT], struct cb_rule_match *out)
{
	size_t used = 0;

	out->rule = r->name;
	out->action = r->action;
	out->reason[0] = '\0';
	for (int f = 0; f < RF_COUNT; f++) {
		if (r->conds[f].count)
			append_reason(out->reason, sizeof(out->reason), &used, (enum rule_field)f,
				      &r->conds[f].patterns[which[f]]);
	}
	if (used == 0)
		snprintf(out->reason, sizeof(out->reason), "rule has no conditions");
}

void cb_rules_decide(const struct cb_ruleset *rules, const struct cb_event *ev, int global_dry_run,
		     struct cb_rule_match *out, struct cb_buf *explain)
{
	struct match_call call = {.rules = rules};
	size_t which[RF_COUNT];
	size_t count = rules ? rules->count : 0;
	size_t i;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < count; i++) {
		const struct rule *r = &rules->rules[i];

		if (!r->enabled) {
			if (explain)
				cb_buf_printf(explain, "rule '%s': disabled\n", r->name);
			continue;
		}
		if (rule_match(&call, i, ev, which, explain))
			break;
	}
	pcre2_match_data_free(call.md);

	if (i < count) {
		fill_match(&rules->rules[i], which, out);
		if (explain)
			cb_buf_printf(explain, "rule '%s': matched: %s\n", out->rule, out->reason);
	} else {
		out->rule = "(default)";
		cb_rules_default_action(rules, &out->action);
		snprintf(out->reason, sizeof(out->reason), "no rule matched");
		if (explain)
			cb_buf_printf(explain, "(default): %s%s%s\n", cb_action_kind_name(out->action.kind),
				      out->action.kind == CB_ACTION_MOVE ? " to " : "", out->action.folder);
	}
	if (global_dry_run)
		out->action.dry_run = 1;
}
