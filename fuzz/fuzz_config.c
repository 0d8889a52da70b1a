/* fuzz_config.c -- libFuzzer target for the configuration loader
 * (shared/config.c). Arbitrary bytes go to config_load_buffer. On success
 * the result must honour config.h (defaults filled, at least one suite and
 * one phase, every phase naming defined suites, valid shard modes); on
 * failure the message must be one line "fuzz.yaml:...". A few environment
 * variables are set so ${VAR} expansion takes every branch.
 *
 * Build and run without the Makefile (from the repository root):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *       -Ishared fuzz/fuzz_config.c shared/config.c shared/buf.c \
 *       shared/xmalloc.c -lyaml -lm -o build/fuzz_config
 *   mkdir -p build/fuzz-corpus-config
 *   build/fuzz_config -max_total_time=60 -max_len=16384 \
 *       -dict=fuzz/config.dict build/fuzz-corpus-config fuzz/corpus/config
 *
 * The seeds in fuzz/corpus/config are complete valid configurations and a
 * few broken ones. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setenv("TF_FUZZ", "value", 1);
	setenv("TF_FUZZ_EMPTY", "", 1);
	setenv("TF_FUZZ_NUM", "12", 1);
	setenv("TF_FUZZ_DOLLAR", "${TF_FUZZ}$$", 1);
	unsetenv("TF_FUZZ_UNSET");
	return 0;
}

static void check(const struct config *c)
{
	size_t i, j;

	if (c->path == NULL || strcmp(c->path, "fuzz.yaml") != 0)
		abort();
	if (c->prefix == NULL || c->shard == NULL || c->queue == NULL)
		abort();
	if (config_check_shard(c->shard, NULL, 0) != 0)
		abort();
	if (c->nsuites == 0 || c->suites == NULL || c->nphases == 0 ||
	    c->phases == NULL || c->retries < 0)
		abort();
	for (i = 0; i < c->nsuites; i++) {
		const struct suite_conf *s = &c->suites[i];

		if (s->name == NULL || s->runner == NULL ||
		    config_suite(c, s->name) != s)
			abort();
		if ((strcmp(s->runner, "command") == 0) !=
		    (s->command != NULL && s->ncommand > 0))
			abort();
		if (s->shard != NULL && config_check_shard(s->shard, NULL, 0))
			abort();
		for (j = 0; j < s->npaths; j++)
			if (s->paths[j] == NULL || s->paths[j][0] == '-' ||
			    s->paths[j][0] == '\0')
				abort();
		for (j = 0; j < s->nenv; j++)
			if (s->env[j].key == NULL || s->env[j].value == NULL)
				abort();
		if (s->retries < -1)
			abort();
	}
	for (i = 0; i < c->nphases; i++) {
		const struct phase_conf *p = &c->phases[i];

		if (p->name == NULL || p->nsuites == 0 ||
		    config_phase(c, p->name) != p)
			abort();
		for (j = 0; j < p->nsuites; j++)
			if (config_suite(c, p->suites[j]) == NULL)
				abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config c;
	char err[512];

	if (config_load_buffer("fuzz.yaml", (const char *)data, size, &c, err,
			       sizeof(err)) < 0) {
		if (strncmp(err, "fuzz.yaml", 9) != 0 ||
		    strchr(err, '\n') != NULL || c.suites != NULL) {
			fprintf(stderr, "bad error: \"%s\"\n", err);
			abort();
		}
		return 0;
	}
	check(&c);
	config_release(&c);
	return 0;
}
