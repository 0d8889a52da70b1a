/* warm.c -- pytest tasks forked from a zygote that imported pytest once
 * (see warm.h). */
#include "warm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "sha1.h"
#include "xmalloc.h"

/* The first answer of a zygote waits for Python to start and import
 * pytest; later ones only for two forks. */
#define WARM_FIRST_ANSWER_MS 60000
#define WARM_ANSWER_MS 10000
#define WARM_SEND_TIMEOUT_S 10
#define WARM_SCRIPT_HEAD 4096
#define WARM_ANSWER_MAX 512

struct zygote {
	pid_t pid; /* -1: none */
	int fd;	   /* the worker's end of its socket */
	unsigned char key[SHA1_DIGEST_LEN];
	unsigned long long used; /* for least recently used */
	int answered;		 /* its imports are done */
};

struct warm {
	char *interp[2];	/* interpreter and its one "#!" argument */
	size_t ninterp;
	char *argv0;		/* the script, or the interpreter for -m */
	int module;		/* "PYTHON -m pytest" */
	size_t skip;		/* leading argv words the zygote replaces */
	char *zygote_path;
	char *desc;
	struct zygote z[WARM_MAX_ZYGOTES];
	unsigned long long tick;
	unsigned failures;
	int off;
};

/* --- what the pytest command is --- */

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

static int is_python(const char *path)
{
	return strncmp(base_name(path), "python", 6) == 0;
}

/* name's absolute path: itself when it has a '/' and is absolute, else
 * the first executable file in $PATH. NULL when there is none. */
static char *find_program(const char *name)
{
	const char *path = getenv("PATH"), *p, *colon;
	struct stat st;
	char *cand;
	size_t n;

	if (strchr(name, '/'))
		return name[0] == '/' ? xstrdup(name) : NULL;
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path;; p = colon + 1) {
		colon = strchr(p, ':');
		n = colon ? (size_t)(colon - p) : strlen(p);
		if (n > 0 && p[0] == '/') {
			cand = xasprintf("%.*s/%s", (int)n, p, name);
			if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) &&
			    access(cand, X_OK) == 0)
				return cand;
			free(cand);
		}
		if (!colon)
			return NULL;
	}
}

/* Reads the "#!" line and the head of script into w->interp; 0, or -1
 * with the reason. */
static int read_script(struct warm *w, const char *script, char *why,
		       size_t whylen)
{
	char head[WARM_SCRIPT_HEAD + 1], *line_end, *body, *p, *interp;
	char *arg = NULL;
	ssize_t n;
	int fd;

	fd = open(script, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, whylen, "%s: %s", script, strerror(errno));
		return -1;
	}
	n = read(fd, head, WARM_SCRIPT_HEAD);
	close(fd);
	if (n < 2 || head[0] != '#' || head[1] != '!') {
		snprintf(why, whylen, "%s is not a script", script);
		return -1;
	}
	head[n] = '\0';
	line_end = strchr(head, '\n');
	if (!line_end) {
		snprintf(why, whylen, "%s: \"#!\" line too long", script);
		return -1;
	}
	*line_end = '\0';
	body = line_end + 1;
	for (p = head + 2; *p == ' ' || *p == '\t'; p++)
		;
	interp = p;
	p += strcspn(p, " \t\r");
	if (*p) {
		*p++ = '\0';
		p += strspn(p, " \t");
		if (*p) {
			arg = p;
			p = arg + strlen(arg);
			while (p > arg && (p[-1] == ' ' || p[-1] == '\t' ||
					   p[-1] == '\r'))
				*--p = '\0';
		}
	}
	if (strcmp(base_name(interp), "env") == 0) {
		/* "#!/usr/bin/env python3": one plain program name. */
		if (!arg || arg[0] == '-' || strpbrk(arg, " \t")) {
			snprintf(why, whylen, "%s: unsupported \"#!\" line",
				 script);
			return -1;
		}
		w->interp[0] = find_program(arg);
		if (!w->interp[0]) {
			snprintf(why, whylen, "%s: %s not found in PATH",
				 script, arg);
			return -1;
		}
		arg = NULL;
	} else {
		w->interp[0] = xstrdup(interp);
	}
	w->ninterp = 1;
	if (arg)
		w->interp[w->ninterp++] = xstrdup(arg);
	if (!is_python(w->interp[0])) {
		snprintf(why, whylen, "%s runs %s, not python", script,
			 w->interp[0]);
		return -1;
	}
	if (!strstr(body, "console_main") &&
	    !strstr(body, "from pytest import main")) {
		snprintf(why, whylen,
			 "%s does not call pytest's console_main or main",
			 script);
		return -1;
	}
	return 0;
}

struct warm *warm_new(char *const *pytest, size_t npytest,
		      const char *plugin_dir, char *why, size_t whylen)
{
	struct warm *w;
	unsigned i;

	if (npytest == 0 || !plugin_dir) {
		snprintf(why, whylen, "no pytest command or plugin folder");
		return NULL;
	}
	w = xcalloc(1, sizeof(*w));
	for (i = 0; i < WARM_MAX_ZYGOTES; i++) {
		w->z[i].pid = -1;
		w->z[i].fd = -1;
	}
	w->zygote_path = xasprintf("%s/%s", plugin_dir, WARM_ZYGOTE_FILE);
	if (access(w->zygote_path, R_OK) < 0) {
		snprintf(why, whylen, "%s: %s", w->zygote_path,
			 strerror(errno));
		goto fail;
	}
	if (npytest >= 3 && strcmp(pytest[1], "-m") == 0 &&
	    strcmp(pytest[2], "pytest") == 0) {
		if (!is_python(pytest[0])) {
			snprintf(why, whylen, "%s is not python", pytest[0]);
			goto fail;
		}
		w->interp[0] = find_program(pytest[0]);
		if (!w->interp[0]) {
			snprintf(why, whylen, "%s not found", pytest[0]);
			goto fail;
		}
		w->ninterp = 1;
		w->argv0 = xstrdup(w->interp[0]);
		w->module = 1;
		w->skip = 3;
	} else {
		w->argv0 = find_program(pytest[0]);
		if (!w->argv0) {
			snprintf(why, whylen,
				 "%s not found, or a relative path", pytest[0]);
			goto fail;
		}
		if (read_script(w, w->argv0, why, whylen) < 0)
			goto fail;
		w->skip = 1;
	}
	w->desc = w->module ? xasprintf("%s -m pytest", w->interp[0])
			    : xasprintf("%s%s%s running %s", w->interp[0],
					w->ninterp > 1 ? " " : "",
					w->ninterp > 1 ? w->interp[1] : "",
					w->argv0);
	return w;
fail:
	warm_free(w);
	return NULL;
}

static void zygote_close(struct zygote *z, int kill_it)
{
	int st;

	if (z->fd >= 0)
		close(z->fd);
	z->fd = -1;
	if (z->pid > 0 && kill_it) {
		kill(z->pid, SIGKILL);
		while (waitpid(z->pid, &st, 0) < 0 && errno == EINTR)
			;
	}
	/* Otherwise, with its socket closed, it exits by itself and the
	 * worker reaps it as any stray child. */
	z->pid = -1;
	z->answered = 0;
}

void warm_free(struct warm *w)
{
	unsigned i;

	if (!w)
		return;
	for (i = 0; i < WARM_MAX_ZYGOTES; i++)
		zygote_close(&w->z[i], 1);
	free(w->interp[0]);
	free(w->interp[1]);
	free(w->argv0);
	free(w->zygote_path);
	free(w->desc);
	free(w);
}

const char *warm_describe(const struct warm *w)
{
	return w->desc;
}

unsigned warm_live_zygotes(const struct warm *w)
{
	unsigned i, n = 0;

	for (i = 0; w && i < WARM_MAX_ZYGOTES; i++)
		n += w->z[i].pid > 0;
	return n;
}

int warm_enabled(const struct warm *w)
{
	return w && !w->off;
}

/* --- zygotes --- */

/* Per task, not part of the start-up environment. */
static int per_task_var(const char *var)
{
	return strncmp(var, "TESTFLEET_", 10) == 0 ||
	       strncmp(var, "TMPDIR=", 7) == 0;
}

static void start_key(const struct child_req *req,
		      unsigned char key[SHA1_DIGEST_LEN])
{
	struct sha1 s;
	const char *cwd;
	size_t i;

	/* The cwd too: "python -m pytest" puts it first in sys.path, and a
	 * relative PYTHONPATH entry means a folder below it. */
	sha1_init(&s);
	cwd = req->cwd ? req->cwd : "";
	sha1_update(&s, cwd, strlen(cwd) + 1);
	for (i = 0; req->envp && req->envp[i]; i++) {
		if (!per_task_var(req->envp[i]))
			sha1_update(&s, req->envp[i], strlen(req->envp[i]) + 1);
	}
	sha1_final(&s, key);
}

static void failed(struct warm *w, const char *what)
{
	if (++w->failures >= WARM_MAX_FAILURES && !w->off) {
		w->off = 1;
		log_warn("warm pytest off after %u failures (last: %s); "
			 "pytest tasks start cold from now on",
			 w->failures, what);
	}
}

static int zygote_start(struct warm *w, struct zygote *z,
			const struct child_req *req, char *err, size_t errlen)
{
	struct child_req zr;
	struct timeval tv = {WARM_SEND_TIMEOUT_S, 0};
	char pidstr[32], cerr[256];
	char *argv[8], **envp;
	size_t i, n = 0, k = 0;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		return -1;
	}
	setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	snprintf(pidstr, sizeof(pidstr), "%ld", (long)getpid());
	for (i = 0; i < w->ninterp; i++)
		argv[n++] = w->interp[i];
	argv[n++] = w->zygote_path;
	argv[n++] = pidstr;
	argv[n++] = w->argv0;
	argv[n++] = w->module ? "module" : "script";
	argv[n] = NULL;
	for (i = 0; req->envp && req->envp[i]; i++)
		;
	envp = xcalloc(i + 1, sizeof(*envp));
	for (i = 0; req->envp && req->envp[i]; i++) {
		if (!per_task_var(req->envp[i]))
			envp[k++] = req->envp[i];
	}
	zr.argv = argv;
	zr.envp = envp;
	zr.cwd = req->cwd;
	zr.out_fd = STDERR_FILENO; /* its complaints go to the worker's log */
	zr.events_fd = sv[1];
	if (child_spawn(&zr, &z->pid, cerr, sizeof(cerr)) != 0) {
		snprintf(err, errlen, "zygote: %s", cerr);
		z->pid = -1;
		free(envp);
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	free(envp);
	close(sv[1]);
	z->fd = sv[0];
	z->answered = 0;
	return 0;
}

/* The zygote for req: a live one with its key, or a new one in a free or
 * the least recently used place. */
static struct zygote *zygote_for(struct warm *w, const struct child_req *req,
				 char *err, size_t errlen)
{
	unsigned char key[SHA1_DIGEST_LEN];
	struct zygote *z = NULL;
	unsigned i;

	start_key(req, key);
	for (i = 0; i < WARM_MAX_ZYGOTES; i++) {
		if (w->z[i].pid > 0 &&
		    memcmp(w->z[i].key, key, sizeof(key)) == 0) {
			z = &w->z[i];
			goto found;
		}
	}
	for (i = 0; i < WARM_MAX_ZYGOTES; i++) {
		if (!z || w->z[i].pid <= 0 ||
		    (z->pid > 0 && w->z[i].used < z->used))
			z = &w->z[i];
	}
	/* Not the zygote's fault (and the task fails the same way cold). */
	if (req->cwd && access(req->cwd, X_OK) < 0) {
		snprintf(err, errlen, "cwd %s: %s", req->cwd, strerror(errno));
		return NULL;
	}
	zygote_close(z, 0);
	if (zygote_start(w, z, req, err, errlen) < 0) {
		failed(w, err);
		return NULL;
	}
	memcpy(z->key, key, sizeof(key));
found:
	z->used = ++w->tick;
	return z;
}

static int add_field(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s) + 1);
}

/* The request (docs/protocol.md, "Worker <-> warm pytest"). */
static void build_request(const struct warm *w, const struct child_req *req,
			  struct buf *b)
{
	char num[32];
	uint32_t len;
	size_t i, n;

	buf_append(b, "\0\0\0\0", 4);
	add_field(b, req->cwd ? req->cwd : "");
	for (n = 0; req->argv[w->skip + n]; n++)
		;
	snprintf(num, sizeof(num), "%zu", n);
	add_field(b, num);
	for (i = 0; i < n; i++)
		add_field(b, req->argv[w->skip + i]);
	for (n = 0; req->envp && req->envp[n]; n++)
		;
	snprintf(num, sizeof(num), "%zu", n);
	add_field(b, num);
	for (i = 0; i < n; i++)
		add_field(b, req->envp[i]);
	len = htonl((uint32_t)(b->len - 4));
	memcpy(b->data, &len, 4);
}

static int send_request(int fd, const struct buf *b, const int *fds,
			size_t nfds, char *err, size_t errlen)
{
	union {
		char buf[CMSG_SPACE(3 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct msghdr msg;
	struct cmsghdr *cm;
	struct iovec iov;
	size_t off = 0;
	ssize_t n;

	memset(&msg, 0, sizeof(msg));
	memset(&ctl, 0, sizeof(ctl));
	iov.iov_base = b->data;
	iov.iov_len = b->len;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = ctl.buf;
	msg.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
	do
		n = sendmsg(fd, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		goto fail;
	for (off = (size_t)n; off < b->len; off += (size_t)n) {
		n = send(fd, b->data + off, b->len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n < 0)
			goto fail;
	}
	return 0;
fail:
	snprintf(err, errlen, "zygote: send: %s",
		 errno == EAGAIN ? "timed out" : strerror(errno));
	return -1;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One answer line, NUL-terminated, into line; 0, or -1 with a message. */
static int read_answer(int fd, int wait_ms, char *line, size_t size,
		       char *err, size_t errlen)
{
	long long deadline = now_ms() + wait_ms;
	struct pollfd pfd = {fd, POLLIN, 0};
	size_t len = 0;
	ssize_t n;
	int rc;

	for (;;) {
		long long left = deadline - now_ms();

		if (left <= 0) {
			snprintf(err, errlen, "zygote: no answer in %d ms",
				 wait_ms);
			return -1;
		}
		rc = poll(&pfd, 1, (int)left);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0) {
			snprintf(err, errlen, "zygote: poll: %s",
				 strerror(errno));
			return -1;
		}
		if (rc == 0)
			continue;
		n = read(fd, line + len, size - 1 - len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "zygote: %s",
				 n == 0 ? "exited" : strerror(errno));
			return -1;
		}
		len += (size_t)n;
		line[len] = '\0';
		if (memchr(line, '\n', len)) {
			line[strcspn(line, "\n")] = '\0';
			return 0;
		}
		if (len == size - 1) {
			snprintf(err, errlen, "zygote: answer too long");
			return -1;
		}
	}
}

int warm_spawn(struct warm *w, const struct child_req *req, pid_t *pid,
	       char *err, size_t errlen)
{
	char line[WARM_ANSWER_MAX], *end;
	struct zygote *z;
	struct buf b;
	int fds[3], go[2];
	size_t nfds = 0;
	long n = 0;
	int rc = -1, broken = 1;

	*pid = -1;
	if (!warm_enabled(w)) {
		snprintf(err, errlen, "warm pytest is off");
		return -1;
	}
	z = zygote_for(w, req, err, errlen);
	if (!z)
		return -1;
	/* The task process waits for a "g" on this pipe: one the worker
	 * gave up on (no answer in time) sees it closed and exits, instead
	 * of running beside the cold start that replaces it. */
	if (pipe2(go, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	fds[nfds++] = go[0];
	fds[nfds++] = req->out_fd;
	if (req->events_fd >= 0)
		fds[nfds++] = req->events_fd;
	buf_init(&b, 0);
	build_request(w, req, &b);
	if (send_request(z->fd, &b, fds, nfds, err, errlen) < 0)
		goto out;
	close(go[0]);
	go[0] = -1;
	if (read_answer(z->fd,
			z->answered ? WARM_ANSWER_MS : WARM_FIRST_ANSWER_MS,
			line, sizeof(line), err, errlen) < 0)
		goto out;
	z->answered = 1;
	broken = 0;
	if (strncmp(line, "ok ", 3) == 0) {
		errno = 0;
		n = strtol(line + 3, &end, 10);
		if (errno != 0 || *end != '\0' || n <= 1) {
			snprintf(err, errlen, "zygote: bad answer \"%.100s\"",
				 line);
			broken = 1;
			goto out;
		}
		if (write(go[1], "g", 1) != 1) {
			snprintf(err, errlen, "go pipe: %s", strerror(errno));
			goto out;
		}
		*pid = (pid_t)n;
		rc = 0;
	} else if (strncmp(line, "error ", 6) == 0) {
		/* The zygote is fine; this task could not be forked. */
		snprintf(err, errlen, "zygote: %.400s", line + 6);
	} else {
		snprintf(err, errlen, "zygote: bad answer \"%.100s\"", line);
		broken = 1;
	}
out:
	buf_release(&b);
	if (go[0] >= 0)
		close(go[0]);
	close(go[1]);
	if (rc < 0 && broken) {
		zygote_close(z, 1);
		failed(w, err);
	}
	return rc;
}

int warm_reaped(struct warm *w, pid_t pid, int status)
{
	char what[128];
	unsigned i;

	if (!w || pid <= 0)
		return 0;
	for (i = 0; i < WARM_MAX_ZYGOTES; i++) {
		if (w->z[i].pid != pid)
			continue;
		if (WIFSIGNALED(status))
			snprintf(what, sizeof(what),
				 "zygote %ld killed by signal %d", (long)pid,
				 WTERMSIG(status));
		else
			snprintf(what, sizeof(what),
				 "zygote %ld exited with status %d", (long)pid,
				 WEXITSTATUS(status));
		log_warn("warm pytest: %s", what);
		w->z[i].pid = -1;
		zygote_close(&w->z[i], 0);
		failed(w, what);
		return 1;
	}
	return 0;
}
