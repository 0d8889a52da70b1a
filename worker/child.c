/* child.c -- runner processes, their environment and temporary directory
 * (see child.h). */
#include "child.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xmalloc.h"

#define RMTREE_MAX_DEPTH 256

int child_spawn(const struct child_req *req, pid_t *pid, char *err,
		size_t errlen)
{
	posix_spawnattr_t attr;
	posix_spawn_file_actions_t fa;
	sigset_t none, all;
	int rc, first_closed;

	*pid = -1;
	rc = posix_spawnattr_init(&attr);
	if (rc != 0) {
		snprintf(err, errlen, "spawn: %s", strerror(rc));
		return rc;
	}
	rc = posix_spawn_file_actions_init(&fa);
	if (rc != 0) {
		posix_spawnattr_destroy(&attr);
		snprintf(err, errlen, "spawn: %s", strerror(rc));
		return rc;
	}
	/* glibc's posix_spawn blocks every signal between clone and exec
	 * itself; the child then gets an empty mask and every signal at its
	 * default disposition (the worker ignores SIGPIPE, for one). */
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
	if (rc == 0 && req->cwd)
		rc = posix_spawn_file_actions_addchdir_np(&fa, req->cwd);
	if (rc == 0)
		rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null",
						      O_RDONLY, 0);
	if (rc == 0)
		rc = posix_spawn_file_actions_adddup2(&fa, req->out_fd, 1);
	if (rc == 0)
		rc = posix_spawn_file_actions_adddup2(&fa, req->out_fd, 2);
	first_closed = 3;
	if (rc == 0 && req->events_fd >= 0) {
		rc = posix_spawn_file_actions_adddup2(&fa, req->events_fd,
						      CHILD_EVENTS_FD);
		first_closed = CHILD_EVENTS_FD + 1;
	}
	if (rc == 0)
		rc =
		    posix_spawn_file_actions_addclosefrom_np(&fa, first_closed);
	if (rc != 0) {
		snprintf(err, errlen, "spawn: setting up: %s", strerror(rc));
		goto out;
	}
	rc = posix_spawnp(pid, req->argv[0], &fa, &attr, req->argv, req->envp);
	if (rc == ENOENT)
		snprintf(err, errlen, "runner not found: %s", req->argv[0]);
	else if (rc != 0)
		snprintf(err, errlen, "cannot start %s: %s", req->argv[0],
			 strerror(rc));
out:
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (rc != 0)
		*pid = -1;
	return rc;
}

/* --- environment --- */

void env_init(struct env *e, char *const *base)
{
	size_t i;

	memset(e, 0, sizeof(*e));
	for (i = 0; base && base[i]; i++) {
		const char *eq = strchr(base[i], '=');
		char *name;

		if (!eq || eq == base[i])
			continue;
		name = xstrndup(base[i], (size_t)(eq - base[i]));
		env_set(e, name, eq + 1);
		free(name);
	}
}

void env_release(struct env *e)
{
	size_t i;

	for (i = 0; i < e->n; i++)
		free(e->vars[i]);
	free(e->vars);
	memset(e, 0, sizeof(*e));
}

static ssize_t env_find(const struct env *e, const char *name)
{
	size_t i, n = strlen(name);

	for (i = 0; i < e->n; i++) {
		if (strncmp(e->vars[i], name, n) == 0 && e->vars[i][n] == '=')
			return (ssize_t)i;
	}
	return -1;
}

void env_set(struct env *e, const char *name, const char *value)
{
	ssize_t i = env_find(e, name);
	char *var = xasprintf("%s=%s", name, value);

	if (i >= 0) {
		free(e->vars[i]);
		e->vars[i] = var;
		return;
	}
	if (e->n + 2 > e->cap) {
		e->cap = e->cap ? e->cap * 2 : 64;
		e->vars = xreallocarray(e->vars, e->cap, sizeof(*e->vars));
	}
	e->vars[e->n++] = var;
	e->vars[e->n] = NULL;
}

const char *env_get(const struct env *e, const char *name)
{
	ssize_t i = env_find(e, name);

	return i >= 0 ? e->vars[i] + strlen(name) + 1 : NULL;
}

int env_name_ok(const char *name)
{
	return name && name[0] && !strchr(name, '=');
}

char *const *env_vars(struct env *e)
{
	if (!e->vars) {
		e->cap = 1;
		e->vars = xcalloc(1, sizeof(*e->vars));
	}
	return e->vars;
}

/* --- temporary directories --- */

char *child_mkdtemp(const char *prefix, char *err, size_t errlen)
{
	const char *base = getenv("TMPDIR");
	char *path;

	if (!base || base[0] != '/')
		base = "/tmp";
	path = xasprintf("%s/%sXXXXXX", base, prefix);
	if (!mkdtemp(path)) {
		snprintf(err, errlen,
			 "cannot create a temporary directory "
			 "in %s: %s",
			 base, strerror(errno));
		free(path);
		return NULL;
	}
	return path;
}

/* Removes name (relative to the directory at) and, for a directory, what is
 * below. path is the name for messages. */
static int rmtree_at(int at, const char *name, const char *path, int depth,
		     char *err, size_t errlen)
{
	struct dirent *de;
	DIR *dir = NULL;
	char *sub;
	int fd = -1, rc = -1;

	if (unlinkat(at, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM) {
		snprintf(err, errlen, "cannot remove %s: %s", path,
			 strerror(errno));
		return -1;
	}
	if (depth > RMTREE_MAX_DEPTH) {
		snprintf(err, errlen, "cannot remove %s: nested too deep",
			 path);
		return -1;
	}
	/* A test may leave a directory without write or search permission. */
	fchmodat(at, name, 0700, 0);
	fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path,
			 strerror(errno));
		goto out;
	}
	dir = fdopendir(fd);
	if (!dir) {
		snprintf(err, errlen, "cannot read %s: %s", path,
			 strerror(errno));
		close(fd);
		goto out;
	}
	/* Entries are removed while reading; readdir copes with that. */
	for (;;) {
		de = readdir(dir);
		if (!de)
			break;
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		sub = xasprintf("%s/%s", path, de->d_name);
		rc = rmtree_at(fd, de->d_name, sub, depth + 1, err, errlen);
		free(sub);
		if (rc < 0)
			goto out;
	}
	if (unlinkat(at, name, AT_REMOVEDIR) < 0 && errno != ENOENT) {
		snprintf(err, errlen, "cannot remove %s: %s", path,
			 strerror(errno));
		rc = -1;
		goto out;
	}
	rc = 0;
out:
	if (dir)
		closedir(dir);
	return rc;
}

int child_rmtree(const char *path, char *err, size_t errlen)
{
	return rmtree_at(AT_FDCWD, path, path, 0, err, errlen);
}
