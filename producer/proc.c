/* proc.c -- spawning, capturing and stopping children (see proc.h). */
#include "proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "xmalloc.h"

extern char **environ;

#define PROC_READ_CHUNK 65536
#define PROC_POLL_MS 200

static long long proc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void proc_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int proc_spawn(const struct proc_opts *o, pid_t *pid, char *err, size_t errlen)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int rc, ret = -1;

	if (posix_spawn_file_actions_init(&fa) != 0) {
		snprintf(err, errlen, "%s: cannot start: %s", o->argv[0],
			 strerror(errno));
		return -1;
	}
	if (posix_spawnattr_init(&attr) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		snprintf(err, errlen, "%s: cannot start: %s", o->argv[0],
			 strerror(errno));
		return -1;
	}
	sigemptyset(&none);
	sigfillset(&all);
	rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP |
						 POSIX_SPAWN_SETSIGMASK |
						 POSIX_SPAWN_SETSIGDEF);
	if (rc == 0)
		rc = posix_spawnattr_setpgroup(&attr, 0);
	if (rc == 0)
		rc = posix_spawnattr_setsigmask(&attr, &none);
	if (rc == 0)
		rc = posix_spawnattr_setsigdefault(&attr, &all);
	if (rc == 0)
		rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null",
						      O_RDONLY, 0);
	if (rc == 0 && o->out_fd >= 0)
		rc = posix_spawn_file_actions_adddup2(&fa, o->out_fd, 1);
	if (rc == 0 && o->err_fd >= 0)
		rc = posix_spawn_file_actions_adddup2(&fa, o->err_fd, 2);
	if (rc == 0)
		rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	if (rc == 0 && o->cwd != NULL)
		rc = posix_spawn_file_actions_addchdir_np(&fa, o->cwd);
	if (rc != 0) {
		snprintf(err, errlen, "%s: cannot start: %s", o->argv[0],
			 strerror(rc));
		errno = rc;
		goto out;
	}
	rc = posix_spawnp(pid, o->argv[0], &fa, &attr, o->argv,
			  o->envp != NULL ? o->envp : environ);
	if (rc != 0) {
		if (rc == ENOENT)
			snprintf(err, errlen, "%s: command not found",
				 o->argv[0]);
		else
			snprintf(err, errlen, "%s: cannot start: %s",
				 o->argv[0], strerror(rc));
		errno = rc;
		goto out;
	}
	ret = 0;
out:
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	return ret;
}

int proc_wait(pid_t pid, int ms, int *status)
{
	long long deadline = proc_now_ms() + ms;

	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid)
			return 1;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (proc_now_ms() >= deadline)
			return 0;
		proc_sleep_ms(10);
	}
}

int proc_stop(pid_t pid, int grace_ms)
{
	int status = 0, r;

	if (pid <= 0)
		return -1;
	r = proc_wait(pid, 0, &status);
	if (r != 0)
		return r == 1 ? status : -1;
	/* The child leads its own group (POSIX_SPAWN_SETPGROUP); signal the
	 * group so helpers it started in the same group go too. */
	if (kill(-pid, SIGTERM) < 0)
		kill(pid, SIGTERM);
	r = proc_wait(pid, grace_ms, &status);
	if (r != 0)
		return r == 1 ? status : -1;
	if (kill(-pid, SIGKILL) < 0)
		kill(pid, SIGKILL);
	r = proc_wait(pid, 5000, &status);
	return r == 1 ? status : -1;
}

void proc_status_describe(int status, char *out, size_t outlen)
{
	if (WIFEXITED(status))
		snprintf(out, outlen, "exited with status %d",
			 WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(out, outlen, "killed by signal %d (%s)",
			 WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(out, outlen, "ended with wait status %#x", status);
}

/* Reads what is available on fd into b, keeping at most max bytes when
 * keep_head is set (the rest is read and dropped). Returns 1 at EOF, 0
 * when more may come, -1 when b would pass max and !keep_head. */
static int proc_drain(int fd, struct buf *b, size_t max, int keep_head)
{
	char chunk[PROC_READ_CHUNK];
	ssize_t n = read(fd, chunk, sizeof(chunk));

	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : 1;
	if (n == 0)
		return 1;
	if (keep_head) {
		size_t room = max > b->len ? max - b->len : 0;

		if (room > 0)
			buf_append(b, chunk,
				   (size_t)n < room ? (size_t)n : room);
		return 0;
	}
	return buf_append(b, chunk, (size_t)n) < 0 ? -1 : 0;
}

int proc_run_capture(const struct proc_opts *o, size_t out_max, size_t err_max,
		     volatile sig_atomic_t *stop, struct proc_capture *cap,
		     char *err, size_t errlen)
{
	struct proc_opts so = *o;
	int outp[2] = {-1, -1}, errp[2] = {-1, -1};
	pid_t pid = -1;
	int ret = -1, exited = 0;

	memset(cap, 0, sizeof(*cap));
	buf_init(&cap->out, out_max);
	buf_init(&cap->err, 0);
	if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "%s: cannot create a pipe: %s",
			 o->argv[0], strerror(errno));
		goto out;
	}
	so.out_fd = outp[1];
	so.err_fd = errp[1];
	if (proc_spawn(&so, &pid, err, errlen) < 0)
		goto out;
	close(outp[1]);
	close(errp[1]);
	outp[1] = errp[1] = -1;
	fcntl(outp[0], F_SETFL, O_NONBLOCK);
	fcntl(errp[0], F_SETFL, O_NONBLOCK);
	while (outp[0] >= 0 || errp[0] >= 0) {
		struct pollfd pfd[2];
		int n = 0, r, i;

		if (stop != NULL && *stop) {
			cap->status = proc_stop(pid, 1000);
			cap->stopped = 1;
			pid = -1;
			ret = 0;
			goto out;
		}
		if (outp[0] >= 0) {
			pfd[n].fd = outp[0];
			pfd[n].events = POLLIN;
			n++;
		}
		if (errp[0] >= 0) {
			pfd[n].fd = errp[0];
			pfd[n].events = POLLIN;
			n++;
		}
		r = poll(pfd, (nfds_t)n, PROC_POLL_MS);
		if (r < 0 && errno != EINTR) {
			snprintf(err, errlen, "poll: %s", strerror(errno));
			goto out;
		}
		if (r <= 0) {
			/* A grandchild may hold the pipes open after the
			 * child is gone: do not wait for its EOF. */
			if (!exited && proc_wait(pid, 0, &cap->status) == 1) {
				exited = 1;
				pid = -1;
			} else if (exited) {
				break;
			}
			continue;
		}
		for (i = 0; i < n; i++) {
			int *fdp, done;

			if (pfd[i].revents == 0)
				continue;
			fdp = pfd[i].fd == outp[0] ? &outp[0] : &errp[0];
			if (fdp == &outp[0])
				done = proc_drain(*fdp, &cap->out, out_max, 0);
			else
				done = proc_drain(*fdp, &cap->err, err_max, 1);
			if (done < 0) {
				snprintf(err, errlen,
					 "%s: output larger than %zu MiB",
					 o->argv[0], out_max >> 20);
				errno = EFBIG;
				goto out;
			}
			if (done > 0) {
				close(*fdp);
				*fdp = -1;
			}
		}
	}
	if (!exited) {
		while (proc_wait(pid, PROC_POLL_MS, &cap->status) == 0) {
			if (stop != NULL && *stop) {
				cap->status = proc_stop(pid, 1000);
				cap->stopped = 1;
				break;
			}
		}
		pid = -1;
	}
	ret = 0;
out:
	if (pid > 0)
		proc_stop(pid, 1000);
	if (outp[0] >= 0)
		close(outp[0]);
	if (outp[1] >= 0)
		close(outp[1]);
	if (errp[0] >= 0)
		close(errp[0]);
	if (errp[1] >= 0)
		close(errp[1]);
	return ret;
}

void proc_capture_release(struct proc_capture *cap)
{
	buf_release(&cap->out);
	buf_release(&cap->err);
}

int proc_become_subreaper(void)
{
	return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
}

/* Reads the parent pid from /proc/<pid>/stat ("pid (comm) S ppid ..."; the
 * command name may itself hold ')' so parse after the last one). */
static pid_t proc_parent_of(const char *pid)
{
	char path[64], line[512];
	char *p;
	long ppid;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%s/stat", pid);
	f = fopen(path, "re");
	if (f == NULL)
		return -1;
	p = fgets(line, sizeof(line), f);
	fclose(f);
	if (p == NULL)
		return -1;
	p = strrchr(line, ')');
	if (p == NULL || p[1] != ' ' || p[2] == '\0' || p[3] != ' ')
		return -1;
	ppid = strtol(p + 4, NULL, 10);
	return (pid_t)ppid;
}

int proc_kill_children(int limit_ms)
{
	long long deadline = proc_now_ms() + limit_ms;
	pid_t self = getpid();
	int killed = 0;

	for (;;) {
		struct dirent *de;
		int found = 0;
		DIR *d;

		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		d = opendir("/proc");
		if (d == NULL)
			return killed;
		while ((de = readdir(d)) != NULL) {
			char *end;
			long pid = strtol(de->d_name, &end, 10);

			if (*end != '\0' || pid <= 0 || pid == self)
				continue;
			if (proc_parent_of(de->d_name) != self)
				continue;
			found = 1;
			if (kill((pid_t)pid, SIGKILL) == 0)
				killed++;
		}
		closedir(d);
		if (!found)
			return killed;
		/* Reap; orphans of the killed come to us next round. */
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (proc_now_ms() >= deadline)
			return killed;
		proc_sleep_ms(20);
	}
}

/* Whether environ entry e ("NAME=value") sets one of the names in env or
 * extra ("NAME=value" strings). */
static int proc_env_overridden(const char *e, const struct kv *env, size_t nenv,
			     char *const *extra, size_t nextra)
{
	size_t n = strcspn(e, "="), i;

	for (i = 0; i < nenv; i++)
		if (strlen(env[i].key) == n && strncmp(env[i].key, e, n) == 0)
			return 1;
	for (i = 0; i < nextra; i++)
		if (strncmp(extra[i], e, n) == 0 && extra[i][n] == '=')
			return 1;
	return 0;
}

char **proc_envp(const struct kv *env, size_t nenv, char *const *extra,
		      size_t nextra)
{
	size_t n = 0, k = 0, i;
	char **v;

	while (environ[n] != NULL)
		n++;
	v = xcalloc(n + nenv + nextra + 1, sizeof(*v));
	for (i = 0; i < n; i++)
		if (!proc_env_overridden(environ[i], env, nenv, extra, nextra))
			v[k++] = xstrdup(environ[i]);
	for (i = 0; i < nenv; i++)
		v[k++] = xasprintf("%s=%s", env[i].key,
				   env[i].value ? env[i].value : "");
	for (i = 0; i < nextra; i++)
		v[k++] = xstrdup(extra[i]);
	v[k] = NULL;
	return v;
}

void proc_envp_free(char **v)
{
	size_t i;

	for (i = 0; v != NULL && v[i] != NULL; i++)
		free(v[i]);
	free(v);
}
