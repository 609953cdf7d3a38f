/* cmd_rules.c: `clawback rules check` and `clawback rules test EVENT_FILE`. */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "cli/cli.h"

/* Largest event file `rules test` reads. */
#define RULES_TEST_MAX_BYTES CB_EVENT_MAX_BYTES

static int rules_check(struct cb_cli *cli)
{
	struct cb_ruleset *rules = cb_cli_load_rules(cli);

	if (!rules)
		return CB_EXIT_INVALID;
	printf("%s: %zu rule%s, valid\n", cli->rules_path ? cli->rules_path : cli->config.rules_path,
	       cb_rules_count(rules), cb_rules_count(rules) == 1 ? "" : "s");
	cb_rules_free(rules);
	return CB_EXIT_OK;
}

/* Reads a whole file of at most max bytes into b; prints the error and returns -1 on failure. */
static int read_event_file(const char *path, struct cb_buf *b)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	char chunk[4096];
	size_t n;
	int rc = 0;

	if (!f) {
		fprintf(stderr, "clawback: cannot open '%s': %m\n", path);
		return -1;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (cb_buf_append(b, chunk, n) < 0) {
			fprintf(stderr, "clawback: '%s' is larger than %d bytes, the event size limit\n",
				path, RULES_TEST_MAX_BYTES);
			rc = -1;
			break;
		}
	}
	if (f != stdin)
		fclose(f);
	return rc;
}

static int rules_test(struct cb_cli *cli, const char *path)
{
	struct cb_ruleset *rules;
	struct cb_rule_match match;
	struct cb_event ev;
	struct cb_buf text, explain;
	enum cb_event_reject reason;
	char detail[512] = "";
	int rc = CB_EXIT_FAILURE;

	cb_buf_init(&text, RULES_TEST_MAX_BYTES);
	cb_buf_init(&explain, 0);
	rules = cb_cli_load_rules(cli);
	if (!rules)
		return CB_EXIT_INVALID;
	if (read_event_file(path, &text) < 0)
		goto out;
	while (text.len > 0 && strchr(" \t\r\n", text.data[text.len - 1]))
		text.data[--text.len] = '\0';

	reason = cb_event_parse(text.data, text.len, &ev, detail, sizeof(detail));
	if (reason != CB_REJECT_NONE) {
		fprintf(stderr, "clawback: '%s' would be rejected (%s): %s\n", path,
			cb_event_reject_name(reason), detail);
		goto out;
	}
	if (ev.threat == CB_THREAT_NONE) {
		printf("event type '%s' is not PZD: it is counted and not acted on\n", ev.type);
		rc = CB_EXIT_OK;
		cb_event_clear(&ev);
		goto out;
	}
	cb_rules_decide(rules, &ev, cli->config.dry_run, &match, &explain);
	fputs(explain.data ? explain.data : "", stdout);
	printf("decision: rule=%s action=%s%s%s dry_run=%s\nreason: %s\n", match.rule,
	       cb_action_kind_name(match.action.kind), match.action.folder[0] ? ":" : "",
	       match.action.folder, match.action.dry_run ? "yes" : "no", match.reason);
	cb_event_clear(&ev);
	rc = CB_EXIT_OK;
out:
	cb_buf_free(&text);
	cb_buf_free(&explain);
	cb_rules_free(rules);
	return rc;
}

static int run_rules(struct cb_cli *cli, int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "check") == 0)
		return rules_check(cli);
	if (argc == 3 && strcmp(argv[1], "test") == 0)
		return rules_test(cli, argv[2]);
	fprintf(stderr, "Usage: clawback rules check | clawback rules test EVENT_FILE\n");
	return CB_EXIT_USAGE;
}

const struct cb_command cb_cmd_rules = {
	.name = "rules",
	.summary = "check the rules file, or show which rule matches an event",
	.help = "Usage: clawback [--rules PATH] rules check\n"
		"       clawback [--rules PATH] rules test EVENT_FILE|-\n"
		"\n"
		"check  validates the rules file ([general] rules, or --rules) and prints every\n"
		"       problem with file, line, rule name and field. Exit status 3 when invalid.\n"
		"test   reads one event (JSON) and prints each rule tried, why it matched or\n"
		"       not, and the decision. Nothing is stored.\n",
	.run = run_rules,
};
