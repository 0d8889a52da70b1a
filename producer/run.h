/* run.h -- a run as the producer keeps it in Redis: a fresh run id, the run
 * hash, the tasks queued on their streams (pipelined), and reading the hash
 * back for watch, report and status. Key layout: docs/protocol.md. */
#ifndef TF_RUN_H
#define TF_RUN_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "aggregate.h"
#include "proto.h"
#include "shard.h"

/* The tasks of one suite: its settings, its node ids and how they are
 * sharded. Everything is borrowed. */
struct run_batch {
	const char *suite;
	const char *phase;
	const char *queue;
	const char *cwd;  /* absolute: where the runner starts */
	const char *mark; /* NULL = none */
	const char *kexpr;
	unsigned timeout_s; /* 0 = worker default */
	const struct kv *env;
	size_t nenv;
	char *const *ids;
	const struct shard_plan *plan;
};

struct run_phase_decl {
	const char *name;
	int required;
};

struct run_spec {
	const char *prefix;
	const char *id;
	const char *cwd;  /* the producer's directory, for status */
	const char *args; /* the command line, for status */
	const struct run_batch *batches;
	size_t nbatches;
	const struct run_phase_decl *phases; /* in run order */
	size_t nphases;
	unsigned retries;
	unsigned max_failures;
	unsigned timeout_s;
};

/* A new run id, "YYYYMMDD-HHMM-xxxx" (UTC, four random [a-z0-9]); caller
 * frees. */
char *run_id_new(void);

/* Creates the run: the consumer group on every queue (BUSYGROUP ignored),
 * the run hash (status running, counters, cwd, args, queues, phases as
 * "name:1,name:0"), its entry in <prefix>:runs, then every task, XADDed in
 * pipelined batches. Task ids are t00001, t00002, ... in batch and plan
 * order. Returns 0, or -1 with a one-line message in err (a connection
 * error, or an error reply such as NOPERM). */
int run_create(redisContext *c, const struct run_spec *s, char *err,
	       size_t errlen);

/* Whether a run hash already exists: 1 yes, 0 no, -1 error (err). */
int run_exists(redisContext *c, const char *prefix, const char *id, char *err,
	       size_t errlen);

/* The run hash, read back. */
struct run_info {
	char *id;
	char *status;	    /* running | done | cancelled | ... */
	double created_at;  /* 0 when absent */
	double finished_at; /* 0 while running */
	unsigned tasks_total;
	unsigned tasks_done;
	unsigned tests_total;
	unsigned tests_done;
	unsigned tests_failed;
	struct run_phase_decl *phases; /* from "phases"; names owned */
	size_t nphases;
	struct kv *fields; /* every field as stored */
	size_t nfields;
};

/* Reads <prefix>:run:<id>. Returns 0, 1 when there is no such run, or -1
 * with a message in err. out is zeroed first; release it with
 * run_info_release. */
int run_load(redisContext *c, const char *prefix, const char *id,
	     struct run_info *out, char *err, size_t errlen);
void run_info_release(struct run_info *ri);
/* A field of the hash as stored, or NULL. Borrowed. */
const char *run_info_get(const struct run_info *ri, const char *field);

/* Parses "name:1,name:0" into *out (names malloc'd; release with
 * run_phases_free). Entries without ":0"/":1" count as required. */
void run_phases_parse(const char *s, struct run_phase_decl **out, size_t *n);
void run_phases_free(struct run_phase_decl *p, size_t n);

/* Tells the aggregator what the hash knows: phases in order, the number
 * of tasks, the start time (and the end, when the run is finished). */
void run_info_declare(const struct run_info *ri, struct aggregator *a);

#endif
