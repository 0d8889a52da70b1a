/* job.c -- one task attempt in one slot (see job.h). */
#include "job.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "artifacts.h"
#include "capture.h"
#include "junit.h"
#include "child.h"
#include "utf8.h"
#include "warm.h"
#include "xmalloc.h"

extern char **environ;

#define JOB_READ_CHUNK (64u << 10)
#define JOB_READS_PER_WAKE 16 /* then let other events run */
#define JOB_MSG_MAX 1000
#define JOB_UPLOAD_OUT_MAX (4u << 20)

struct job {
	struct event_base *base;
	const struct job_conf *conf;
	struct job_hooks hooks;
	void *arg;
	struct task task;
	struct slotdir *dir; /* conf->dir, or own */
	struct slotdir own;
	char *tmpdir; /* the task's TMPDIR (a copy of dir's path) */
	char *junit_path;
	pid_t pid; /* runner (and group leader) until reaped */
	int reaped;
	int wstatus;
	int out_fd; /* read ends, -1 once closed */
	int ev_fd;
	struct event *out_ev;
	struct event *ev_ev;
	struct event *timeout_ev;
	struct event *kill_ev;
	struct event *linger_ev;
	struct event *done_ev;
	unsigned timeout_s;
	struct capture cap;
	struct events events;
	double started_at;  /* unix time */
	struct timespec t0; /* monotonic, at spawn */
	struct timespec t1; /* monotonic, at reap */
	int timed_out;
	int cancelled;
	char *error; /* why the task could not start, or NULL */
	int done;
	struct task_result result;
	/* Artifacts (task.keep_artifacts): listed once the runner ended;
	 * while the uploader runs, pid and the output pipe are its. */
	struct artifacts arts;
	int uploading;
	int upload_timed_out;
	char *upload_out; /* its output, capped at JOB_UPLOAD_OUT_MAX */
	size_t upload_len;
};

static double now_unix(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double mono_diff(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) +
	       (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void job_warn(struct job *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void job_warn(struct job *j, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	if (!j->hooks.warn)
		return;
	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	j->hooks.warn(j->arg, j, msg);
	free(msg);
}

static void close_pipe(int *fd, struct event **ev)
{
	if (*ev) {
		event_free(*ev);
		*ev = NULL;
	}
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

static void stop_timers(struct job *j)
{
	if (j->timeout_ev)
		event_del(j->timeout_ev);
	if (j->kill_ev)
		event_del(j->kill_ev);
	if (j->linger_ev)
		event_del(j->linger_ev);
}

/* A copy of s as one line of valid UTF-8, capped. */
static char *one_line(const char *s)
{
	size_t len, i;
	char *out = utf8_sanitize(s, strlen(s), &len);

	for (i = 0; i < len; i++) {
		if (out[i] == '\n' || out[i] == '\r' || out[i] == '\t')
			out[i] = ' ';
	}
	len = utf8_prefix(out, len, JOB_MSG_MAX);
	out[len] = '\0';
	return out;
}

static void set_message(struct job *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_message(struct job *j, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	free(j->result.message);
	j->result.message = one_line(msg);
	free(msg);
}

/* " while running <id>", or "". Caller frees. */
static char *while_running(const struct job *j)
{
	const char *r = events_running(&j->events);

	return r ? xasprintf(" while running %s", r) : xstrdup("");
}

/* pytest's section banners say nothing about why it failed. */
static const char *const pytest_banners[] = {"---", "===", NULL};

static const char *pytest_exit_meaning(int code)
{
	switch (code) {
	case 2:
		return "was interrupted";
	case 3:
		return "hit an internal error";
	case 4:
		return "usage error";
	case 5:
		return "collected no tests";
	default:
		return "exited";
	}
}

/* Results from the JUnit file, when the runner wrote one. */
static void results_from_junit(struct job *j, struct task_result *r)
{
	struct junit_case *cases = NULL;
	size_t ncases = 0;
	char err[512];

	if (access(j->junit_path, F_OK) != 0)
		return;
	if (junit_parse_file(j->junit_path, &cases, &ncases, err, sizeof(err)) <
	    0) {
		job_warn(j, "task %s: ignoring its JUnit file: %s", j->task.id,
			 err);
		/* The worker's fault, not the runner's: the task says so. */
		if (junit_load(err, sizeof(err)) < 0)
			set_message(j, "%s%s%s", r->message ? r->message : "",
				    r->message ? "; " : "", err);
		return;
	}
	r->tests =
	    runner_junit_results(j->task.runner, cases, ncases, j->task.tests,
				 j->task.ntests, &r->ntests);
	junit_cases_free(cases, ncases);
}

/* The command runner without JUnit: one result per requested test (or one
 * named after the suite) from the exit status. */
static void results_from_exit(struct job *j, struct task_result *r)
{
	size_t i, n = j->task.ntests ? j->task.ntests : 1;
	int code = WEXITSTATUS(j->wstatus);

	r->tests = xcalloc(n, sizeof(*r->tests));
	r->ntests = n;
	for (i = 0; i < n; i++) {
		struct test_result *t = &r->tests[i];

		t->id =
		    xstrdup(j->task.ntests ? j->task.tests[i] : j->task.suite);
		t->outcome = code == 0 ? OUTCOME_PASSED : OUTCOME_FAILED;
		t->duration_s = r->duration_s / (double)n;
		if (code != 0)
			t->message =
			    xasprintf("command exited with status %d", code);
	}
}

static void build_result(struct job *j)
{
	struct task_result *r = &j->result;
	const struct task *t = &j->task;
	int is_pytest = t->runner && strcmp(t->runner, "pytest") == 0;
	int is_command = t->runner && strcmp(t->runner, "command") == 0;
	const char *label = is_command ? "command" : t->runner;
	char *wr, *tail = NULL;
	int code;

	r->run = xstrdup(t->run);
	r->task = xstrdup(t->id);
	r->attempt = t->attempt;
	r->worker = xstrdup(j->conf->worker);
	r->suite = xstrdup(t->suite);
	r->phase = xstrdup(t->phase);
	r->exit_code = -1;
	if (j->error) {
		r->status = TASK_ERROR;
		r->started_at = now_unix();
		r->message = one_line(j->error);
		r->unfinished = runner_unfinished(t->tests, t->ntests, NULL, 0,
						  0, &r->nunfinished);
		return;
	}
	r->started_at = j->started_at;
	r->duration_s = mono_diff(&j->t0, &j->t1);
	if (WIFEXITED(j->wstatus)) {
		r->exit_code = WEXITSTATUS(j->wstatus);
	} else if (WIFSIGNALED(j->wstatus)) {
		r->term_signal = WTERMSIG(j->wstatus);
	}
	if (events_running(&j->events))
		r->running = xstrdup(events_running(&j->events));
	wr = while_running(j);

	if (j->cancelled) {
		r->status = TASK_CANCELLED;
		set_message(j, "cancelled by the worker%s", wr);
	} else if (j->timed_out) {
		r->status = TASK_TIMEOUT;
		set_message(j, "timed out after %u s%s", j->timeout_s, wr);
	} else if (WIFSIGNALED(j->wstatus)) {
		r->status = TASK_CRASHED;
		set_message(j, "runner killed by signal %d (%s)%s",
			    r->term_signal, strsignal(r->term_signal), wr);
	} else {
		r->status = TASK_COMPLETED;
		code = r->exit_code;
		tail = capture_tail_line(&j->cap, 3, 600,
					 is_pytest ? pytest_banners : NULL);
		if (wr[0]) {
			/* It died in the middle of a test (os._exit, a
			 * crashing extension): that is the news, not what
			 * pytest's exit status would otherwise mean. */
			set_message(j, "%s exited with status %d%s", label,
				    code, wr);
		} else if (is_pytest && code >= 2 && code <= 5) {
			/* Usage errors and empty selections are permanent;
			 * an interrupted run keeps the results it has. */
			if (code == 4 || code == 5)
				r->status = TASK_ERROR;
			set_message(j, "pytest %s (exit status %d)%s%s%s",
				    pytest_exit_meaning(code), code, wr,
				    tail[0] ? ": " : "", tail);
		} else if (code > 1 || (code != 0 && is_command) ||
			   (code != 0 && !is_pytest &&
			    j->events.finishes == 0)) {
			/* Playwright, like pytest, exits 1 when tests
			 * failed; without a single result it is news. */
			set_message(j, "%s exited with status %d%s%s%s", label,
				    code, wr, tail[0] ? ": " : "", tail);
		}
	}
	free(wr);
	free(tail);

	if (j->events.finishes > 0)
		r->tests = events_take_results(&j->events, &r->ntests);
	else
		results_from_junit(j, r);
	if (r->ntests == 0 && is_command && WIFEXITED(j->wstatus) &&
	    r->status == TASK_COMPLETED)
		results_from_exit(j, r);
	/* A command that ran to its end leaves nothing unfinished: its
	 * JUnit names need not match what the task listed. A runner that
	 * exited in the middle of a test did not run to its end: a file or
	 * class it was given counts as done only with an exact result.
	 * Playwright's ids are always exact. */
	if (!is_command || r->status != TASK_COMPLETED)
		r->unfinished = runner_unfinished(
		    t->tests, t->ntests, r->tests, r->ntests,
		    is_pytest && r->status == TASK_COMPLETED && !r->running,
		    &r->nunfinished);
	if (r->status != TASK_COMPLETED || r->exit_code != 0)
		r->output = capture_text(&j->cap, NULL);
}

/* Empties the slot's directory for its next task (removes the job's own):
 * the one place where what a task left in its TMPDIR goes. */
static void remove_tmpdir(struct job *j)
{
	char err[512];
	int rc;

	if (!j->tmpdir)
		return;
	if (j->dir == &j->own)
		rc = slotdir_release(&j->own, err, sizeof(err));
	else
		rc = slotdir_clear(j->dir, err, sizeof(err));
	if (rc < 0)
		job_warn(j, "task %s: %s", j->task.id, err);
	free(j->tmpdir);
	j->tmpdir = NULL;
}

static void on_out(evutil_socket_t fd, short what, void *arg);
static int set_nonblock(int fd);

/* The job is over: the result gets the artifacts' records. */
static void job_end(struct job *j)
{
	j->done = 1;
	stop_timers(j);
	artifacts_to_result(&j->arts, &j->result);
	remove_tmpdir(j);
	event_active(j->done_ev, 0, 0);
}

/* Lists the artifacts and starts the uploader when some must go by HTTP.
 * Returns 1 while it runs, 0 when the job can end now. */
static int start_uploads(struct job *j)
{
	const struct artifacts_conf *ac = j->conf->artifacts;
	char err[512], *dir, **argv = NULL;
	struct child_req req;
	int outp[2] = {-1, -1}, rc = 0;
	struct timeval tv;

	if (!ac || !j->task.keep_artifacts || j->error || !j->tmpdir)
		return 0;
	dir = xasprintf("%s/artifacts", j->tmpdir);
	/* Playwright's bookkeeping of its last run, not an artifact (and
	 * the same name in every task). */
	if (strcmp(j->task.runner, "playwright") == 0) {
		char *last = xasprintf("%s/.last-run.json", dir);

		unlink(last);
		free(last);
	}
	if (artifacts_collect(dir, ac, &j->arts, err, sizeof(err)) < 0) {
		job_warn(j, "task %s: artifacts: %s", j->task.id, err);
		goto out;
	}
	argv = artifacts_upload_argv(&j->arts, ac, dir, j->task.run,
				     j->task.id, j->task.attempt);
	if (!argv)
		goto out;
	if (pipe2(outp, O_CLOEXEC) < 0 || set_nonblock(outp[0]) < 0) {
		artifacts_upload_done(&j->arts, NULL, 0, strerror(errno));
		goto out;
	}
	req.argv = argv;
	req.envp = environ;
	req.cwd = NULL;
	req.out_fd = outp[1];
	req.events_fd = -1;
	if (child_spawn(&req, &j->pid, err, sizeof(err)) != 0) {
		artifacts_upload_done(&j->arts, NULL, 0, err);
		goto out;
	}
	j->uploading = 1;
	j->reaped = 0;
	j->out_fd = outp[0];
	outp[0] = -1;
	j->out_ev =
	    event_new(j->base, j->out_fd, EV_READ | EV_PERSIST, on_out, j);
	event_add(j->out_ev, NULL);
	/* The uploader bounds each try itself; this is the backstop. */
	tv.tv_sec = (time_t)j->arts.nupload * ac->upload_tries *
			(ac->upload_timeout_s + 30) +
		    30;
	tv.tv_usec = 0;
	event_add(j->timeout_ev, &tv);
	rc = 1;
out:
	if (outp[0] >= 0)
		close(outp[0]);
	if (outp[1] >= 0)
		close(outp[1]);
	artifacts_argv_free(argv);
	free(dir);
	return rc;
}

/* The uploader exited and its output is read: its lines become the
 * records of the files it had. */
static void end_uploads(struct job *j)
{
	char why[128];
	const char *failed = NULL;

	if (j->upload_timed_out) {
		failed = "upload timed out";
	} else if (WIFSIGNALED(j->wstatus)) {
		snprintf(why, sizeof(why),
			 "the uploader was killed by signal %d",
			 WTERMSIG(j->wstatus));
		failed = why;
	} else if (WIFEXITED(j->wstatus) && WEXITSTATUS(j->wstatus) != 0) {
		snprintf(why, sizeof(why), "the uploader exited with status %d",
			 WEXITSTATUS(j->wstatus));
		failed = why;
	}
	artifacts_upload_done(&j->arts, j->upload_out, j->upload_len, failed);
	j->uploading = 0;
}

/* Ends the job once the runner is reaped and both pipes are closed (or it
 * never started), and then its uploads, if any, are over. */
static void maybe_finish(struct job *j)
{
	if (j->done)
		return;
	if (j->uploading) {
		if (!j->reaped || j->out_fd >= 0)
			return;
		end_uploads(j);
		job_end(j);
		return;
	}
	if (!j->error && (!j->reaped || j->out_fd >= 0 || j->ev_fd >= 0))
		return;
	stop_timers(j);
	events_end(&j->events, NULL, NULL);
	build_result(j);
	if (start_uploads(j))
		return;
	job_end(j);
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
	struct job *j = arg;

	(void)fd;
	(void)what;
	if (j->hooks.done)
		j->hooks.done(j->arg, j);
}

static void on_event(void *arg, const struct runner_event *ev,
		     const char *error)
{
	struct job *j = arg;

	if (ev && j->hooks.event)
		j->hooks.event(j->arg, j, ev);
	else if (error)
		job_warn(j, "task %s: %s", j->task.id, error);
}

static void upload_append(struct job *j, const char *buf, size_t n)
{
	if (j->upload_len + n > JOB_UPLOAD_OUT_MAX)
		n = JOB_UPLOAD_OUT_MAX - j->upload_len;
	if (n == 0)
		return;
	j->upload_out = xrealloc(j->upload_out, j->upload_len + n + 1);
	memcpy(j->upload_out + j->upload_len, buf, n);
	j->upload_len += n;
	j->upload_out[j->upload_len] = '\0';
}

/* Reads what is there from one pipe; returns 1 at EOF. */
static int drain_pipe(struct job *j, int fd, int is_events)
{
	char buf[JOB_READ_CHUNK];
	ssize_t n;
	int i;

	for (i = 0; i < JOB_READS_PER_WAKE; i++) {
		n = read(fd, buf, sizeof(buf));
		if (n > 0) {
			if (is_events)
				events_feed(&j->events, buf, (size_t)n,
					    on_event, j);
			else if (j->uploading)
				upload_append(j, buf, (size_t)n);
			else
				capture_append(&j->cap, buf, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		return 1;
	}
	return 0;
}

static void on_out(evutil_socket_t fd, short what, void *arg)
{
	struct job *j = arg;

	(void)what;
	if (drain_pipe(j, fd, 0)) {
		close_pipe(&j->out_fd, &j->out_ev);
		maybe_finish(j);
	}
}

static void on_events(evutil_socket_t fd, short what, void *arg)
{
	struct job *j = arg;

	(void)what;
	if (drain_pipe(j, fd, 1)) {
		events_end(&j->events, on_event, j);
		close_pipe(&j->ev_fd, &j->ev_ev);
		maybe_finish(j);
	}
}

static void signal_group(struct job *j, int sig)
{
	if (j->pid > 0)
		kill(-j->pid, sig);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct job *j = arg;
	struct timeval tv = {(time_t)j->conf->grace_s, 0};

	(void)fd;
	(void)what;
	if (j->pid <= 0)
		return;
	if (j->uploading)
		j->upload_timed_out = 1;
	else
		j->timed_out = 1;
	signal_group(j, SIGTERM);
	event_add(j->kill_ev, &tv);
}

static void on_kill(evutil_socket_t fd, short what, void *arg)
{
	struct job *j = arg;

	(void)fd;
	(void)what;
	signal_group(j, SIGKILL);
}

static void on_linger(evutil_socket_t fd, short what, void *arg)
{
	struct job *j = arg;

	(void)fd;
	(void)what;
	job_warn(j,
		 "task %s: output still open %d ms after the runner "
		 "exited (a process that left its group?); closing it",
		 j->task.id, JOB_LINGER_MS);
	/* Take what is buffered before giving up on the pipes. */
	if (j->out_fd >= 0)
		drain_pipe(j, j->out_fd, 0);
	if (j->ev_fd >= 0) {
		drain_pipe(j, j->ev_fd, 1);
		events_end(&j->events, on_event, j);
	}
	close_pipe(&j->out_fd, &j->out_ev);
	close_pipe(&j->ev_fd, &j->ev_ev);
	maybe_finish(j);
}

static void build_env(struct job *j, struct env *env)
{
	const struct task *t = &j->task;
	const char *old;
	char *s;
	size_t i;

	env_init(env, environ);
	/* The upload credentials are the worker's, not the tests'. */
	env_unset(env, "TESTFLEET_ARTIFACTS_HEADERS");
	for (i = 0; i < t->nenv; i++)
		env_set(env, t->env[i].key, t->env[i].value);
	old = env_get(env, "PYTHONPATH");
	if (j->conf->plugin_dir) {
		s = old && old[0] ? xasprintf("%s:%s", j->conf->plugin_dir, old)
				  : xstrdup(j->conf->plugin_dir);
		env_set(env, "PYTHONPATH", s);
		free(s);
	}
	env_set(env, "PYTHONDONTWRITEBYTECODE", "1");
	env_set(env, "TESTFLEET_RUN", t->run);
	env_set(env, "TESTFLEET_TASK", t->id);
	s = xasprintf("%u", j->conf->slot);
	env_set(env, "TESTFLEET_SLOT", s);
	free(s);
	env_set(env, "TESTFLEET_WORKER", j->conf->worker);
	s = xasprintf("%u", t->attempt);
	env_set(env, "TESTFLEET_ATTEMPT", s);
	free(s);
	env_set(env, "TESTFLEET_JUNIT", j->junit_path);
	s = xasprintf("%s/artifacts", j->tmpdir);
	env_set(env, "TESTFLEET_ARTIFACTS", s);
	free(s);
	s = xasprintf("%d", CHILD_EVENTS_FD);
	env_set(env, "TESTFLEET_EVENTS_FD", s);
	free(s);
	env_set(env, "TMPDIR", j->tmpdir);
}

/* Checks what the task asks for before anything runs. */
static int check_task(struct job *j, char *err, size_t errlen)
{
	const struct task *t = &j->task;
	struct stat st;
	size_t i;

	for (i = 0; i < t->nenv; i++) {
		if (!env_name_ok(t->env[i].key) || !t->env[i].value) {
			snprintf(err, errlen, "bad environment name \"%.64s\"",
				 t->env[i].key ? t->env[i].key : "");
			return -1;
		}
	}
	if (t->cwd && t->cwd[0]) {
		if (stat(t->cwd, &st) < 0) {
			snprintf(err, errlen, "cwd %s: %s", t->cwd,
				 strerror(errno));
			return -1;
		}
		if (!S_ISDIR(st.st_mode)) {
			snprintf(err, errlen, "cwd %s: not a directory",
				 t->cwd);
			return -1;
		}
	}
	if (t->runner && strcmp(t->runner, "pytest") == 0 &&
	    !j->conf->plugin_dir) {
		snprintf(err, errlen,
			 "pytest plugin testfleet_pytest.py not "
			 "found (set TESTFLEET_PLUGIN_DIR)");
		return -1;
	}
	return 0;
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* pytest from the warm interpreter when there is one, else (or when that
 * fails) exec'd; 0, or an errno value with a message in err. */
static int spawn_runner(struct job *j, const struct child_req *req,
			char *err, size_t errlen)
{
	struct warm *warm = j->conf->runners->warm;
	char why[512];

	if (strcmp(j->task.runner, "pytest") == 0 && warm_enabled(warm)) {
		if (warm_spawn(warm, req, &j->pid, why, sizeof(why)) == 0)
			return 0;
		job_warn(j, "task %s: warm pytest: %s; starting it cold",
			 j->task.id, why);
	}
	return child_spawn(req, &j->pid, err, errlen);
}

/* Everything up to a running child; -1 with a message in err. */
static int job_launch(struct job *j, char *err, size_t errlen)
{
	struct child_req req;
	struct env env;
	char **argv = NULL;
	char *artifacts = NULL;
	const char *dir;
	int outp[2] = {-1, -1}, evp[2] = {-1, -1};
	struct timeval tv;
	int rc = -1;

	env_init(&env, NULL);
	if (check_task(j, err, errlen) < 0)
		goto out;
	/* Empty but for artifacts/, which is there. */
	dir = slotdir_path(j->dir, err, errlen);
	if (!dir)
		goto out;
	j->tmpdir = xstrdup(dir);
	j->junit_path = xasprintf("%s/junit.xml", j->tmpdir);
	artifacts = xasprintf("%s/" SLOTDIR_ARTIFACTS, j->tmpdir);
	if (runner_argv(j->conf->runners, &j->task, j->junit_path, artifacts,
			&argv, err, errlen) < 0)
		goto out;
	/* Playwright's file:line selectors also run the other tests on the
	 * same line (and, with several projects, in the other projects):
	 * only the task's own ids count. */
	if (strcmp(j->task.runner, "playwright") == 0)
		events_only(&j->events, j->task.tests, j->task.ntests);
	build_env(j, &env);
	if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(evp, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		goto out;
	}
	if (set_nonblock(outp[0]) < 0 || set_nonblock(evp[0]) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		goto out;
	}
	req.argv = argv;
	req.envp = env_vars(&env);
	req.cwd = j->task.cwd && j->task.cwd[0] ? j->task.cwd : NULL;
	req.out_fd = outp[1];
	req.events_fd = evp[1];
	j->started_at = now_unix();
	clock_gettime(CLOCK_MONOTONIC, &j->t0);
	if (spawn_runner(j, &req, err, errlen) != 0)
		goto out;

	j->out_fd = outp[0];
	j->ev_fd = evp[0];
	outp[0] = evp[0] = -1;
	j->out_ev =
	    event_new(j->base, j->out_fd, EV_READ | EV_PERSIST, on_out, j);
	j->ev_ev =
	    event_new(j->base, j->ev_fd, EV_READ | EV_PERSIST, on_events, j);
	event_add(j->out_ev, NULL);
	event_add(j->ev_ev, NULL);
	j->timeout_s =
	    j->task.timeout_s ? j->task.timeout_s : j->conf->timeout_s;
	tv.tv_sec = (time_t)j->timeout_s;
	tv.tv_usec = 0;
	event_add(j->timeout_ev, &tv);
	rc = 0;
out:
	if (outp[0] >= 0)
		close(outp[0]);
	if (outp[1] >= 0)
		close(outp[1]);
	if (evp[0] >= 0)
		close(evp[0]);
	if (evp[1] >= 0)
		close(evp[1]);
	runner_argv_free(argv);
	env_release(&env);
	free(artifacts);
	return rc;
}

struct job *job_start(struct event_base *base, const struct job_conf *conf,
		      struct task *task, const struct job_hooks *hooks,
		      void *arg)
{
	struct job *j = xcalloc(1, sizeof(*j));
	char err[1024];

	j->base = base;
	j->conf = conf;
	j->hooks = *hooks;
	j->arg = arg;
	j->task = *task;
	memset(task, 0, sizeof(*task));
	j->dir = conf->dir;
	if (!j->dir) {
		slotdir_init(&j->own, conf->consumer, conf->slot);
		j->dir = &j->own;
	}
	j->pid = -1;
	j->out_fd = -1;
	j->ev_fd = -1;
	capture_init(&j->cap, CAPTURE_HEAD_MAX, CAPTURE_TAIL_MAX);
	events_init(&j->events);
	j->timeout_ev = evtimer_new(base, on_timeout, j);
	j->kill_ev = evtimer_new(base, on_kill, j);
	j->linger_ev = evtimer_new(base, on_linger, j);
	j->done_ev = event_new(base, -1, 0, on_done, j);
	err[0] = '\0';
	if (job_launch(j, err, sizeof(err)) < 0) {
		j->error = xstrdup(err[0] ? err : "cannot start the runner");
		maybe_finish(j);
	}
	return j;
}

void job_reap(struct job *j)
{
	struct timeval tv = {JOB_LINGER_MS / 1000,
			     (JOB_LINGER_MS % 1000) * 1000};
	int st = 0;

	if (j->pid <= 0)
		return;
	/* The zombie leader still holds the group id: nothing else can have
	 * it, so this reaches only what the runner left behind. */
	kill(-j->pid, SIGKILL);
	while (waitpid(j->pid, &st, 0) < 0 && errno == EINTR)
		;
	clock_gettime(CLOCK_MONOTONIC, &j->t1);
	j->wstatus = st;
	j->reaped = 1;
	j->pid = -1;
	if (j->timeout_ev)
		event_del(j->timeout_ev);
	if (j->kill_ev)
		event_del(j->kill_ev);
	if (j->out_fd >= 0 || j->ev_fd >= 0)
		event_add(j->linger_ev, &tv);
	maybe_finish(j);
}

void job_cancel(struct job *j, unsigned kill_after_ms)
{
	struct timeval tv = {(time_t)(kill_after_ms / 1000),
			     (suseconds_t)(kill_after_ms % 1000) * 1000};

	if (j->done || j->pid <= 0)
		return;
	j->cancelled = 1;
	if (kill_after_ms == 0) {
		signal_group(j, SIGKILL);
		return;
	}
	signal_group(j, SIGTERM);
	/* An earlier, shorter deadline (a timeout's) stays. */
	if (!event_pending(j->kill_ev, EV_TIMEOUT, NULL))
		event_add(j->kill_ev, &tv);
}

unsigned job_timeout(const struct job *j)
{
	return j->timeout_s ? j->timeout_s
			    : (j->task.timeout_s ? j->task.timeout_s
						 : j->conf->timeout_s);
}

const struct task *job_task(const struct job *j)
{
	return &j->task;
}

pid_t job_pid(const struct job *j)
{
	return j->pid;
}

int job_is_done(const struct job *j)
{
	return j->done;
}

struct artifacts *job_artifacts(struct job *j)
{
	return &j->arts;
}

struct task_result *job_result(struct job *j)
{
	return j->done ? &j->result : NULL;
}

/* The pid in a slot directory's name
 * "testfleet-<name>-<pid>-s<slot>-XXXXXX" (slotdir_init; the consumer name
 * ends in "-<pid>"), or -1 for any other name. */
static long job_dir_pid(const char *name)
{
	size_t len = strlen(name), i, s;
	long pid = 0;

	if (strncmp(name, "testfleet-", 10) != 0 || len < 10 + 7 + 3)
		return -1;
	i = len - 7; /* at "-XXXXXX" */
	if (name[i] != '-')
		return -1;
	s = i;
	while (s > 10 && name[s - 1] >= '0' && name[s - 1] <= '9')
		s--;
	if (s == i || s < 12 || name[s - 1] != 's' || name[s - 2] != '-')
		return -1;
	i = s - 2; /* at "-s<slot>" */
	s = i;
	while (s > 10 && name[s - 1] >= '0' && name[s - 1] <= '9')
		s--;
	if (s == i || i - s > 9 || name[s - 1] != '-')
		return -1;
	for (; s < i; s++)
		pid = pid * 10 + (name[s] - '0');
	return pid > 0 ? pid : -1;
}

/* Kills every process whose environment says TMPDIR=<dir>: the processes
 * of a dead worker's tasks (each slot of each worker gives its tasks a
 * TMPDIR of its own, so a match cannot be anyone else's, whatever its
 * process group). Returns how
 * many were signalled. */
static unsigned kill_task_leftovers(const char *dir)
{
	char *want = xasprintf("TMPDIR=%s", dir);
	size_t wantlen = strlen(want) + 1; /* with the NUL that ends it */
	unsigned n = 0;
	struct dirent *de;
	DIR *proc;

	proc = opendir("/proc");
	if (!proc)
		goto out;
	while ((de = readdir(proc)) != NULL) {
		char path[64], env[65536];
		ssize_t len, off;
		long pid;
		char *end;
		int fd;

		pid = strtol(de->d_name, &end, 10);
		if (*end != '\0' || pid <= 1 || pid == (long)getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/environ", pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		len = read(fd, env, sizeof(env));
		close(fd);
		for (off = 0; len > 0 && off < len;) {
			size_t left = (size_t)(len - off);

			if (left >= wantlen &&
			    memcmp(env + off, want, wantlen) == 0) {
				if (kill((pid_t)pid, SIGKILL) == 0)
					n++;
				break;
			}
			end = memchr(env + off, '\0', left);
			if (!end)
				break;
			off = end - env + 1;
		}
	}
	closedir(proc);
out:
	free(want);
	return n;
}

/* Sweeps one directory (see job_sweep_dead). */
static unsigned sweep_dir(const char *base,
			  void (*warn)(void *arg, const char *msg), void *arg)
{
	struct dirent *de;
	struct stat st;
	char err[512], *path, *msg;
	unsigned n = 0;
	long pid;
	DIR *d;

	d = opendir(base);
	if (!d)
		return 0;
	while ((de = readdir(d)) != NULL) {
		pid = job_dir_pid(de->d_name);
		if (pid <= 0 || pid == (long)getpid())
			continue;
		/* Alive (or another user's): not ours to touch. */
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		path = xasprintf("%s/%s", base, de->d_name);
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode) &&
		    st.st_uid == getuid()) {
			kill_task_leftovers(path);
			if (child_rmtree(path, err, sizeof(err)) == 0) {
				n++;
			} else if (warn) {
				msg = xasprintf(
				    "leftovers of a dead worker: %s", err);
				warn(arg, msg);
				free(msg);
			}
		}
		free(path);
	}
	closedir(d);
	return n;
}

unsigned job_sweep_dead(void (*warn)(void *arg, const char *msg), void *arg)
{
	const char *base = getenv("TMPDIR");
	unsigned n;

	/* child_mkdtemp falls back to /tmp when TMPDIR is too long. */
	n = sweep_dir("/tmp", warn, arg);
	if (base && base[0] == '/' && strcmp(base, "/tmp") != 0)
		n += sweep_dir(base, warn, arg);
	return n;
}

void job_free(struct job *j)
{
	char err[256];
	int st;

	if (!j)
		return;
	if (j->pid > 0) {
		kill(-j->pid, SIGKILL);
		while (waitpid(j->pid, &st, 0) < 0 && errno == EINTR)
			;
		j->pid = -1;
	}
	close_pipe(&j->out_fd, &j->out_ev);
	close_pipe(&j->ev_fd, &j->ev_ev);
	if (j->timeout_ev)
		event_free(j->timeout_ev);
	if (j->kill_ev)
		event_free(j->kill_ev);
	if (j->linger_ev)
		event_free(j->linger_ev);
	if (j->done_ev)
		event_free(j->done_ev);
	remove_tmpdir(j);
	if (j->dir == &j->own)
		slotdir_release(&j->own, err, sizeof(err));
	artifacts_release(&j->arts);
	free(j->upload_out);
	free(j->junit_path);
	free(j->error);
	capture_release(&j->cap);
	events_release(&j->events);
	task_result_release(&j->result);
	task_release(&j->task);
	free(j);
}
