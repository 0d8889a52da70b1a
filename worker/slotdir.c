/* slotdir.c -- a slot's temporary directory, reused task after task (see
 * slotdir.h). */
#include "slotdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "child.h"
#include "xmalloc.h"

/* A name safe inside a file name: [A-Za-z0-9._-], others become '_'. */
static char *safe_name(const char *s)
{
	char *out = xstrdup(s);
	char *p;

	for (p = out; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' ||
		      *p == '_'))
			*p = '_';
	}
	return out;
}

void slotdir_init(struct slotdir *d, const char *consumer, unsigned slot)
{
	char *name = safe_name(consumer);

	memset(d, 0, sizeof(*d));
	/* job_dir_pid (job.c) reads this format back. */
	d->prefix = xasprintf("testfleet-%s-s%u-", name, slot);
	free(name);
}

/* Removes what is left of the directory and forgets it. */
static void slotdir_give_up(struct slotdir *d)
{
	char ignored[256];

	child_rmtree(d->path, ignored, sizeof(ignored));
	free(d->path);
	free(d->artifacts);
	d->path = NULL;
	d->artifacts = NULL;
}

const char *slotdir_path(struct slotdir *d, char *err, size_t errlen)
{
	if (d->path) {
		/* One cheap call per task: the directory is still there. */
		if (mkdir(d->artifacts, 0700) == 0 || errno == EEXIST)
			return d->path;
		slotdir_give_up(d);
	}
	d->path = child_mkdtemp(d->prefix, err, errlen);
	if (!d->path)
		return NULL;
	d->artifacts = xasprintf("%s/%s", d->path, SLOTDIR_ARTIFACTS);
	if (mkdir(d->artifacts, 0700) < 0) {
		snprintf(err, errlen, "cannot create %s: %s", d->artifacts,
			 strerror(errno));
		slotdir_give_up(d);
		return NULL;
	}
	return d->path;
}

/* Whether name in the directory at is an empty directory of ours with
 * mode 0700 (then it can stay as it is). */
static int empty_dir_at(int at, const char *name)
{
	struct dirent *de;
	struct stat st;
	DIR *dir;
	int fd, empty = 1;

	fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (fstat(fd, &st) < 0 || (st.st_mode & 07777) != 0700) {
		close(fd);
		return 0;
	}
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return 0;
	}
	while (empty) {
		de = readdir(dir);
		if (!de)
			break;
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			empty = 0;
	}
	closedir(dir);
	return empty;
}

int slotdir_clear(struct slotdir *d, char *err, size_t errlen)
{
	struct dirent *de;
	struct stat st;
	DIR *dir = NULL;
	char *sub;
	int fd, rc = -1, keep = 0;

	if (!d->path)
		return 0;
	fd = open(d->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", d->path,
			 strerror(errno));
		goto out;
	}
	/* A test may have changed the mode of its own TMPDIR. */
	if (fstat(fd, &st) < 0 ||
	    ((st.st_mode & 07777) != 0700 && fchmod(fd, 0700) < 0)) {
		snprintf(err, errlen, "cannot make %s writable: %s", d->path,
			 strerror(errno));
		close(fd);
		goto out;
	}
	dir = fdopendir(fd);
	if (!dir) {
		snprintf(err, errlen, "cannot read %s: %s", d->path,
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
		if (strcmp(de->d_name, SLOTDIR_ARTIFACTS) == 0 &&
		    empty_dir_at(fd, de->d_name)) {
			keep = 1;
			continue;
		}
		sub = xasprintf("%s/%s", d->path, de->d_name);
		rc = child_rmtree(sub, err, errlen);
		free(sub);
		if (rc < 0)
			goto out;
	}
	if (!keep && mkdirat(fd, SLOTDIR_ARTIFACTS, 0700) < 0) {
		snprintf(err, errlen, "cannot create %s: %s", d->artifacts,
			 strerror(errno));
		rc = -1;
		goto out;
	}
	rc = 0;
out:
	if (dir)
		closedir(dir);
	if (rc < 0)
		slotdir_give_up(d);
	return rc;
}

int slotdir_release(struct slotdir *d, char *err, size_t errlen)
{
	int rc = 0;

	if (d->path)
		rc = child_rmtree(d->path, err, errlen);
	free(d->path);
	free(d->artifacts);
	free(d->prefix);
	memset(d, 0, sizeof(*d));
	return rc;
}
