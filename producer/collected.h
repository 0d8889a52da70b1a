/* collected.h -- a suite's last collection, kept in Redis so the next run
 * can queue its tasks while pytest collects again (docs/scheduling.md,
 * "Starting from the last collection"). The fresh collection always
 * decides: a run started from a list that turns out different is
 * cancelled and queued again from the fresh one.
 *
 * The key, <prefix>:collected:<sha1>, hashes everything the collection
 * depends on that the producer knows before running it: the runner, the
 * command, the directory, the selection (-m, -k), the paths and the
 * suite's environment. The value is
 *
 *     "tfc1\n" ROOT "\n" N "\n" ID "\n" ... (N ids)
 *
 * with a TTL of the duration history's retention. */
#ifndef TF_COLLECTED_H
#define TF_COLLECTED_H

#include <hiredis.h>
#include <stddef.h>

#include "discover.h"

#define COLLECTED_MAGIC "tfc1"


/* "<prefix>:collected:<sha1 hex>" of the runner and what the collection
 * takes from o (command, cwd, mark, kexpr, paths, env), malloc'd. */
char *collected_key(const char *prefix, const char *runner,
		    const struct discover_opts *o);

/* The value for a DISCOVER_OK result, malloc'd, its length in *len. */
char *collected_format(const struct discover_result *r, size_t *len);

/* Parses a value into out (zeroed first; status DISCOVER_OK, ids, nids,
 * root; release with discover_result_release). Returns 0, or -1 with a
 * message in err for anything malformed: another magic, a count that does
 * not match the ids, an empty or overlong id, a NUL byte. */
int collected_parse(const char *s, size_t len, struct discover_result *out,
		    char *err, size_t errlen);

/* GET and parse: 1 found (out filled), 0 none, -1 unreadable (err). */
int collected_load(redisContext *c, const char *key,
		   struct discover_result *out, char *err, size_t errlen);

/* SET with the history's retention as TTL. Returns 0 or -1 (err). */
int collected_store(redisContext *c, const char *key,
		    const struct discover_result *r, char *err,
		    size_t errlen);

/* Renews the key's TTL (a kept list found right). Returns 0 or -1. */
int collected_touch(redisContext *c, const char *key, char *err,
		    size_t errlen);

/* Whether two DISCOVER_OK results list the same ids in the same order
 * under the same root. */
int collected_same(const struct discover_result *a,
		   const struct discover_result *b);

#endif
