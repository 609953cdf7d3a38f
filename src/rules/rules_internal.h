/*
 * rules_internal.h: the compiled form of a rules file, shared by the loader
 * (rules.c) and the matcher (rules_match.c). Everything here is built once at
 * load and read-only afterwards, except limit_warned, which the matcher sets
 * atomically. So one ruleset can serve several threads at once.
 */
#ifndef CLAWBACK_RULES_RULES_INTERNAL_H
#define CLAWBACK_RULES_RULES_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdatomic.h>

#include "rules/rules.h"

/* Condition fields, in the order the matcher tries them: cheap exact fields first, URLs last. */
enum rule_field {
	RF_THREAT,
	RF_CUSTOMER,
	RF_RECIPIENT_DOMAIN,
	RF_RECIPIENT,
	RF_SENDER_DOMAIN,
	RF_SENDER,
	RF_HASH_FUNCTION,
	RF_HASH,
	RF_MIME_TYPE,
	RF_DETAILS,
	RF_URL,
	RF_COUNT,
};

enum pattern_kind {
	PAT_EXACT, /* whole value equal (ASCII case folded for caseless fields) */
	PAT_GLOB,  /* fnmatch(3) over the whole value */
	PAT_REGEX, /* PCRE2 search anywhere in the value unless anchored */
};

struct rule_pattern {
	enum pattern_kind kind;
	char *text;            /* as written, without the glob: or regex: prefix */
	pcre2_code *re;        /* PAT_REGEX */
	enum cb_threat threat; /* RF_THREAT: the threat this item names */
};

struct rule_condition {
	struct rule_pattern *patterns; /* any one matching satisfies the condition */
	size_t count;
};

struct rule {
	char *name;
	int line;
	int enabled;
	struct rule_condition conds[RF_COUNT];
	struct cb_action action;
};

struct cb_ruleset {
	struct rule *rules;
	size_t count;
	struct cb_action default_action;
	pcre2_match_context *match_context; /* match and depth limits, shared read-only */
	atomic_int *limit_warned;           /* per rule: the match-limit warning was logged */
};

/* The key name of a field in rule files ("recipient_domain"). */
const char *cb_rule_field_name(enum rule_field field);
/* Whether the field compares without ASCII case (addresses, domains, hashes, MIME types). */
int cb_rule_field_caseless(enum rule_field field);

#endif
