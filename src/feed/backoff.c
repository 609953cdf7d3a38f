/* backoff.c: the jittered exponential reconnect schedule of backoff.h. */
#include "feed/backoff.h"

#include <openssl/rand.h>
#include <string.h>

static uint64_t random_openssl(void *ctx)
{
	uint64_t v = 0;

	(void)ctx;
	if (RAND_bytes((unsigned char *)&v, sizeof(v)) != 1)
		v = 0; /* the schedule stays bounded; only the jitter is lost */
	return v;
}

void cb_backoff_init(struct cb_backoff *b, int64_t first_ms, int64_t max_ms, cb_random_fn random,
		     void *random_ctx)
{
	memset(b, 0, sizeof(*b));
	b->first_ms = first_ms > 0 ? first_ms : CB_BACKOFF_DEFAULT_FIRST_MS;
	b->max_ms = max_ms > 0 ? max_ms : CB_BACKOFF_DEFAULT_MAX_MS;
	if (b->max_ms < b->first_ms)
		b->max_ms = b->first_ms;
	b->random = random ? random : random_openssl;
	b->random_ctx = random_ctx;
}

int64_t cb_backoff_next(struct cb_backoff *b)
{
	int64_t base = b->first_ms;
	int64_t half;
	unsigned i;

	for (i = 0; i < b->attempt && base < b->max_ms; i++)
		base *= 2;
	if (base > b->max_ms)
		base = b->max_ms;
	if (b->attempt < 64)
		b->attempt++;

	half = base / 2;
	return base - half + (int64_t)(b->random(b->random_ctx) % (uint64_t)(half + 1));
}

void cb_backoff_reset(struct cb_backoff *b)
{
	b->attempt = 0;
}
