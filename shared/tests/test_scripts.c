/* test_scripts.c -- the Lua scripts of scripts.h against a real, throwaway
 * redis-server on a unix socket in a temporary directory: complete (record,
 * fencing, duplicates, cancelled runs, follow-ups, dead letters,
 * --max-failures, phase gating), renew, promote (with phase timeouts) and
 * cancel. Skipped when redis-server is
 * not installed; the server is killed on every exit path (and by
 * PR_SET_PDEATHSIG if this process dies). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "keys.h"
#include "proto.h"
#include "redisconn.h"
#include "redisurl.h"
#include "scripts.h"

#define REDIS_SERVER "/usr/bin/redis-server"

struct server {
	pid_t pid;
	char dir[64];
	char sock[128];
	redisContext *c;
};

static void remove_dir(const char *dir)
{
	char path[512];
	struct dirent *e;
	DIR *d = opendir(dir);

	if (d != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 ||
			    strcmp(e->d_name, "..") == 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			unlink(path);
		}
		closedir(d);
	}
	rmdir(dir);
}

static void server_stop(struct server *s)
{
	int status;

	if (s->c != NULL)
		redisFree(s->c);
	s->c = NULL;
	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		waitpid(s->pid, &status, 0);
		s->pid = 0;
	}
	remove_dir(s->dir);
}

static int group_setup(void **state)
{
	char log[160], err[256];
	struct server *s;
	struct redis_url u;
	int fd;

	*state = NULL;
	if (access(REDIS_SERVER, X_OK) != 0)
		return 0;
	s = calloc(1, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "/tmp/tf-scripts-XXXXXX");
	if (mkdtemp(s->dir) == NULL) {
		free(s);
		return -1;
	}
	snprintf(s->sock, sizeof(s->sock), "%s/redis.sock", s->dir);
	snprintf(log, sizeof(log), "%s/redis.log", s->dir);
	s->pid = fork();
	if (s->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(REDIS_SERVER, "redis-server", "--port", "0",
		      "--unixsocket", s->sock, "--unixsocketperm", "700",
		      "--dir", s->dir, "--save", "", "--appendonly", "no",
		      (char *)NULL);
		_exit(127);
	}
	if (s->pid < 0) {
		remove_dir(s->dir);
		free(s);
		return -1;
	}
	memset(&u, 0, sizeof(u));
	u.kind = REDIS_URL_UNIX;
	u.path = s->sock;
	s->c = redisconn_open_retry(&u, 2000, 10000, err, sizeof(err));
	if (s->c == NULL) {
		fprintf(stderr, "redis-server did not start: %s\n", err);
		server_stop(s);
		free(s);
		return -1;
	}
	*state = s;
	return 0;
}

static int group_teardown(void **state)
{
	struct server *s = *state;

	if (s != NULL) {
		server_stop(s);
		free(s);
	}
	return 0;
}

static redisReply *cmd(struct server *s, const char *fmt, ...)
{
	va_list ap;
	void *r;

	va_start(ap, fmt);
	r = redisvCommand(s->c, fmt, ap);
	va_end(ap);
	assert_non_null(r);
	return r;
}

static long long cmd_int(struct server *s, const char *fmt, ...)
{
	va_list ap;
	redisReply *r;
	long long v;

	va_start(ap, fmt);
	r = redisvCommand(s->c, fmt, ap);
	va_end(ap);
	assert_non_null(r);
	if (r->type == REDIS_REPLY_STRING)
		v = strtoll(r->str, NULL, 10);
	else if (r->type == REDIS_REPLY_NIL)
		v = -999;
	else {
		assert_int_equal(r->type, REDIS_REPLY_INTEGER);
		v = r->integer;
	}
	freeReplyObject(r);
	return v;
}

static void need(void **state)
{
	struct server *s = *state;

	if (s == NULL)
		skip();
	freeReplyObject(cmd(s, "FLUSHALL"));
}

/* Queues an entry on q and delivers it to consumer: returns its id. */
static char *deliver(struct server *s, const char *q, const char *consumer,
		     const char *payload)
{
	redisReply *r;
	char *id;

	r = cmd(s, "XGROUP CREATE %s workers 0 MKSTREAM", q);
	freeReplyObject(r);
	r = cmd(s, "XADD %s * m %s", q, payload);
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	id = strdup(r->str);
	freeReplyObject(r);
	r = cmd(s, "XREADGROUP GROUP workers %s COUNT 1 STREAMS %s >", consumer,
		q);
	assert_int_equal(r->type, REDIS_REPLY_ARRAY);
	freeReplyObject(r);
	return id;
}

struct followup {
	const char *due;
	const char *queue;
	const char *task;
};

/* Runs complete for task tid of run "r1" on queue q (a record of reclen
 * bytes; 0 = NUL-terminated). */
static long long complete_on(struct server *s, const char *q, const char *entry,
			     const char *tid, const char *consumer,
			     const char *record, size_t reclen,
			     const char *tests, const char *failed,
			     const char *dead, const struct followup *fu,
			     int nfu)
{
	const char *argv[64];
	size_t lens[64];
	char nf[16], partial[64];
	redisReply *r;
	long long v;
	int argc = 0, i;

	snprintf(partial, sizeof(partial), "tf:run:r1:partial:%s", tid);
	argv[argc++] = q;
	argv[argc++] = "tf:run:r1:results";
	argv[argc++] = "tf:run:r1:done";
	argv[argc++] = "tf:run:r1";
	argv[argc++] = "tf:delayed";
	argv[argc++] = partial;
	argv[argc++] = "tf:dead";
	argv[argc++] = "workers";
	argv[argc++] = entry;
	argv[argc++] = tid;
	argv[argc++] = consumer;
	argv[argc++] = record;
	argv[argc++] = "1700000000.5";
	argv[argc++] = tests;
	argv[argc++] = failed;
	argv[argc++] = "tf:control";
	argv[argc++] = dead;
	snprintf(nf, sizeof(nf), "%d", nfu);
	argv[argc++] = nf;
	for (i = 0; i < nfu; i++) {
		argv[argc++] = fu[i].due;
		argv[argc++] = fu[i].queue;
		argv[argc++] = fu[i].task;
	}
	for (i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
	if (reclen > 0)
		lens[11] = reclen;
	r = redisconn_script(s->c, script_complete, 7, argc, argv, lens);
	assert_non_null(r);
	if (r->type != REDIS_REPLY_INTEGER)
		fail_msg("complete: %s", r->type == REDIS_REPLY_ERROR
					     ? r->str
					     : "not an integer");
	v = r->integer;
	freeReplyObject(r);
	return v;
}

/* Runs complete for task tid of run "r1" on queue "default". */
static long long complete(struct server *s, const char *entry, const char *tid,
			  const char *consumer, const char *record,
			  const char *tests, const char *failed,
			  const char *dead, const struct followup *fu, int nfu)
{
	return complete_on(s, "tf:q:default", entry, tid, consumer, record, 0,
			   tests, failed, dead, fu, nfu);
}

static void run_hash(struct server *s, const char *status, int total, int maxf)
{
	freeReplyObject(cmd(s,
			    "HSET tf:run:r1 status %s tasks_total %d "
			    "tasks_done 0 tests_done 0 tests_failed 0 "
			    "max_failures %d",
			    status, total, maxf));
}

static void test_complete_records_once(void **state)
{
	struct server *s = *state;
	char *id;
	redisReply *r;

	need(state);
	run_hash(s, "running", 2, 0);
	id = deliver(s, "tf:q:default", "w1", "task-a");
	freeReplyObject(cmd(s, "HSET tf:run:r1:partial:t1 running x"));
	assert_int_equal(
	    complete(s, id, "t1", "w1", "rec-a", "3", "1", "", NULL, 0), 1);
	assert_int_equal(cmd_int(s, "XLEN tf:run:r1:results"), 1);
	assert_int_equal(cmd_int(s, "XLEN tf:q:default"), 0);
	assert_int_equal(cmd_int(s, "EXISTS tf:run:r1:partial:t1"), 0);
	assert_int_equal(cmd_int(s, "SISMEMBER tf:run:r1:done t1"), 1);
	assert_int_equal(cmd_int(s, "HGET tf:run:r1 tests_done"), 3);
	assert_int_equal(cmd_int(s, "HGET tf:run:r1 tests_failed"), 1);
	assert_int_equal(cmd_int(s, "HGET tf:run:r1 tasks_done"), 1);
	r = cmd(s, "XPENDING tf:q:default workers");
	assert_int_equal(r->element[0]->integer, 0);
	freeReplyObject(r);

	/* The same call again (a resend after a lost reply): a duplicate,
	 * nothing recorded twice. */
	assert_int_equal(
	    complete(s, id, "t1", "w1", "rec-a", "3", "1", "", NULL, 0), 0);
	assert_int_equal(cmd_int(s, "XLEN tf:run:r1:results"), 1);
	assert_int_equal(cmd_int(s, "HGET tf:run:r1 tasks_done"), 1);
	free(id);

	/* Another entry of the same task id (a reclaimed copy that was
	 * redelivered): acked and deleted, not recorded. */
	id = deliver(s, "tf:q:default", "w2", "task-a-again");
	assert_int_equal(
	    complete(s, id, "t1", "w2", "rec-b", "3", "1", "", NULL, 0), 0);
	assert_int_equal(cmd_int(s, "XLEN tf:run:r1:results"), 1);
	assert_int_equal(cmd_int(s, "XLEN tf:q:default"), 0);
	r = cmd(s, "XPENDING tf:q:default workers");
	assert_int_equal(r->element[0]->integer, 0);
	freeReplyObject(r);
	free(id);

	/* The last task ends the run with an "end" entry. */
	id = deliver(s, "tf:q:default", "w1", "task-b");
	assert_int_equal(
	    complete(s, id, "t2", "w1", "rec-c", "1", "0", "", NULL, 0), 1);
	r = cmd(s, "HGET tf:run:r1 status");
	assert_string_equal(r->str, "done");
	freeReplyObject(r);
	r = cmd(s, "XREVRANGE tf:run:r1:results + - COUNT 1");
	assert_string_equal(r->element[0]->element[1]->element[0]->str, "end");
	freeReplyObject(r);
	free(id);
}

static void test_complete_fenced(void **state)
{
	struct server *s = *state;
	redisReply *r;
	char *id;

	need(state);
	run_hash(s, "running", 1, 0);
	id = deliver(s, "tf:q:default", "stale", "task");
	/* A reaper takes the entry over. */
	r = cmd(s, "XCLAIM tf:q:default workers reaper 0 %s JUSTID", id);
	freeReplyObject(r);
	freeReplyObject(cmd(s, "HSET tf:run:r1:partial:t1 r:a x"));
	assert_int_equal(
	    complete(s, id, "t1", "stale", "late", "1", "0", "", NULL, 0), -1);
	/* Nothing done: no record, still pending for the reaper, the
	 * partial results kept. */
	assert_int_equal(cmd_int(s, "EXISTS tf:run:r1:results"), 0);
	assert_int_equal(cmd_int(s, "SISMEMBER tf:run:r1:done t1"), 0);
	assert_int_equal(cmd_int(s, "EXISTS tf:run:r1:partial:t1"), 1);
	r = cmd(s, "XPENDING tf:q:default workers");
	assert_int_equal(r->element[0]->integer, 1);
	freeReplyObject(r);
	/* The owner can. */
	assert_int_equal(
	    complete(s, id, "t1", "reaper", "lost", "1", "0", "", NULL, 0), 1);
	/* The stale worker's late record after that: the entry is gone and
	 * the task is done, so a duplicate (0): dropped. */
	assert_int_equal(
	    complete(s, id, "t1", "stale", "late", "1", "0", "", NULL, 0), 0);
	/* The reaper's record and the run's "end". */
	assert_int_equal(cmd_int(s, "XLEN tf:run:r1:results"), 2);
	free(id);

	/* An entry acked by someone else with no record: -1. */
	id = deliver(s, "tf:q:default", "w1", "task");
	freeReplyObject(cmd(s, "XACK tf:q:default workers %s", id));
	assert_int_equal(
	    complete(s, id, "t9", "w1", "x", "1", "0", "", NULL, 0), -1);
	free(id);
	/* A queue that does not exist (Redis restarted empty): -1, not a
	 * script error. */
	freeReplyObject(cmd(s, "DEL tf:q:default"));
	assert_int_equal(
	    complete(s, "1-1", "t8", "w1", "x", "1", "0", "", NULL, 0), -1);
}

static void test_complete_cancelled(void **state)
{
	struct server *s = *state;
	redisReply *r;
	char *id;

	need(state);
	run_hash(s, "cancelled", 3, 0);
	id = deliver(s, "tf:q:default", "w1", "task");
	freeReplyObject(cmd(s, "HSET tf:run:r1:partial:t1 running x"));
	assert_int_equal(
	    complete(s, id, "t1", "w1", "rec", "1", "1", "", NULL, 0), 2);
	assert_int_equal(cmd_int(s, "EXISTS tf:run:r1:results"), 0);
	assert_int_equal(cmd_int(s, "XLEN tf:q:default"), 0);
	assert_int_equal(cmd_int(s, "EXISTS tf:run:r1:partial:t1"), 0);
	assert_int_equal(cmd_int(s, "HGET tf:run:r1 tasks_done"), 0);
	r = cmd(s, "XPENDING tf:q:default workers");
	assert_int_equal(r->element[0]->integer, 0);
	freeReplyObject(r);
	free(id);
}

static void test_complete_followups_and_dead(void **state)
{
	struct server *s = *state;
	struct followup fu[2] = {
	    {"1700000001000", "default", "task-t1.1"},
	    {"1700000005000", "browser", "task-t1.2"},
	};
	redisReply *r;
	char *id;

	need(state);
	run_hash(s, "running", 1, 0);
	id = deliver(s, "tf:q:default", "w1", "task");
	assert_int_equal(
	    complete(s, id, "t1", "w1", "rec", "2", "0", "poison-task", fu, 2),
	    1);
	/* Two more tasks: the run is not over. */
	assert_int_equal(cmd_int(s, "HGET tf:run:r1 tasks_total"), 3);
	assert_int_equal(cmd_int(s, "HGET tf:run:r1 tasks_done"), 1);
	r = cmd(s, "HGET tf:run:r1 status");
	assert_string_equal(r->str, "running");
	freeReplyObject(r);
	r = cmd(s, "ZRANGE tf:delayed 0 -1 WITHSCORES");
	assert_int_equal(r->elements, 4);
	assert_string_equal(r->element[0]->str, "default\ntask-t1.1");
	assert_string_equal(r->element[1]->str, "1700000001000");
	assert_string_equal(r->element[2]->str, "browser\ntask-t1.2");
	freeReplyObject(r);
	r = cmd(s, "XRANGE tf:dead - +");
	assert_int_equal(r->elements, 1);
	assert_string_equal(r->element[0]->element[1]->element[0]->str, "m");
	assert_string_equal(r->element[0]->element[1]->element[1]->str,
			    "poison-task");
	freeReplyObject(r);
	free(id);
}

static void test_complete_max_failures(void **state)
{
	struct server *s = *state;
	struct followup fu = {"1", "default", "task-t1.1"};
	redisReply *r, *msg;
	redisContext *sub;
	struct redis_url u;
	char err[256];
	char *id;

	need(state);
	memset(&u, 0, sizeof(u));
	u.kind = REDIS_URL_UNIX;
	u.path = s->sock;
	sub = redisconn_open(&u, 2000, err, sizeof(err));
	assert_non_null(sub);
	r = redisCommand(sub, "SUBSCRIBE tf:control");
	freeReplyObject(r);

	run_hash(s, "running", 5, 3);
	id = deliver(s, "tf:q:default", "w1", "task");
	assert_int_equal(
	    complete(s, id, "t1", "w1", "rec1", "4", "2", "", NULL, 0), 1);
	free(id);
	r = cmd(s, "HGET tf:run:r1 status");
	assert_string_equal(r->str, "running");
	freeReplyObject(r);
	/* The third failure stops the run: recorded, but no follow-up. */
	id = deliver(s, "tf:q:default", "w1", "task");
	assert_int_equal(
	    complete(s, id, "t2", "w1", "rec2", "1", "1", "", &fu, 1), 1);
	free(id);
	r = cmd(s, "HMGET tf:run:r1 status reason tasks_total");
	assert_string_equal(r->element[0]->str, "cancelled");
	assert_non_null(strstr(r->element[1]->str, "max failures"));
	assert_string_equal(r->element[2]->str, "5");
	freeReplyObject(r);
	assert_int_equal(cmd_int(s, "EXISTS tf:delayed"), 0);
	r = cmd(s, "XREVRANGE tf:run:r1:results + - COUNT 1");
	assert_string_equal(r->element[0]->element[1]->element[0]->str, "end");
	freeReplyObject(r);
	assert_int_equal(redisGetReply(sub, (void **)&msg), REDIS_OK);
	assert_int_equal(msg->type, REDIS_REPLY_ARRAY);
	assert_string_equal(msg->element[2]->str, "cancel r1");
	freeReplyObject(msg);
	redisFree(sub);
	/* Anything after that is acked away. */
	id = deliver(s, "tf:q:default", "w1", "task");
	assert_int_equal(
	    complete(s, id, "t3", "w1", "rec3", "1", "1", "", NULL, 0), 2);
	assert_int_equal(cmd_int(s, "XLEN tf:q:default"), 0);
	free(id);
}

/* ---- phases ---- */

/* A phase of run r1 for phase_hash: name, required, parallel, timeout. */
struct phase_spec {
	const char *name;
	int required;
	int parallel;
	unsigned timeout_s;
};

/* Run r1 as run_create leaves it: phase 0 running with `now` tasks
 * queued, the others pending. */
static void phase_hash(struct server *s, const struct phase_spec *ph, int n,
		       int now)
{
	int i;

	freeReplyObject(cmd(s,
			    "HSET tf:run:r1 status running tasks_total %d "
			    "tasks_done 0 tests_done 0 tests_failed 0 "
			    "max_failures 0 queues default,browser "
			    "phase_count %d phase_cur 0",
			    now, n));
	for (i = 0; i < n; i++)
		freeReplyObject(cmd(
		    s,
		    "HSET tf:run:r1 phidx:%s %d ph:%d:name %s ph:%d:required "
		    "%d ph:%d:parallel %d ph:%d:timeout %u ph:%d:tasks %d "
		    "ph:%d:done 0 ph:%d:bad 0 ph:%d:status %s",
		    ph[i].name, i, i, ph[i].name, i, ph[i].required, i,
		    ph[i].parallel, i, ph[i].timeout_s, i, i == 0 ? now : 0, i,
		    i, i, i == 0 ? "running" : "pending"));
}

/* A task message (msgpack) of run r1; caller frees. */
static char *task_msg(const char *tid, const char *phase, size_t *len)
{
	struct task t;
	char *tests[1] = {"tests/test_a.py::test_x"};
	char *out = NULL;

	memset(&t, 0, sizeof(t));
	t.run = "r1";
	t.id = (char *)tid;
	t.attempt = 1;
	t.suite = "unit";
	t.phase = (char *)phase;
	t.runner = "pytest";
	t.queue = "default";
	t.tests = tests;
	t.ntests = 1;
	proto_encode_task(&t, &out, len);
	return out;
}

/* Pushes a waiting task of phase i ("<queue>\n<task>"). */
static void phase_push(struct server *s, int i, const char *queue,
		       const char *tid, const char *phase)
{
	size_t len, ql = strlen(queue);
	char *m = task_msg(tid, phase, &len);
	char *member = malloc(ql + 1 + len);

	memcpy(member, queue, ql);
	member[ql] = '\n';
	memcpy(member + ql + 1, m, len);
	freeReplyObject(
	    cmd(s, "RPUSH tf:run:r1:phase:%d %b", i, member, ql + 1 + len));
	free(member);
	free(m);
}

/* A result record (msgpack) of task tid in phase: one test with outcome,
 * a --retries rerun when rerun is set. Caller frees. */
static char *record_msg(const char *tid, const char *phase,
			enum outcome outcome, int rerun, size_t *len)
{
	struct task_result r;
	struct test_result t;
	char *out = NULL;

	memset(&r, 0, sizeof(r));
	memset(&t, 0, sizeof(t));
	t.id = "tests/test_a.py::test_x";
	t.outcome = outcome;
	r.run = "r1";
	r.task = (char *)tid;
	r.attempt = rerun ? 2 : 1;
	r.worker = "w1/slot-1";
	r.suite = "unit";
	r.phase = (char *)phase;
	r.status = TASK_COMPLETED;
	r.tests = &t;
	r.ntests = 1;
	r.rerun = rerun;
	proto_encode_task_result(&r, &out, len);
	return out;
}

/* Completes the entry of task tid (delivered to w1 on queue q) with a
 * one-test record of phase: its outcome, counted as failed unless rerun. */
static long long phase_complete(struct server *s, const char *q,
				const char *entry, const char *tid,
				const char *phase, enum outcome outcome,
				int rerun, const struct followup *fu, int nfu)
{
	size_t len;
	char *rec = record_msg(tid, phase, outcome, rerun, &len);
	int bad = outcome == OUTCOME_FAILED || outcome == OUTCOME_ERROR;
	long long v;

	v = complete_on(s, q, entry, tid, "w1", rec, len, rerun ? "0" : "1",
			bad && !rerun ? "1" : "0", "", fu, nfu);
	free(rec);
	return v;
}

/* Reads the next undelivered entry of q for w1: its id (caller frees)
 * and, when tid is not NULL, that its task id is tid. NULL when none. */
static char *read_next(struct server *s, const char *q, const char *tid)
{
	redisReply *r, *e;
	struct task t;
	char err[256], *id = NULL;

	freeReplyObject(cmd(s, "XGROUP CREATE %s workers 0 MKSTREAM", q));
	r = cmd(s, "XREADGROUP GROUP workers w1 COUNT 1 STREAMS %s >", q);
	if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
		freeReplyObject(r);
		return NULL;
	}
	e = r->element[0]->element[1]->element[0];
	id = strdup(e->element[0]->str);
	if (tid != NULL) {
		assert_int_equal(
		    proto_decode_task(e->element[1]->element[1]->str,
				      e->element[1]->element[1]->len, &t, err,
				      sizeof(err)),
		    0);
		assert_string_equal(t.id, tid);
		task_release(&t);
	}
	freeReplyObject(r);
	return id;
}

static void assert_field(struct server *s, const char *field, const char *want)
{
	redisReply *r = cmd(s, "HGET tf:run:r1 %s", field);

	if (want == NULL) {
		assert_int_equal(r->type, REDIS_REPLY_NIL);
	} else {
		if (r->type != REDIS_REPLY_STRING)
			fail_msg("%s: not set", field);
		if (strcmp(r->str, want) != 0)
			fail_msg("%s: %s, expected %s", field, r->str, want);
	}
	freeReplyObject(r);
}

/* The last entry of the results stream is "end" (1) or not (0). */
static int ended(struct server *s)
{
	redisReply *r = cmd(s, "XREVRANGE tf:run:r1:results + - COUNT 1");
	int v = r->elements == 1 &&
		strcmp(r->element[0]->element[1]->element[0]->str, "end") == 0;

	freeReplyObject(r);
	return v;
}

static void test_phase_advances_in_order(void **state)
{
	struct server *s = *state;
	const struct phase_spec ph[3] = {
	    {"lint", 1, 1, 0}, {"unit", 1, 1, 0}, {"e2e", 1, 1, 0}};
	char *a, *b, *c;

	need(state);
	phase_hash(s, ph, 3, 1);
	phase_push(s, 1, "default", "t00002", "unit");
	phase_push(s, 1, "browser", "t00003", "unit");
	phase_push(s, 2, "default", "t00004", "e2e");
	a = deliver(s, "tf:q:default", "w1", "t00001");
	assert_int_equal(phase_complete(s, "tf:q:default", a, "t00001", "lint",
					OUTCOME_PASSED, 0, NULL, 0),
			 1);
	free(a);
	/* lint passed: unit starts, both its tasks queued at once, on
	 * their own queues. */
	assert_field(s, "ph:0:status", "passed");
	assert_field(s, "ph:1:status", "running");
	assert_field(s, "phase_cur", "1");
	assert_field(s, "ph:1:tasks", "2");
	assert_field(s, "tasks_total", "3");
	assert_field(s, "status", "running");
	assert_int_equal(cmd_int(s, "EXISTS tf:run:r1:phase:1"), 0);
	assert_int_equal(cmd_int(s, "LLEN tf:run:r1:phase:2"), 1);
	assert_int_equal(cmd_int(s, "EXISTS tf:run:r1:ph"), 0);
	b = read_next(s, "tf:q:default", "t00002");
	c = read_next(s, "tf:q:browser", "t00003");
	assert_non_null(b);
	assert_non_null(c);
	assert_int_equal(phase_complete(s, "tf:q:default", b, "t00002", "unit",
					OUTCOME_PASSED, 0, NULL, 0),
			 1);
	/* Half of unit: e2e waits. */
	assert_field(s, "ph:1:status", "running");
	assert_int_equal(cmd_int(s, "XLEN tf:q:default"), 0);
	assert_int_equal(phase_complete(s, "tf:q:browser", c, "t00003", "unit",
					OUTCOME_PASSED, 0, NULL, 0),
			 1);
	free(b);
	free(c);
	assert_field(s, "ph:1:status", "passed");
	assert_field(s, "ph:2:status", "running");
	assert_int_equal(ended(s), 0);
	a = read_next(s, "tf:q:default", "t00004");
	assert_non_null(a);
	assert_int_equal(phase_complete(s, "tf:q:default", a, "t00004", "e2e",
					OUTCOME_PASSED, 0, NULL, 0),
			 1);
	free(a);
	/* The last phase ends the run. */
	assert_field(s, "ph:2:status", "passed");
	assert_field(s, "status", "done");
	assert_field(s, "tasks_total", "4");
	assert_field(s, "tasks_done", "4");
	assert_int_equal(ended(s), 1);
	/* One "end" only, after the four records. */
	assert_int_equal(cmd_int(s, "XLEN tf:run:r1:results"), 5);
}

static void test_phase_required_failure_skips_the_rest(void **state)
{
	struct server *s = *state;
	const struct phase_spec ph[3] = {
	    {"smoke", 1, 1, 0}, {"unit", 1, 1, 0}, {"e2e", 0, 1, 0}};
	char *a, *b;

	need(state);
	phase_hash(s, ph, 3, 2);
	phase_push(s, 1, "default", "t00003", "unit");
	phase_push(s, 2, "default", "t00004", "e2e");
	a = deliver(s, "tf:q:default", "w1", "t00001");
	b = deliver(s, "tf:q:default", "w1", "t00002");
	assert_int_equal(phase_complete(s, "tf:q:default", a, "t00001", "smoke",
					OUTCOME_FAILED, 0, NULL, 0),
			 1);
	/* The phase waits for its other task before it is judged. */
	assert_field(s, "ph:0:status", "running");
	assert_field(s, "ph:0:bad", "1");
	assert_int_equal(phase_complete(s, "tf:q:default", b, "t00002", "smoke",
					OUTCOME_PASSED, 0, NULL, 0),
			 1);
	free(a);
	free(b);
	assert_field(s, "ph:0:status", "failed");
	assert_field(s, "ph:1:status", "skipped");
	assert_field(s, "ph:2:status", "skipped");
	assert_field(s, "status", "done");
	assert_field(s, "tasks_total", "2");
	assert_int_equal(ended(s), 1);
	/* Nothing of the skipped phases was queued or kept. */
	assert_int_equal(cmd_int(s, "XLEN tf:q:default"), 0);
	assert_int_equal(cmd_int(s, "EXISTS tf:run:r1:phase:1"), 0);
	assert_int_equal(cmd_int(s, "EXISTS tf:run:r1:phase:2"), 0);
}

static void test_phase_optional_failure_goes_on(void **state)
{
	struct server *s = *state;
	const struct phase_spec ph[2] = {{"lint", 0, 1, 0}, {"unit", 1, 1, 0}};
	char *a;

	need(state);
	phase_hash(s, ph, 2, 1);
	phase_push(s, 1, "default", "t00002", "unit");
	a = deliver(s, "tf:q:default", "w1", "t00001");
	assert_int_equal(phase_complete(s, "tf:q:default", a, "t00001", "lint",
					OUTCOME_ERROR, 0, NULL, 0),
			 1);
	free(a);
	assert_field(s, "ph:0:status", "failed");
	assert_field(s, "ph:1:status", "running");
	assert_field(s, "status", "running");
	a = read_next(s, "tf:q:default", "t00002");
	assert_non_null(a);
	assert_int_equal(phase_complete(s, "tf:q:default", a, "t00002", "unit",
					OUTCOME_PASSED, 0, NULL, 0),
			 1);
	free(a);
	assert_field(s, "ph:1:status", "passed");
	assert_field(s, "status", "done");
	assert_int_equal(ended(s), 1);
}

static void test_phase_sequential_stops_at_first_failure(void **state)
{
	struct server *s = *state;
	const struct phase_spec ph[2] = {{"db", 1, 0, 0}, {"unit", 1, 1, 0}};
	char *a;

	need(state);
	phase_hash(s, ph, 2, 1);
	phase_push(s, 0, "default", "t00002", "db");
	phase_push(s, 0, "default", "t00003", "db");
	phase_push(s, 0, "default", "t00004", "db");
	phase_push(s, 1, "default", "t00005", "unit");
	a = deliver(s, "tf:q:default", "w1", "t00001");
	assert_int_equal(phase_complete(s, "tf:q:default", a, "t00001", "db",
					OUTCOME_PASSED, 0, NULL, 0),
			 1);
	free(a);
	/* One at a time: the next task only now, in list order. */
	assert_field(s, "ph:0:status", "running");
	assert_field(s, "ph:0:tasks", "2");
	assert_field(s, "tasks_total", "2");
	assert_int_equal(cmd_int(s, "LLEN tf:run:r1:phase:0"), 2);
	a = read_next(s, "tf:q:default", "t00002");
	assert_non_null(a);
	assert_null(read_next(s, "tf:q:default", NULL));
	assert_int_equal(phase_complete(s, "tf:q:default", a, "t00002", "db",
					OUTCOME_FAILED, 0, NULL, 0),
			 1);
	free(a);
	/* The first failure ends the phase: t00003 and t00004 never run,
	 * and as it is required the run ends. */
	assert_field(s, "ph:0:status", "failed");
	assert_field(s, "ph:1:status", "skipped");
	assert_field(s, "status", "done");
	assert_field(s, "tasks_total", "2");
	assert_int_equal(cmd_int(s, "EXISTS tf:run:r1:phase:0"), 0);
	assert_null(read_next(s, "tf:q:default", NULL));
	assert_int_equal(ended(s), 1);
}

static void test_phase_followups_and_flaky_reruns(void **state)
{
	struct server *s = *state;
	const struct phase_spec ph[2] = {{"unit", 1, 0, 0}, {"e2e", 1, 1, 0}};
	struct followup fu = {"1", "default", "rerun-of-t00001"};
	char *a, *b;

	need(state);
	phase_hash(s, ph, 2, 1);
	phase_push(s, 0, "default", "t00002", "unit");
	phase_push(s, 1, "default", "t00003", "e2e");
	a = deliver(s, "tf:q:default", "w1", "t00001");
	/* Failed, with a --retries rerun to come: the phase waits for it,
	 * and its next task does not start. */
	assert_int_equal(phase_complete(s, "tf:q:default", a, "t00001", "unit",
					OUTCOME_FAILED, 0, &fu, 1),
			 1);
	free(a);
	assert_field(s, "ph:0:tasks", "2");
	assert_field(s, "ph:0:done", "1");
	assert_field(s, "ph:0:bad", "1");
	assert_field(s, "ph:0:status", "running");
	assert_int_equal(cmd_int(s, "LLEN tf:run:r1:phase:0"), 1);
	/* The rerun passes (flaky): the failure no longer counts, and the
	 * sequential phase goes on with its next task. */
	b = deliver(s, "tf:q:default", "w1", "rerun");
	assert_int_equal(phase_complete(s, "tf:q:default", b, "t00001.1",
					"unit", OUTCOME_PASSED, 1, NULL, 0),
			 1);
	free(b);
	assert_field(s, "ph:0:bad", "0");
	assert_field(s, "ph:0:status", "running");
	assert_field(s, "ph:0:tasks", "3");
	a = read_next(s, "tf:q:default", "t00002");
	assert_non_null(a);
	assert_int_equal(phase_complete(s, "tf:q:default", a, "t00002", "unit",
					OUTCOME_PASSED, 0, NULL, 0),
			 1);
	free(a);
	assert_field(s, "ph:0:status", "passed");
	assert_field(s, "ph:1:status", "running");
	/* A record naming no known phase counts for the phase running. */
	a = read_next(s, "tf:q:default", "t00003");
	assert_non_null(a);
	assert_int_equal(phase_complete(s, "tf:q:default", a, "t00003",
					"nosuchphase", OUTCOME_PASSED, 0, NULL,
					0),
			 1);
	free(a);
	assert_field(s, "ph:1:status", "passed");
	assert_field(s, "status", "done");
	assert_field(s, "tasks_done", "4");
	assert_field(s, "tasks_total", "4");
}

static long long promote(struct server *s, const char *now, const char *max);

static void test_phase_timeout(void **state)
{
	struct server *s = *state;
	const struct phase_spec ph[2] = {{"slow", 1, 1, 1}, {"unit", 1, 1, 0}};
	redisReply *r, *msg;
	redisContext *sub;
	struct redis_url u;
	size_t len;
	char err[256], *m, *a, *other;

	need(state);
	memset(&u, 0, sizeof(u));
	u.kind = REDIS_URL_UNIX;
	u.path = s->sock;
	sub = redisconn_open(&u, 2000, err, sizeof(err));
	assert_non_null(sub);
	freeReplyObject(redisCommand(sub, "SUBSCRIBE tf:control"));
	phase_hash(s, ph, 2, 3);
	phase_push(s, 1, "default", "t00004", "unit");
	/* Three tasks queued: t00001 runs, t00002 is not read yet, and an
	 * entry of another run sits behind them. */
	freeReplyObject(
	    cmd(s, "XGROUP CREATE tf:q:default workers 0 MKSTREAM"));
	m = task_msg("t00001", "slow", &len);
	freeReplyObject(cmd(s, "XADD tf:q:default * m %b", m, len));
	free(m);
	a = read_next(s, "tf:q:default", "t00001");
	m = task_msg("t00002", "slow", &len);
	freeReplyObject(cmd(s, "XADD tf:q:default * m %b", m, len));
	free(m);
	freeReplyObject(cmd(s, "XADD tf:q:default * m other-run"));
	/* Not due yet: nothing happens. */
	freeReplyObject(cmd(s, "HSET tf:run:r1 ph:0:deadline 9999999999"));
	freeReplyObject(cmd(s, "ZADD tf:phase_deadlines 9999999999000 r1"));
	assert_int_equal(promote(s, "1", "100"), 0);
	assert_field(s, "ph:0:status", "running");
	/* Due (by Redis's clock, not the caller's "now"). */
	freeReplyObject(cmd(s, "HSET tf:run:r1 ph:0:deadline 1"));
	freeReplyObject(cmd(s, "ZADD tf:phase_deadlines 1000 r1"));
	assert_int_equal(promote(s, "1", "100"), 0);
	assert_field(s, "ph:0:status", "timeout");
	assert_field(s, "ph:1:status", "skipped");
	assert_field(s, "status", "done");
	/* Only what was recorded counts now. */
	assert_field(s, "tasks_total", "0");
	assert_int_equal(ended(s), 1);
	assert_int_equal(cmd_int(s, "ZCARD tf:phase_deadlines"), 0);
	/* The unread task of the phase is gone; the running one and the
	 * other run's entry stay. */
	r = cmd(s, "XRANGE tf:q:default - +");
	assert_int_equal(r->elements, 2);
	assert_string_equal(r->element[0]->element[0]->str, a);
	assert_string_equal(r->element[1]->element[1]->element[1]->str,
			    "other-run");
	other = strdup(r->element[1]->element[0]->str);
	freeReplyObject(r);
	/* Workers are told to stop the rest of the run. */
	assert_int_equal(redisGetReply(sub, (void **)&msg), REDIS_OK);
	assert_string_equal(msg->element[2]->str, "cancel r1");
	freeReplyObject(msg);
	redisFree(sub);
	/* The running task's late record is acked away, not recorded. */
	assert_int_equal(phase_complete(s, "tf:q:default", a, "t00001", "slow",
					OUTCOME_PASSED, 0, NULL, 0),
			 2);
	assert_int_equal(cmd_int(s, "XLEN tf:run:r1:results"), 1);
	assert_field(s, "tasks_done", "0");
	free(a);
	free(other);
}

static void test_phase_timeout_optional_goes_on(void **state)
{
	struct server *s = *state;
	const struct phase_spec ph[2] = {{"slow", 0, 1, 5}, {"unit", 1, 1, 0}};
	size_t len;
	char *m, *a, *b;

	need(state);
	phase_hash(s, ph, 2, 1);
	phase_push(s, 1, "default", "t00002", "unit");
	m = task_msg("t00001", "slow", &len);
	freeReplyObject(
	    cmd(s, "XGROUP CREATE tf:q:default workers 0 MKSTREAM"));
	freeReplyObject(cmd(s, "XADD tf:q:default * m %b", m, len));
	free(m);
	a = read_next(s, "tf:q:default", "t00001");
	freeReplyObject(cmd(s, "HSET tf:run:r1 ph:0:deadline 1"));
	freeReplyObject(cmd(s, "ZADD tf:phase_deadlines 1000 r1"));
	assert_int_equal(promote(s, "1", "100"), 0);
	assert_field(s, "ph:0:status", "timeout");
	assert_field(s, "ph:1:status", "running");
	assert_field(s, "status", "running");
	assert_field(s, "tasks_total", "1");
	/* The old phase's record no longer counts; the new one's does. */
	assert_int_equal(phase_complete(s, "tf:q:default", a, "t00001", "slow",
					OUTCOME_FAILED, 0, NULL, 0),
			 2);
	assert_field(s, "tests_failed", "0");
	b = read_next(s, "tf:q:default", "t00002");
	assert_non_null(b);
	assert_int_equal(phase_complete(s, "tf:q:default", b, "t00002", "unit",
					OUTCOME_PASSED, 0, NULL, 0),
			 1);
	assert_field(s, "status", "done");
	assert_field(s, "tasks_done", "1");
	assert_int_equal(ended(s), 1);
	free(a);
	free(b);
}

static void test_phase_deadline_set_when_phase_starts(void **state)
{
	struct server *s = *state;
	const struct phase_spec ph[2] = {{"a", 1, 1, 0}, {"b", 1, 1, 60}};
	redisReply *r, *t;
	double deadline, now;
	char *e;

	need(state);
	phase_hash(s, ph, 2, 1);
	phase_push(s, 1, "default", "t00002", "b");
	e = deliver(s, "tf:q:default", "w1", "t00001");
	assert_int_equal(phase_complete(s, "tf:q:default", e, "t00001", "a",
					OUTCOME_PASSED, 0, NULL, 0),
			 1);
	free(e);
	r = cmd(s, "HGET tf:run:r1 ph:1:deadline");
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	deadline = strtod(r->str, NULL);
	freeReplyObject(r);
	t = cmd(s, "TIME");
	now = strtod(t->element[0]->str, NULL);
	freeReplyObject(t);
	assert_true(deadline > now + 55 && deadline < now + 65);
	assert_int_equal(cmd_int(s, "ZCARD tf:phase_deadlines"), 1);
	/* A cancel drops the waiting tasks and the deadline. */
	phase_push(s, 1, "default", "t00009", "b");
	r = redisconn_script(s->c, script_cancel, 2, 6,
			     (const char *[]){"tf:run:r1", "tf:run:r1:results",
					      "1.5", "cancelled", "tf:control",
					      "r1"},
			     NULL);
	assert_int_equal(r->integer, 1);
	freeReplyObject(r);
	assert_int_equal(cmd_int(s, "ZCARD tf:phase_deadlines"), 0);
	assert_int_equal(cmd_int(s, "EXISTS tf:run:r1:phase:1"), 0);
	assert_field(s, "ph:1:status", "cancelled");
}

static redisReply *renew(struct server *s, const char *consumer,
			 const char *id1, const char *id2)
{
	const char *argv[5] = {"tf:q:default", "workers", consumer, id1, id2};
	redisReply *r;

	r = redisconn_script(s->c, script_renew, 1, id2 ? 5 : 4, argv, NULL);
	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_ARRAY);
	return r;
}

static void test_renew(void **state)
{
	struct server *s = *state;
	redisReply *r, *p;
	char *a, *b;

	need(state);
	a = deliver(s, "tf:q:default", "w1", "a");
	b = deliver(s, "tf:q:default", "w1", "b");
	usleep(120 * 1000);
	/* b is taken over by a reaper. */
	freeReplyObject(cmd(s, "XCLAIM tf:q:default workers reaper 0 %s", b));
	r = renew(s, "w1", a, b);
	assert_int_equal(r->elements, 1);
	assert_string_equal(r->element[0]->str, b);
	freeReplyObject(r);
	/* a's idle time was reset and its delivery count left alone. */
	p = cmd(s, "XPENDING tf:q:default workers %s %s 1", a, a);
	assert_string_equal(p->element[0]->element[1]->str, "w1");
	assert_true(p->element[0]->element[2]->integer < 100);
	assert_int_equal(p->element[0]->element[3]->integer, 1);
	freeReplyObject(p);
	/* An acked entry is lost too. */
	freeReplyObject(cmd(s, "XACK tf:q:default workers %s", a));
	r = renew(s, "w1", a, NULL);
	assert_int_equal(r->elements, 1);
	freeReplyObject(r);
	free(a);
	free(b);
}

static long long promote(struct server *s, const char *now, const char *max)
{
	const char *argv[4] = {"tf:delayed", now, max, "tf"};
	redisReply *r;
	long long v;

	r = redisconn_script(s->c, script_promote, 1, 4, argv, NULL);
	assert_non_null(r);
	if (r->type != REDIS_REPLY_INTEGER)
		fail_msg("promote: %s",
			 r->type == REDIS_REPLY_ERROR ? r->str : "?");
	v = r->integer;
	freeReplyObject(r);
	return v;
}

static void test_promote(void **state)
{
	struct server *s = *state;
	redisReply *r;

	need(state);
	freeReplyObject(cmd(s, "ZADD tf:delayed 100 %b 200 %b 300 %b 400 %s",
			    "default\nt1", (size_t)10, "browser\nt\n2",
			    (size_t)11, "default\nt3", (size_t)10, "junk"));
	/* Only what is due, at most max at a time. */
	assert_int_equal(promote(s, "50", "100"), 0);
	assert_int_equal(promote(s, "250", "1"), 1);
	assert_int_equal(promote(s, "250", "100"), 1);
	assert_int_equal(cmd_int(s, "ZCARD tf:delayed"), 2);
	r = cmd(s, "XRANGE tf:q:default - +");
	assert_int_equal(r->elements, 1);
	assert_string_equal(r->element[0]->element[1]->element[1]->str, "t1");
	freeReplyObject(r);
	/* The blob keeps its own newlines. */
	r = cmd(s, "XRANGE tf:q:browser - +");
	assert_int_equal(r->elements, 1);
	assert_int_equal(r->element[0]->element[1]->element[1]->len, 3);
	assert_memory_equal(r->element[0]->element[1]->element[1]->str, "t\n2",
			    3);
	freeReplyObject(r);
	/* A member that cannot be routed is removed without moving. */
	assert_int_equal(promote(s, "1000", "100"), 1);
	assert_int_equal(cmd_int(s, "ZCARD tf:delayed"), 0);
	assert_int_equal(cmd_int(s, "XLEN tf:q:default"), 2);
}

static long long cancel(struct server *s)
{
	const char *argv[6] = {"tf:run:r1",  "tf:run:r1:results",
			       "123.5",	     "cancelled by user",
			       "tf:control", "r1"};
	redisReply *r;
	long long v;

	r = redisconn_script(s->c, script_cancel, 2, 6, argv, NULL);
	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_INTEGER);
	v = r->integer;
	freeReplyObject(r);
	return v;
}

static void test_cancel(void **state)
{
	struct server *s = *state;
	redisReply *r, *msg;
	redisContext *sub;
	struct redis_url u;
	char err[256];

	need(state);
	memset(&u, 0, sizeof(u));
	u.kind = REDIS_URL_UNIX;
	u.path = s->sock;
	sub = redisconn_open(&u, 2000, err, sizeof(err));
	assert_non_null(sub);
	freeReplyObject(redisCommand(sub, "SUBSCRIBE tf:control"));
	run_hash(s, "running", 5, 0);
	assert_int_equal(cancel(s), 1);
	r = cmd(s, "HMGET tf:run:r1 status reason finished_at");
	assert_string_equal(r->element[0]->str, "cancelled");
	assert_string_equal(r->element[1]->str, "cancelled by user");
	assert_string_equal(r->element[2]->str, "123.5");
	freeReplyObject(r);
	r = cmd(s, "XRANGE tf:run:r1:results - +");
	assert_int_equal(r->elements, 1);
	assert_string_equal(r->element[0]->element[1]->element[0]->str, "end");
	assert_string_equal(r->element[0]->element[1]->element[1]->str,
			    "123.5");
	assert_string_equal(r->element[0]->element[1]->element[3]->str,
			    "cancelled by user");
	freeReplyObject(r);
	assert_int_equal(redisGetReply(sub, (void **)&msg), REDIS_OK);
	assert_string_equal(msg->element[1]->str, "tf:control");
	assert_string_equal(msg->element[2]->str, "cancel r1");
	freeReplyObject(msg);
	redisFree(sub);
	/* Twice, or on a run that ended: 0 and nothing more. */
	assert_int_equal(cancel(s), 0);
	assert_int_equal(cmd_int(s, "XLEN tf:run:r1:results"), 1);
	freeReplyObject(cmd(s, "HSET tf:run:r1 status done"));
	assert_int_equal(cancel(s), 0);
	freeReplyObject(cmd(s, "DEL tf:run:r1"));
	assert_int_equal(cancel(s), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_complete_records_once),
	    cmocka_unit_test(test_complete_fenced),
	    cmocka_unit_test(test_complete_cancelled),
	    cmocka_unit_test(test_complete_followups_and_dead),
	    cmocka_unit_test(test_complete_max_failures),
	    cmocka_unit_test(test_phase_advances_in_order),
	    cmocka_unit_test(test_phase_required_failure_skips_the_rest),
	    cmocka_unit_test(test_phase_optional_failure_goes_on),
	    cmocka_unit_test(test_phase_sequential_stops_at_first_failure),
	    cmocka_unit_test(test_phase_followups_and_flaky_reruns),
	    cmocka_unit_test(test_phase_timeout),
	    cmocka_unit_test(test_phase_timeout_optional_goes_on),
	    cmocka_unit_test(test_phase_deadline_set_when_phase_starts),
	    cmocka_unit_test(test_renew),
	    cmocka_unit_test(test_promote),
	    cmocka_unit_test(test_cancel),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
