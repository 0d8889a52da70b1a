/* scripts.h -- the Lua scripts that make state changes atomic in Redis.
 * Each is documented (KEYS, ARGV, reply) in docs/protocol.md and beside
 * its text in scripts.c. */
#ifndef TF_SCRIPTS_H
#define TF_SCRIPTS_H

/* Complete a task attempt: dedupe on the task id, append the result to the
 * results stream, XACK and XDEL the queue entry, bump the run's counters,
 * and mark the run done (plus an "end" entry) when the last task lands.
 *   KEYS[1] queue stream   KEYS[2] results stream
 *   KEYS[3] done set       KEYS[4] run hash
 *   ARGV[1] group   ARGV[2] queue entry id   ARGV[3] task id
 *   ARGV[4] attempt ARGV[5] result (msgpack) ARGV[6] now (unix seconds)
 *   ARGV[7] tests in result   ARGV[8] failed+error tests in result
 * Reply: 1 recorded, 0 duplicate (acked, not recorded). */
extern const char script_complete[];

#endif
