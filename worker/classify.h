/* classify.h -- how an attempt of a task is closed (docs/delivery.md,
 * "Classification"): which of its tests have final results, which go to
 * follow-up tasks (transient failures, crashes, timeouts, lost and drained
 * workers, --retries reruns), what is dead-lettered, and why, under the
 * run's policy (policy.h). Pure: a task, its result and the policy in; the
 * record's final form and the follow-up tasks out. */
#ifndef TF_CLASSIFY_H
#define TF_CLASSIFY_H

#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "proto.h"

enum close_mode {
	CLOSE_NORMAL,
	CLOSE_DRAINED /* the worker killed it to drain: hand the rest back */
};

struct followup {
	struct task task; /* owned; its id is "<id>.<n>" */
	int delayed;	  /* 1: due after a backoff delay; 0: due now */
};

struct verdict {
	struct followup *followups;
	size_t nfollowups;
	struct task *dead; /* the task to dead-letter (owned), or NULL */
	unsigned tests;	   /* final test results the record adds */
	unsigned failed;   /* of them failed or error */
};

/* Closes attempt t (borrowed) whose record r was built by the job or the
 * reaper: r is rewritten in place (final results in tests, synthesized
 * errors for timed-out and dead-lettered tests, what is left in unfinished,
 * the retried tests in retrying with retry_reason, retried_for and rerun
 * from the task, and for a drain status "lost"), and out gets the
 * follow-up tasks and the dead letter. timeout_s is the attempt's timeout,
 * for messages. out is zeroed first; release it with verdict_release. */
void classify_attempt(const struct task *t, struct task_result *r,
		      const struct policy *p, enum close_mode mode,
		      unsigned timeout_s, struct verdict *out);
void verdict_release(struct verdict *v);

/* A deep copy of t (caller releases with task_release). */
void task_copy(struct task *dst, const struct task *src);

#endif
