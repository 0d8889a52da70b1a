/* keys.c -- Redis key names (see keys.h). */
#include "keys.h"

#include "xmalloc.h"

char *key_queue(const char *prefix, const char *queue)
{
	return xasprintf("%s:q:%s", prefix, queue);
}

char *key_run(const char *prefix, const char *run)
{
	return xasprintf("%s:run:%s", prefix, run);
}

char *key_results(const char *prefix, const char *run)
{
	return xasprintf("%s:run:%s:results", prefix, run);
}

char *key_done(const char *prefix, const char *run)
{
	return xasprintf("%s:run:%s:done", prefix, run);
}

char *key_plan(const char *prefix, const char *run)
{
	return xasprintf("%s:run:%s:plan", prefix, run);
}

char *key_phase(const char *prefix, const char *run, unsigned phase)
{
	return xasprintf("%s:run:%s:phase:%u", prefix, run, phase);
}

char *key_phase_deadlines(const char *prefix)
{
	return xasprintf("%s:phase_deadlines", prefix);
}

char *key_runs(const char *prefix)
{
	return xasprintf("%s:runs", prefix);
}

char *key_workers(const char *prefix)
{
	return xasprintf("%s:workers", prefix);
}

char *key_worker_caps(const char *prefix)
{
	return xasprintf("%s:workers:cap", prefix);
}

char *key_durations(const char *prefix, const char *suite)
{
	return xasprintf("%s:durations:%s", prefix, suite);
}

char *key_partial(const char *prefix, const char *run, const char *task)
{
	return xasprintf("%s:run:%s:partial:%s", prefix, run, task);
}

char *key_artifacts(const char *prefix, const char *run)
{
	return xasprintf("%s:run:%s:artifacts", prefix, run);
}

char *key_delayed(const char *prefix)
{
	return xasprintf("%s:delayed", prefix);
}

char *key_dead(const char *prefix)
{
	return xasprintf("%s:dead", prefix);
}

char *key_control(const char *prefix)
{
	return xasprintf("%s:control", prefix);
}
