/*
 * rules.c: loads and compiles a rules file (see rules.h for the format).
 *
 * Runs in the main thread (start, SIGHUP), the control thread (the console
 * saves rules) and the CLI. The file is operator input: it passes the INI
 * reader's limits, then every key is checked, every regex is compiled (with
 * JIT when available) and every problem is collected with its line, rule
 * name and field. A file with any problem yields no ruleset, so a half-valid
 * file never goes live.
 */
#include "rules/rules.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config_values.h"
#include "config/ini_reader.h"
#include "rules/rules_internal.h"

static const struct {
	const char *name;
	int caseless;
} field_info[RF_COUNT] = {
	[RF_THREAT] = {"threat", 1},
	[RF_CUSTOMER] = {"customer", 0},
	[RF_RECIPIENT_DOMAIN] = {"recipient_domain", 1},
	[RF_RECIPIENT] = {"recipient", 1},
	[RF_SENDER_DOMAIN] = {"sender_domain", 1},
	[RF_SENDER] = {"sender", 1},
	[RF_HASH_FUNCTION] = {"hash_function", 1},
	[RF_HASH] = {"hash", 1},
	[RF_MIME_TYPE] = {"mime_type", 1},
	[RF_DETAILS] = {"details", 0},
	[RF_URL] = {"url", 0},
};

/* Graph's well-known folder names; EWS's DistinguishedFolderId uses the same ones for these. */
static const char *const well_known_folders[] = {
	"archive", "clutter", "conflicts", "conversationhistory", "deleteditems", "drafts", "inbox",
	"junkemail", "localfailures", "msgfolderroot", "outbox", "recoverableitemsdeletions", "scheduled",
	"searchfolders", "sentitems", "serverfailures", "syncissues", NULL,
};

/* Action keys, each allowed once per section. */
enum action_key { AK_ENABLED, AK_ACTION, AK_FOLDER, AK_DRY_RUN, AK_NOTIFY, AK_COUNT };
static const char *const action_keys[AK_COUNT] = {"enabled", "action", "folder", "dry_run", "notify"};

struct load_state {
	struct cb_ruleset *set;
	struct cb_problems problems;
	const char *file;
	struct rule *rule;             /* rule being filled, NULL in [default] or a skipped section */
	int in_default;                /* the current section is [default] */
	int default_line;              /* line of [default], 0 when absent */
	int section_line;
	int key_lines[AK_COUNT];       /* per section: line where each action key was set */
	size_t pattern_total;          /* patterns in the current rule */
	int too_many_reported;
	int out_of_memory;
};

const char *cb_rule_field_name(enum rule_field field)
{
	return (unsigned)field < RF_COUNT ? field_info[field].name : "unknown";
}

int cb_rule_field_caseless(enum rule_field field)
{
	return (unsigned)field < RF_COUNT && field_info[field].caseless;
}

static const char *section_name(const struct load_state *st)
{
	if (st->in_default)
		return "(default)";
	return st->rule ? st->rule->name : "?";
}

static void report(struct load_state *st, int line, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void report(struct load_state *st, int line, const char *field, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (st->in_default)
		cb_problems_add(&st->problems, "%s:%d: [default]: %s: %s", st->file, line, field, msg);
	else
		cb_problems_add(&st->problems, "%s:%d: rule '%s': %s: %s", st->file, line, section_name(st), field,
				msg);
}

static void free_rule(struct rule *r)
{
	for (int f = 0; f < RF_COUNT; f++) {
		for (size_t i = 0; i < r->conds[f].count; i++) {
			free(r->conds[f].patterns[i].text);
			pcre2_code_free(r->conds[f].patterns[i].re);
		}
		free(r->conds[f].patterns);
	}
	free(r->name);
}

void cb_rules_free(struct cb_ruleset *rules)
{
	if (!rules)
		return;
	for (size_t i = 0; i < rules->count; i++)
		free_rule(&rules->rules[i]);
	free(rules->rules);
	free(rules->limit_warned);
	pcre2_match_context_free(rules->match_context);
	free(rules);
}

size_t cb_rules_count(const struct cb_ruleset *rules)
{
	return rules ? rules->count : 0;
}

int cb_rules_get(const struct cb_ruleset *rules, size_t index, struct cb_rule_info *out)
{
	if (!rules || index >= rules->count)
		return -1;
	out->name = rules->rules[index].name;
	out->line = rules->rules[index].line;
	out->enabled = rules->rules[index].enabled;
	out->action = rules->rules[index].action;
	return 0;
}

void cb_rules_default_action(const struct cb_ruleset *rules, struct cb_action *out)
{
	memset(out, 0, sizeof(*out));
	if (rules)
		*out = rules->default_action;
	else
		out->kind = CB_ACTION_LOG;
}

static int check_rule_name(const char *name)
{
	size_t len = strlen(name);

	if (len < 1 || len > CB_RULE_NAME_MAX)
		return -1;
	if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", name[0]))
		return -1;
	return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == len ? 0 : -1;
}

/* Compiles one regex item; reports the PCRE2 message with its offset. */
static int compile_regex(struct load_state *st, int line, enum rule_field field, struct rule_pattern *p)
{
	uint32_t options = PCRE2_UTF | (field_info[field].caseless ? PCRE2_CASELESS : 0);
	PCRE2_UCHAR message[256];
	PCRE2_SIZE offset;
	int code;

	p->re = pcre2_compile((PCRE2_SPTR)p->text, PCRE2_ZERO_TERMINATED, options, &code, &offset, NULL);
	if (!p->re) {
		char q[CB_RULE_PATTERN_MAX * 4 + 8];

		pcre2_get_error_message(code, message, sizeof(message));
		report(st, line, field_info[field].name, "invalid regex %s: %s at offset %zu",
		       cb_quote(q, sizeof(q), p->text, 80), (const char *)message, (size_t)offset);
		return -1;
	}
	/* Without JIT (not built for this CPU) the interpreter runs under the same limits. */
	pcre2_jit_compile(p->re, PCRE2_JIT_COMPLETE);
	return 0;
}

static int parse_threat(struct load_state *st, int line, struct rule_pattern *p)
{
	char q[64 * 4 + 8];

	if (strcasecmp(p->text, "VIRUS") == 0) {
		p->threat = CB_THREAT_VIRUS;
		return 0;
	}
	if (strcasecmp(p->text, "URL") == 0) {
		p->threat = CB_THREAT_URL;
		return 0;
	}
	report(st, line, "threat", "invalid threat %s: use VIRUS, URL or both as a comma list",
	       cb_quote(q, sizeof(q), p->text, 64));
	return -1;
}

/* Parses one item (prefix included, already trimmed) into a pattern. */
static int parse_item(struct load_state *st, int line, enum rule_field field, const char *item, size_t len,
		      struct rule_pattern *p)
{
	memset(p, 0, sizeof(*p));
	if (field != RF_THREAT && len >= 5 && strncmp(item, "glob:", 5) == 0) {
		p->kind = PAT_GLOB;
		item += 5;
		len -= 5;
	} else if (field != RF_THREAT && len >= 6 && strncmp(item, "regex:", 6) == 0) {
		p->kind = PAT_REGEX;
		item += 6;
		len -= 6;
	}
	if (len == 0) {
		report(st, line, field_info[field].name, "empty pattern: remove the extra comma or write a value");
		return -1;
	}
	if (len > CB_RULE_PATTERN_MAX) {
		report(st, line, field_info[field].name, "pattern longer than %d bytes", CB_RULE_PATTERN_MAX);
		return -1;
	}
	p->text = strndup(item, len);
	if (!p->text) {
		st->out_of_memory = 1;
		return -1;
	}
	if (field == RF_THREAT)
		return parse_threat(st, line, p);
	if (p->kind == PAT_REGEX)
		return compile_regex(st, line, field, p);
	return 0;
}

static int add_pattern(struct load_state *st, int line, enum rule_field field, const char *item, size_t len)
{
	struct rule_condition *c = &st->rule->conds[field];
	struct rule_pattern p, *grown;

	while (len > 0 && (item[len - 1] == ' ' || item[len - 1] == '\t'))
		len--;
	if (st->pattern_total >= CB_RULE_PATTERNS_MAX) {
		if (st->pattern_total++ == CB_RULE_PATTERNS_MAX)
			report(st, line, field_info[field].name, "too many patterns in one rule: at most %d",
			       CB_RULE_PATTERNS_MAX);
		return -1;
	}
	st->pattern_total++;
	if (parse_item(st, line, field, item, len, &p) < 0) {
		free(p.text);
		return -1;
	}
	grown = realloc(c->patterns, (c->count + 1) * sizeof(*grown));
	if (!grown) {
		free(p.text);
		pcre2_code_free(p.re);
		st->out_of_memory = 1;
		return -1;
	}
	c->patterns = grown;
	c->patterns[c->count++] = p;
	return 0;
}

/*
 * Splits a condition value at commas into items. An item that starts with
 * regex: runs to the end of the line, because a regex may hold commas.
 */
static void add_condition(struct load_state *st, int line, enum rule_field field, const char *value)
{
	const char *p = value;

	if (*value == '\0') {
		report(st, line, field_info[field].name, "empty value: write a pattern or remove the key");
		return;
	}
	while (*p) {
		const char *comma;

		while (*p == ' ' || *p == '\t')
			p++;
		if (strncmp(p, "regex:", 6) == 0 && field != RF_THREAT) {
			add_pattern(st, line, field, p, strlen(p));
			return;
		}
		comma = strchr(p, ',');
		add_pattern(st, line, field, p, comma ? (size_t)(comma - p) : strlen(p));
		if (!comma)
			return;
		p = comma + 1;
		if (*p == '\0')
			report(st, line, field_info[field].name, "empty pattern after the last comma");
	}
}

static int folder_is_well_known(const char *value)
{
	for (size_t i = 0; well_known_folders[i]; i++) {
		if (strcasecmp(value, well_known_folders[i]) == 0)
			return 1;
	}
	return 0;
}

/* Checks a folder path: segments separated by '/', none empty, '.' or '..', none with outer blanks. */
static const char *check_folder_path(const char *value)
{
	const char *seg = value;

	if (strlen(value) > CB_FOLDER_MAX)
		return "folder path longer than 255 bytes";
	if (strchr(value, '\\'))
		return "folder path must use '/' between folders, not '\\'";
	for (;;) {
		size_t len = strcspn(seg, "/");

		if (len == 0)
			return "folder path has an empty segment (leading, trailing or double '/')";
		if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
			return "folder path must not contain '.' or '..' segments";
		if (seg[0] == ' ' || seg[len - 1] == ' ')
			return "folder names must not start or end with a blank";
		if (seg[len] == '\0')
			return NULL;
		seg += len + 1;
	}
}

static void set_folder(struct load_state *st, int line, struct cb_action *action, const char *value)
{
	char q[CB_FOLDER_MAX * 4 + 8];
	const char *problem;

	if (folder_is_well_known(value)) {
		for (size_t i = 0; value[i] && i < CB_FOLDER_MAX; i++)
			action->folder[i] = (char)((value[i] >= 'A' && value[i] <= 'Z') ? value[i] + 32 : value[i]);
		action->folder[strlen(value)] = '\0';
		return;
	}
	problem = check_folder_path(value);
	if (problem) {
		report(st, line, "folder", "invalid folder %s: %s; use a well-known name (junkemail, deleteditems, "
					   "archive, inbox, ...) or a path such as Quarantine/PZD",
		       cb_quote(q, sizeof(q), value, 80), problem);
		return;
	}
	snprintf(action->folder, sizeof(action->folder), "%s", value);
}

static void set_notify(struct load_state *st, int line, struct cb_action *action, const char *value)
{
	char q[64 * 4 + 8];
	const char *p = value;

	action->notify = 0;
	if (strcasecmp(value, "none") == 0)
		return;
	while (*p) {
		size_t len = strcspn(p, ",");
		const char *item = p;

		while (len > 0 && (*item == ' ' || *item == '\t')) {
			item++;
			len--;
		}
		while (len > 0 && (item[len - 1] == ' ' || item[len - 1] == '\t'))
			len--;
		if (len == 5 && strncasecmp(item, "admin", 5) == 0) {
			action->notify |= CB_NOTIFY_ADMIN;
		} else if (len == 9 && strncasecmp(item, "recipient", 9) == 0) {
			action->notify |= CB_NOTIFY_RECIPIENT;
		} else {
			char text[65];

			snprintf(text, sizeof(text), "%.*s", (int)(len < 64 ? len : 64), item);
			report(st, line, "notify", "invalid target %s: use admin, recipient, both as a comma list, "
						   "or none", cb_quote(q, sizeof(q), text, 64));
		}
		p += strcspn(p, ",");
		if (*p == ',')
			p++;
	}
}

static void set_action_key(struct load_state *st, int line, enum action_key key, const char *value)
{
	struct cb_action *action = st->in_default ? &st->set->default_action : &st->rule->action;
	char q[64 * 4 + 8];
	int flag;

	if (st->key_lines[key]) {
		report(st, line, action_keys[key], "duplicate key (first set on line %d)", st->key_lines[key]);
		return;
	}
	st->key_lines[key] = line;
	switch (key) {
	case AK_ENABLED:
	case AK_DRY_RUN:
		if (cb_config_parse_bool(value, &flag) < 0) {
			report(st, line, action_keys[key], "invalid boolean %s: use yes/no, true/false, on/off or 1/0",
			       cb_quote(q, sizeof(q), value, 64));
			return;
		}
		if (key == AK_DRY_RUN)
			action->dry_run = flag;
		else if (st->in_default)
			report(st, line, "enabled", "[default] cannot be disabled: set action = log or skip instead");
		else
			st->rule->enabled = flag;
		return;
	case AK_ACTION: {
		enum cb_action_kind kind;

		if (cb_action_kind_parse(value, &kind) < 0) {
			report(st, line, "action", "invalid action %s: use log, move, soft_delete, hard_delete or skip",
			       cb_quote(q, sizeof(q), value, 64));
			return;
		}
		action->kind = kind;
		return;
	}
	case AK_FOLDER:
		set_folder(st, line, action, value);
		return;
	case AK_NOTIFY:
		set_notify(st, line, action, value);
		return;
	case AK_COUNT:
		return;
	}
}

static void on_key(struct load_state *st, const struct cb_ini_item *item)
{
	if (!st->rule && !st->in_default)
		return;
	for (int k = 0; k < AK_COUNT; k++) {
		if (strcmp(item->key, action_keys[k]) == 0) {
			set_action_key(st, item->line, (enum action_key)k, item->value);
			return;
		}
	}
	for (int f = 0; f < RF_COUNT; f++) {
		if (strcmp(item->key, field_info[f].name) != 0)
			continue;
		if (st->in_default)
			report(st, item->line, item->key, "[default] takes no conditions: it applies when no rule "
							 "matches; move this key into a [rule \"NAME\"]");
		else
			add_condition(st, item->line, (enum rule_field)f, item->value);
		return;
	}
	report(st, item->line, item->key,
	       "unknown key; valid keys are threat, details, recipient, recipient_domain, sender, sender_domain, "
	       "url, hash, hash_function, mime_type, customer, enabled, action, folder, dry_run, notify");
}

/* Checks the action keys of the section that just ended. */
static void finish_section(struct load_state *st)
{
	const struct cb_action *action;

	if (!st->rule && !st->in_default)
		return;
	action = st->in_default ? &st->set->default_action : &st->rule->action;
	if (!st->in_default && !st->key_lines[AK_ACTION])
		report(st, st->section_line, "action", "missing: set action = log, move, soft_delete, hard_delete "
						       "or skip");
	if (action->kind == CB_ACTION_MOVE && !st->key_lines[AK_FOLDER])
		report(st, st->key_lines[AK_ACTION], "folder", "missing: action = move needs folder = a well-known "
							       "name such as junkemail, or a path such as "
							       "Quarantine/PZD");
	if (action->kind != CB_ACTION_MOVE && st->key_lines[AK_FOLDER])
		report(st, st->key_lines[AK_FOLDER], "folder", "only action = move takes a folder (this action is "
							       "%s)", cb_action_kind_name(action->kind));
}

static void begin_rule(struct load_state *st, const struct cb_ini_item *item)
{
	struct cb_ruleset *set = st->set;
	char q[CB_RULE_NAME_MAX * 4 + 8];

	if (!item->name || check_rule_name(item->name) < 0) {
		cb_problems_add(&st->problems, "%s:%d: rule %s: invalid name: use 1 to %d characters of A-Z, a-z, "
					       "0-9, '.', '_' and '-', starting with a letter or digit, in "
					       "[rule \"NAME\"]",
				st->file, item->line, cb_quote(q, sizeof(q), item->name, CB_RULE_NAME_MAX),
				CB_RULE_NAME_MAX);
		return;
	}
	for (size_t i = 0; i < set->count; i++) {
		if (strcmp(set->rules[i].name, item->name) == 0) {
			cb_problems_add(&st->problems, "%s:%d: rule '%s': duplicate rule name (first defined on line %d)",
					st->file, item->line, item->name, set->rules[i].line);
			return;
		}
	}
	if (set->count >= CB_RULES_MAX) {
		if (!st->too_many_reported)
			cb_problems_add(&st->problems, "%s:%d: rule '%s': too many rules: at most %d", st->file,
					item->line, item->name, CB_RULES_MAX);
		st->too_many_reported = 1;
		return;
	}

	st->rule = &set->rules[set->count];
	memset(st->rule, 0, sizeof(*st->rule));
	st->rule->name = strdup(item->name);
	st->rule->line = item->line;
	st->rule->enabled = 1;
	st->rule->action.kind = CB_ACTION_LOG;
	set->count++;
	if (!st->rule->name)
		st->out_of_memory = 1;
}

static void on_section(struct load_state *st, const struct cb_ini_item *item)
{
	finish_section(st);
	st->rule = NULL;
	st->in_default = 0;
	st->section_line = item->line;
	st->pattern_total = 0;
	memset(st->key_lines, 0, sizeof(st->key_lines));

	if (strcmp(item->section, "rule") == 0) {
		begin_rule(st, item);
	} else if (strcmp(item->section, "default") == 0 && !item->name) {
		if (st->default_line) {
			cb_problems_add(&st->problems, "%s:%d: [default]: duplicate section (first on line %d)", st->file,
					item->line, st->default_line);
			return;
		}
		st->default_line = item->line;
		st->in_default = 1;
	} else {
		cb_problems_add(&st->problems, "%s:%d: [%s]: unknown section; rules are [rule \"NAME\"] sections, "
					       "plus one optional [default]",
				st->file, item->line, item->section);
	}
}

static void on_item(void *ctx, const struct cb_ini_item *item)
{
	struct load_state *st = ctx;

	switch (item->kind) {
	case CB_INI_SECTION:
		on_section(st, item);
		break;
	case CB_INI_KEY:
		on_key(st, item);
		break;
	case CB_INI_ERROR:
		cb_problems_add(&st->problems, "%s:%d: %s", st->file, item->line, item->value);
		break;
	}
}

static struct cb_ruleset *ruleset_new(void)
{
	struct cb_ruleset *set = calloc(1, sizeof(*set));

	if (!set)
		return NULL;
	set->default_action.kind = CB_ACTION_LOG;
	set->rules = calloc(CB_RULES_MAX, sizeof(*set->rules));
	set->match_context = pcre2_match_context_create(NULL);
	if (!set->rules || !set->match_context) {
		cb_rules_free(set);
		return NULL;
	}
	pcre2_set_match_limit(set->match_context, CB_RULES_MATCH_LIMIT);
	pcre2_set_depth_limit(set->match_context, CB_RULES_DEPTH_LIMIT);
	pcre2_set_heap_limit(set->match_context, CB_RULES_HEAP_LIMIT_KIB);
	return set;
}

/* Shrinks the rule array to its use and adds the per-rule warning flags. */
static int ruleset_finish(struct cb_ruleset *set)
{
	size_t n = set->count ? set->count : 1;
	struct rule *shrunk = realloc(set->rules, n * sizeof(*shrunk));

	if (shrunk)
		set->rules = shrunk;
	set->limit_warned = calloc(n, sizeof(*set->limit_warned));
	return set->limit_warned ? 0 : -1;
}

int cb_rules_load_text(const char *name, const char *text, size_t len, struct cb_ruleset **out, char **problems,
		       struct cb_err *err)
{
	struct load_state st;
	int count;

	*out = NULL;
	memset(&st, 0, sizeof(st));
	st.file = name;
	st.set = ruleset_new();
	if (!st.set)
		return cb_err_set(err, "out of memory loading rules from %s", name);
	cb_problems_init(&st.problems);

	if (cb_ini_parse(text, len, on_item, &st) < 0)
		st.out_of_memory = 1;
	finish_section(&st);
	if (!st.out_of_memory && ruleset_finish(st.set) < 0)
		st.out_of_memory = 1;

	count = cb_problems_finish(&st.problems, problems);
	if (st.out_of_memory) {
		cb_rules_free(st.set);
		return cb_err_set(err, "out of memory loading rules from %s", name);
	}
	if (count > 0) {
		cb_rules_free(st.set);
		return count;
	}
	*out = st.set;
	return 0;
}

int cb_rules_load(const char *path, struct cb_ruleset **out, char **problems, struct cb_err *err)
{
	char *text;
	size_t len;
	int rc;

	*out = NULL;
	if (cb_config_read_file(path, CB_RULES_MAX_BYTES, &text, &len, err) < 0)
		return cb_err_prefix(err, "cannot read rules: ");
	rc = cb_rules_load_text(path, text, len, out, problems, err);
	free(text);
	return rc;
}
