/* fuzz_collected.c -- libFuzzer target for the kept collection's value
 * (producer/collected.c, collected_parse): what a Redis key holds is
 * outside input. A value either parses into ids that format back to the
 * same bytes, or fails with a one-line message and nothing allocated.
 *
 *   make build/fuzz_collected && build/fuzz_collected -max_total_time=60
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "collected.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct discover_result out;
	char err[256], *back;
	size_t blen;

	err[0] = '\0';
	if (collected_parse((const char *)data, size, &out, err,
			    sizeof(err)) < 0) {
		if (err[0] == '\0' || strchr(err, '\n') != NULL ||
		    out.ids != NULL || out.root != NULL)
			abort();
		return 0;
	}
	back = collected_format(&out, &blen);
	if (blen != size || memcmp(back, data, size) != 0)
		abort();
	free(back);
	discover_result_release(&out);
	return 0;
}
