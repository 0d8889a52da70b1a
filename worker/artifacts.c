/* artifacts.c -- a task's artifacts folder, listed and sorted out (see
 * artifacts.h). */
#include "artifacts.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "utf8.h"
#include "xmalloc.h"

struct walk {
	struct artifacts *out;
	size_t cap;
	int truncated; /* ARTIFACTS_MAX_FILES reached */
};

static struct artifact_file *walk_add(struct walk *w, const char *path,
				      uint64_t size, const char *error)
{
	struct artifact_file *f;

	if (w->out->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 16;
		w->out->v = xreallocarray(w->out->v, w->cap, sizeof(*f));
	}
	f = &w->out->v[w->out->n++];
	memset(f, 0, sizeof(*f));
	f->rec.path = xstrdup(path);
	f->rec.size = size;
	f->rec.error = error ? xstrdup(error) : NULL;
	return f;
}

/* A name fit for a record: valid UTF-8, no control characters. */
static int name_ok(const char *name)
{
	size_t len = strlen(name), i, n;

	for (i = 0; i < len; i += n) {
		n = utf8_seqlen((const unsigned char *)name + i, len - i);
		if (n == 0 || (n == 1 && ((unsigned char)name[i] < 0x20 ||
					  name[i] == 0x7f)))
			return 0;
	}
	return 1;
}

static void walk_dir(struct walk *w, int dirfd, const char *prefix,
		     unsigned depth)
{
	struct dirent *de;
	struct stat st;
	DIR *d;

	d = fdopendir(dirfd);
	if (d == NULL) {
		walk_add(w, prefix[0] ? prefix : ".", 0, strerror(errno));
		close(dirfd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		char *path;
		size_t plen;

		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (w->out->n >= ARTIFACTS_MAX_FILES) {
			w->truncated = 1;
			break;
		}
		if (!name_ok(de->d_name)) {
			char *shown = utf8_sanitize(
			    de->d_name, strlen(de->d_name), NULL);

			path = prefix[0] ? xasprintf("%s/%s", prefix, shown)
					 : xstrdup(shown);
			walk_add(w, path, 0,
				 "file name is not printable UTF-8: not kept");
			free(path);
			free(shown);
			continue;
		}
		path = prefix[0] ? xasprintf("%s/%s", prefix, de->d_name)
				 : xstrdup(de->d_name);
		plen = strlen(path);
		if (plen > ARTIFACTS_MAX_PATH) {
			path[utf8_prefix(path, plen, 200)] = '\0';
			walk_add(w, path, 0, "path too long: not kept");
		} else if (fstatat(dirfd, de->d_name, &st,
				   AT_SYMLINK_NOFOLLOW) < 0) {
			walk_add(w, path, 0, strerror(errno));
		} else if (S_ISDIR(st.st_mode)) {
			int fd;

			if (depth + 1 >= ARTIFACTS_MAX_DEPTH) {
				walk_add(w, path, 0,
					 "folder nested too deep: not kept");
			} else if ((fd = openat(dirfd, de->d_name,
						O_RDONLY | O_DIRECTORY |
						    O_NOFOLLOW | O_CLOEXEC)) <
				   0) {
				walk_add(w, path, 0, strerror(errno));
			} else {
				walk_dir(w, fd, path, depth + 1);
			}
		} else if (S_ISLNK(st.st_mode)) {
			walk_add(w, path, 0,
				 "a symbolic link: not followed, not kept");
		} else if (!S_ISREG(st.st_mode)) {
			walk_add(w, path, 0, "not a regular file: not kept");
		} else {
			walk_add(w, path, (uint64_t)st.st_size, NULL);
		}
		free(path);
	}
	closedir(d);
}

static int by_path(const void *a, const void *b)
{
	return strcmp(((const struct artifact_file *)a)->rec.path,
		      ((const struct artifact_file *)b)->rec.path);
}

/* Reads exactly f->rec.size bytes of dir/path; -1 with errno. */
static int read_inline(int dirfd, struct artifact_file *f)
{
	size_t want = (size_t)f->rec.size, got = 0;
	ssize_t n;
	int fd;

	fd = openat(dirfd, f->rec.path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	f->data = xmalloc(want + 1);
	while (got < want) {
		n = read(fd, f->data + got, want - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	/* A file that shrank meanwhile is kept as it was read. */
	f->rec.size = got;
	return 0;
}

static void fmt_bytes(char *dst, size_t n, uint64_t b)
{
	if (b >= (1u << 20))
		snprintf(dst, n, "%.1f MiB", (double)b / (1u << 20));
	else if (b >= 1024)
		snprintf(dst, n, "%.1f KiB", (double)b / 1024);
	else
		snprintf(dst, n, "%llu bytes", (unsigned long long)b);
}

int artifacts_collect(const char *dir, const struct artifacts_conf *c,
		      struct artifacts *out, char *err, size_t errlen)
{
	struct walk w;
	size_t *order = NULL, i, j;
	uint64_t left = c->inline_max;
	int fd, can_upload = c->upload_url != NULL && c->uploader != NULL;

	memset(out, 0, sizeof(*out));
	memset(&w, 0, sizeof(w));
	w.out = out;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0; /* the runner removed it: nothing left */
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	walk_dir(&w, dup(fd), "", 0);
	if (w.truncated) {
		char msg[96];

		snprintf(msg, sizeof(msg),
			 "more than %d files: the rest were not kept",
			 ARTIFACTS_MAX_FILES);
		walk_add(&w, "(more files)", 0, msg);
	}
	if (out->n > 1)
		qsort(out->v, out->n, sizeof(*out->v), by_path);
	/* Smallest first into the cap: many small screenshots rather than
	 * one large trace, which the uploader takes. */
	order = out->n ? xcalloc(out->n, sizeof(*order)) : NULL;
	for (i = 0, j = 0; i < out->n; i++)
		if (out->v[i].rec.error == NULL)
			order[j++] = i;
	for (i = 1; i < j; i++) {
		size_t k = i, x = order[i];

		while (k > 0 && out->v[order[k - 1]].rec.size >
				    out->v[x].rec.size) {
			order[k] = order[k - 1];
			k--;
		}
		order[k] = x;
	}
	for (i = 0; i < j; i++) {
		struct artifact_file *f = &out->v[order[i]];
		char a[32], b[32];

		if (f->rec.size <= left) {
			if (read_inline(fd, f) == 0) {
				left -= f->rec.size;
				out->inline_bytes += f->rec.size;
			} else {
				f->rec.error = xstrdup(strerror(errno));
			}
			continue;
		}
		if (can_upload) {
			f->upload = 1;
			out->nupload++;
			continue;
		}
		fmt_bytes(a, sizeof(a), f->rec.size);
		fmt_bytes(b, sizeof(b), c->inline_max);
		f->rec.error = xasprintf(
		    "not kept: %s does not fit in the worker's %s per task "
		    "for Redis (start workers with --artifacts-url to upload "
		    "large files)",
		    a, b);
	}
	free(order);
	close(fd);
	return 0;
}

char **artifacts_upload_argv(const struct artifacts *a,
			     const struct artifacts_conf *c, const char *dir,
			     const char *run, const char *task,
			     uint32_t attempt)
{
	char **argv;
	size_t i, n = 0;

	if (a->nupload == 0)
		return NULL;
	argv = xcalloc(16 + a->nupload, sizeof(*argv));
	argv[n++] = xstrdup(c->uploader);
	argv[n++] = xasprintf("--url=%s", c->upload_url);
	argv[n++] = xasprintf("--run=%s", run);
	argv[n++] = xasprintf("--task=%s", task);
	argv[n++] = xasprintf("--attempt=%u", attempt);
	argv[n++] = xasprintf("--dir=%s", dir);
	argv[n++] = xasprintf("--tries=%u", c->upload_tries);
	argv[n++] = xasprintf("--timeout=%u", c->upload_timeout_s);
	argv[n++] = xstrdup("--");
	for (i = 0; i < a->n; i++)
		if (a->v[i].upload)
			argv[n++] = xstrdup(a->v[i].rec.path);
	argv[n] = NULL;
	return argv;
}

void artifacts_argv_free(char **argv)
{
	size_t i;

	if (argv == NULL)
		return;
	for (i = 0; argv[i] != NULL; i++)
		free(argv[i]);
	free(argv);
}

void artifacts_upload_done(struct artifacts *a, const char *out, size_t len,
			   const char *failed)
{
	const char *p = out, *end = out + len, *nl;
	char *other = NULL; /* the last line that is neither: a diagnostic */
	size_t i, llen;

	for (i = 0; i < a->n; i++) {
		struct artifact_file *f = &a->v[i];

		if (!f->upload)
			continue;
		for (;;) {
			nl = p && p < end ? memchr(p, '\n', (size_t)(end - p))
					  : NULL;
			if (nl == NULL)
				break;
			llen = (size_t)(nl - p);
			if (llen > 3 && memcmp(p, "ok ", 3) == 0) {
				f->rec.url = utf8_sanitize(p + 3, llen - 3,
							   NULL);
			} else if (llen > 6 && memcmp(p, "error ", 6) == 0) {
				f->rec.error = utf8_sanitize(p + 6, llen - 6,
							     NULL);
			} else {
				free(other);
				other = utf8_sanitize(
				    p, llen > 300 ? 300 : llen, NULL);
				p = nl + 1;
				continue;
			}
			p = nl + 1;
			break;
		}
		if (f->rec.url == NULL && f->rec.error == NULL)
			f->rec.error = xstrdup(
			    failed ? failed
			    : other ? other
				    : "the uploader said nothing about it");
	}
	free(other);
}

void artifacts_to_result(const struct artifacts *a, struct task_result *r)
{
	size_t i;

	if (a->n == 0)
		return;
	r->artifacts = xcalloc(a->n, sizeof(*r->artifacts));
	r->nartifacts = a->n;
	for (i = 0; i < a->n; i++) {
		const struct artifact *s = &a->v[i].rec;
		struct artifact *d = &r->artifacts[i];

		d->path = xstrdup(s->path);
		d->size = s->size;
		d->url = s->url ? xstrdup(s->url) : NULL;
		d->error = s->error ? xstrdup(s->error) : NULL;
	}
}

char *artifacts_field(const char *task, uint32_t attempt, const char *path)
{
	return xasprintf("%s/%u/%s", task, attempt, path);
}

void artifacts_release(struct artifacts *a)
{
	size_t i;

	for (i = 0; i < a->n; i++) {
		artifact_release(&a->v[i].rec);
		free(a->v[i].data);
	}
	free(a->v);
	memset(a, 0, sizeof(*a));
}
