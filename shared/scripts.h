/* scripts.h -- the Lua scripts that make state changes atomic in Redis.
 * Each is documented (KEYS, ARGV, reply) here, in docs/protocol.md and
 * beside its text in scripts.c; docs/delivery.md tells why. */
#ifndef TF_SCRIPTS_H
#define TF_SCRIPTS_H

/* Complete a task attempt: check the run is not cancelled, fence on the
 * entry's owner, dedupe on the task id, append the record to the results
 * stream, XACK and XDEL the queue entry, delete the attempt's partial hash,
 * bump the run's counters, schedule follow-up tasks, dead-letter, stop the
 * run on --max-failures, gate the phases, and mark the run done (plus an
 * "end" entry) when the last task lands.
 * Phases (a run hash with phase_count, docs/delivery.md "Phases"): the
 * record's phase (read from the record with cmsgpack) counts the attempt
 * as done and its failed tests (net of --retries reruns that passed) as
 * bad; follow-ups add to the phase's tasks. A record of a phase that is no
 * longer running (it timed out) is acked and not recorded (2). When the
 * phase has nothing outstanding, a sequential phase (parallel 0) without
 * failures queues its next waiting task; otherwise the phase ends passed
 * or failed: a failed required phase skips the rest and ends the run,
 * else the next phase with tasks starts (all its tasks queued, or the
 * first of a sequential one) and the run ends after the last phase.
 *   KEYS[1] queue stream   KEYS[2] results stream  KEYS[3] done set
 *   KEYS[4] run hash       KEYS[5] delayed zset    KEYS[6] partial hash
 *   KEYS[7] dead stream
 *   ARGV[1] group          ARGV[2] queue entry id  ARGV[3] task id
 *   ARGV[4] consumer (the caller's; the entry's owner must be it)
 *   ARGV[5] record (msgpack task result)           ARGV[6] now (unix s)
 *   ARGV[7] final test results in the record       ARGV[8] of them failed
 *   ARGV[9] control channel                        ARGV[10] dead-letter
 *           entry (msgpack task) or ""
 *   ARGV[11] F, the number of follow-up tasks, then F triples:
 *           due (unix ms), queue name, task (msgpack)
 * Reply: 1 recorded, 0 duplicate (acked, not recorded), -1 fenced (the
 * caller no longer owns the entry: nothing done), 2 run cancelled (acked,
 * not recorded). */
extern const char script_complete[];

/* Renew leases: reset the idle time of entries the caller still owns.
 *   KEYS[1] queue stream
 *   ARGV[1] group  ARGV[2] consumer  ARGV[3..] entry ids
 * Reply: array of the ids the caller no longer owns (lost leases). */
extern const char script_renew[];

/* Move due follow-ups from the delayed set to their queues. Members are
 * "<queue>\n<task msgpack>". Then time out phases: every run in
 * <prefix>:phase_deadlines whose running phase is past its deadline (by
 * Redis's clock; at most 10 runs a call) has that phase's unread tasks
 * deleted from its queues and the phase ended with status "timeout" (a
 * required one ends the run and publishes "cancel <run>" so workers stop
 * what is left of it; an optional one starts the next phase).
 *   KEYS[1] delayed zset
 *   ARGV[1] now (unix ms)  ARGV[2] most to move  ARGV[3] key prefix
 * Reply: the number of follow-ups moved. */
extern const char script_promote[];

/* Cancel a run that is still running: status "cancelled" with the reason,
 * its phases' waiting tasks and deadline dropped, the "end" entry (fields
 * end=<now>, reason=<reason>), and a "cancel <run>" message on the control
 * channel.
 *   KEYS[1] run hash  KEYS[2] results stream
 *   ARGV[1] now (unix s)  ARGV[2] reason  ARGV[3] control channel
 *   ARGV[4] run id
 * Reply: 1 cancelled, 0 it had already ended. */
extern const char script_cancel[];

#endif
