/*
 * test_event.c: the Retarus event parser (event/event.h).
 *
 * Tables of rejected inputs (one row per reason and shape), the sample feed
 * lines in tests/data/feed-sample.jsonl, timestamps, address normalisation
 * and the properties of the duplicate key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event/event.h"
#include "testutil.h"

#define SAMPLE_LINES 10

/* A minimal valid PZD event; the reject rows change one thing of it. */
#define PZD_HEAD "{\"type\":\"PZD\",\"recipient\":\"bob@example.org\",\"mimeId\":\"<a.1@mail.example.net>\","
#define META_URL "\"metaData\":{\"threatType\":\"URL\",\"uniformResourceLocator\":\"https://x.example/\"}"

struct reject_case {
	const char *name;
	const char *input;
	enum cb_event_reject reason;
	const char *detail_part; /* text the detail must contain */
};

static const struct reject_case reject_cases[] = {
	{ "empty input", "", CB_REJECT_NOT_JSON, "empty" },
	{ "truncated object", "{\"type\":\"PZD\"", CB_REJECT_NOT_JSON, "invalid JSON" },
	{ "trailing comma", "{\"type\":\"PZD\",}", CB_REJECT_NOT_JSON, "invalid JSON" },
	{ "plain text", "PZD event", CB_REJECT_NOT_JSON, "invalid JSON" },
	{ "two objects", "{\"type\":\"X\"}{\"type\":\"X\"}", CB_REJECT_NOT_JSON, "invalid JSON" },
	{ "escaped NUL", "{\"type\":\"X\\u0000\"}", CB_REJECT_NOT_JSON, "invalid JSON" },
	{ "integer overflow", "{\"type\":\"X\",\"n\":99999999999999999999}", CB_REJECT_NOT_JSON, "invalid JSON" },
	{ "lone surrogate escape", "{\"type\":\"X\\ud800\"}", CB_REJECT_NOT_JSON, "invalid JSON" },

	{ "bad UTF-8 sequence", "{\"type\":\"PZD\",\"recipient\":\"\xc3\x28@example.org\"}", CB_REJECT_BAD_UTF8,
	  "invalid UTF-8" },
	{ "overlong UTF-8", "{\"type\":\"X\",\"s\":\"\xc0\xaf\"}", CB_REJECT_BAD_UTF8, "invalid UTF-8" },
	{ "UTF-8 surrogate", "{\"type\":\"X\",\"s\":\"\xed\xa0\x80\"}", CB_REJECT_BAD_UTF8, "invalid UTF-8" },
	{ "Latin-1 byte", "{\"type\":\"X\",\"s\":\"M\xfcller\"}", CB_REJECT_BAD_UTF8, "invalid UTF-8" },

	{ "array", "[{\"type\":\"PZD\"}]", CB_REJECT_NOT_OBJECT, "an array" },
	{ "string", "\"PZD\"", CB_REJECT_NOT_OBJECT, "a string" },
	{ "number", "42", CB_REJECT_NOT_OBJECT, "a number" },
	{ "null", "null", CB_REJECT_NOT_OBJECT, "null" },

	{ "objects 9 deep", "{\"type\":\"X\",\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{\"h\":{}}}}}}}}}",
	  CB_REJECT_TOO_DEEP, "deeper than 8" },
	{ "arrays 9 deep at top", "[[[[[[[[[1]]]]]]]]]", CB_REJECT_TOO_DEEP, "deeper than 8" },
	{ "deep and unterminated", "{\"a\":[[[[[[[[[", CB_REJECT_TOO_DEEP, "deeper than 8" },

	{ "duplicate type", "{\"type\":\"PZD\",\"type\":\"MTA\"}", CB_REJECT_DUPLICATE_KEY, "duplicate" },
	{ "duplicate recipient", PZD_HEAD "\"recipient\":\"eve@example.org\"," META_URL "}", CB_REJECT_DUPLICATE_KEY,
	  "duplicate" },
	{ "duplicate in metaData", PZD_HEAD "\"metaData\":{\"threatType\":\"URL\",\"threatType\":\"VIRUS\"}}",
	  CB_REJECT_DUPLICATE_KEY, "duplicate" },

	{ "type missing", "{\"recipient\":\"bob@example.org\"}", CB_REJECT_MISSING_TYPE, "type is missing" },
	{ "type empty", "{\"type\":\"\"}", CB_REJECT_MISSING_TYPE, "type is missing" },
	{ "type null", "{\"type\":null}", CB_REJECT_MISSING_TYPE, "type is missing" },
	{ "type number", "{\"type\":1}", CB_REJECT_BAD_FIELD_TYPE, "type is a number, expected a string" },

	{ "recipient number", "{\"type\":\"PZD\",\"recipient\":123}", CB_REJECT_BAD_FIELD_TYPE,
	  "recipient is a number, expected a string" },
	{ "mimeId array", "{\"type\":\"PZD\",\"recipient\":\"b@x.example\",\"mimeId\":[]}", CB_REJECT_BAD_FIELD_TYPE,
	  "mimeId is an array" },
	{ "customer boolean", "{\"type\":\"MTA\",\"customer\":true}", CB_REJECT_BAD_FIELD_TYPE,
	  "customer is a boolean" },
	{ "sender object", "{\"type\":\"MTA\",\"sender\":{}}", CB_REJECT_BAD_FIELD_TYPE, "sender is an object" },
	{ "rmxId number", "{\"type\":\"MTA\",\"rmxId\":7}", CB_REJECT_BAD_FIELD_TYPE, "rmxId is a number" },
	{ "ts number", "{\"type\":\"PZD\",\"ts\":1796022843}", CB_REJECT_BAD_FIELD_TYPE, "ts is a number" },
	{ "metaData string on MTA", "{\"type\":\"MTA\",\"metaData\":\"x\"}", CB_REJECT_BAD_FIELD_TYPE,
	  "metaData is a string" },
	{ "threatType number", PZD_HEAD "\"metaData\":{\"threatType\":1}}", CB_REJECT_BAD_FIELD_TYPE,
	  "metaData.threatType is a number" },
	{ "details boolean", PZD_HEAD "\"metaData\":{\"threatType\":\"URL\",\"details\":true}}",
	  CB_REJECT_BAD_FIELD_TYPE, "metaData.details is a boolean" },
	{ "checksum object", PZD_HEAD "\"metaData\":{\"threatType\":\"VIRUS\",\"checksum\":{}}}",
	  CB_REJECT_BAD_FIELD_TYPE, "metaData.checksum is an object" },
	{ "URL array", PZD_HEAD "\"metaData\":{\"threatType\":\"URL\",\"uniformResourceLocator\":[\"a\"]}}",
	  CB_REJECT_BAD_FIELD_TYPE, "metaData.uniformResourceLocator is an array" },

	{ "recipient missing", "{\"type\":\"PZD\",\"mimeId\":\"<a@b>\"," META_URL "}", CB_REJECT_MISSING_RECIPIENT,
	  "recipient is missing" },
	{ "recipient empty", "{\"type\":\"PZD\",\"recipient\":\"\",\"mimeId\":\"<a@b>\"," META_URL "}",
	  CB_REJECT_MISSING_RECIPIENT, "recipient is missing" },
	{ "recipient null", "{\"type\":\"PZD\",\"recipient\":null," META_URL "}", CB_REJECT_MISSING_RECIPIENT,
	  "recipient is missing" },

	{ "recipient without @", "{\"type\":\"PZD\",\"recipient\":\"bob.example.org\"}", CB_REJECT_BAD_RECIPIENT,
	  "recipient is not an address, expected local-part@domain: \"bob.example.org\"" },
	{ "recipient two @", "{\"type\":\"PZD\",\"recipient\":\"a@b@example.org\"}", CB_REJECT_BAD_RECIPIENT,
	  "\"a@b@example.org\"" },
	{ "recipient empty local part", "{\"type\":\"PZD\",\"recipient\":\"@example.org\"}", CB_REJECT_BAD_RECIPIENT,
	  "\"@example.org\"" },
	{ "recipient empty domain", "{\"type\":\"PZD\",\"recipient\":\"bob@\"}", CB_REJECT_BAD_RECIPIENT,
	  "\"bob@\"" },
	{ "recipient inner space", "{\"type\":\"PZD\",\"recipient\":\"bob smith@example.org\"}",
	  CB_REJECT_BAD_RECIPIENT, "\"bob smith@example.org\"" },
	{ "recipient display form", "{\"type\":\"PZD\",\"recipient\":\"Bob <bob@example.org>\"}",
	  CB_REJECT_BAD_RECIPIENT, "not an address" },
	{ "recipient two addresses", "{\"type\":\"PZD\",\"recipient\":\"a@example.org,b@example.org\"}",
	  CB_REJECT_BAD_RECIPIENT, "not an address" },
	{ "recipient newline", "{\"type\":\"PZD\",\"recipient\":\"bob@example.org\\nBcc: eve@x\"}",
	  CB_REJECT_BAD_RECIPIENT, "\"bob@example.org\\x0aBcc: eve@x\"" },
	{ "recipient empty label", "{\"type\":\"PZD\",\"recipient\":\"bob@example..org\"}", CB_REJECT_BAD_RECIPIENT,
	  "not an address" },

	{ "mimeId missing", "{\"type\":\"PZD\",\"recipient\":\"bob@example.org\"," META_URL "}",
	  CB_REJECT_MISSING_MESSAGE_ID, "mimeId is missing" },
	{ "mimeId empty", "{\"type\":\"PZD\",\"recipient\":\"bob@example.org\",\"mimeId\":\"\"," META_URL "}",
	  CB_REJECT_MISSING_MESSAGE_ID, "mimeId is missing" },
	{ "mimeId control", "{\"type\":\"PZD\",\"recipient\":\"bob@example.org\",\"mimeId\":\"<a\\u0001@b>\"}",
	  CB_REJECT_BAD_MESSAGE_ID, "control character 0x01 at byte 2, expected a Message-ID: \"<a\\x01@b>\"" },
	{ "mimeId CRLF", "{\"type\":\"PZD\",\"recipient\":\"bob@example.org\",\"mimeId\":\"<a@b>\\r\\nX: y\"}",
	  CB_REJECT_BAD_MESSAGE_ID, "control character 0x0d" },
	{ "mimeId DEL", "{\"type\":\"PZD\",\"recipient\":\"bob@example.org\",\"mimeId\":\"<a\\u007f@b>\"}",
	  CB_REJECT_BAD_MESSAGE_ID, "control character 0x7f" },

	{ "ts empty", PZD_HEAD "\"ts\":\"\"," META_URL "}", CB_REJECT_BAD_TIMESTAMP,
	  "ts is not a valid time, expected \"YYYY-MM-DD hh:mm:ss +hhmm\": \"\"" },
	{ "ts ISO 8601", PZD_HEAD "\"ts\":\"2026-11-30T08:14:03+01:00\"," META_URL "}", CB_REJECT_BAD_TIMESTAMP,
	  "\"2026-11-30T08:14:03+01:00\"" },
	{ "ts February 30", PZD_HEAD "\"ts\":\"2026-02-30 08:14:03 +0100\"," META_URL "}", CB_REJECT_BAD_TIMESTAMP,
	  "ts is not a valid time" },
	{ "ts hour 24", PZD_HEAD "\"ts\":\"2026-11-30 24:00:00 +0100\"," META_URL "}", CB_REJECT_BAD_TIMESTAMP,
	  "ts is not a valid time" },

	{ "metaData missing", PZD_HEAD "\"ts\":\"2026-11-30 08:14:03 +0100\"}", CB_REJECT_BAD_METADATA,
	  "metaData is missing, expected an object with threatType" },
	{ "metaData null", PZD_HEAD "\"metaData\":null}", CB_REJECT_BAD_METADATA, "metaData is missing" },
	{ "metaData array", PZD_HEAD "\"metaData\":[]}", CB_REJECT_BAD_METADATA, "metaData is an array" },
	{ "metaData empty", PZD_HEAD "\"metaData\":{}}", CB_REJECT_BAD_METADATA, "threatType is missing" },
	{ "threatType unknown", PZD_HEAD "\"metaData\":{\"threatType\":\"WORM\"}}", CB_REJECT_BAD_METADATA,
	  "threatType is unknown, expected \"VIRUS\" or \"URL\": \"WORM\"" },
	{ "threatType lower case", PZD_HEAD "\"metaData\":{\"threatType\":\"virus\"}}", CB_REJECT_BAD_METADATA,
	  "\"virus\"" },
};

static void assert_event_cleared(const struct cb_event *ev)
{
	struct cb_event zero;

	memset(&zero, 0, sizeof(zero));
	assert_memory_equal(ev, &zero, sizeof(zero));
}

static void reject_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(reject_cases) / sizeof(reject_cases[0]); i++) {
		const struct reject_case *c = &reject_cases[i];
		struct cb_event ev;
		char detail[CB_EVENT_DETAIL_MAX];
		enum cb_event_reject reason;

		reason = cb_event_parse(c->input, strlen(c->input), &ev, detail, sizeof(detail));
		print_message("case: %s -> %s: %s\n", c->name, cb_event_reject_name(reason), detail);
		assert_string_equal(cb_event_reject_name(reason), cb_event_reject_name(c->reason));
		assert_non_null(strstr(detail, c->detail_part));
		assert_event_cleared(&ev);
	}
}

/* Returns before + n copies of fill + after, for values at or past a length limit. */
static char *event_with_long_field(const char *before, size_t n, char fill, const char *after)
{
	size_t len = strlen(before) + n + strlen(after) + 1;
	char *s = malloc(len);

	assert_non_null(s);
	memcpy(s, before, strlen(before));
	memset(s + strlen(before), fill, n);
	memcpy(s + strlen(before) + n, after, strlen(after) + 1);
	return s;
}

struct long_field_case {
	const char *before; /* up to the opening quote of the value */
	size_t limit;
	const char *after;
	const char *field;
};

static const struct long_field_case long_field_cases[] = {
	{ "{\"type\":\"PZD\",\"recipient\":\"", CB_EVENT_MAX_ADDRESS, "@example.org\"}", "recipient" },
	{ "{\"type\":\"PZD\",\"sender\":\"", CB_EVENT_MAX_ADDRESS, "\"}", "sender" },
	{ "{\"type\":\"PZD\",\"recipient\":\"bob@example.org\",\"mimeId\":\"<", CB_EVENT_MAX_MESSAGE_ID, ">\"}",
	  "mimeId" },
	{ "{\"type\":\"MTA\",\"customer\":\"", CB_EVENT_MAX_FIELD, "\"}", "customer" },
	{ "{\"type\":\"X", CB_EVENT_MAX_FIELD, "\"}", "type" },
	{ PZD_HEAD "\"metaData\":{\"threatType\":\"URL\",\"uniformResourceLocator\":\"https://x/",
	  CB_EVENT_MAX_FIELD, "\"}}", "metaData.uniformResourceLocator" },
	{ PZD_HEAD "\"metaData\":{\"threatType\":\"VIRUS\",\"details\":\"", CB_EVENT_MAX_FIELD, "\"}}",
	  "metaData.details" },
};

static void reject_long_fields(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(long_field_cases) / sizeof(long_field_cases[0]); i++) {
		const struct long_field_case *c = &long_field_cases[i];
		char *input = event_with_long_field(c->before, c->limit + 1, 'a', c->after);
		struct cb_event ev;
		char detail[CB_EVENT_DETAIL_MAX];
		enum cb_event_reject reason;

		reason = cb_event_parse(input, strlen(input), &ev, detail, sizeof(detail));
		print_message("case: %s -> %s: %s\n", c->field, cb_event_reject_name(reason), detail);
		assert_int_equal(reason, CB_REJECT_FIELD_TOO_LONG);
		assert_true(strncmp(detail, c->field, strlen(c->field)) == 0);
		assert_non_null(strstr(detail, "expected at most"));
		assert_non_null(strstr(detail, "...")); /* the quoted value is capped */
		assert_true(strlen(detail) < 300);
		assert_event_cleared(&ev);
		free(input);
	}
}

/* A value exactly at its limit is accepted. */
static void accept_field_at_limit(void **state)
{
	/* local part + "@example.org" is exactly CB_EVENT_MAX_ADDRESS bytes */
	char *input = event_with_long_field("{\"type\":\"PZD\",\"recipient\":\"", CB_EVENT_MAX_ADDRESS - 12, 'a',
					    "@example.org\",\"mimeId\":\"<a@b>\"," META_URL "}");
	struct cb_event ev;

	(void)state;
	assert_int_equal(cb_event_parse(input, strlen(input), &ev, NULL, 0), CB_REJECT_NONE);
	assert_int_equal(strlen(ev.recipient), CB_EVENT_MAX_ADDRESS);
	cb_event_clear(&ev);
	free(input);
}

static void reject_too_large(void **state)
{
	size_t len = CB_EVENT_MAX_BYTES + 1;
	char *input = malloc(len);
	struct cb_event ev;
	char detail[CB_EVENT_DETAIL_MAX];

	(void)state;
	assert_non_null(input);
	memset(input, ' ', len);
	memcpy(input, "{\"type\":\"MTA\"}", 14);
	assert_int_equal(cb_event_parse(input, len, &ev, detail, sizeof(detail)), CB_REJECT_TOO_LARGE);
	assert_non_null(strstr(detail, "65537 bytes, expected at most 65536"));
	assert_event_cleared(&ev);

	/* One byte less is within the limit and parses. */
	assert_int_equal(cb_event_parse(input, len - 1, &ev, detail, sizeof(detail)), CB_REJECT_NONE);
	cb_event_clear(&ev);
	free(input);
}

/* Depth 8 is accepted, and brackets inside strings do not count as nesting. */
static void accept_depth_limit_and_strings(void **state)
{
	static const char *const inputs[] = {
		"{\"type\":\"X\",\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{}}}}}}}}",
		"{\"type\":\"X\",\"s\":\"[[[[[[[[[[[[{{{{{{{{{{{\"}",
		"{\"type\":\"X\",\"s\":\"\\\"[[[[[[[[[[[[\\\\\",\"t\":\"{{{{{{{{{{\"}",
		"{\"type\":\"X\",\"a\":[1,[2,[3,[4,[5,[6,[7]]]]]],{}],\"b\":[[[[[[[0]]]]]]]}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		struct cb_event ev;
		char detail[CB_EVENT_DETAIL_MAX];

		print_message("input %zu\n", i);
		assert_int_equal(cb_event_parse(inputs[i], strlen(inputs[i]), &ev, detail, sizeof(detail)),
				 CB_REJECT_NONE);
		assert_string_equal(ev.type, "X");
		cb_event_clear(&ev);
	}
}

/* A 60,000-deep input is rejected by the scan, before jansson could recurse into it. */
static void reject_very_deep_input(void **state)
{
	size_t n = 60000;
	char *input = malloc(n);
	struct cb_event ev;

	(void)state;
	assert_non_null(input);
	memset(input, '[', n);
	assert_int_equal(cb_event_parse(input, n, &ev, NULL, 0), CB_REJECT_TOO_DEEP);
	free(input);
}

/* The detail is optional and is cut, still terminated, to the caller's size. */
static void detail_buffer_sizes(void **state)
{
	static const char input[] = "{\"type\":\"PZD\",\"recipient\":\"nobody\"}";
	struct cb_event ev;
	char small[8];

	(void)state;
	assert_int_equal(cb_event_parse(input, strlen(input), &ev, NULL, 0), CB_REJECT_BAD_RECIPIENT);
	memset(small, 'x', sizeof(small));
	assert_int_equal(cb_event_parse(input, strlen(input), &ev, small, sizeof(small)), CB_REJECT_BAD_RECIPIENT);
	assert_int_equal(strlen(small), sizeof(small) - 1);
}

/* The worst case for the detail, a capped value made only of escapes, fits in CB_EVENT_DETAIL_MAX. */
static void detail_fits_detail_max(void **state)
{
	char input[8192] = "{\"type\":\"PZD\",\"recipient\":\"bob@example.org\",\"mimeId\":\"";
	struct cb_event ev;
	char detail[CB_EVENT_DETAIL_MAX];
	size_t len = strlen(input);

	(void)state;
	for (int i = 0; i < 900; i++) {
		memcpy(input + len, "\\u0001", 6);
		len += 6;
	}
	memcpy(input + len, "\"}", 3);
	len += 2;

	assert_int_equal(cb_event_parse(input, len, &ev, detail, sizeof(detail)), CB_REJECT_BAD_MESSAGE_ID);
	assert_true(strlen(detail) < sizeof(detail) - 1);
	assert_memory_equal(detail + strlen(detail) - 4, "\"...", 4);
}

/* Expected fields of one sample line. */
struct sample_case {
	const char *type;
	enum cb_threat threat;
	const char *recipient;
	const char *recipient_norm;
	const char *message_id;
	const char *sender;
	const char *url;
	const char *checksum_prefix;
	const char *details;
	int64_t ts_ms;
};

static const struct sample_case sample_cases[SAMPLE_LINES] = {
	{ "PZD", CB_THREAT_VIRUS, "anna.schmidt@contoso.example", "anna.schmidt@contoso.example",
	  "<20261130071402.4F2A1@mx1.invoices.example.net>", "billing@invoices.example.net", NULL, "9f2c8e41",
	  "Trojan.GenericKD.71234", 1796022843000 },
	{ "MTA", CB_THREAT_NONE, "jonas.weber@contoso.example", "jonas.weber@contoso.example",
	  "<a81c.55@shop.example.org>",
	  "news@shop.example.org", NULL, NULL, NULL, 1796022845000 },
	{ "PZD", CB_THREAT_URL, "jonas.weber@contoso.example", "jonas.weber@contoso.example",
	  "<CAF+x9=Q/z7@mail.gmail.example>", "it-support@contoso-helpdesk.example",
	  "https://login.contoso-helpdesk.example/reset?u=jonas", NULL, "884512", 1796022843000 + 404000 },
	{ "MultiScan", CB_THREAT_NONE, "office@contoso.example", "office@contoso.example",
	  "<scan.0001@printer.example.com>",
	  "scan@printer.example.com", NULL, NULL, NULL, 1796022843000 + 427000 },
	{ "PZD", CB_THREAT_VIRUS, "maria.lopez@contoso.example", "maria.lopez@contoso.example",
	  "<0100018c1d2e3f4a-5b6c7d8e-9f0a-4b1c-8d2e-3f4a5b6c7d8e-000000@email.amazonses.example>", "", NULL,
	  "0d1e2f3a", "W97M.Downloader.AB", 1796025731000 },
	{ "Sandboxing", CB_THREAT_NONE, "anna.schmidt@contoso.example", "anna.schmidt@contoso.example",
	  "<sbx-77@partner.example>", "hr@partner.example", NULL, NULL, NULL, 1796025900000 },
	{ "PZD", CB_THREAT_URL, "buchhaltung@contoso.example", "buchhaltung@contoso.example",
	  "<O'Brien.77#x&y%z@mailer.example.co>", "ceo@contoso.example.co",
	  "http://xn--cntoso-bva.example/pay?id=17&ref=a%20b", NULL, "884977", 1796027518000 },
	{ "CxO", CB_THREAT_NONE, "finance@contoso.example", "finance@contoso.example", "<cxo.1@c0ntoso.example>",
	  "ceo@c0ntoso.example", NULL, NULL, NULL, 1796028012000 },
	{ "PZD", CB_THREAT_VIRUS, "Lukas.Mueller@Contoso.example", "lukas.mueller@contoso.example",
	  "<20261130071402.4F2A1@mx1.invoices.example.net>", "billing@invoices.example.net", NULL, "9f2c8e41",
	  "Trojan.GenericKD.71234", 1796029389000 },
	{ "PZD", CB_THREAT_VIRUS, "anna.schmidt@contoso.example", "anna.schmidt@contoso.example",
	  "<20261130071402.4F2A1@mx1.invoices.example.net>", "billing@invoices.example.net", NULL, "9f2c8e41",
	  "Trojan.GenericKD.71234", 1796022843000 },
};

/* Splits the sample file into its lines (pointers into text, newlines replaced by NUL). */
static char *read_samples(char *lines[SAMPLE_LINES])
{
	size_t len;
	char *text = test_read_file(CLAWBACK_SAMPLES_DIR "/feed-sample.jsonl", &len);
	char *p = text;

	for (int i = 0; i < SAMPLE_LINES; i++) {
		char *nl = strchr(p, '\n');

		assert_non_null(nl);
		*nl = '\0';
		lines[i] = p;
		p = nl + 1;
	}
	return text;
}

static void assert_optional_string(const char *actual, const char *expected)
{
	if (expected)
		assert_string_equal(actual, expected);
	else
		assert_null(actual);
}

static void accept_sample_lines(void **state)
{
	char *lines[SAMPLE_LINES];
	char *text = read_samples(lines);

	(void)state;
	for (int i = 0; i < SAMPLE_LINES; i++) {
		const struct sample_case *c = &sample_cases[i];
		struct cb_event ev;
		char detail[CB_EVENT_DETAIL_MAX];

		print_message("sample line %d\n", i + 1);
		assert_int_equal(cb_event_parse(lines[i], strlen(lines[i]), &ev, detail, sizeof(detail)),
				 CB_REJECT_NONE);
		assert_string_equal(detail, "");
		assert_string_equal(ev.type, c->type);
		assert_int_equal(ev.threat, c->threat);
		assert_string_equal(ev.customer, "CUST0042");
		assert_string_equal(ev.recipient, c->recipient);
		assert_string_equal(ev.recipient_norm, c->recipient_norm);
		assert_string_equal(ev.message_id, c->message_id);
		assert_string_equal(ev.sender, c->sender);
		assert_non_null(ev.rmx_id);
		assert_non_null(ev.ts_raw);
		assert_int_equal(ev.ts_ms, c->ts_ms);
		assert_optional_string(ev.url, c->url);
		assert_optional_string(ev.details, c->details);
		if (c->checksum_prefix) {
			assert_non_null(ev.checksum);
			assert_memory_equal(ev.checksum, c->checksum_prefix, 8);
			assert_string_equal(ev.hash_function, "sha256");
			assert_non_null(ev.mime_type);
		} else {
			assert_null(ev.checksum);
			assert_null(ev.hash_function);
			assert_null(ev.mime_type);
		}
		if (c->threat == CB_THREAT_NONE) {
			assert_string_equal(ev.dedup_key, "");
		} else {
			assert_int_equal(strlen(ev.dedup_key), 64);
			assert_int_equal(strspn(ev.dedup_key, "0123456789abcdef"), 64);
		}
		cb_event_clear(&ev);
		assert_event_cleared(&ev);
	}
	free(text);
}

/* Accepted shapes beyond the samples: leniency the feed needs. */
struct accept_case {
	const char *name;
	const char *input;
	const char *sender;         /* expected sender, NULL for absent */
	const char *recipient_norm; /* expected, NULL for absent */
	const char *details;        /* expected, NULL for absent */
	int64_t ts_ms;
};

static const struct accept_case accept_cases[] = {
	{ "unknown fields everywhere",
	  PZD_HEAD "\"x-new\":[1,{\"y\":null}],\"metaData\":{\"threatType\":\"URL\",\"score\":0.9,\"tags\":[]}}", NULL,
	  "bob@example.org", NULL, 0 },
	{ "details as integer", PZD_HEAD "\"metaData\":{\"threatType\":\"URL\",\"details\":884512}}", NULL,
	  "bob@example.org", "884512", 0 },
	{ "details as negative integer",
	  PZD_HEAD "\"metaData\":{\"threatType\":\"URL\",\"details\":-9223372036854775808}}",
	  NULL, "bob@example.org", "-9223372036854775808", 0 },
	{ "details as real", PZD_HEAD "\"metaData\":{\"threatType\":\"URL\",\"details\":1.5}}", NULL, "bob@example.org",
	  "1.5", 0 },
	{ "details empty string", PZD_HEAD "\"metaData\":{\"threatType\":\"URL\",\"details\":\"\"}}", NULL,
	  "bob@example.org", NULL, 0 },
	{ "empty sender kept", PZD_HEAD "\"sender\":\"\"," META_URL "}", "", "bob@example.org", NULL, 0 },
	{ "null sender absent", PZD_HEAD "\"sender\":null," META_URL "}", NULL, "bob@example.org", NULL, 0 },
	{ "one-digit day and hour", PZD_HEAD "\"ts\":\"2026-11-3 8:14:03 +0100\"," META_URL "}", NULL,
	  "bob@example.org", NULL, 1796022843000 - 27 * 86400000LL },
	{ "mixed-case recipient with spaces",
	  "{\"type\":\"PZD\",\"recipient\":\" Bob.Smith@Example.ORG \",\"mimeId\":\"<a@b>\"," META_URL "}", NULL,
	  "bob.smith@example.org", NULL, 0 },
	{ "non-PZD without recipient", "{\"type\":\"MTA\"}", NULL, NULL, NULL, 0 },
	{ "non-PZD with bad recipient and ts",
	  "{\"type\":\"MTA\",\"recipient\":\"undisclosed-recipients:;\",\"ts\":\"yesterday\",\"metaData\":{}}", NULL,
	  NULL, NULL, 0 },
	{ "non-PZD threatType ignored", "{\"type\":\"MultiScan\",\"metaData\":{\"threatType\":7,\"details\":[1]}}", NULL,
	  NULL, NULL, 0 },
	{ "whitespace around", " \n\t{\"type\":\"CxO\"}\r\n ", NULL, NULL, NULL, 0 },
};

static void accept_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(accept_cases) / sizeof(accept_cases[0]); i++) {
		const struct accept_case *c = &accept_cases[i];
		struct cb_event ev;
		char detail[CB_EVENT_DETAIL_MAX];

		print_message("case: %s\n", c->name);
		assert_int_equal(cb_event_parse(c->input, strlen(c->input), &ev, detail, sizeof(detail)),
				 CB_REJECT_NONE);
		assert_optional_string(ev.sender, c->sender);
		assert_optional_string(ev.recipient_norm, c->recipient_norm);
		assert_optional_string(ev.details, c->details);
		assert_int_equal(ev.ts_ms, c->ts_ms);
		assert_int_equal(strlen(ev.dedup_key), strcmp(ev.type, "PZD") == 0 ? 64 : 0);
		cb_event_clear(&ev);
	}
}

/* The input needs no NUL terminator: bytes after len are never read. */
static void parse_unterminated_input(void **state)
{
	static const char text[] = "{\"type\":\"CxO\"}{garbage";
	char *copy = malloc(14);
	struct cb_event ev;

	(void)state;
	assert_non_null(copy);
	memcpy(copy, text, 14);
	assert_int_equal(cb_event_parse(copy, 14, &ev, NULL, 0), CB_REJECT_NONE);
	assert_string_equal(ev.type, "CxO");
	cb_event_clear(&ev);
	free(copy);
}

struct ts_case {
	const char *text;
	int64_t ms; /* -1: invalid */
};

static const struct ts_case ts_cases[] = {
	{ "2026-11-30 08:14:03 +0100", 1796022843000 },
	{ "2026-11-30 8:14:03 +0100", 1796022843000 },
	{ "2026-11-30 07:14:03 -0000", 1796022843000 },
	{ "2026-11-30 07:14:03 +0000", 1796022843000 },
	{ "2026-01-5 14:59:59 +0100", 1767621599000 },
	{ "2024-02-29 01:00:00 +0100", 1709164800000 },
	{ "2000-02-29 00:00:00 -1200", 951825600000 },
	{ "2016-12-31 23:59:60 +0000", 1483228800000 },
	{ "1970-01-01 14:00:00 +1400", 0 },
	{ "1969-12-31 10:00:00 -1400", 0 },
	{ "1970-01-01 00:00:00 +0530", -19800000 },
	{ "9999-12-31 23:59:59 +0000", 253402300799000 },

	{ "", -1 },
	{ "2026-11-30", -1 },
	{ "2026-11-30 08:14:03", -1 },
	{ "2026-11-30T08:14:03 +0100", -1 },
	{ "2026-11-30 08:14:03+0100", -1 },
	{ "2026-11-30  08:14:03 +0100", -1 },
	{ "2026-11-30 08:14:03 +01:00", -1 },
	{ "2026-11-30 08:14:03 +010", -1 },
	{ "2026-11-30 08:14:03 +01000", -1 },
	{ "2026-11-30 08:14:03 +0100 ", -1 },
	{ " 2026-11-30 08:14:03 +0100", -1 },
	{ "2026-11-30 08:14:03 0100", -1 },
	{ "2026-11-30 08:14:03 Z", -1 },
	{ "2026-11-30 08:14:03 +01a0", -1 },
	{ "2026/11/30 08:14:03 +0100", -1 },
	{ "26-11-30 08:14:03 +0100", -1 },
	{ "02026-11-30 08:14:03 +0100", -1 },
	{ "2026-1-30 08:14:03 +0100", -1 },
	{ "2026-11-300 08:14:03 +0100", -1 },
	{ "2026-11-30 008:14:03 +0100", -1 },
	{ "2026-11-30 08:4:03 +0100", -1 },
	{ "2026-11-30 08:14:3 +0100", -1 },
	{ "2026-11-30 +8:14:03 +0100", -1 },
	{ "2026-00-10 08:14:03 +0100", -1 },
	{ "2026-13-10 08:14:03 +0100", -1 },
	{ "2026-11-00 08:14:03 +0100", -1 },
	{ "2026-11-31 08:14:03 +0100", -1 },
	{ "2026-04-31 08:14:03 +0100", -1 },
	{ "2023-02-29 08:14:03 +0100", -1 },
	{ "1900-02-29 08:14:03 +0100", -1 },
	{ "2026-11-30 24:00:00 +0100", -1 },
	{ "2026-11-30 08:60:00 +0100", -1 },
	{ "2026-11-30 08:14:61 +0100", -1 },
	{ "2026-11-30 08:14:03 +1401", -1 },
	{ "2026-11-30 08:14:03 -1500", -1 },
	{ "2026-11-30 08:14:03 +0160", -1 },
	{ "2026-11-30 08:14:03 +9999", -1 },
	{ "2026-11-30 08:14:03 +0100\n", -1 },
};

static void timestamp_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(ts_cases) / sizeof(ts_cases[0]); i++) {
		const struct ts_case *c = &ts_cases[i];
		int64_t ms = 12345;
		int rc = cb_event_parse_ts(c->text, &ms);

		print_message("ts \"%s\"\n", c->text);
		if (c->ms == -1) {
			assert_int_equal(rc, -1);
			assert_int_equal(ms, 12345);
		} else {
			assert_int_equal(rc, 0);
			assert_int_equal(ms, c->ms);
		}
	}
	assert_int_equal(cb_event_parse_ts(NULL, &(int64_t){ 0 }), -1);
}

struct address_case {
	const char *input;
	const char *normalised; /* NULL: not an address */
};

static const struct address_case address_cases[] = {
	{ "bob@example.org", "bob@example.org" },
	{ "Lukas.Mueller@Contoso.example", "lukas.mueller@contoso.example" },
	{ "  MIXED@CASE.EXAMPLE\t", "mixed@case.example" },
	{ "o'brien+tag@example.org", "o'brien+tag@example.org" },
	{ "J\xc3\x96RG@example.org", "j\xc3\x96rg@example.org" },
	{ "a@b", "a@b" },

	{ "", NULL },
	{ "   ", NULL },
	{ "bob", NULL },
	{ "@example.org", NULL },
	{ "bob@", NULL },
	{ "a@b@c", NULL },
	{ "bob smith@example.org", NULL },
	{ "bob@exa mple.org", NULL },
	{ "bob@example.org\n", NULL },
	{ "bob\x01@example.org", NULL },
	{ "bob\x7f@example.org", NULL },
	{ "<bob@example.org>", NULL },
	{ "Bob <bob@example.org>", NULL },
	{ "\"bob\"@example.org", NULL },
	{ "bob@[192.0.2.1]", NULL },
	{ "a@example.org,b@example.org", NULL },
	{ "a@example.org;b@example.org", NULL },
	{ "group:a@example.org", NULL },
	{ "bob(comment)@example.org", NULL },
	{ "bob\\@example.org", NULL },
	{ "bob@.example.org", NULL },
	{ "bob@example.org.", NULL },
	{ "bob@example..org", NULL },
};

static void normalise_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(address_cases) / sizeof(address_cases[0]); i++) {
		const struct address_case *c = &address_cases[i];
		char *out = cb_address_normalise(c->input);

		print_message("address \"%s\"\n", c->input);
		assert_optional_string(out, c->normalised);
		free(out);
	}
	assert_null(cb_address_normalise(NULL));
}

static void names_are_stable(void **state)
{
	(void)state;
	assert_string_equal(cb_event_reject_name(CB_REJECT_NONE), "none");
	assert_string_equal(cb_event_reject_name(CB_REJECT_MISSING_RECIPIENT), "missing_recipient");
	assert_string_equal(cb_event_reject_name(CB_REJECT_BAD_UTF8), "bad_utf8");
	assert_string_equal(cb_event_reject_name(CB_REJECT_DUPLICATE_KEY), "duplicate_key");
	assert_string_equal(cb_event_reject_name((enum cb_event_reject)999), "unknown");
	for (int r = CB_REJECT_NONE; r <= CB_REJECT_DUPLICATE_KEY; r++)
		assert_string_not_equal(cb_event_reject_name((enum cb_event_reject)r), "unknown");
	assert_string_equal(cb_threat_name(CB_THREAT_VIRUS), "VIRUS");
	assert_string_equal(cb_threat_name(CB_THREAT_URL), "URL");
	assert_string_equal(cb_threat_name(CB_THREAT_NONE), "none");
}

/* Parses text (which must be accepted) and copies its duplicate key into key. */
static void dedup_key_of(const char *text, char key[65])
{
	struct cb_event ev;
	char detail[CB_EVENT_DETAIL_MAX];

	assert_int_equal(cb_event_parse(text, strlen(text), &ev, detail, sizeof(detail)), CB_REJECT_NONE);
	memcpy(key, ev.dedup_key, 65);
	cb_event_clear(&ev);
}

static void dedup_samples(void **state)
{
	char *lines[SAMPLE_LINES];
	char *text = read_samples(lines);
	char keys[SAMPLE_LINES][65];

	(void)state;
	for (int i = 0; i < SAMPLE_LINES; i++)
		dedup_key_of(lines[i], keys[i]);

	assert_string_equal(keys[9], keys[0]);     /* line 10 repeats line 1 */
	assert_string_not_equal(keys[8], keys[0]); /* line 9: same mail, another recipient */

	/* The PZD lines 1, 3, 5, 7 and 9 are distinct detections. */
	for (int i = 0; i < SAMPLE_LINES - 1; i += 2) {
		for (int j = i + 2; j < SAMPLE_LINES - 1; j += 2)
			assert_string_not_equal(keys[i], keys[j]);
	}

	/* Other types (lines 2, 4, 6 and 8) are only counted and get no key. */
	for (int i = 1; i < SAMPLE_LINES - 1; i += 2)
		assert_string_equal(keys[i], "");
	free(text);
}

#define BASE_EVENT                                                                                         \
	"{\"type\":\"PZD\",\"customer\":\"C1\",\"recipient\":\"bob@example.org\",\"mimeId\":\"<a@b>\","   \
	"\"rmxId\":\"r1\",\"ts\":\"2026-11-30 08:14:03 +0100\",\"version\":\"1.0\","                     \
	"\"metaData\":{\"threatType\":\"URL\",\"uniformResourceLocator\":\"https://x/\",\"details\":\"7\"}}"

/* Inputs that must give the same key as BASE_EVENT. */
static const char *const same_key_inputs[] = {
	/* keys in another order, at both levels */
	"{\"metaData\":{\"details\":\"7\",\"uniformResourceLocator\":\"https://x/\",\"threatType\":\"URL\"},"
	"\"version\":\"1.0\",\"ts\":\"2026-11-30 08:14:03 +0100\",\"rmxId\":\"r1\",\"mimeId\":\"<a@b>\","
	"\"recipient\":\"bob@example.org\",\"customer\":\"C1\",\"type\":\"PZD\"}",
	/* whitespace */
	"{ \"type\" : \"PZD\" ,\n \"customer\":\"C1\",\t\"recipient\":\"bob@example.org\",\"mimeId\":\"<a@b>\","
	"\"rmxId\":\"r1\",\"ts\":\"2026-11-30 08:14:03 +0100\",\"version\":\"1.0\",\r\n"
	"\"metaData\": { \"threatType\" : \"URL\", \"uniformResourceLocator\":\"https://x/\",\"details\":\"7\" } }\n",
	/* other and unknown envelope fields */
	"{\"type\":\"PZD\",\"customer\":\"C1\",\"recipient\":\"bob@example.org\",\"mimeId\":\"<a@b>\","
	"\"rmxId\":\"r1\",\"ts\":\"2026-11-30 08:14:03 +0100\",\"version\":\"2.0\",\"host\":\"h\",\"new\":[1],"
	"\"sender\":\"x@y\",\"metaData\":{\"threatType\":\"URL\",\"uniformResourceLocator\":\"https://x/\","
	"\"details\":\"7\"}}",
	/* recipient case, the same instant with a one-digit hour, a string escape for 'h' */
	"{\"type\":\"PZD\",\"customer\":\"C1\",\"recipient\":\"Bob@Example.ORG\",\"mimeId\":\"<a@b>\","
	"\"rmxId\":\"r1\",\"ts\":\"2026-11-30 8:14:03 +0100\",\"version\":\"1.0\","
	"\"metaData\":{\"threatType\":\"URL\",\"uniformResourceLocator\":\"\\u0068ttps://x/\",\"details\":\"7\"}}",
	/* the same instant in another offset */
	"{\"type\":\"PZD\",\"customer\":\"C1\",\"recipient\":\"bob@example.org\",\"mimeId\":\"<a@b>\","
	"\"rmxId\":\"r1\",\"ts\":\"2026-11-30 07:14:03 +0000\",\"version\":\"1.0\","
	"\"metaData\":{\"threatType\":\"URL\",\"uniformResourceLocator\":\"https://x/\",\"details\":\"7\"}}",
};

/* Inputs that must give a key other than BASE_EVENT's: one identifying field changed each. */
static const char *const other_key_inputs[] = {
	"{\"type\":\"PZD\",\"customer\":\"C2\",\"recipient\":\"bob@example.org\",\"mimeId\":\"<a@b>\","
	"\"rmxId\":\"r1\",\"ts\":\"2026-11-30 08:14:03 +0100\","
	"\"metaData\":{\"threatType\":\"URL\",\"uniformResourceLocator\":\"https://x/\",\"details\":\"7\"}}",
	"{\"type\":\"PZD\",\"customer\":\"C1\",\"recipient\":\"eve@example.org\",\"mimeId\":\"<a@b>\","
	"\"rmxId\":\"r1\",\"ts\":\"2026-11-30 08:14:03 +0100\","
	"\"metaData\":{\"threatType\":\"URL\",\"uniformResourceLocator\":\"https://x/\",\"details\":\"7\"}}",
	"{\"type\":\"PZD\",\"customer\":\"C1\",\"recipient\":\"bob@example.org\",\"mimeId\":\"<A@b>\","
	"\"rmxId\":\"r1\",\"ts\":\"2026-11-30 08:14:03 +0100\","
	"\"metaData\":{\"threatType\":\"URL\",\"uniformResourceLocator\":\"https://x/\",\"details\":\"7\"}}",
	"{\"type\":\"PZD\",\"customer\":\"C1\",\"recipient\":\"bob@example.org\",\"mimeId\":\"<a@b>\","
	"\"rmxId\":\"r2\",\"ts\":\"2026-11-30 08:14:03 +0100\","
	"\"metaData\":{\"threatType\":\"URL\",\"uniformResourceLocator\":\"https://x/\",\"details\":\"7\"}}",
	"{\"type\":\"PZD\",\"customer\":\"C1\",\"recipient\":\"bob@example.org\",\"mimeId\":\"<a@b>\","
	"\"rmxId\":\"r1\",\"ts\":\"2026-11-30 08:14:04 +0100\","
	"\"metaData\":{\"threatType\":\"URL\",\"uniformResourceLocator\":\"https://x/\",\"details\":\"7\"}}",
	"{\"type\":\"PZD\",\"customer\":\"C1\",\"recipient\":\"bob@example.org\",\"mimeId\":\"<a@b>\","
	"\"rmxId\":\"r1\",\"metaData\":{\"threatType\":\"URL\",\"uniformResourceLocator\":\"https://x/\","
	"\"details\":\"7\"}}",
	"{\"type\":\"PZD\",\"customer\":\"C1\",\"recipient\":\"bob@example.org\",\"mimeId\":\"<a@b>\","
	"\"rmxId\":\"r1\",\"ts\":\"2026-11-30 08:14:03 +0100\","
	"\"metaData\":{\"threatType\":\"URL\",\"uniformResourceLocator\":\"https://y/\",\"details\":\"7\"}}",
	"{\"type\":\"PZD\",\"customer\":\"C1\",\"recipient\":\"bob@example.org\",\"mimeId\":\"<a@b>\","
	"\"rmxId\":\"r1\",\"ts\":\"2026-11-30 08:14:03 +0100\","
	"\"metaData\":{\"threatType\":\"URL\",\"uniformResourceLocator\":\"https://x/\",\"details\":\"8\"}}",
	"{\"type\":\"PZD\",\"customer\":\"C1\",\"recipient\":\"bob@example.org\",\"mimeId\":\"<a@b>\","
	"\"rmxId\":\"r1\",\"ts\":\"2026-11-30 08:14:03 +0100\","
	"\"metaData\":{\"threatType\":\"URL\",\"uniformResourceLocator\":\"https://x/\",\"details\":\"7\","
	"\"extra\":1}}",
};

static void dedup_key_properties(void **state)
{
	char base[65];
	char key[65];

	(void)state;
	dedup_key_of(BASE_EVENT, base);
	for (size_t i = 0; i < sizeof(same_key_inputs) / sizeof(same_key_inputs[0]); i++) {
		print_message("same key input %zu\n", i);
		dedup_key_of(same_key_inputs[i], key);
		assert_string_equal(key, base);
	}
	for (size_t i = 0; i < sizeof(other_key_inputs) / sizeof(other_key_inputs[0]); i++) {
		print_message("other key input %zu\n", i);
		dedup_key_of(other_key_inputs[i], key);
		assert_string_not_equal(key, base);
	}
}

/* A duplicate key input larger than the stack buffer takes the allocated path and stays stable. */
static void dedup_key_large_metadata(void **state)
{
	char *a = event_with_long_field(PZD_HEAD "\"metaData\":{\"threatType\":\"URL\","
					"\"uniformResourceLocator\":\"https://x/",
					CB_EVENT_MAX_FIELD - 20, 'p', "\",\"z\":1}}");
	char *b = event_with_long_field(PZD_HEAD "\"metaData\":{\"z\":1,\"threatType\":\"URL\","
					"\"uniformResourceLocator\":\"https://x/",
					CB_EVENT_MAX_FIELD - 20, 'p', "\"}}");
	char key_a[65];
	char key_b[65];

	(void)state;
	dedup_key_of(a, key_a);
	dedup_key_of(b, key_b);
	assert_string_equal(key_a, key_b);
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(reject_table),
		cmocka_unit_test(reject_long_fields),
		cmocka_unit_test(accept_field_at_limit),
		cmocka_unit_test(reject_too_large),
		cmocka_unit_test(accept_depth_limit_and_strings),
		cmocka_unit_test(reject_very_deep_input),
		cmocka_unit_test(detail_buffer_sizes),
		cmocka_unit_test(detail_fits_detail_max),
		cmocka_unit_test(accept_sample_lines),
		cmocka_unit_test(accept_table),
		cmocka_unit_test(parse_unterminated_input),
		cmocka_unit_test(timestamp_table),
		cmocka_unit_test(normalise_table),
		cmocka_unit_test(names_are_stable),
		cmocka_unit_test(dedup_samples),
		cmocka_unit_test(dedup_key_properties),
		cmocka_unit_test(dedup_key_large_metadata),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
