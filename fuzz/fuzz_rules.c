/*
 * fuzz_rules.c: libFuzzer harness for the rules loader and matcher.
 *
 * Loads arbitrary bytes as a rules file. When they form a valid ruleset, one
 * VIRUS and one URL event are decided with the explain output on, so the
 * compiled patterns, globs and regexes run against real values too.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/buf.h"
#include "rules/rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void decide_samples(const struct cb_ruleset *rules)
{
	struct cb_event virus = {
		.type = "PZD", .customer = "CUST0042", .sender = "billing@invoices.example.net",
		.recipient = "Anna@Contoso.example", .recipient_norm = "anna@contoso.example",
		.threat = CB_THREAT_VIRUS, .hash_function = "sha256", .checksum = "9f2c8e41",
		.mime_type = "application/x-dosexec", .details = "Trojan.GenericKD.71234",
	};
	struct cb_event url = {
		.type = "PZD", .sender = "", .recipient = "a@b.example", .recipient_norm = "a@b.example",
		.threat = CB_THREAT_URL, .url = "https://login.example/reset?u=aaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
		.details = "884512",
	};
	struct cb_rule_match match;
	struct cb_buf explain;

	cb_buf_init(&explain, 1024 * 1024);
	cb_rules_decide(rules, &virus, 0, &match, &explain);
	cb_rules_decide(rules, &url, 1, &match, &explain);
	cb_buf_free(&explain);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cb_ruleset *rules = NULL;
	char *problems = NULL;
	struct cb_err err;

	if (cb_rules_load_text("fuzz.conf", (const char *)data, size, &rules, &problems, &err) == 0)
		decide_samples(rules);
	cb_rules_free(rules);
	free(problems);
	return 0;
}
