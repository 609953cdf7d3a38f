/*
 * event.c: parses and validates one Retarus Forensic SIEM event (see event.h).
 *
 * Runs in the thread that received the bytes (a feed thread or replay) and
 * keeps no state between calls. The input is untrusted network bytes. Their
 * size and nesting depth are checked before jansson parses them, and every
 * string the event keeps is checked for JSON type and length. Each rejection
 * detail quotes the offending value escaped and capped.
 * Cost per event: one depth scan, one jansson parse, one strdup per kept
 * field, and for PZD events one json_dumpb for the duplicate key.
 */
#include "event/event.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"

/* Maximum bytes of an offending value quoted in a rejection detail. */
#define DETAIL_VALUE_MAX 96
/* Canonical duplicate-key input that fits on the stack; larger ones are allocated. */
#define DEDUP_STACK_BYTES 4096
/* Maximum text length of a JSON number in details: "%.17g" of a double or an int64. */
#define NUMBER_TEXT_MAX 32

static const char *const reject_names[] = {
	[CB_REJECT_NONE] = "none",
	[CB_REJECT_TOO_LARGE] = "too_large",
	[CB_REJECT_NOT_JSON] = "not_json",
	[CB_REJECT_NOT_OBJECT] = "not_object",
	[CB_REJECT_TOO_DEEP] = "too_deep",
	[CB_REJECT_FIELD_TOO_LONG] = "field_too_long",
	[CB_REJECT_BAD_FIELD_TYPE] = "bad_field_type",
	[CB_REJECT_MISSING_TYPE] = "missing_type",
	[CB_REJECT_MISSING_RECIPIENT] = "missing_recipient",
	[CB_REJECT_BAD_RECIPIENT] = "bad_recipient",
	[CB_REJECT_MISSING_MESSAGE_ID] = "missing_message_id",
	[CB_REJECT_BAD_MESSAGE_ID] = "bad_message_id",
	[CB_REJECT_BAD_TIMESTAMP] = "bad_timestamp",
	[CB_REJECT_BAD_METADATA] = "bad_metadata",
	[CB_REJECT_BAD_UTF8] = "bad_utf8",
	[CB_REJECT_DUPLICATE_KEY] = "duplicate_key",
	[CB_REJECT_TRANSPORT] = "transport",
};

const char *cb_event_reject_name(enum cb_event_reject reason)
{
	if ((unsigned)reason >= sizeof(reject_names) / sizeof(reject_names[0]) || !reject_names[reason])
		return "unknown";
	return reject_names[reason];
}

const char *cb_threat_name(enum cb_threat threat)
{
	switch (threat) {
	case CB_THREAT_VIRUS:
		return "VIRUS";
	case CB_THREAT_URL:
		return "URL";
	case CB_THREAT_NONE:
		break;
	}
	return "none";
}

/* The state of one cb_event_parse call. */
struct parse_ctx {
	struct cb_event *ev;
	json_t *root;
	char *detail;
	size_t detail_size;
	int ts_parsed; /* ts_ms contains the parsed ts */
};

/* Writes the rejection detail (when the caller wants one) and returns reason. */
static enum cb_event_reject reject(struct parse_ctx *ctx, enum cb_event_reject reason, const char *fmt,
				   ...) __attribute__((format(printf, 3, 4)));

static enum cb_event_reject reject(struct parse_ctx *ctx, enum cb_event_reject reason, const char *fmt, ...)
{
	va_list ap;

	if (!ctx->detail || ctx->detail_size == 0)
		return reason;
	va_start(ap, fmt);
	vsnprintf(ctx->detail, ctx->detail_size, fmt, ap);
	va_end(ap);
	return reason;
}

/*
 * Quotes an untrusted value for a detail: escaped like a log value, at most
 * DETAIL_VALUE_MAX bytes of it, followed by "..." when it was cut.
 */
static const char *quote_value(struct cb_log_value *v, const char *s, size_t n)
{
	size_t quoted_len = n < DETAIL_VALUE_MAX ? n : DETAIL_VALUE_MAX;
	size_t len;

	cb_log_strn(v, s, quoted_len);
	if (quoted_len < n) {
		len = strlen(v->text);
		memcpy(v->text + len, "...", 4);
	}
	return v->text;
}

static const char *json_type_name(const json_t *value)
{
	switch (json_typeof(value)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		return "null";
	}
	return "unknown";
}

/*
 * Measures the deepest nesting of objects and arrays in raw without parsing it,
 * skipping brackets inside strings (and escaped quotes inside them). Stops
 * early once max is exceeded. Syntax errors are left for jansson to report.
 */
static int nesting_exceeds(const char *raw, size_t len, int max)
{
	int depth = 0;
	int in_string = 0;

	for (size_t i = 0; i < len; i++) {
		char c = raw[i];

		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = 0;
			continue;
		}
		if (c == '"') {
			in_string = 1;
		} else if (c == '{' || c == '[') {
			if (++depth > max)
				return 1;
		} else if ((c == '}' || c == ']') && depth > 0) {
			depth--;
		}
	}
	return 0;
}

/* Maps a jansson decoding error to a reason, with jansson's own position and text. */
static enum cb_event_reject reject_decode_error(struct parse_ctx *ctx, const json_error_t *error)
{
	struct cb_log_value v;
	enum cb_event_reject reason = CB_REJECT_NOT_JSON;
	const char *problem = "invalid JSON";

	switch (json_error_code(error)) {
	case json_error_invalid_utf8:
		reason = CB_REJECT_BAD_UTF8;
		problem = "invalid UTF-8";
		break;
	case json_error_duplicate_key:
		reason = CB_REJECT_DUPLICATE_KEY;
		problem = "duplicate object key";
		break;
	default:
		break;
	}
	return reject(ctx, reason, "%s at byte %d (line %d, column %d), expected one JSON object: %s", problem,
		      error->position, error->line, error->column, quote_value(&v, error->text, strlen(error->text)));
}

/*
 * Reads an optional string field of the envelope or of metaData into *out.
 * Absent, null and "" leave *out NULL, except when keep_empty is set (sender).
 * Returns CB_REJECT_NONE, or the reason for a wrong type, an over-long value or
 * no memory (reported as too long, since only a huge value can exhaust it).
 */
static enum cb_event_reject read_string(struct parse_ctx *ctx, const json_t *obj, const char *obj_name,
					const char *key, size_t max, int keep_empty, char **out)
{
	const json_t *value = json_object_get(obj, key);
	struct cb_log_value v;
	const char *s;
	size_t len;

	*out = NULL;
	if (!value || json_is_null(value))
		return CB_REJECT_NONE;
	if (!json_is_string(value))
		return reject(ctx, CB_REJECT_BAD_FIELD_TYPE, "%s%s is %s, expected a string", obj_name, key,
			      json_type_name(value));

	s = json_string_value(value);
	len = json_string_length(value);
	if (len > max)
		return reject(ctx, CB_REJECT_FIELD_TOO_LONG, "%s%s is %zu bytes, expected at most %zu: %s", obj_name,
			      key, len, max, quote_value(&v, s, len));
	if (len == 0 && !keep_empty)
		return CB_REJECT_NONE;

	*out = strdup(s);
	if (!*out)
		return reject(ctx, CB_REJECT_FIELD_TOO_LONG, "%s%s: out of memory copying %zu bytes", obj_name, key,
			      len);
	return CB_REJECT_NONE;
}

/* Reads details, which the feed sends as a string or as a number (a phishing id). */
static enum cb_event_reject read_details(struct parse_ctx *ctx, const json_t *meta)
{
	const json_t *value = json_object_get(meta, "details");
	char text[NUMBER_TEXT_MAX];

	if (json_is_integer(value))
		snprintf(text, sizeof(text), "%" JSON_INTEGER_FORMAT, json_integer_value(value));
	else if (json_is_real(value))
		snprintf(text, sizeof(text), "%.17g", json_real_value(value));
	else
		return read_string(ctx, meta, "metaData.", "details", CB_EVENT_MAX_FIELD, 0, &ctx->ev->details);

	ctx->ev->details = strdup(text);
	if (!ctx->ev->details)
		return reject(ctx, CB_REJECT_FIELD_TOO_LONG, "metaData.details: out of memory");
	return CB_REJECT_NONE;
}

/* Reads "type", the one field every event must have. */
static enum cb_event_reject read_type(struct parse_ctx *ctx)
{
	enum cb_event_reject r;

	r = read_string(ctx, ctx->root, "", "type", CB_EVENT_MAX_FIELD, 0, &ctx->ev->type);
	if (r != CB_REJECT_NONE)
		return r;
	if (!ctx->ev->type)
		return reject(ctx, CB_REJECT_MISSING_TYPE, "type is missing or empty, expected \"PZD\", \"MTA\", ...");
	return CB_REJECT_NONE;
}

/* Reads the envelope strings that cb_event keeps, checking only JSON type and length. */
static enum cb_event_reject read_envelope(struct parse_ctx *ctx)
{
	struct cb_event *ev = ctx->ev;
	enum cb_event_reject r;

	r = read_string(ctx, ctx->root, "", "customer", CB_EVENT_MAX_FIELD, 0, &ev->customer);
	if (r == CB_REJECT_NONE)
		r = read_string(ctx, ctx->root, "", "sender", CB_EVENT_MAX_ADDRESS, 1, &ev->sender);
	if (r == CB_REJECT_NONE)
		r = read_string(ctx, ctx->root, "", "recipient", CB_EVENT_MAX_ADDRESS, 0, &ev->recipient);
	if (r == CB_REJECT_NONE)
		r = read_string(ctx, ctx->root, "", "mimeId", CB_EVENT_MAX_MESSAGE_ID, 0, &ev->message_id);
	if (r == CB_REJECT_NONE)
		r = read_string(ctx, ctx->root, "", "rmxId", CB_EVENT_MAX_FIELD, 0, &ev->rmx_id);
	if (r == CB_REJECT_NONE)
		r = read_string(ctx, ctx->root, "", "ts", CB_EVENT_MAX_FIELD, 0, &ev->ts_raw);
	return r;
}

/* Checks the PZD recipient: present and an address; fills recipient_norm. */
static enum cb_event_reject check_recipient(struct parse_ctx *ctx)
{
	struct cb_event *ev = ctx->ev;
	struct cb_log_value v;

	if (!ev->recipient)
		return reject(ctx, CB_REJECT_MISSING_RECIPIENT,
			      "recipient is missing or empty, expected the mailbox address of a PZD event");

	ev->recipient_norm = cb_address_normalise(ev->recipient);
	if (!ev->recipient_norm)
		return reject(ctx, CB_REJECT_BAD_RECIPIENT, "recipient is not an address, expected local-part@domain: %s",
			      quote_value(&v, ev->recipient, strlen(ev->recipient)));
	return CB_REJECT_NONE;
}

/* Checks the PZD mimeId: present and free of control characters. */
static enum cb_event_reject check_message_id(struct parse_ctx *ctx)
{
	const char *id = ctx->ev->message_id;
	struct cb_log_value v;

	if (!id)
		return reject(ctx, CB_REJECT_MISSING_MESSAGE_ID,
			      "mimeId is missing or empty, expected the Message-ID of the delivered mail");

	for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return reject(ctx, CB_REJECT_BAD_MESSAGE_ID,
				      "mimeId has control character 0x%02x at byte %td, expected a Message-ID: %s", *p,
				      (const char *)p - id, quote_value(&v, id, strlen(id)));
	}
	return CB_REJECT_NONE;
}

/* Checks a PZD ts, when present (an empty string counts as present), and fills ts_ms. */
static enum cb_event_reject check_timestamp(struct parse_ctx *ctx)
{
	struct cb_event *ev = ctx->ev;
	const char *ts = ev->ts_raw;
	struct cb_log_value v;

	if (!ts && !json_is_string(json_object_get(ctx->root, "ts")))
		return CB_REJECT_NONE;
	if (!ts)
		ts = "";
	if (cb_event_parse_ts(ts, &ev->ts_ms) < 0)
		return reject(ctx, CB_REJECT_BAD_TIMESTAMP,
			      "ts is not a valid time, expected \"YYYY-MM-DD hh:mm:ss +hhmm\": %s",
			      quote_value(&v, ts, strlen(ts)));
	ctx->ts_parsed = 1;
	return CB_REJECT_NONE;
}

/* Reads the PZD metaData: threatType and the fields of its threat. */
static enum cb_event_reject read_threat(struct parse_ctx *ctx)
{
	struct cb_event *ev = ctx->ev;
	const json_t *meta = json_object_get(ctx->root, "metaData");
	const json_t *threat;
	struct cb_log_value v;
	const char *name;
	enum cb_event_reject r;

	if (!json_is_object(meta))
		return reject(ctx, CB_REJECT_BAD_METADATA, "metaData is %s, expected an object with threatType",
			      meta && !json_is_null(meta) ? json_type_name(meta) : "missing");

	threat = json_object_get(meta, "threatType");
	if (!threat || json_is_null(threat))
		return reject(ctx, CB_REJECT_BAD_METADATA, "metaData.threatType is missing, expected \"VIRUS\" or \"URL\"");
	if (!json_is_string(threat))
		return reject(ctx, CB_REJECT_BAD_FIELD_TYPE, "metaData.threatType is %s, expected a string",
			      json_type_name(threat));

	name = json_string_value(threat);
	if (strcmp(name, "VIRUS") == 0) {
		ev->threat = CB_THREAT_VIRUS;
		r = read_string(ctx, meta, "metaData.", "hashFunction", CB_EVENT_MAX_FIELD, 0, &ev->hash_function);
		if (r == CB_REJECT_NONE)
			r = read_string(ctx, meta, "metaData.", "checksum", CB_EVENT_MAX_FIELD, 0, &ev->checksum);
		if (r == CB_REJECT_NONE)
			r = read_string(ctx, meta, "metaData.", "mimeType", CB_EVENT_MAX_FIELD, 0, &ev->mime_type);
	} else if (strcmp(name, "URL") == 0) {
		ev->threat = CB_THREAT_URL;
		r = read_string(ctx, meta, "metaData.", "uniformResourceLocator", CB_EVENT_MAX_FIELD, 0, &ev->url);
	} else {
		return reject(ctx, CB_REJECT_BAD_METADATA,
			      "metaData.threatType is unknown, expected \"VIRUS\" or \"URL\": %s",
			      quote_value(&v, name, json_string_length(threat)));
	}
	if (r != CB_REJECT_NONE)
		return r;
	return read_details(ctx, meta);
}

/* Applies the PZD checks of event.h, in the order the reasons are documented. */
static enum cb_event_reject check_pzd(struct parse_ctx *ctx)
{
	enum cb_event_reject r;

	r = check_recipient(ctx);
	if (r == CB_REJECT_NONE)
		r = check_message_id(ctx);
	if (r == CB_REJECT_NONE)
		r = check_timestamp(ctx);
	if (r == CB_REJECT_NONE)
		r = read_threat(ctx);
	return r;
}

/*
 * Checks an event of another type: metaData, when present, must be an object.
 * Fills recipient_norm and ts_ms when those fields happen to be valid.
 */
static enum cb_event_reject check_other(struct parse_ctx *ctx)
{
	struct cb_event *ev = ctx->ev;
	const json_t *meta = json_object_get(ctx->root, "metaData");

	if (meta && !json_is_null(meta) && !json_is_object(meta))
		return reject(ctx, CB_REJECT_BAD_FIELD_TYPE, "metaData is %s, expected an object",
			      json_type_name(meta));

	if (ev->recipient)
		ev->recipient_norm = cb_address_normalise(ev->recipient);
	if (ev->ts_raw && cb_event_parse_ts(ev->ts_raw, &ev->ts_ms) == 0)
		ctx->ts_parsed = 1;
	return CB_REJECT_NONE;
}

static json_t *string_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/*
 * Builds the object the duplicate key hashes: the identifying fields, with the
 * recipient normalised, ts as ms when it parsed, and metaData as sent.
 */
static json_t *dedup_object(const struct parse_ctx *ctx)
{
	const struct cb_event *ev = ctx->ev;
	json_t *meta = json_object_get(ctx->root, "metaData");
	json_t *obj = json_object();
	json_t *ts;
	int failed = 0;

	if (!obj)
		return NULL;
	if (ctx->ts_parsed)
		ts = json_integer(ev->ts_ms);
	else
		ts = string_or_null(ev->ts_raw);

	failed |= json_object_set_new(obj, "type", json_string(ev->type));
	failed |= json_object_set_new(obj, "customer", string_or_null(ev->customer));
	failed |= json_object_set_new(obj, "recipient", string_or_null(ev->recipient_norm));
	failed |= json_object_set_new(obj, "mimeId", string_or_null(ev->message_id));
	failed |= json_object_set_new(obj, "rmxId", string_or_null(ev->rmx_id));
	failed |= json_object_set_new(obj, "ts", ts);
	failed |= json_object_set(obj, "metaData", meta ? meta : json_null());
	if (failed) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}

/* Fills dedup_key with the SHA-256 of the canonical (sorted, compact) duplicate-key object. */
static enum cb_event_reject make_dedup_key(struct parse_ctx *ctx)
{
	const size_t flags = JSON_SORT_KEYS | JSON_COMPACT;
	char stack[DEDUP_STACK_BYTES];
	json_t *obj = dedup_object(ctx);
	size_t len;
	char *heap;

	if (!obj)
		return reject(ctx, CB_REJECT_TOO_LARGE, "out of memory building the duplicate key");

	len = json_dumpb(obj, stack, sizeof(stack), flags);
	if (len > 0 && len <= sizeof(stack)) {
		cb_sha256_hex(stack, len, ctx->ev->dedup_key);
		json_decref(obj);
		return CB_REJECT_NONE;
	}

	heap = json_dumps(obj, flags);
	json_decref(obj);
	if (!heap)
		return reject(ctx, CB_REJECT_TOO_LARGE, "out of memory building the duplicate key");
	cb_sha256_hex(heap, strlen(heap), ctx->ev->dedup_key);
	free(heap);
	return CB_REJECT_NONE;
}

/* Runs every step after the size check; the caller clears ev on rejection. */
static enum cb_event_reject parse_checked(struct parse_ctx *ctx, const char *raw, size_t len)
{
	json_error_t error;
	enum cb_event_reject r;

	if (nesting_exceeds(raw, len, CB_EVENT_MAX_DEPTH))
		return reject(ctx, CB_REJECT_TOO_DEEP, "JSON nests deeper than %d levels, expected at most %d",
			      CB_EVENT_MAX_DEPTH, CB_EVENT_MAX_DEPTH);

	/* JSON_DECODE_ANY lets a scalar through, so that it is reported as not an object. */
	ctx->root = json_loadb(raw, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &error);
	if (!ctx->root)
		return reject_decode_error(ctx, &error);
	if (!json_is_object(ctx->root))
		return reject(ctx, CB_REJECT_NOT_OBJECT, "the event is %s, expected a JSON object",
			      json_type_name(ctx->root));

	r = read_type(ctx);
	if (r == CB_REJECT_NONE)
		r = read_envelope(ctx);
	if (r != CB_REJECT_NONE)
		return r;

	/* Only PZD events are deduplicated, so only they pay for the key. */
	if (strcmp(ctx->ev->type, "PZD") != 0)
		return check_other(ctx);
	r = check_pzd(ctx);
	if (r != CB_REJECT_NONE)
		return r;
	return make_dedup_key(ctx);
}

enum cb_event_reject cb_event_parse(const char *raw, size_t len, struct cb_event *ev, char *detail,
				    size_t detail_size)
{
	struct parse_ctx ctx = { .ev = ev, .detail = detail, .detail_size = detail_size };
	enum cb_event_reject r;

	memset(ev, 0, sizeof(*ev));
	if (detail && detail_size > 0)
		detail[0] = '\0';

	if (len > CB_EVENT_MAX_BYTES)
		r = reject(&ctx, CB_REJECT_TOO_LARGE, "the event is %zu bytes, expected at most %d", len,
			   CB_EVENT_MAX_BYTES);
	else if (!raw || len == 0)
		r = reject(&ctx, CB_REJECT_NOT_JSON, "the event is empty, expected one JSON object");
	else
		r = parse_checked(&ctx, raw, len);

	json_decref(ctx.root);
	if (r != CB_REJECT_NONE)
		cb_event_clear(ev);
	return r;
}

void cb_event_clear(struct cb_event *ev)
{
	free(ev->type);
	free(ev->customer);
	free(ev->sender);
	free(ev->recipient);
	free(ev->recipient_norm);
	free(ev->message_id);
	free(ev->rmx_id);
	free(ev->ts_raw);
	free(ev->hash_function);
	free(ev->checksum);
	free(ev->mime_type);
	free(ev->url);
	free(ev->details);
	memset(ev, 0, sizeof(*ev));
}

/* Reads between min_digits and max_digits decimal digits at *p into *out and advances *p. */
static int read_digits(const char **p, int min_digits, int max_digits, int *out)
{
	int value = 0;
	int n = 0;

	while (n < max_digits && (*p)[n] >= '0' && (*p)[n] <= '9') {
		value = value * 10 + ((*p)[n] - '0');
		n++;
	}
	if (n < min_digits)
		return -1;
	*p += n;
	*out = value;
	return 0;
}

static int expect_char(const char **p, char c)
{
	if (**p != c)
		return -1;
	(*p)++;
	return 0;
}

static int is_leap_year(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	return m == 2 && is_leap_year(y) ? 29 : days[m - 1];
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int y, int m, int d)
{
	int64_t era;
	int64_t yoe;
	int64_t doy;
	int64_t doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int cb_event_parse_ts(const char *s, int64_t *out_ms)
{
	int year, month, day, hour, minute, second, off_hour, off_minute;
	int sign;
	int64_t seconds;

	if (!s)
		return -1;
	if (read_digits(&s, 4, 4, &year) < 0 || expect_char(&s, '-') < 0 || read_digits(&s, 2, 2, &month) < 0 ||
	    expect_char(&s, '-') < 0 || read_digits(&s, 1, 2, &day) < 0 || expect_char(&s, ' ') < 0 ||
	    read_digits(&s, 1, 2, &hour) < 0 || expect_char(&s, ':') < 0 || read_digits(&s, 2, 2, &minute) < 0 ||
	    expect_char(&s, ':') < 0 || read_digits(&s, 2, 2, &second) < 0 || expect_char(&s, ' ') < 0)
		return -1;
	if (*s != '+' && *s != '-')
		return -1;
	sign = *s++ == '-' ? -1 : 1;
	if (read_digits(&s, 2, 2, &off_hour) < 0 || read_digits(&s, 2, 2, &off_minute) < 0 || *s != '\0')
		return -1;

	if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month))
		return -1;
	if (hour > 23 || minute > 59 || second > 60)
		return -1;
	if (off_minute > 59 || off_hour * 100 + off_minute > 1400)
		return -1;

	seconds = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
	seconds -= sign * (off_hour * 3600 + off_minute * 60);
	*out_ms = seconds * 1000;
	return 0;
}

/* Characters that delimit or quote addresses in headers and never occur in a plain addr-spec. */
static int is_address_delimiter(unsigned char c)
{
	return c != '\0' && strchr("<>()[],;:\"\\", c) != NULL;
}

/* Checks that a domain has no empty label ("a..b", ".a", "a."). */
static int domain_labels_valid(const char *domain, size_t len)
{
	if (domain[0] == '.' || domain[len - 1] == '.')
		return 0;
	return memmem(domain, len, "..", 2) == NULL;
}

char *cb_address_normalise(const char *s)
{
	const char *end;
	const char *at = NULL;
	size_t len;
	char *out;

	if (!s)
		return NULL;
	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	len = (size_t)(end - s);

	for (const char *p = s; p < end; p++) {
		unsigned char c = (unsigned char)*p;

		if (c <= 0x20 || c == 0x7f || is_address_delimiter(c))
			return NULL;
		if (c == '@') {
			if (at)
				return NULL;
			at = p;
		}
	}
	if (!at || at == s || at + 1 == end || !domain_labels_valid(at + 1, (size_t)(end - at - 1)))
		return NULL;

	out = malloc(len + 1);
	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	out[len] = '\0';
	return out;
}
