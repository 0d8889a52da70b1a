/* command.c -- command suites' tasks (see command.h). */
#include "command.h"

#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

char **command_ids(const char *suite, unsigned n)
{
	char **ids = xcalloc((size_t)n + 1, sizeof(*ids));
	unsigned i;

	if (n <= 1) {
		ids[0] = xstrdup(suite);
		return ids;
	}
	for (i = 0; i < n; i++)
		ids[i] = xasprintf("%s[%u/%u]", suite, i + 1, n);
	return ids;
}

struct kv *command_env(const struct kv *env, size_t nenv, unsigned i,
		       unsigned n, size_t *nout)
{
	struct kv *out = xcalloc(nenv + 1, sizeof(*out));
	size_t k = 0, j;

	for (j = 0; j < nenv; j++) {
		if (strcmp(env[j].key, COMMAND_SHARD_ENV) == 0)
			continue;
		out[k].key = xstrdup(env[j].key);
		out[k].value = xstrdup(env[j].value ? env[j].value : "");
		k++;
	}
	out[k].key = xstrdup(COMMAND_SHARD_ENV);
	out[k].value = xasprintf("%u/%u", i + 1, n ? n : 1);
	*nout = k + 1;
	return out;
}

void command_env_free(struct kv *env, size_t n)
{
	size_t i;

	for (i = 0; env != NULL && i < n; i++) {
		free(env[i].key);
		free(env[i].value);
	}
	free(env);
}
