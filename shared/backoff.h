/* backoff.h -- exponential backoff with full jitter, for reconnects and
 * retries: delay = random(0, min(cap, base * 2^attempt)). */
#ifndef TF_BACKOFF_H
#define TF_BACKOFF_H

#include <stdint.h>

struct backoff {
	uint32_t base_ms;
	uint32_t cap_ms;
	uint32_t attempt;
	uint64_t rng;   /* xorshift state, seeded by backoff_init */
};

void backoff_init(struct backoff *b, uint32_t base_ms, uint32_t cap_ms);
/* The next delay in milliseconds; advances the attempt counter. */
uint32_t backoff_next(struct backoff *b);
void backoff_reset(struct backoff *b);

#endif
