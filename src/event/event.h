/*
 * event.h: one Retarus Forensic SIEM event, parsed and validated.
 *
 * Runs in whichever thread receives events (feed threads, replay). The input
 * is untrusted bytes from the network. The parser keeps the raw bytes, checks
 * the named limits below before anything else, and either fills a cb_event or
 * returns a specific rejection reason. Nothing in a rejected event is dropped:
 * the caller stores the raw bytes with the reason.
 *
 * What the parser checks:
 *   - every event: size and nesting depth (before jansson parses the bytes),
 *     JSON syntax, UTF-8, no duplicate object keys, a JSON object, a non-empty
 *     string "type", and the JSON type and length of each field that cb_event
 *     carries (customer, sender, recipient, mimeId, rmxId, ts, metaData).
 *     Other envelope fields (version, host, class, direction, status,
 *     sourceIp, subtype) and unknown fields are ignored. A JSON null counts
 *     as an absent field.
 *   - PZD events only: recipient and mimeId are present and valid, ts (when
 *     present) has the documented format, and metaData names a threatType
 *     of VIRUS or URL. Other event types are only counted, so a malformed
 *     recipient or ts in them leaves recipient_norm NULL or ts_ms 0.
 * Duplicate keys are rejected because jansson would keep the last value while
 * another reader of the stored raw bytes may take the first, so two readers
 * could act on different recipients.
 */
#ifndef CLAWBACK_EVENT_EVENT_H
#define CLAWBACK_EVENT_EVENT_H

#include <stddef.h>
#include <stdint.h>

/* Largest event accepted, in bytes. Real PZD events are under 2 KiB. */
#define CB_EVENT_MAX_BYTES (64 * 1024)
/* Deepest JSON nesting accepted. PZD events nest 2 levels, MTA events 3. */
#define CB_EVENT_MAX_DEPTH 8
/* Longest string field accepted, in bytes (URLs are the longest real fields). */
#define CB_EVENT_MAX_FIELD 8192
/* Longest address accepted, in bytes (RFC 5321: 64 local + @ + 255 domain). */
#define CB_EVENT_MAX_ADDRESS 320
/* Longest Message-ID accepted, in bytes (RFC 5322 lines are 998 octets at most). */
#define CB_EVENT_MAX_MESSAGE_ID 998
/* Size of a detail buffer that every rejection detail fits in (details quote at most 96 bytes of a value). */
#define CB_EVENT_DETAIL_MAX 512

enum cb_event_reject {
	CB_REJECT_NONE = 0,
	CB_REJECT_TOO_LARGE,      /* more than CB_EVENT_MAX_BYTES */
	CB_REJECT_NOT_JSON,       /* does not parse as JSON */
	CB_REJECT_NOT_OBJECT,     /* JSON, but not an object */
	CB_REJECT_TOO_DEEP,       /* nesting deeper than CB_EVENT_MAX_DEPTH */
	CB_REJECT_FIELD_TOO_LONG, /* a string field longer than its limit */
	CB_REJECT_BAD_FIELD_TYPE, /* a known field of the wrong JSON type */
	CB_REJECT_MISSING_TYPE,   /* no "type" */
	CB_REJECT_MISSING_RECIPIENT,
	CB_REJECT_BAD_RECIPIENT, /* recipient is not an address */
	CB_REJECT_MISSING_MESSAGE_ID,
	CB_REJECT_BAD_MESSAGE_ID,  /* mimeId with control characters */
	CB_REJECT_BAD_TIMESTAMP,   /* ts present but not "YYYY-MM-DD hh:mm:ss +hhmm" */
	CB_REJECT_BAD_METADATA,    /* PZD metaData missing, not an object, or unknown threatType */
	CB_REJECT_BAD_UTF8,        /* bytes that are not valid UTF-8 */
	CB_REJECT_DUPLICATE_KEY,   /* an object with the same key twice */
	CB_REJECT_TRANSPORT,       /* refused before parsing: a binary, oversized or cut WebSocket message */
};

/* Returns a short stable name for the reason ("missing_recipient"), used in the store and API. */
const char *cb_event_reject_name(enum cb_event_reject reason);

enum cb_threat {
	CB_THREAT_NONE = 0, /* not a PZD event */
	CB_THREAT_VIRUS,    /* a malicious attachment: hash, checksum, MIME type */
	CB_THREAT_URL,      /* a phishing URL */
};

/* Returns the feed's spelling of the threat type ("VIRUS", "URL"), or "none". */
const char *cb_threat_name(enum cb_threat threat);

/*
 * A parsed event. Every string is owned by the event and NUL-terminated;
 * absent optional fields are NULL (never empty strings, except sender, which
 * is "" for a bounce with an empty envelope sender).
 */
struct cb_event {
	char *type;     /* "PZD", "MTA", ... as sent */
	char *customer; /* Retarus customer number */
	char *sender;
	char *recipient;      /* as sent */
	char *recipient_norm; /* lower-cased, for matching and as the mailbox key */
	char *message_id;     /* mimeId, angle brackets included as sent */
	char *rmx_id;
	char *ts_raw;  /* "2026-11-30 08:14:03 +0100" as sent */
	int64_t ts_ms; /* the same instant in ms since the epoch; 0 when absent */
	enum cb_threat threat;
	char *hash_function; /* VIRUS */
	char *checksum;      /* VIRUS */
	char *mime_type;     /* VIRUS */
	char *url;           /* URL: uniformResourceLocator */
	char *details;       /* malware name (VIRUS) or phishing id (URL); a JSON number as text */
	char dedup_key[65];  /* see cb_event_parse; "" for events other than PZD */
};

/*
 * Parses raw (len bytes, need not be NUL-terminated) into ev.
 * Returns CB_REJECT_NONE and fills ev, or a reason (ev is then cleared and
 * detail, when not NULL, names the offending field and value).
 *
 * The duplicate key of a PZD event is the SHA-256 (lower-case hex) of the
 * fields that identify one detection of one delivered mail: type, customer,
 * normalised recipient, mimeId, rmxId, ts and the metaData object with its
 * keys sorted, serialised by json_dumps with JSON_SORT_KEYS | JSON_COMPACT.
 * Key order, whitespace, string escapes and unknown envelope fields do not
 * change it, so a repeated delivery of the same event is recognised however
 * it was serialised. ts enters the key as ts_ms, so "8:14:03 +0100" and
 * "07:14:03 +0000" give the same key. Other event types get no key because
 * they are only counted.
 */
enum cb_event_reject cb_event_parse(const char *raw, size_t len, struct cb_event *ev, char *detail,
				    size_t detail_size);

/* Frees the strings of ev and clears it; safe on a cleared or half-filled event. */
void cb_event_clear(struct cb_event *ev);

/*
 * Parses "YYYY-MM-DD hh:mm:ss +hhmm" (day and hour may have one digit) into ms
 * since the epoch. Returns 0, or -1 for any other format or a field out of
 * range (a day the month lacks, hh > 23, mm > 59, ss > 60 because 60 is a leap
 * second, an offset beyond +-1400 or with minutes > 59).
 */
int cb_event_parse_ts(const char *s, int64_t *out_ms);

/*
 * Normalises an address for matching: lower-cases it and trims surrounding
 * whitespace. Exchange resolves SMTP addresses case-insensitively in both the
 * local part and the domain. Returns NULL when s is not an address
 * (no single '@', empty local part or domain, spaces or control characters,
 * one of the delimiters < > ( ) [ ] , ; : " and backslash, or a domain with an
 * empty label). Quoted local parts and domain literals are therefore rejected.
 * The caller frees the result.
 */
char *cb_address_normalise(const char *s);

#endif
