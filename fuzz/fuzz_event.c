/*
 * fuzz_event.c: libFuzzer harness for the event parser (cb_event_parse).
 *
 * Feeds arbitrary bytes as one received feed message, the way the feed thread
 * does, and reads every kept field so that a field left dangling or
 * unterminated shows up under ASan. jansson itself is not instrumented, so
 * the fuzzer steers by the coverage of event.c alone.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "event/event.h"

/* volatile, so the compiler cannot drop the reads of the parsed fields. */
static volatile size_t sink;

static void touch(const char *s)
{
	if (s)
		sink += strlen(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cb_event ev;
	char detail[CB_EVENT_DETAIL_MAX];
	enum cb_event_reject reason;

	reason = cb_event_parse((const char *)data, size, &ev, detail, sizeof(detail));
	sink += strlen(detail) + (size_t)reason;
	sink += strlen(cb_event_reject_name(reason)) + strlen(cb_threat_name(ev.threat));
	if (reason == CB_REJECT_NONE) {
		touch(ev.type);
		touch(ev.customer);
		touch(ev.sender);
		touch(ev.recipient);
		touch(ev.recipient_norm);
		touch(ev.message_id);
		touch(ev.rmx_id);
		touch(ev.ts_raw);
		touch(ev.hash_function);
		touch(ev.checksum);
		touch(ev.mime_type);
		touch(ev.url);
		touch(ev.details);
		touch(ev.dedup_key);
		sink += (size_t)ev.ts_ms;
	}
	cb_event_clear(&ev);
	return 0;
}
