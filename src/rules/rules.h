/*
 * rules.h: the administrator's ordered rules, and the decision for an event.
 *
 * Rules are read from an INI file an administrator can keep in version
 * control (default /etc/clawback/rules.conf). Sections [rule "NAME"] are
 * rules, in order. The first enabled rule whose conditions all match decides,
 * and [default] decides when none does (action log without it). Conditions
 * (threat, details, recipient, recipient_domain, sender, sender_domain, url,
 * hash, hash_function, mime_type, customer) hold exact text, glob:PATTERN or
 * regex:PATTERN items; items of one key are alternatives (OR), keys combine
 * with AND. Every error names the file, line, rule and field. docs/rules.md
 * is the full reference.
 *
 * Everything is compiled at load. Regular expressions run through PCRE2 (JIT
 * when available) with match, depth and heap limits, so a hostile pattern
 * fails to match instead of stalling the daemon. A loaded ruleset is
 * read-only and may be used by several threads at once.
 */
#ifndef CLAWBACK_RULES_RULES_H
#define CLAWBACK_RULES_RULES_H

#include <stddef.h>

#include "base/buf.h"
#include "base/err.h"
#include "event/event.h"
#include "rules/action.h"

#define CB_RULES_DEFAULT_PATH "/etc/clawback/rules.conf"
/* Maximum rules in one file. */
#define CB_RULES_MAX 1000
/* Longest rule name. */
#define CB_RULE_NAME_MAX 64
/* PCRE2 match limit per regex evaluation. */
#define CB_RULES_MATCH_LIMIT 100000
/* PCRE2 backtracking depth limit per evaluation (the interpreter only; JIT ignores it). */
#define CB_RULES_DEPTH_LIMIT 10000
/* PCRE2 heap limit per evaluation, in KiB (the interpreter only). */
#define CB_RULES_HEAP_LIMIT_KIB 4096
/* Maximum pattern length, in bytes, after its glob: or regex: prefix. */
#define CB_RULE_PATTERN_MAX 1024
/* Maximum number of patterns in one rule, all conditions together. */
#define CB_RULE_PATTERNS_MAX 256
/* Maximum rules file size, in bytes (CB_RULES_MAX rules of a few KiB each). */
#define CB_RULES_MAX_BYTES (4 * 1024 * 1024)

struct cb_ruleset;

/*
 * Loads rules from path. Returns the number of problems (0 when valid; the
 * ruleset is then usable) with each problem appended to problems as one line
 * "FILE:LINE: rule 'NAME': FIELD: message", or -1 when the file cannot be
 * read (err contains the reason).
 */
int cb_rules_load(const char *path, struct cb_ruleset **out, char **problems, struct cb_err *err);
/* The same, from text in memory (name is used in messages in place of a path). */
int cb_rules_load_text(const char *name, const char *text, size_t len, struct cb_ruleset **out,
		       char **problems, struct cb_err *err);
void cb_rules_free(struct cb_ruleset *rules);

size_t cb_rules_count(const struct cb_ruleset *rules);

/* One rule as loaded, for listings; name points into the ruleset. */
struct cb_rule_info {
	const char *name;
	int line; /* of its [rule "NAME"] header */
	int enabled;
	struct cb_action action;
};

/* Fills out with rule number index (0-based, file order); -1 when out of range. */
int cb_rules_get(const struct cb_ruleset *rules, size_t index, struct cb_rule_info *out);
/* The action of [default], or log when the file has none (or rules is NULL). */
void cb_rules_default_action(const struct cb_ruleset *rules, struct cb_action *out);

/* The decision for one event; strings point into the ruleset and live as long as it. */
struct cb_rule_match {
	const char *rule; /* rule name, or "(default)" */
	struct cb_action action;
	char reason[512]; /* "threat=VIRUS details~^Trojan\\. recipient_domain=contoso.example" */
};

/*
 * Decides for ev. global_dry_run forces dry-run on the result. When explain
 * is not NULL, one line per rule tried is appended (matched, or the first
 * condition that failed), for `clawback rules test`.
 */
void cb_rules_decide(const struct cb_ruleset *rules, const struct cb_event *ev, int global_dry_run,
		     struct cb_rule_match *out, struct cb_buf *explain);

#endif
