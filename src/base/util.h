/* util.h: small helpers shared by every component (time, strings, hashing). */
#ifndef CLAWBACK_BASE_UTIL_H
#define CLAWBACK_BASE_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Wall-clock time in milliseconds since the Unix epoch. */
int64_t cb_now_ms(void);
/* Monotonic time in milliseconds, for timers and durations. */
int64_t cb_mono_ms(void);

/* strdup that returns NULL for NULL. */
char *cb_strdup(const char *s);
/* Copies at most size-1 bytes and always terminates; returns -1 when s was cut. */
int cb_strlcpy(char *dst, const char *s, size_t size);

/* Writes the lower-case hex SHA-256 of data into out (65 bytes). */
void cb_sha256_hex(const void *data, size_t len, char out[65]);

/* Parses a decimal integer in [min, max] with nothing after it; -1 on any error. */
int cb_parse_int64(const char *s, int64_t min, int64_t max, int64_t *out);

/* Formats a time in ms as ISO 8601 UTC ("2026-11-30T07:14:03Z") into out (32 bytes). */
void cb_format_time(int64_t ms, char out[32]);

#endif
