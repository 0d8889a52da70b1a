/* backoff.c -- exponential backoff with full jitter (see backoff.h). Each
 * struct carries its own xorshift64 state, seeded from the clock, the pid
 * and the struct's address so processes started together spread out. */
#include "backoff.h"

#include <time.h>
#include <unistd.h>

static uint64_t backoff_rand(struct backoff *b)
{
	uint64_t x = b->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	b->rng = x;
	return x;
}

/* splitmix64 finaliser: spreads nearby seeds (same second, next pid) over
 * the whole state space. */
static uint64_t backoff_mix(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void backoff_init(struct backoff *b, uint32_t base_ms, uint32_t cap_ms)
{
	struct timespec ts;
	uint64_t seed;

	if (base_ms == 0)
		base_ms = 1;
	if (cap_ms < base_ms)
		cap_ms = base_ms;
	b->base_ms = base_ms;
	b->cap_ms = cap_ms;
	b->attempt = 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	seed = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	seed ^= (uint64_t)getpid() << 32;
	seed ^= (uint64_t)(uintptr_t)b;
	seed = backoff_mix(seed);
	b->rng = seed != 0 ? seed : 0x2545f4914f6cdd1dULL;
}

uint32_t backoff_next(struct backoff *b)
{
	uint64_t ceiling = b->base_ms;
	uint32_t i;

	for (i = 0; i < b->attempt && ceiling < b->cap_ms; i++)
		ceiling *= 2;
	if (ceiling > b->cap_ms)
		ceiling = b->cap_ms;
	if (b->attempt < UINT32_MAX)
		b->attempt++;
	if (b->rng == 0)
		b->rng = 0x2545f4914f6cdd1dULL;
	/* Uniform in [0, ceiling]; the modulo bias is negligible for 64-bit
	 * state and 32-bit ceilings. */
	return (uint32_t)(backoff_rand(b) % (ceiling + 1));
}

void backoff_reset(struct backoff *b)
{
	b->attempt = 0;
}
