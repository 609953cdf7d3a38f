/*
 * fuzz_retry_after.c: libFuzzer harness for the Retry-After header parser
 * (cb_exec_parse_retry_after in src/executor/exec_http.c).
 *
 * Feeds arbitrary bytes, NUL-terminated, as the header value that follows
 * "Retry-After:" (the executor passes it with the leading blanks and without
 * CR LF). Dates go to libcurl's curl_getdate, which is not instrumented. The
 * result must be -1 or a delay from 0 to CB_EXEC_MAX_SERVER_BACKOFF_MS; the
 * harness aborts on anything else.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "executor/executor.h"

/* Maximum value length tried; a header line longer than the executor's line buffer never reaches the parser. */
#define FUZZ_MAX_VALUE 4096
/* A fixed clock (2026-01-01T00:00:00Z) keeps runs reproducible. */
#define FUZZ_NOW_S 1767225600

static char value[FUZZ_MAX_VALUE + 1];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int64_t ms;

	if (size > FUZZ_MAX_VALUE)
		size = FUZZ_MAX_VALUE;
	memcpy(value, data, size);
	value[size] = '\0';

	ms = cb_exec_parse_retry_after(value, FUZZ_NOW_S);
	if (ms != -1 && (ms < 0 || ms > CB_EXEC_MAX_SERVER_BACKOFF_MS))
		abort();

	/* A clock far in the future makes every date a past one: 0 ms. */
	ms = cb_exec_parse_retry_after(value, INT64_MAX / 2);
	if (ms != -1 && (ms < 0 || ms > CB_EXEC_MAX_SERVER_BACKOFF_MS))
		abort();
	return 0;
}
