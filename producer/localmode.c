/* localmode.c -- the private redis-server and local worker of local mode
 * (see localmode.h). */
#include "localmode.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "keys.h"
#include "log.h"
#include "proc.h"
#include "xmalloc.h"

extern char **environ;

#define LOCALMODE_PING_MS 5000
#define LOCALMODE_WORKER_GRACE "1"
#define LOCALMODE_STOP_MS 2000
#define LOCALMODE_SAVE_MS 60000
/* unix socket paths are limited to 107 bytes; keep TMPDIR well below. */
#define LOCALMODE_MAX_TMPDIR 64

struct localmode {
	char *dir;   /* the private temporary directory */
	char *cache; /* the cache folder, or NULL */
	int save;    /* SAVE into the cache at the end */
	/* The queue-side keys, dropped before the SAVE. */
	char **drop;
	size_t ndrop;
	char *sock;  /* <dir>/redis.sock */
	char *url;   /* unix://<sock> */
	pid_t redis; /* -1 once reaped */
	pid_t worker;
	int redis_status;
	int worker_status;
};

static long long lm_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void lm_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* The worker binary installed beside this one. Caller frees. */
static char *lm_worker_path(void)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n <= 0)
		return xstrdup("testfleet-worker");
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (slash == NULL)
		return xstrdup("testfleet-worker");
	*slash = '\0';
	return xasprintf("%s/testfleet-worker", self);
}

static int lm_rm_entry(const char *path, const struct stat *sb, int flag,
		       struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/* Removes dir and everything in it, without a shell and without following
 * symlinks. */
static void lm_remove_tree(const char *dir)
{
	nftw(dir, lm_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	rmdir(dir);
}

/* The last non-empty line of a log file in dir, for messages; caller
 * frees; "" when there is none. */
static char *lm_log_tail(const char *dir, const char *name)
{
	char *path = xasprintf("%s/%s", dir, name);
	char buf[2048];
	char *end, *start;
	ssize_t n = 0;
	off_t size;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return xstrdup("");
	size = lseek(fd, 0, SEEK_END);
	if (size > (off_t)sizeof(buf) - 1)
		lseek(fd, size - (off_t)sizeof(buf) + 1, SEEK_SET);
	else
		lseek(fd, 0, SEEK_SET);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return xstrdup("");
	buf[n] = '\0';
	end = buf + n;
	while (end > buf &&
	       (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
		end--;
	*end = '\0';
	start = strrchr(buf, '\n');
	start = start != NULL ? start + 1 : buf;
	return xstrdup(start);
}

/* Opens dir/name for a child's output, or returns -1 to inherit. */
static int lm_log_fd(const char *dir, const char *name, int verbose)
{
	char *path;
	int fd;

	if (verbose)
		return -1;
	path = xasprintf("%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	free(path);
	return fd;
}

/* Environment for the worker: ours, with TMPDIR inside the private
 * directory so whatever its runners leave behind goes with it.
 * tmpdir_entry ("TMPDIR=...") and the strings are borrowed; free only the
 * array. */
static char **lm_worker_env(char *tmpdir_entry)
{
	size_t n = 0, k = 0, i;
	char **env;

	while (environ[n] != NULL)
		n++;
	env = xcalloc(n + 2, sizeof(*env));
	for (i = 0; i < n; i++)
		if (strncmp(environ[i], "TMPDIR=", 7) != 0)
			env[k++] = environ[i];
	env[k++] = tmpdir_entry;
	env[k] = NULL;
	return env;
}

/* Waits until the server answers PING. Returns 0, or -1 with err. */
static int lm_wait_redis(struct localmode *lm, volatile sig_atomic_t *stop,
			 enum localmode_error *why, char *err, size_t errlen)
{
	long long deadline = lm_now_ms() + LOCALMODE_PING_MS;
	struct timeval tv = {0, 200000};
	char how[128];

	for (;;) {
		redisContext *c;

		if (stop != NULL && *stop) {
			*why = LOCALMODE_STOPPED;
			snprintf(err, errlen, "interrupted");
			return -1;
		}
		if (proc_wait(lm->redis, 0, &lm->redis_status) == 1) {
			char *tail = lm_log_tail(lm->dir, "redis.log");

			lm->redis = -1;
			proc_status_describe(lm->redis_status, how,
					     sizeof(how));
			*why = LOCALMODE_FAILED;
			snprintf(err, errlen,
				 "local redis-server %s at start%s%s", how,
				 tail[0] ? ": " : "", tail);
			free(tail);
			return -1;
		}
		c = redisConnectUnixWithTimeout(lm->sock, tv);
		if (c != NULL && c->err == 0) {
			redisReply *r;

			redisSetTimeout(c, tv);
			r = redisCommand(c, "PING");
			if (r != NULL && r->type == REDIS_REPLY_STATUS) {
				freeReplyObject(r);
				redisFree(c);
				return 0;
			}
			if (r != NULL)
				freeReplyObject(r);
		}
		if (c != NULL)
			redisFree(c);
		if (lm_now_ms() >= deadline) {
			*why = LOCALMODE_FAILED;
			snprintf(err, errlen,
				 "local redis-server did not answer on %s "
				 "within %d s",
				 lm->sock, LOCALMODE_PING_MS / 1000);
			return -1;
		}
		lm_sleep_ms(50);
	}
}

static int lm_start_redis(struct localmode *lm, int verbose,
			  enum localmode_error *why, char *err, size_t errlen)
{
	/* With a cache the data file lives there (and is loaded at start);
	 * the socket stays in the private directory, whose path is short
	 * enough for a unix socket. */
	char *argv[] = {"redis-server",
			"--port",
			"0",
			"--unixsocket",
			lm->sock,
			"--unixsocketperm",
			"700",
			"--save",
			"",
			"--appendonly",
			"no",
			"--dir",
			lm->cache != NULL ? lm->cache : lm->dir,
			"--dbfilename",
			LOCALMODE_CACHE_FILE,
			"--daemonize",
			"no",
			"--loglevel",
			"warning",
			NULL};
	struct proc_opts po = {0};
	int fd = lm_log_fd(lm->dir, "redis.log", verbose);
	int rc;

	po.argv = argv;
	po.out_fd = po.err_fd = fd;
	po.cwd = lm->dir;
	rc = proc_spawn(&po, &lm->redis, err, errlen);
	if (fd >= 0)
		close(fd);
	if (rc < 0) {
		if (errno == ENOENT) {
			*why = LOCALMODE_NO_REDIS;
			snprintf(err, errlen,
				 "redis-server not found; install "
				 "redis-server or pass --redis URL");
		} else {
			*why = LOCALMODE_FAILED;
		}
		lm->redis = -1;
		return -1;
	}
	return 0;
}

static int lm_start_worker(struct localmode *lm, const struct localmode_opts *o,
			   enum localmode_error *why, char *err, size_t errlen)
{
	char *path = lm_worker_path();
	char *tmpdir = xasprintf("%s/tmp", lm->dir);
	char *tmpdir_entry = xasprintf("TMPDIR=%s", tmpdir);
	char slots[16];
	char **argv = xcalloc(20 + 2 * o->nqueues, sizeof(*argv));
	char **env = NULL;
	struct proc_opts po = {0};
	size_t k = 0, i;
	int fd = -1, ret = -1;

	if (access(path, X_OK) < 0) {
		*why = LOCALMODE_NO_WORKER;
		snprintf(err, errlen, "testfleet-worker not found at %s", path);
		goto out;
	}
	if (mkdir(tmpdir, 0700) < 0) {
		*why = LOCALMODE_FAILED;
		snprintf(err, errlen, "cannot create %s: %s", tmpdir,
			 strerror(errno));
		goto out;
	}
	snprintf(slots, sizeof(slots), "%u", o->slots ? o->slots : 1);
	argv[k++] = path;
	argv[k++] = "--redis";
	argv[k++] = lm->url;
	argv[k++] = "--slots";
	argv[k++] = slots;
	argv[k++] = "--name";
	argv[k++] = "local";
	argv[k++] = "--prefix";
	argv[k++] = (char *)o->prefix;
	argv[k++] = "--grace";
	argv[k++] = LOCALMODE_WORKER_GRACE;
	if (o->allow_command)
		argv[k++] = "--allow-command";
	if (o->playwright != NULL) {
		argv[k++] = "--playwright";
		argv[k++] = (char *)o->playwright;
	}
	if (o->pytest != NULL) {
		argv[k++] = "--pytest";
		argv[k++] = (char *)o->pytest;
	}
	/* The worker serves "default" unless told otherwise. */
	if (!(o->nqueues == 1 && strcmp(o->queues[0], "default") == 0)) {
		for (i = 0; i < o->nqueues; i++) {
			argv[k++] = "--queue";
			argv[k++] = o->queues[i];
		}
	}
	argv[k] = NULL;
	env = lm_worker_env(tmpdir_entry);
	fd = lm_log_fd(lm->dir, "worker.log", o->verbose);
	po.argv = argv;
	po.envp = env;
	po.out_fd = po.err_fd = fd;
	if (proc_spawn(&po, &lm->worker, err, errlen) < 0) {
		*why = LOCALMODE_FAILED;
		lm->worker = -1;
		goto out;
	}
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	free(env);
	free(argv);
	free(tmpdir_entry);
	free(tmpdir);
	free(path);
	return ret;
}

/* After redis-server died at start: when it had a cache file to load
 * (unreadable, or from a newer redis-server), moves that file aside so the
 * next start begins afresh. Returns 0 when it did, -1 when there is
 * nothing to retry (the start failed for another reason). */
static int lm_set_cache_aside(struct localmode *lm, const char *why)
{
	char *file, *bad;
	int ret = -1;

	if (lm->cache == NULL || lm->redis > 0)
		return -1;
	file = xasprintf("%s/%s", lm->cache, LOCALMODE_CACHE_FILE);
	bad = xasprintf("%s.bad", file);
	if (access(file, F_OK) == 0 && rename(file, bad) == 0) {
		log_warn("%s; moved the local cache aside to %s and starting "
			 "without it",
			 why, bad);
		ret = 0;
	}
	free(bad);
	free(file);
	return ret;
}

static int lm_write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	size_t len = strlen(text);
	int ok;

	if (fd < 0)
		return errno == EEXIST ? 0 : -1;
	ok = write(fd, text, len) == (ssize_t)len;
	if (close(fd) < 0)
		ok = 0;
	return ok ? 0 : -1;
}

char *localmode_cache_dir(const char *root, int create, char *err,
			  size_t errlen)
{
	char *dir = xasprintf("%s/%s", root, LOCALMODE_CACHE_NAME);
	char *path = NULL;
	struct stat st;

	if (lstat(dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode)) {
			snprintf(err, errlen, "%s is not a directory", dir);
			goto fail;
		}
		if (!create)
			return dir;
	} else if (!create) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		goto fail;
	} else if (mkdir(dir, 0777) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", dir,
			 strerror(errno));
		goto fail;
	}
	/* Like .pytest_cache: ignored by git, skipped by backup tools. */
	path = xasprintf("%s/.gitignore", dir);
	if (lm_write_file(path, "# Created by testfleet automatically.\n*\n") <
	    0) {
		snprintf(err, errlen, "cannot write %s: %s", path,
			 strerror(errno));
		goto fail;
	}
	free(path);
	path = xasprintf("%s/CACHEDIR.TAG", dir);
	if (lm_write_file(path,
			  "Signature: 8a477f597d28d172789f06886806bc55\n"
			  "# This file is a cache directory tag created by "
			  "testfleet.\n"
			  "# For information about cache directory tags, see:\n"
			  "#\thttps://bford.info/cachedir/spec.html\n") < 0) {
		snprintf(err, errlen, "cannot write %s: %s", path,
			 strerror(errno));
		goto fail;
	}
	free(path);
	return dir;
fail:
	free(path);
	free(dir);
	return NULL;
}

/* SAVE into the cache folder, while redis-server still runs. */
static void lm_save(struct localmode *lm)
{
	struct timeval tv = {LOCALMODE_SAVE_MS / 1000, 0};
	redisContext *c = redisConnectUnixWithTimeout(lm->sock, tv);
	redisReply *r = NULL;

	if (c == NULL || c->err != 0) {
		log_warn("could not save the local cache in %s: %s", lm->cache,
			 c != NULL ? c->errstr : "out of memory");
		goto out;
	}
	redisSetTimeout(c, tv);
	/* Only the history and the runs are worth keeping: a task left in a
	 * queue (an interrupted run's), a pending retry or the worker's
	 * heartbeat must not come back to life in the next run. */
	if (lm->ndrop > 0) {
		const char **argv = xcalloc(lm->ndrop + 1, sizeof(*argv));
		size_t i;

		argv[0] = "DEL";
		for (i = 0; i < lm->ndrop; i++)
			argv[i + 1] = lm->drop[i];
		r = redisCommandArgv(c, (int)lm->ndrop + 1, argv, NULL);
		free(argv);
		if (r == NULL) {
			log_warn("could not save the local cache in %s: %s",
				 lm->cache, c->errstr);
			goto out;
		}
		freeReplyObject(r);
	}
	r = redisCommand(c, "SAVE");
	if (r == NULL || r->type == REDIS_REPLY_ERROR)
		log_warn("could not save the local cache in %s: %s", lm->cache,
			 r != NULL && r->str ? r->str
			 : c->errstr[0]	     ? c->errstr
					     : "no reply");
out:
	if (r != NULL)
		freeReplyObject(r);
	if (c != NULL)
		redisFree(c);
}

struct localmode *localmode_start(const struct localmode_opts *o,
				  enum localmode_error *why, char *err,
				  size_t errlen)
{
	struct localmode *lm = xcalloc(1, sizeof(*lm));
	const char *base = getenv("TMPDIR");
	char *tmpl;

	*why = LOCALMODE_OK;
	lm->redis = lm->worker = -1;
	if (base == NULL || base[0] != '/' ||
	    strlen(base) > LOCALMODE_MAX_TMPDIR)
		base = "/tmp";
	tmpl = xasprintf("%s/testfleet-XXXXXX", base);
	if (mkdtemp(tmpl) == NULL) {
		*why = LOCALMODE_FAILED;
		snprintf(err, errlen, "cannot create a directory in %s: %s",
			 base, strerror(errno));
		free(tmpl);
		free(lm);
		return NULL;
	}
	lm->dir = tmpl;
	lm->sock = xasprintf("%s/redis.sock", lm->dir);
	lm->url = xasprintf("unix://%s", lm->sock);
	if (o->cache_dir != NULL) {
		size_t i;

		lm->cache = xstrdup(o->cache_dir);
		lm->save = !o->no_worker;
		lm->drop = xcalloc(o->nqueues + 2, sizeof(*lm->drop));
		for (i = 0; i < o->nqueues; i++)
			lm->drop[lm->ndrop++] =
			    key_queue(o->prefix, o->queues[i]);
		lm->drop[lm->ndrop++] = key_delayed(o->prefix);
		lm->drop[lm->ndrop++] = key_workers(o->prefix);
	}
	/* Orphans of our children (a runner whose worker was killed) come
	 * to us, so the teardown can find and stop them. */
	proc_become_subreaper();
	if (lm_start_redis(lm, o->verbose, why, err, errlen) < 0)
		goto fail;
	if (lm_wait_redis(lm, o->stop, why, err, errlen) < 0) {
		if (lm_set_cache_aside(lm, err) < 0)
			goto fail;
		if (lm_start_redis(lm, o->verbose, why, err, errlen) < 0)
			goto fail;
		if (lm_wait_redis(lm, o->stop, why, err, errlen) < 0)
			goto fail;
	}
	if (!o->no_worker && lm_start_worker(lm, o, why, err, errlen) < 0)
		goto fail;
	return lm;
fail:
	localmode_stop(lm);
	return NULL;
}

const char *localmode_url(const struct localmode *lm)
{
	return lm->url;
}

int localmode_check(void *arg, char *err, size_t errlen)
{
	struct localmode *lm = arg;
	char how[128];

	if (lm->worker > 0 &&
	    proc_wait(lm->worker, 0, &lm->worker_status) == 1) {
		char *tail = lm_log_tail(lm->dir, "worker.log");

		lm->worker = -1;
		proc_status_describe(lm->worker_status, how, sizeof(how));
		snprintf(err, errlen, "local worker %s%s%s", how,
			 tail[0] ? ": " : "", tail);
		free(tail);
		return -1;
	}
	if (lm->redis > 0 && proc_wait(lm->redis, 0, &lm->redis_status) == 1) {
		char *tail = lm_log_tail(lm->dir, "redis.log");

		lm->redis = -1;
		proc_status_describe(lm->redis_status, how, sizeof(how));
		snprintf(err, errlen, "local redis-server %s%s%s", how,
			 tail[0] ? ": " : "", tail);
		free(tail);
		return -1;
	}
	if (lm->worker < 0 || lm->redis < 0) {
		snprintf(err, errlen, "local %s is gone",
			 lm->worker < 0 ? "worker" : "redis-server");
		return -1;
	}
	return 0;
}

void localmode_stop(struct localmode *lm)
{
	if (lm == NULL)
		return;
	/* The worker first: on TERM it stops its runners (after its 1 s
	 * grace) and exits; it needs redis-server for that. */
	if (lm->worker > 0)
		proc_stop(lm->worker, LOCALMODE_STOP_MS);
	lm->worker = -1;
	/* The cache is what the next run is scheduled from. */
	if (lm->save && lm->redis > 0)
		lm_save(lm);
	if (lm->redis > 0)
		proc_stop(lm->redis, LOCALMODE_STOP_MS);
	lm->redis = -1;
	/* Whatever survived: runners of a killed worker and their
	 * children, reparented to us. */
	proc_kill_children(LOCALMODE_STOP_MS);
	if (lm->dir != NULL)
		lm_remove_tree(lm->dir);
	for (size_t i = 0; i < lm->ndrop; i++)
		free(lm->drop[i]);
	free(lm->drop);
	free(lm->url);
	free(lm->sock);
	free(lm->cache);
	free(lm->dir);
	free(lm);
}
