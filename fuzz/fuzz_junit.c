/* fuzz_junit.c -- libFuzzer target for the JUnit reader (shared/junit.c).
 * Arbitrary bytes go to junit_parse. On success every case must be sane
 * (a name, a known outcome, a finite non-negative time, capped texts); on
 * failure the message must be one line starting with "junit". Sanitizers
 * catch the rest.
 *
 * Build and run without the Makefile (from the repository root):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *       -Ishared $(pkg-config --cflags libxml-2.0) fuzz/fuzz_junit.c \
 *       shared/junit.c shared/buf.c shared/xmalloc.c \
 *       $(pkg-config --libs libxml-2.0) -lm -o build/fuzz_junit
 *   mkdir -p build/fuzz-corpus-junit
 *   build/fuzz_junit -max_total_time=60 -max_len=65536 \
 *       -dict=fuzz/junit.dict build/fuzz-corpus-junit fuzz/corpus/junit
 *
 * The seeds in fuzz/corpus/junit are real pytest output (xunit1 and
 * xunit2), XML specials and the billion-laughs and XXE documents. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "junit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct junit_case *cases = NULL;
	size_t n = 0, i;
	char err[512];

	if (junit_parse((const char *)data, size, &cases, &n, err,
			sizeof(err)) < 0) {
		if (cases != NULL || n != 0 || strncmp(err, "junit", 5) != 0 ||
		    strchr(err, '\n') != NULL) {
			fprintf(stderr, "bad error: \"%s\"\n", err);
			abort();
		}
		return 0;
	}
	if (cases == NULL)
		abort();
	for (i = 0; i < n; i++) {
		const struct junit_case *c = &cases[i];

		if (c->name == NULL || (unsigned)c->outcome >= OUTCOME_COUNT ||
		    !isfinite(c->time_s) || c->time_s < 0)
			abort();
		if (c->outcome == OUTCOME_FLAKY)
			abort();
		if (c->details != NULL && strlen(c->details) > (64u << 10) + 64)
			abort();
		if (c->message != NULL && strlen(c->message) > (64u << 10) + 64)
			abort();
	}
	junit_cases_free(cases, n);
	return 0;
}
