/* test_rules.c: loading, validating and deciding with rules files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "config/ini_reader.h"
#include "event/event.h"
#include "rules/rules.h"
#include "testutil.h"

/* Builds a PZD event from JSON; the test fails when the parser rejects it. */
static void parse_event(const char *json, struct cb_event *ev)
{
	char detail[256] = "";
	enum cb_event_reject r = cb_event_parse(json, strlen(json), ev, detail, sizeof(detail));

	if (r != CB_REJECT_NONE)
		fail_msg("event rejected: %s: %s", cb_event_reject_name(r), detail);
}

#define VIRUS_EVENT                                                                                                \
	"{\"type\":\"PZD\",\"customer\":\"CUST0042\",\"ts\":\"2026-11-30 08:14:03 +0100\","                     \
	"\"sender\":\"billing@Invoices.example.net\",\"recipient\":\"Anna.Schmidt@Contoso.example\","            \
	"\"mimeId\":\"<a1@mx1.invoices.example.net>\",\"rmxId\":\"r1\",\"metaData\":{\"threatType\":\"VIRUS\","    \
	"\"hashFunction\":\"sha256\",\"checksum\":\"9F2C8E41B7D0A3C5E6F718293A4B5C6D7E8F9012A3B4C5D6E7F8091A2B3C4D5E\"," \
	"\"mimeType\":\"application/x-dosexec\",\"details\":\"Trojan.GenericKD.71234\"}}"

#define URL_EVENT                                                                                                  \
	"{\"type\":\"PZD\",\"customer\":\"CUST0042\",\"ts\":\"2026-11-30 08:20:47 +0100\","                     \
	"\"sender\":\"it-support@contoso-helpdesk.example\",\"recipient\":\"jonas.weber@fabrikam.example\","     \
	"\"mimeId\":\"<u1@mail.example>\",\"rmxId\":\"r2\",\"metaData\":{\"threatType\":\"URL\","                  \
	"\"uniformResourceLocator\":\"https://login.contoso-helpdesk.example/reset?u=jonas\",\"details\":\"884512\"}}"

#define BOUNCE_EVENT                                                                                               \
	"{\"type\":\"PZD\",\"customer\":\"CUST0042\",\"sender\":\"\",\"recipient\":\"maria@contoso.example\","   \
	"\"mimeId\":\"<b1@ses.example>\",\"rmxId\":\"r3\",\"metaData\":{\"threatType\":\"VIRUS\","                 \
	"\"hashFunction\":\"sha256\",\"checksum\":\"0d1e\",\"mimeType\":\"application/vnd.ms-excel\","            \
	"\"details\":\"W97M.Downloader.AB\"}}"

/* Loads text that must be valid; fails the test with the problems otherwise. */
static struct cb_ruleset *load_valid(const char *text)
{
	struct cb_ruleset *rules = NULL;
	char *problems = NULL;
	struct cb_err err;
	int rc = cb_rules_load_text("rules.conf", text, strlen(text), &rules, &problems, &err);

	if (rc != 0)
		fail_msg("rules rejected (rc %d): %s%s", rc, problems ? problems : "", rc < 0 ? err.msg : "");
	free(problems);
	assert_non_null(rules);
	return rules;
}

/* Loads text that must be invalid and returns the problem text (caller frees). */
static char *load_invalid(const char *text, int *count)
{
	struct cb_ruleset *rules = (struct cb_ruleset *)1;
	char *problems = NULL;
	struct cb_err err;
	int rc = cb_rules_load_text("rules.conf", text, strlen(text), &rules, &problems, &err);

	assert_true(rc > 0);
	assert_null(rules);
	assert_non_null(problems);
	if (count)
		*count = rc;
	return problems;
}

struct bad_case {
	const char *label;
	const char *text;
	const char *expected; /* a substring of the problem text */
};

static const struct bad_case bad_cases[] = {
	{"unknown key", "[rule \"r1\"]\naction = log\ncolour = red\n", "rules.conf:3: rule 'r1': colour: unknown key"},
	{"bad bool", "[rule \"r1\"]\naction = log\nenabled = maybe\n",
	 "rules.conf:3: rule 'r1': enabled: invalid boolean 'maybe'"},
	{"bad dry_run", "[rule \"r1\"]\naction = log\ndry_run = 2\n", "rule 'r1': dry_run: invalid boolean '2'"},
	{"move without folder", "[rule \"r1\"]\nthreat = VIRUS\naction = move\n",
	 "rules.conf:3: rule 'r1': folder: missing: action = move needs folder"},
	{"folder with log", "[rule \"r1\"]\naction = log\nfolder = junkemail\n",
	 "rules.conf:3: rule 'r1': folder: only action = move takes a folder (this action is log)"},
	{"bad regex", "[rule \"phish-to-junk\"]\naction = log\nurl = regex:(abc\n",
	 "rules.conf:3: rule 'phish-to-junk': url: invalid regex '(abc': missing closing parenthesis at offset 4"},
	{"duplicate name", "[rule \"r1\"]\naction = log\n\n[rule \"r1\"]\naction = skip\n",
	 "rules.conf:4: rule 'r1': duplicate rule name (first defined on line 1)"},
	{"unknown action", "[rule \"r1\"]\naction = quarantine\n",
	 "rules.conf:2: rule 'r1': action: invalid action 'quarantine': use log, move, soft_delete, hard_delete or "
	 "skip"},
	{"missing action", "[rule \"r1\"]\nthreat = URL\n", "rules.conf:1: rule 'r1': action: missing"},
	{"bad threat", "[rule \"r1\"]\naction = log\nthreat = VIRUS, SPAM\n",
	 "rules.conf:3: rule 'r1': threat: invalid threat 'SPAM'"},
	{"trailing comma", "[rule \"r1\"]\naction = log\nrecipient = a@b.example,\n",
	 "rule 'r1': recipient: empty pattern"},
	{"empty value", "[rule \"r1\"]\naction = log\nsender =\n", "rule 'r1': sender: empty value"},
	{"empty glob", "[rule \"r1\"]\naction = log\nsender = glob:\n", "rule 'r1': sender: empty pattern"},
	{"unknown section", "[rules \"r1\"]\naction = log\n", "rules.conf:1: [rules]: unknown section"},
	{"condition in default", "[default]\naction = log\nthreat = VIRUS\n",
	 "rules.conf:3: [default]: threat: [default] takes no conditions"},
	{"disabled default", "[default]\naction = log\nenabled = no\n", "[default]: enabled: [default] cannot be"},
	{"bad rule name", "[rule \"bad name!\"]\naction = log\n", "rules.conf:1: rule 'bad name!': invalid name"},
	{"rule without name", "[rule]\naction = log\n", "rules.conf:1: rule '': invalid name"},
	{"long rule name",
	 "[rule \"a123456789012345678901234567890123456789012345678901234567890123456789\"]\naction = log\n",
	 "invalid name"},
	{"double slash folder", "[rule \"r1\"]\naction = move\nfolder = Quarantine//PZD\n",
	 "rules.conf:3: rule 'r1': folder: invalid folder 'Quarantine//PZD': folder path has an empty segment"},
	{"dotdot folder", "[rule \"r1\"]\naction = move\nfolder = Inbox/../x\n", "'.' or '..' segments"},
	{"backslash folder", "[rule \"r1\"]\naction = move\nfolder = Inbox\\x\n", "not '\\'"},
	{"bad notify", "[rule \"r1\"]\naction = log\nnotify = admin, boss\n",
	 "rules.conf:3: rule 'r1': notify: invalid target 'boss'"},
	{"duplicate action", "[rule \"r1\"]\naction = log\naction = skip\n",
	 "rules.conf:3: rule 'r1': action: duplicate key (first set on line 2)"},
	{"no equals sign", "[rule \"r1\"]\naction log\n", "rules.conf:2: expected 'key = value'"},
	{"key before section", "action = log\n", "rules.conf:1: key outside any section"},
	{"control character", "[rule \"r1\"]\naction = log\x01\n", "rules.conf:2: control character in line"},
	{"invalid utf8", "[rule \"r1\"]\naction = log\ndetails = \xc3\x28\n", "rules.conf:3: invalid UTF-8 in line"},
	{"text after header", "[rule \"r1\"] x\naction = log\n", "rules.conf:1: section header must end"},
	{"unquoted name", "[rule r1]\naction = log\n", "rules.conf:1: section name must be written"},
	{"secret-looking inline key", "[rule \"r1\"]\naction = log\ntoken = abc\n", "token: unknown key"},
	{"duplicate default", "[default]\naction = log\n[default]\naction = skip\n",
	 "rules.conf:3: [default]: duplicate section (first on line 1)"},
};

static void rules_reject_garbage_rows(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		char *problems = load_invalid(bad_cases[i].text, NULL);

		if (!strstr(problems, bad_cases[i].expected))
			fail_msg("case '%s': expected '%s' in:\n%s", bad_cases[i].label, bad_cases[i].expected, problems);
		free(problems);
	}
}

static void rules_report_every_problem(void **state)
{
	int count = 0;
	char *problems;

	(void)state;
	problems = load_invalid("[rule \"a\"]\naction = nope\n[rule \"b\"]\naction = log\nfolder = inbox\n"
				"[rule \"c\"]\naction = log\nurl = regex:[\n",
				&count);
	assert_int_equal(count, 3);
	assert_non_null(strstr(problems, "rules.conf:2: rule 'a': action"));
	assert_non_null(strstr(problems, "rules.conf:5: rule 'b': folder"));
	assert_non_null(strstr(problems, "rules.conf:8: rule 'c': url: invalid regex"));
	free(problems);
}

static void rules_long_line_rejected(void **state)
{
	size_t size = CB_INI_MAX_LINE + 64;
	char *text = malloc(size);
	char *problems;
	int used;

	(void)state;
	assert_non_null(text);
	used = snprintf(text, size, "[rule \"r1\"]\naction = log\nurl = ");
	memset(text + used, 'a', CB_INI_MAX_LINE - 5);
	text[used + CB_INI_MAX_LINE - 5] = '\0';
	problems = load_invalid(text, NULL);
	assert_non_null(strstr(problems, "rules.conf:3: line longer than 8192 bytes"));
	free(problems);
	free(text);
}

static void rules_pattern_too_long(void **state)
{
	char text[CB_RULE_PATTERN_MAX + 128];
	char *problems;
	int used;

	(void)state;
	used = snprintf(text, sizeof(text), "[rule \"r1\"]\naction = log\ndetails = ");
	memset(text + used, 'x', CB_RULE_PATTERN_MAX + 1);
	text[used + CB_RULE_PATTERN_MAX + 1] = '\0';
	problems = load_invalid(text, NULL);
	assert_non_null(strstr(problems, "rules.conf:3: rule 'r1': details: pattern longer than 1024 bytes"));
	free(problems);
}

static void rules_too_many_rules(void **state)
{
	struct cb_buf b;
	char *problems;
	int count = 0;

	(void)state;
	cb_buf_init(&b, 0);
	for (int i = 0; i <= CB_RULES_MAX + 5; i++)
		assert_int_equal(cb_buf_printf(&b, "[rule \"r%d\"]\naction = log\n", i), 0);
	problems = load_invalid(b.data, &count);
	assert_int_equal(count, 1);
	assert_non_null(strstr(problems, "rule 'r1000': too many rules: at most 1000"));
	free(problems);
	cb_buf_free(&b);
}

static void rules_max_rules_accepted(void **state)
{
	struct cb_ruleset *rules;
	struct cb_buf b;

	(void)state;
	cb_buf_init(&b, 0);
	for (int i = 0; i < CB_RULES_MAX; i++)
		assert_int_equal(cb_buf_printf(&b, "[rule \"r%d\"]\naction = log\nrecipient = u%d@x.example\n", i, i), 0);
	rules = load_valid(b.data);
	assert_int_equal(cb_rules_count(rules), CB_RULES_MAX);
	cb_rules_free(rules);
	cb_buf_free(&b);
}

static void rules_first_match_wins(void **state)
{
	struct cb_ruleset *rules;
	struct cb_rule_match m;
	struct cb_event ev = {0};

	(void)state;
	rules = load_valid("[rule \"virus-to-junk\"]\nthreat = VIRUS\naction = move\nfolder = JunkEmail\n\n"
			   "[rule \"contoso-delete\"]\nrecipient_domain = contoso.example\naction = hard_delete\n");
	parse_event(VIRUS_EVENT, &ev);
	cb_rules_decide(rules, &ev, 0, &m, NULL);
	assert_string_equal(m.rule, "virus-to-junk");
	assert_int_equal(m.action.kind, CB_ACTION_MOVE);
	assert_string_equal(m.action.folder, "junkemail");
	assert_int_equal(m.action.dry_run, 0);
	assert_string_equal(m.reason, "threat=VIRUS");
	cb_event_clear(&ev);
	cb_rules_free(rules);
}

static void rules_disabled_rule_skipped(void **state)
{
	struct cb_ruleset *rules;
	struct cb_rule_match m;
	struct cb_event ev = {0};
	struct cb_buf explain;

	(void)state;
	cb_buf_init(&explain, 0);
	rules = load_valid("[rule \"off\"]\nenabled = no\nthreat = VIRUS\naction = hard_delete\n\n"
			   "[rule \"on\"]\nthreat = VIRUS\naction = soft_delete\nnotify = admin, recipient\n");
	parse_event(VIRUS_EVENT, &ev);
	cb_rules_decide(rules, &ev, 0, &m, &explain);
	assert_string_equal(m.rule, "on");
	assert_int_equal(m.action.kind, CB_ACTION_SOFT_DELETE);
	assert_int_equal(m.action.notify, CB_NOTIFY_ADMIN | CB_NOTIFY_RECIPIENT);
	assert_string_equal(explain.data, "rule 'off': disabled\nrule 'on': matched: threat=VIRUS\n");
	cb_buf_free(&explain);
	cb_event_clear(&ev);
	cb_rules_free(rules);
}

static void rules_default_without_section_logs(void **state)
{
	struct cb_ruleset *rules;
	struct cb_rule_match m;
	struct cb_event ev = {0};

	(void)state;
	rules = load_valid("[rule \"urls\"]\nthreat = URL\naction = soft_delete\n");
	parse_event(VIRUS_EVENT, &ev);
	cb_rules_decide(rules, &ev, 0, &m, NULL);
	assert_string_equal(m.rule, "(default)");
	assert_int_equal(m.action.kind, CB_ACTION_LOG);
	assert_int_equal(m.action.dry_run, 0);
	assert_string_equal(m.reason, "no rule matched");
	cb_event_clear(&ev);
	cb_rules_free(rules);
}

static void rules_default_section_applies(void **state)
{
	struct cb_ruleset *rules;
	struct cb_rule_match m;
	struct cb_event ev = {0};
	struct cb_buf explain;

	(void)state;
	cb_buf_init(&explain, 0);
	rules = load_valid("[default]\naction = move\nfolder = Quarantine/PZD\nnotify = admin\n\n"
			   "[rule \"urls\"]\nthreat = URL\naction = soft_delete\n");
	parse_event(VIRUS_EVENT, &ev);
	cb_rules_decide(rules, &ev, 0, &m, &explain);
	assert_string_equal(m.rule, "(default)");
	assert_int_equal(m.action.kind, CB_ACTION_MOVE);
	assert_string_equal(m.action.folder, "Quarantine/PZD");
	assert_int_equal(m.action.notify, CB_NOTIFY_ADMIN);
	assert_string_equal(explain.data, "rule 'urls': no match: threat 'VIRUS' != URL\n"
					  "(default): move to Quarantine/PZD\n");
	cb_buf_free(&explain);
	cb_event_clear(&ev);
	cb_rules_free(rules);
}

static void rules_global_dry_run_forces(void **state)
{
	struct cb_ruleset *rules;
	struct cb_rule_match m;
	struct cb_event ev = {0};

	(void)state;
	rules = load_valid("[rule \"purge\"]\nthreat = VIRUS\naction = hard_delete\n");
	parse_event(VIRUS_EVENT, &ev);
	cb_rules_decide(rules, &ev, 1, &m, NULL);
	assert_string_equal(m.rule, "purge");
	assert_int_equal(m.action.kind, CB_ACTION_HARD_DELETE);
	assert_int_equal(m.action.dry_run, 1);
	cb_rules_decide(rules, &ev, 0, &m, NULL);
	assert_int_equal(m.action.dry_run, 0);
	cb_event_clear(&ev);
	cb_rules_free(rules);
}

static void rules_rule_dry_run_kept(void **state)
{
	struct cb_ruleset *rules;
	struct cb_rule_match m;
	struct cb_event ev = {0};

	(void)state;
	rules = load_valid("[rule \"trial\"]\nthreat = URL\naction = soft_delete\ndry_run = yes\n");
	parse_event(URL_EVENT, &ev);
	cb_rules_decide(rules, &ev, 0, &m, NULL);
	assert_string_equal(m.rule, "trial");
	assert_int_equal(m.action.dry_run, 1);
	cb_event_clear(&ev);
	cb_rules_free(rules);
}

struct condition_case {
	const char *condition; /* one or more "key = value" lines */
	const char *event;
	int matches;
};

static const struct condition_case condition_cases[] = {
	{"threat = VIRUS", VIRUS_EVENT, 1},
	{"threat = URL", VIRUS_EVENT, 0},
	{"threat = url, virus", VIRUS_EVENT, 1},
	{"details = Trojan.GenericKD.71234", VIRUS_EVENT, 1},
	{"details = trojan.generickd.71234", VIRUS_EVENT, 0},
	{"details = glob:Trojan.*", VIRUS_EVENT, 1},
	{"details = regex:^Trojan\\.Generic", VIRUS_EVENT, 1},
	{"details = regex:^Generic", VIRUS_EVENT, 0},
	{"details = 884512", URL_EVENT, 1},
	{"recipient = anna.schmidt@contoso.example", VIRUS_EVENT, 1},
	{"recipient = ANNA.SCHMIDT@CONTOSO.EXAMPLE", VIRUS_EVENT, 1},
	{"recipient = glob:anna.*@CONTOSO.example", VIRUS_EVENT, 1},
	{"recipient = regex:^ANNA\\.", VIRUS_EVENT, 1},
	{"recipient = jonas.weber@contoso.example", VIRUS_EVENT, 0},
	{"recipient_domain = contoso.example", VIRUS_EVENT, 1},
	{"recipient_domain = Contoso.Example", VIRUS_EVENT, 1},
	{"recipient_domain = example", VIRUS_EVENT, 0},
	{"recipient_domain = glob:*.example", VIRUS_EVENT, 1},
	{"recipient_domain = contoso.example", URL_EVENT, 0},
	{"sender = billing@invoices.example.net", VIRUS_EVENT, 1},
	{"sender = glob:*@invoices.example.net", VIRUS_EVENT, 1},
	{"sender_domain = invoices.example.net", VIRUS_EVENT, 1},
	{"sender_domain = glob:*helpdesk*", URL_EVENT, 1},
	{"sender_domain = invoices.example.net", BOUNCE_EVENT, 0},
	{"sender = regex:^$", BOUNCE_EVENT, 1},
	{"sender = regex:^$", VIRUS_EVENT, 0},
	{"url = https://login.contoso-helpdesk.example/reset?u=jonas", URL_EVENT, 1},
	{"url = glob:https://login.contoso-helpdesk.example/*", URL_EVENT, 1},
	{"url = regex:contoso-helpdesk\\.example/", URL_EVENT, 1},
	{"url = regex:CONTOSO-HELPDESK", URL_EVENT, 0},
	{"url = glob:*", VIRUS_EVENT, 0},
	{"hash = 9f2c8e41b7d0a3c5e6f718293a4b5c6d7e8f9012a3b4c5d6e7f8091a2b3c4d5e", VIRUS_EVENT, 1},
	{"hash = 0000", VIRUS_EVENT, 0},
	{"hash = glob:9f2c*", URL_EVENT, 0},
	{"hash_function = SHA256", VIRUS_EVENT, 1},
	{"hash_function = md5", VIRUS_EVENT, 0},
	{"mime_type = application/x-dosexec", VIRUS_EVENT, 1},
	{"mime_type = glob:application/vnd.ms-excel*", BOUNCE_EVENT, 1},
	{"mime_type = glob:application/vnd.ms-excel*", VIRUS_EVENT, 0},
	{"customer = CUST0042", VIRUS_EVENT, 1},
	{"customer = cust0042", VIRUS_EVENT, 0},
	{"customer = CUST0001, CUST0042", VIRUS_EVENT, 1},
	/* OR within a key: a repeated key adds alternatives. */
	{"recipient = nobody@x.example\nrecipient = anna.schmidt@contoso.example", VIRUS_EVENT, 1},
	/* AND across keys. */
	{"threat = VIRUS\nrecipient_domain = contoso.example", VIRUS_EVENT, 1},
	{"threat = VIRUS\nrecipient_domain = fabrikam.example", VIRUS_EVENT, 0},
	/* A regex item runs to the end of the line, commas included. */
	{"details = regex:^[0-9]{6,}$", URL_EVENT, 1},
	{"details = nothing, regex:^[0-9]{7,}$", URL_EVENT, 0},
	{"details = nothing, regex:^[0-9]{2,6}$", URL_EVENT, 1},
};

static void rules_each_condition_type(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(condition_cases) / sizeof(condition_cases[0]); i++) {
		const struct condition_case *c = &condition_cases[i];
		struct cb_ruleset *rules;
		struct cb_rule_match m;
		struct cb_event ev = {0};
		char text[1024];

		snprintf(text, sizeof(text), "[rule \"r\"]\naction = soft_delete\n%s\n", c->condition);
		rules = load_valid(text);
		parse_event(c->event, &ev);
		cb_rules_decide(rules, &ev, 0, &m, NULL);
		if ((strcmp(m.rule, "r") == 0) != c->matches)
			fail_msg("case %zu '%s': expected %s, got rule %s (%s)", i, c->condition,
				 c->matches ? "a match" : "no match", m.rule, m.reason);
		cb_event_clear(&ev);
		cb_rules_free(rules);
	}
}

static void rules_reason_lists_conditions(void **state)
{
	struct cb_ruleset *rules;
	struct cb_rule_match m;
	struct cb_event ev = {0};

	(void)state;
	rules = load_valid("[rule \"trojans\"]\nthreat = VIRUS\ndetails = regex:^Trojan\\.\n"
			   "recipient_domain = fabrikam.example, contoso.example\nsender = glob:billing@*\n"
			   "action = move\nfolder = junkemail\n");
	parse_event(VIRUS_EVENT, &ev);
	cb_rules_decide(rules, &ev, 0, &m, NULL);
	assert_string_equal(m.rule, "trojans");
	assert_string_equal(m.reason, "threat=VIRUS recipient_domain=contoso.example sender~glob:billing@* "
				      "details~regex:^Trojan\\.");
	cb_event_clear(&ev);
	cb_rules_free(rules);
}

static void rules_explain_names_failed_condition(void **state)
{
	struct cb_ruleset *rules;
	struct cb_rule_match m;
	struct cb_event ev = {0};
	struct cb_buf explain;

	(void)state;
	cb_buf_init(&explain, 0);
	rules = load_valid("[rule \"contoso\"]\nrecipient_domain = contoso.example\naction = log\n"
			   "[rule \"two\"]\nsender = a@x.example, glob:*@y.example\naction = log\n"
			   "[rule \"hashes\"]\nhash = abc\naction = log\n"
			   "[rule \"helpdesk\"]\nurl = regex:helpdesk\naction = skip\n");
	parse_event(URL_EVENT, &ev);
	cb_rules_decide(rules, &ev, 0, &m, &explain);
	assert_string_equal(m.rule, "helpdesk");
	assert_int_equal(m.action.kind, CB_ACTION_SKIP);
	assert_string_equal(explain.data,
			    "rule 'contoso': no match: recipient_domain 'fabrikam.example' != 'contoso.example'\n"
			    "rule 'two': no match: sender 'it-support@contoso-helpdesk.example' matches none of "
			    "'a@x.example', glob:'*@y.example'\n"
			    "rule 'hashes': no match: hash absent from the event\n"
			    "rule 'helpdesk': matched: url~regex:helpdesk\n");
	cb_buf_free(&explain);
	cb_event_clear(&ev);
	cb_rules_free(rules);
}

static void rules_explain_escapes_event_text(void **state)
{
	struct cb_ruleset *rules;
	struct cb_rule_match m;
	struct cb_event ev = {0};
	struct cb_buf explain;

	(void)state;
	cb_buf_init(&explain, 0);
	rules = load_valid("[rule \"r\"]\ndetails = x\naction = log\n");
	parse_event("{\"type\":\"PZD\",\"recipient\":\"a@b.example\",\"mimeId\":\"<m@x>\",\"metaData\":"
		    "{\"threatType\":\"URL\",\"uniformResourceLocator\":\"http://x\",\"details\":\"a\\nrule 'x': "
		    "matched\"}}",
		    &ev);
	cb_rules_decide(rules, &ev, 0, &m, &explain);
	assert_string_equal(explain.data, "rule 'r': no match: details 'a\\x0arule \\'x\\': matched' != 'x'\n"
					  "(default): log\n");
	cb_buf_free(&explain);
	cb_event_clear(&ev);
	cb_rules_free(rules);
}

static void rules_catastrophic_regex_no_match(void **state)
{
	struct cb_ruleset *rules;
	struct cb_rule_match m;
	struct cb_event ev = {0};
	struct cb_buf explain;
	char json[512];
	char details[128];

	(void)state;
	memset(details, 'a', 60);
	details[60] = 'b';
	details[61] = '\0';
	snprintf(json, sizeof(json),
		 "{\"type\":\"PZD\",\"recipient\":\"a@b.example\",\"mimeId\":\"<m@x>\",\"metaData\":"
		 "{\"threatType\":\"URL\",\"uniformResourceLocator\":\"http://x\",\"details\":\"%s\"}}",
		 details);
	cb_buf_init(&explain, 0);
	rules = load_valid("[rule \"redos\"]\ndetails = regex:^(a+)+$\naction = hard_delete\n"
			   "[rule \"after\"]\nthreat = URL\naction = log\n");
	parse_event(json, &ev);

	cb_rules_decide(rules, &ev, 0, &m, &explain);
	assert_string_equal(m.rule, "after");
	assert_int_equal(m.action.kind, CB_ACTION_LOG);
	assert_non_null(strstr(explain.data, "rule 'redos': no match: details 'aaaa"));
	assert_non_null(strstr(explain.data, "hit the PCRE2 match limit"));

	/* A second decision returns the same rule (the warning is logged only once). */
	cb_rules_decide(rules, &ev, 0, &m, NULL);
	assert_string_equal(m.rule, "after");
	cb_buf_free(&explain);
	cb_event_clear(&ev);
	cb_rules_free(rules);
}

static void rules_hand_filled_event(void **state)
{
	struct cb_ruleset *rules;
	struct cb_rule_match m;
	struct cb_event ev = {0};

	(void)state;
	rules = load_valid("[rule \"r\"]\nrecipient = glob:*@contoso.example\nsender_domain = x.example\naction = log\n");
	ev.threat = CB_THREAT_URL;
	ev.recipient = "Bob@Contoso.Example";
	ev.sender = "eve@X.EXAMPLE";
	cb_rules_decide(rules, &ev, 0, &m, NULL);
	assert_string_equal(m.rule, "r");
	ev.sender = NULL;
	cb_rules_decide(rules, &ev, 0, &m, NULL);
	assert_string_equal(m.rule, "(default)");
	cb_rules_free(rules);
}

static void rules_null_ruleset_logs(void **state)
{
	struct cb_rule_match m;
	struct cb_event ev = {0};

	(void)state;
	cb_rules_decide(NULL, &ev, 0, &m, NULL);
	assert_string_equal(m.rule, "(default)");
	assert_int_equal(m.action.kind, CB_ACTION_LOG);
}

static void rules_info_lists_rules(void **state)
{
	struct cb_ruleset *rules;
	struct cb_rule_info info;
	struct cb_action def;

	(void)state;
	rules = load_valid("# comment\n; another\n[rule \"a\"]\naction = skip\n\n[rule \"b\"]\nenabled = off\n"
			   "action = move\nfolder = Inbox/Phish\n[default]\naction = skip\n");
	assert_int_equal(cb_rules_count(rules), 2);
	assert_int_equal(cb_rules_get(rules, 1, &info), 0);
	assert_string_equal(info.name, "b");
	assert_int_equal(info.line, 6);
	assert_int_equal(info.enabled, 0);
	assert_int_equal(info.action.kind, CB_ACTION_MOVE);
	assert_string_equal(info.action.folder, "Inbox/Phish");
	assert_int_equal(cb_rules_get(rules, 2, &info), -1);
	cb_rules_default_action(rules, &def);
	assert_int_equal(def.kind, CB_ACTION_SKIP);
	cb_rules_free(rules);
}

static void rules_load_missing_file(void **state)
{
	struct cb_ruleset *rules = NULL;
	char *problems = NULL;
	struct cb_err err;

	(void)state;
	assert_int_equal(cb_rules_load("/nonexistent/rules.conf", &rules, &problems, &err), -1);
	assert_null(rules);
	assert_null(problems);
	assert_non_null(strstr(err.msg, "/nonexistent/rules.conf"));
}

static void rules_load_file_with_crlf(void **state)
{
	const char *dir = test_tmpdir();
	char *path = test_write_file(dir, "rules.conf", "\xef\xbb\xbf[rule \"r\"]\r\nthreat = VIRUS\r\naction = log\r\n");
	struct cb_ruleset *rules = NULL;
	char *problems = NULL;
	struct cb_err err;

	(void)state;
	assert_int_equal(cb_rules_load(path, &rules, &problems, &err), 0);
	assert_int_equal(cb_rules_count(rules), 1);
	cb_rules_free(rules);
	free(path);
}

/* Loads a file shipped in the repository; it must be valid. */
static struct cb_ruleset *load_shipped(const char *relative)
{
	char path[512];
	struct cb_ruleset *rules = NULL;
	char *problems = NULL;
	struct cb_err err;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", CLAWBACK_SOURCE_DIR, relative);
	rc = cb_rules_load(path, &rules, &problems, &err);
	if (rc != 0)
		fail_msg("%s: rc %d: %s%s", path, rc, problems ? problems : "", rc < 0 ? err.msg : "");
	free(problems);
	return rules;
}

static void rules_example_file_valid(void **state)
{
	struct cb_ruleset *rules;

	(void)state;
	rules = load_shipped("etc/rules.conf.example");
	assert_true(cb_rules_count(rules) >= 3);
	cb_rules_free(rules);
}

/* The demo rules give the PZD events of the sample feed different decisions. */
static void rules_demo_decisions_vary(void **state)
{
	static const struct {
		const char *recipient;
		const char *rule;
		enum cb_action_kind kind;
		int dry_run;
	} expected[] = {
		{"anna.schmidt@contoso.example", "trojans-to-junk", CB_ACTION_MOVE, 0},
		{"jonas.weber@contoso.example", "phishing-urls", CB_ACTION_SOFT_DELETE, 0},
		{"maria.lopez@contoso.example", "macro-documents", CB_ACTION_MOVE, 0},
		{"buchhaltung@contoso.example", "lookalike-senders", CB_ACTION_HARD_DELETE, 1},
		{"lukas.mueller@contoso.example", "trojans-to-junk", CB_ACTION_MOVE, 0},
	};
	struct cb_ruleset *rules = load_shipped("etc/demo/rules.conf");
	char path[512];
	char *text, *line, *next;
	size_t found = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/feed-sample.jsonl", CLAWBACK_SAMPLES_DIR);
	text = test_read_file(path, NULL);
	for (line = text; line && *line; line = next) {
		struct cb_event ev = {0};
		struct cb_rule_match m;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (cb_event_parse(line, strlen(line), &ev, NULL, 0) != CB_REJECT_NONE || strcmp(ev.type, "PZD") != 0) {
			cb_event_clear(&ev);
			continue;
		}
		cb_rules_decide(rules, &ev, 0, &m, NULL);
		for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
			if (strcmp(ev.recipient_norm, expected[i].recipient) != 0)
				continue;
			assert_string_equal(m.rule, expected[i].rule);
			assert_int_equal(m.action.kind, expected[i].kind);
			assert_int_equal(m.action.dry_run, expected[i].dry_run);
			found++;
		}
		cb_event_clear(&ev);
	}
	assert_true(found >= 5);
	free(text);
	cb_rules_free(rules);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rules_reject_garbage_rows),
		cmocka_unit_test(rules_report_every_problem),
		cmocka_unit_test(rules_long_line_rejected),
		cmocka_unit_test(rules_pattern_too_long),
		cmocka_unit_test(rules_too_many_rules),
		cmocka_unit_test(rules_max_rules_accepted),
		cmocka_unit_test(rules_first_match_wins),
		cmocka_unit_test(rules_disabled_rule_skipped),
		cmocka_unit_test(rules_default_without_section_logs),
		cmocka_unit_test(rules_default_section_applies),
		cmocka_unit_test(rules_global_dry_run_forces),
		cmocka_unit_test(rules_rule_dry_run_kept),
		cmocka_unit_test(rules_each_condition_type),
		cmocka_unit_test(rules_reason_lists_conditions),
		cmocka_unit_test(rules_explain_names_failed_condition),
		cmocka_unit_test(rules_explain_escapes_event_text),
		cmocka_unit_test(rules_catastrophic_regex_no_match),
		cmocka_unit_test(rules_hand_filled_event),
		cmocka_unit_test(rules_null_ruleset_logs),
		cmocka_unit_test(rules_info_lists_rules),
		cmocka_unit_test(rules_load_missing_file),
		cmocka_unit_test(rules_load_file_with_crlf),
		cmocka_unit_test(rules_example_file_valid),
		cmocka_unit_test(rules_demo_decisions_vary),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
