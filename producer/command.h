/* command.h -- the command runner, producer side. A suite whose runner is
 * "command" is not discovered: its argv runs as one task, or as N shards
 * with `shard: count:N`, each task with TESTFLEET_SHARD="<i>/<N>" (from 1)
 * added to the suite's environment. Each task carries one id -- the suite
 * name, or "<suite>[<i>/<N>]" for a shard of several -- which names its
 * result when the command writes no JUnit (docs/runners.md). Pure. */
#ifndef TF_COMMAND_H
#define TF_COMMAND_H

#include <stddef.h>

#include "proto.h"

#define COMMAND_SHARD_ENV "TESTFLEET_SHARD"

/* The ids of a suite's n tasks (n >= 1), NULL-terminated; free with
 * discover_ids_free (discover.h). */
char **command_ids(const char *suite, unsigned n);

/* The environment of shard i (from 0) of n: env, without any
 * TESTFLEET_SHARD of its own, plus TESTFLEET_SHARD="<i+1>/<n>". Returns a
 * new array of *nout entries (keys and values malloc'd); free with
 * command_env_free. */
struct kv *command_env(const struct kv *env, size_t nenv, unsigned i,
		       unsigned n, size_t *nout);
void command_env_free(struct kv *env, size_t n);

#endif
