/* test_artifacts.c -- a task's artifacts folder, listed on a real
 * directory: nested files with their bytes, symbolic links not followed
 * (a link to /etc/passwd, a link to a folder), a fifo, the per-task cap
 * for Redis (smallest files first; the rest "not kept" without an upload
 * URL, handed to the uploader with one), more than 1000 files, folders
 * nested too deep, paths too long, names that are not printable UTF-8;
 * then the uploader's argv, the reading of its output ("ok", "error",
 * noise lines, missing lines and the reason they are missing), and the
 * records copied into a result. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "artifacts.h"
#include "child.h"
#include "proto.h"
#include "xmalloc.h"

static char *dir; /* the artifacts folder of one test */
static char *top; /* its parent, removed on teardown */

static int setup(void **state)
{
	char tmpl[] = "/tmp/tfw-test-artifacts-XXXXXX";

	(void)state;
	if (mkdtemp(tmpl) == NULL)
		return -1;
	top = xstrdup(tmpl);
	dir = xasprintf("%s/artifacts", top);
	return mkdir(dir, 0700);
}

static int teardown(void **state)
{
	char err[256];
	int rc;

	(void)state;
	rc = child_rmtree(top, err, sizeof(err));
	if (rc < 0)
		fprintf(stderr, "teardown: %s\n", err);
	free(dir);
	free(top);
	return rc;
}

/* ---- building the folder ---- */

/* Creates dir/rel (and the folders above it) holding n bytes: text
 * repeated. */
static void put_file(const char *rel, const char *text, size_t n)
{
	char *path = xasprintf("%s/%s", dir, rel), *p;
	size_t off = 0, tl = strlen(text);
	int fd;

	for (p = path + strlen(dir) + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0700) < 0 && errno != EEXIST)
			fail_msg("mkdir %s: %s", path, strerror(errno));
		*p = '/';
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		fail_msg("open %s: %s", path, strerror(errno));
	while (off < n) {
		size_t chunk = tl;

		if (chunk > n - off)
			chunk = n - off;
		assert_int_equal(write(fd, text, chunk), (ssize_t)chunk);
		off += chunk;
	}
	close(fd);
	free(path);
}

static void put_text(const char *rel, const char *text)
{
	put_file(rel, text, strlen(text));
}

static void put_dir(const char *rel)
{
	char *path = xasprintf("%s/%s", dir, rel);

	if (mkdir(path, 0700) < 0)
		fail_msg("mkdir %s: %s", path, strerror(errno));
	free(path);
}

static void put_symlink(const char *rel, const char *target)
{
	char *path = xasprintf("%s/%s", dir, rel);

	if (symlink(target, path) < 0)
		fail_msg("symlink %s: %s", path, strerror(errno));
	free(path);
}

static struct artifacts_conf conf_inline(uint64_t max)
{
	struct artifacts_conf c = {.inline_max = max,
				   .upload_url = NULL,
				   .uploader = NULL,
				   .upload_tries = 5,
				   .upload_timeout_s = 300};
	return c;
}

static struct artifacts_conf conf_upload(uint64_t max)
{
	struct artifacts_conf c = conf_inline(max);

	c.upload_url = "http://127.0.0.1:9/store?sig=secret";
	c.uploader = "/opt/tf/bin/testfleet-upload";
	return c;
}

static void collect_ok(const struct artifacts_conf *c, struct artifacts *a)
{
	char err[512] = "";

	if (artifacts_collect(dir, c, a, err, sizeof(err)) != 0)
		fail_msg("artifacts_collect: %s", err);
}

/* The record of path, or a failure. */
static struct artifact_file *find(struct artifacts *a, const char *path)
{
	size_t i;

	for (i = 0; i < a->n; i++)
		if (strcmp(a->v[i].rec.path, path) == 0)
			return &a->v[i];
	fail_msg("no record of \"%s\" among %zu", path, a->n);
	return NULL;
}

static void assert_inline(struct artifacts *a, const char *path,
			  const char *bytes, size_t n)
{
	struct artifact_file *f = find(a, path);

	if (f->rec.error != NULL)
		fail_msg("%s: error \"%s\"", path, f->rec.error);
	assert_null(f->rec.url);
	assert_int_equal(f->upload, 0);
	assert_int_equal(f->rec.size, n);
	assert_non_null(f->data);
	assert_memory_equal(f->data, bytes, n);
}

static void assert_not_kept(struct artifacts *a, const char *path,
			    const char *why)
{
	struct artifact_file *f = find(a, path);

	if (f->rec.error == NULL || strstr(f->rec.error, why) == NULL)
		fail_msg("%s: error \"%s\", want \"%s\"", path,
			 f->rec.error ? f->rec.error : "(none)", why);
	assert_null(f->data);
	assert_int_equal(f->upload, 0);
	assert_null(f->rec.url);
}

/* ---- collecting ---- */

static void test_nested_files(void **state)
{
	struct artifacts_conf c = conf_inline(ARTIFACTS_DEFAULT_INLINE);
	struct artifacts a;
	size_t i;

	(void)state;
	put_text("z.txt", "last");
	put_text("a.txt", "abc");
	put_text("test-results/login-chromium/trace.zip", "PK\x03\x04zip");
	put_text("test-results/login-chromium/shots/1.png", "\x89PNG");
	put_file("empty.log", "", 0);
	put_dir("test-results/empty-folder");
	put_text("\xc3\xbc ber/\xe2\x9c\x93 ok.txt", "utf8 name");
	collect_ok(&c, &a);
	assert_int_equal(a.n, 6);
	/* Sorted by path, byte order. */
	for (i = 1; i < a.n; i++)
		assert_true(strcmp(a.v[i - 1].rec.path, a.v[i].rec.path) < 0);
	assert_string_equal(a.v[0].rec.path, "a.txt");
	assert_string_equal(a.v[a.n - 1].rec.path,
			    "\xc3\xbc ber/\xe2\x9c\x93 ok.txt");
	assert_inline(&a, "a.txt", "abc", 3);
	assert_inline(&a, "z.txt", "last", 4);
	assert_inline(&a, "test-results/login-chromium/trace.zip",
		      "PK\x03\x04zip", 7);
	assert_inline(&a, "test-results/login-chromium/shots/1.png", "\x89PNG",
		      4);
	assert_inline(&a, "empty.log", "", 0);
	assert_inline(&a, "\xc3\xbc ber/\xe2\x9c\x93 ok.txt", "utf8 name", 9);
	assert_int_equal(a.inline_bytes, 3 + 4 + 7 + 4 + 0 + 9);
	assert_int_equal(a.nupload, 0);
	/* An empty folder is no artifact. */
	for (i = 0; i < a.n; i++)
		assert_null(strstr(a.v[i].rec.path, "empty-folder"));
	artifacts_release(&a);
	assert_int_equal(a.n, 0);
	assert_null(a.v);
}

static void test_empty_and_missing(void **state)
{
	struct artifacts_conf c = conf_inline(ARTIFACTS_DEFAULT_INLINE);
	struct artifacts a;
	char err[512] = "", *gone, *file;

	(void)state;
	collect_ok(&c, &a);
	assert_int_equal(a.n, 0);
	assert_null(a.v);
	assert_null(artifacts_upload_argv(&a, &c, dir, "r", "t", 1));
	artifacts_release(&a);

	/* The runner removed the folder: nothing, and no error. */
	gone = xasprintf("%s/never-made", top);
	assert_int_equal(artifacts_collect(gone, &c, &a, err, sizeof(err)), 0);
	assert_int_equal(a.n, 0);
	artifacts_release(&a);
	free(gone);

	/* Something else than a folder: an error naming it. */
	put_text("plain", "x");
	file = xasprintf("%s/plain", dir);
	assert_int_equal(artifacts_collect(file, &c, &a, err, sizeof(err)), -1);
	assert_non_null(strstr(err, file));
	assert_non_null(strstr(err, strerror(ENOTDIR)));
	assert_int_equal(a.n, 0);
	artifacts_release(&a);
	free(file);
}

static void test_symlinks_not_followed(void **state)
{
	struct artifacts_conf c = conf_inline(ARTIFACTS_DEFAULT_INLINE);
	struct artifacts a;
	struct artifact_file *f;
	size_t i;

	(void)state;
	put_text("real/inside.txt", "inside");
	put_symlink("passwd", "/etc/passwd");
	put_symlink("real/dangling", "/nonexistent/x");
	/* A link to a folder, inside and outside: never walked into. */
	put_symlink("again", "real");
	put_symlink("etc", "/etc");
	collect_ok(&c, &a);
	assert_int_equal(a.n, 5);
	assert_inline(&a, "real/inside.txt", "inside", 6);
	assert_not_kept(&a, "passwd", "a symbolic link: not followed");
	assert_not_kept(&a, "real/dangling", "a symbolic link");
	assert_not_kept(&a, "again", "a symbolic link");
	assert_not_kept(&a, "etc", "a symbolic link");
	f = find(&a, "passwd");
	assert_int_equal(f->rec.size, 0);
	for (i = 0; i < a.n; i++) {
		assert_null(strstr(a.v[i].rec.path, "again/"));
		assert_null(strstr(a.v[i].rec.path, "etc/"));
	}
	/* Nothing of /etc/passwd was read. */
	assert_int_equal(a.inline_bytes, 6);
	artifacts_release(&a);
}

static void test_fifo(void **state)
{
	struct artifacts_conf c = conf_inline(ARTIFACTS_DEFAULT_INLINE);
	struct artifacts a;
	char *fifo = xasprintf("%s/pipe", dir);

	(void)state;
	/* Opening a fifo for reading would block: it must not be opened. */
	assert_int_equal(mkfifo(fifo, 0600), 0);
	put_text("ok.txt", "fine");
	collect_ok(&c, &a);
	assert_int_equal(a.n, 2);
	assert_not_kept(&a, "pipe", "not a regular file: not kept");
	assert_inline(&a, "ok.txt", "fine", 4);
	artifacts_release(&a);
	free(fifo);
}

/* Files of 10, 20, 30, 40 bytes (and an empty one) under caps. */
static void put_sizes(void)
{
	put_file("d10", "a", 10);
	put_file("c20", "b", 20);
	put_file("b30", "c", 30);
	put_file("a40", "d", 40);
	put_file("e0", "", 0);
}

static void test_cap_smallest_first(void **state)
{
	struct artifacts_conf c = conf_inline(60);
	struct artifacts a;
	char buf[64];

	(void)state;
	put_sizes();
	collect_ok(&c, &a);
	assert_int_equal(a.n, 5);
	memset(buf, 'a', 10);
	assert_inline(&a, "d10", buf, 10);
	memset(buf, 'b', 20);
	assert_inline(&a, "c20", buf, 20);
	/* 30 fits exactly in what is left (60 - 10 - 20). */
	memset(buf, 'c', 30);
	assert_inline(&a, "b30", buf, 30);
	assert_inline(&a, "e0", "", 0);
	assert_not_kept(&a, "a40",
			"not kept: 40 bytes does not fit in the worker's 60 "
			"bytes per task for Redis (start workers with "
			"--artifacts-url to upload large files)");
	assert_int_equal(find(&a, "a40")->rec.size, 40);
	assert_int_equal(a.inline_bytes, 60);
	assert_int_equal(a.nupload, 0);
	assert_null(artifacts_upload_argv(&a, &c, dir, "r", "t", 1));
	artifacts_release(&a);

	/* A smaller file after a larger one that did not fit still goes. */
	c = conf_inline(45);
	collect_ok(&c, &a);
	assert_null(find(&a, "d10")->rec.error);
	assert_null(find(&a, "c20")->rec.error);
	assert_non_null(find(&a, "b30")->rec.error);
	assert_non_null(find(&a, "a40")->rec.error);
	assert_int_equal(a.inline_bytes, 30);
	artifacts_release(&a);

	/* 0: nothing but empty files in Redis. */
	c = conf_inline(0);
	collect_ok(&c, &a);
	assert_inline(&a, "e0", "", 0);
	assert_not_kept(&a, "d10",
			"10 bytes does not fit in the worker's "
			"0 bytes per task");
	assert_int_equal(a.inline_bytes, 0);
	artifacts_release(&a);
}

static void test_cap_sizes_in_messages(void **state)
{
	struct artifacts_conf c = conf_inline(1024);
	struct artifacts a;

	(void)state;
	put_file("trace.zip", "z", 3 * 1024 * 1024 / 2);
	put_file("shot.png", "p", 2048);
	collect_ok(&c, &a);
	assert_not_kept(&a, "trace.zip",
			"1.5 MiB does not fit in the "
			"worker's 1.0 KiB per task");
	assert_not_kept(&a, "shot.png", "2.0 KiB does not fit");
	assert_int_equal(find(&a, "trace.zip")->rec.size, 3 * 1024 * 1024 / 2);
	artifacts_release(&a);
}

static void test_cap_with_upload(void **state)
{
	struct artifacts_conf c = conf_upload(35);
	struct artifacts a;
	struct artifact_file *f;

	(void)state;
	put_sizes();
	put_symlink("link", "/etc/passwd");
	collect_ok(&c, &a);
	assert_int_equal(a.n, 6);
	assert_null(find(&a, "d10")->rec.error);
	assert_non_null(find(&a, "d10")->data);
	assert_non_null(find(&a, "c20")->data);
	f = find(&a, "b30");
	assert_int_equal(f->upload, 1);
	assert_null(f->data);
	assert_null(f->rec.error);
	assert_null(f->rec.url);
	assert_int_equal(find(&a, "a40")->upload, 1);
	/* A link is never uploaded either. */
	assert_not_kept(&a, "link", "a symbolic link");
	assert_int_equal(a.nupload, 2);
	assert_int_equal(a.inline_bytes, 30);
	artifacts_release(&a);

	/* An uploader without a URL (or the reverse) uploads nothing. */
	c = conf_upload(35);
	c.uploader = NULL;
	collect_ok(&c, &a);
	assert_int_equal(a.nupload, 0);
	assert_not_kept(&a, "a40", "does not fit");
	artifacts_release(&a);
	c = conf_upload(35);
	c.upload_url = NULL;
	collect_ok(&c, &a);
	assert_int_equal(a.nupload, 0);
	artifacts_release(&a);
}

static void test_too_many_files(void **state)
{
	struct artifacts_conf c = conf_inline(ARTIFACTS_DEFAULT_INLINE);
	struct artifacts a;
	char name[64];
	size_t i, ok = 0, marked = 0;

	(void)state;
	for (i = 0; i < 600; i++) {
		snprintf(name, sizeof(name), "a/f%04zu", i);
		put_text(name, "x");
		snprintf(name, sizeof(name), "b/f%04zu", i);
		put_text(name, "y");
	}
	collect_ok(&c, &a);
	assert_int_equal(a.n, ARTIFACTS_MAX_FILES + 1);
	for (i = 0; i < a.n; i++) {
		if (a.v[i].rec.error == NULL) {
			ok++;
			assert_non_null(a.v[i].data);
			continue;
		}
		marked++;
		assert_string_equal(a.v[i].rec.path, "(more files)");
		assert_string_equal(a.v[i].rec.error,
				    "more than 1000 files: the rest were not "
				    "kept");
	}
	assert_int_equal(ok, ARTIFACTS_MAX_FILES);
	assert_int_equal(marked, 1);
	assert_int_equal(a.inline_bytes, ARTIFACTS_MAX_FILES);
	artifacts_release(&a);
}

static void test_exactly_the_limit(void **state)
{
	struct artifacts_conf c = conf_inline(ARTIFACTS_DEFAULT_INLINE);
	struct artifacts a;
	char name[64];
	size_t i;

	(void)state;
	for (i = 0; i < ARTIFACTS_MAX_FILES; i++) {
		snprintf(name, sizeof(name), "f%04zu", i);
		put_text(name, "x");
	}
	collect_ok(&c, &a);
	assert_int_equal(a.n, ARTIFACTS_MAX_FILES);
	for (i = 0; i < a.n; i++)
		assert_null(a.v[i].rec.error);
	artifacts_release(&a);
}

static void test_too_deep(void **state)
{
	struct artifacts_conf c = conf_inline(ARTIFACTS_DEFAULT_INLINE);
	struct artifacts a;
	char rel[256] = "", deepest[256] = "", *p;
	int level;

	(void)state;
	/* Folders d1/d2/.../d16, a file in the 15th and in the 16th. */
	for (level = 1; level <= ARTIFACTS_MAX_DEPTH; level++) {
		size_t len = strlen(rel);

		snprintf(rel + len, sizeof(rel) - len, "%sd%d",
			 level > 1 ? "/" : "", level);
		put_dir(rel);
		if (level == ARTIFACTS_MAX_DEPTH - 1) {
			p = xasprintf("%s/f15", rel);
			put_text(p, "fifteen");
			free(p);
		}
		if (level == ARTIFACTS_MAX_DEPTH)
			snprintf(deepest, sizeof(deepest), "%s", rel);
	}
	p = xasprintf("%s/f16", deepest);
	put_text(p, "sixteen");
	free(p);
	collect_ok(&c, &a);
	assert_int_equal(a.n, 2);
	p = xasprintf("%.*s/f15", (int)(strrchr(deepest, '/') - deepest),
		      deepest);
	assert_inline(&a, p, "fifteen", 7);
	free(p);
	assert_not_kept(&a, deepest, "folder nested too deep: not kept");
	artifacts_release(&a);
}

static void test_path_too_long(void **state)
{
	struct artifacts_conf c = conf_inline(ARTIFACTS_DEFAULT_INLINE);
	struct artifacts a;
	char part[256], rel[2048] = "";
	struct artifact_file *f;
	size_t len;
	int level;

	(void)state;
	/* Four parts of 255 bytes and three '/': 1023 bytes, walked; a file
	 * in there is over ARTIFACTS_MAX_PATH. */
	memset(part, 'n', 255);
	part[255] = '\0';
	for (level = 1; level <= 4; level++) {
		len = strlen(rel);
		snprintf(rel + len, sizeof(rel) - len, "%s%s",
			 level > 1 ? "/" : "", part);
		put_dir(rel);
	}
	len = strlen(rel);
	snprintf(rel + len, sizeof(rel) - len, "/ok");
	assert_int_equal(strlen(rel), ARTIFACTS_MAX_PATH + 2);
	put_text(rel, "fits");
	collect_ok(&c, &a);
	assert_int_equal(a.n, 1);
	f = &a.v[0];
	assert_string_equal(f->rec.error, "path too long: not kept");
	/* The path shown is cut to 200 bytes. */
	assert_int_equal(strlen(f->rec.path), 200);
	assert_int_equal(strncmp(f->rec.path, rel, 200), 0);
	assert_null(f->data);
	assert_int_equal(a.inline_bytes, 0);
	artifacts_release(&a);
}

static void test_path_at_the_limit(void **state)
{
	struct artifacts_conf c = conf_inline(ARTIFACTS_DEFAULT_INLINE);
	struct artifacts a;
	char part[256], rel[2048] = "";
	int level;

	(void)state;
	/* 255 + 1 + 255 + 1 + 255 + 1 + 255 = 1022, then "/x": 1024. */
	memset(part, 'm', 255);
	part[255] = '\0';
	for (level = 1; level <= 4; level++) {
		size_t len = strlen(rel);

		snprintf(rel + len, sizeof(rel) - len, "%s%s",
			 level > 1 ? "/" : "", part);
		put_dir(rel);
	}
	assert_int_equal(strlen(rel), 1023);
	/* Cut the last part by one: a sibling folder of 254 bytes. */
	rel[1022] = '\0';
	put_dir(rel);
	snprintf(rel + 1022, sizeof(rel) - 1022, "/x");
	assert_int_equal(strlen(rel), ARTIFACTS_MAX_PATH);
	put_text(rel, "edge");
	collect_ok(&c, &a);
	assert_int_equal(a.n, 1);
	assert_inline(&a, rel, "edge", 4);
	artifacts_release(&a);
}

static void test_names_not_utf8(void **state)
{
	struct artifacts_conf c = conf_inline(ARTIFACTS_DEFAULT_INLINE);
	struct artifacts a;
	size_t i;

	(void)state;
	put_text("bad\xff.txt", "x");
	put_text("over\xc0\xaflong", "x");
	put_text("tab\there", "x");
	put_text("del\x7f", "x");
	put_text("esc\x1b[31m", "x");
	put_text("fine-\xc3\xa9.txt", "ok");
	/* A folder with a bad name is not walked into. */
	put_text("dir\xfe/inner.txt", "x");
	collect_ok(&c, &a);
	assert_int_equal(a.n, 7);
	assert_inline(&a, "fine-\xc3\xa9.txt", "ok", 2);
	/* Invalid bytes are shown as U+FFFD. */
	assert_not_kept(&a, "bad\xef\xbf\xbd.txt",
			"file name is not printable UTF-8: not kept");
	assert_not_kept(&a, "dir\xef\xbf\xbd", "not printable UTF-8");
	for (i = 0; i < a.n; i++) {
		struct artifact_file *f = &a.v[i];

		assert_null(strstr(f->rec.path, "inner.txt"));
		if (strcmp(f->rec.path, "fine-\xc3\xa9.txt") == 0)
			continue;
		if (f->rec.error == NULL ||
		    strstr(f->rec.error, "not printable UTF-8") == NULL)
			fail_msg("\"%s\" kept", f->rec.path);
		/* The record's path is valid UTF-8 (it goes to msgpack and
		 * the JSON report). */
		assert_null(strchr(f->rec.path, '\xff'));
		assert_null(strchr(f->rec.path, '\xfe'));
		assert_null(strstr(f->rec.path, "\xc0\xaf"));
	}
	artifacts_release(&a);
}

/* ---- the uploader ---- */

static void test_upload_argv(void **state)
{
	struct artifacts_conf c = conf_upload(0);
	struct artifacts a;
	char **argv;
	size_t n;

	(void)state;
	put_file("b/trace.zip", "z", 100);
	put_file("a b.png", "p", 50);
	put_file("empty", "", 0);
	c.upload_tries = 3;
	c.upload_timeout_s = 42;
	collect_ok(&c, &a);
	assert_int_equal(a.nupload, 2);
	argv = artifacts_upload_argv(&a, &c, dir, "20261121-0542-k3f9",
				     "t00007", 2);
	assert_non_null(argv);
	for (n = 0; argv[n] != NULL; n++)
		;
	assert_int_equal(n, 11);
	assert_string_equal(argv[0], "/opt/tf/bin/testfleet-upload");
	assert_string_equal(argv[1],
			    "--url=http://127.0.0.1:9/store?sig=secret");
	assert_string_equal(argv[2], "--run=20261121-0542-k3f9");
	assert_string_equal(argv[3], "--task=t00007");
	assert_string_equal(argv[4], "--attempt=2");
	{
		char *want = xasprintf("--dir=%s", dir);

		assert_string_equal(argv[5], want);
		free(want);
	}
	assert_string_equal(argv[6], "--tries=3");
	assert_string_equal(argv[7], "--timeout=42");
	assert_string_equal(argv[8], "--");
	/* The files in path order, as their records. */
	assert_string_equal(argv[9], "a b.png");
	assert_string_equal(argv[10], "b/trace.zip");
	artifacts_argv_free(argv);
	artifacts_argv_free(NULL);
	artifacts_release(&a);
}

/* Four files for the uploader (a, b, c, d: 10 bytes each) around one
 * inline file (e: empty) that takes no line. */
static void collect_four(struct artifacts *a)
{
	struct artifacts_conf c = conf_upload(0);

	put_file("a", "x", 10);
	put_file("b", "x", 10);
	put_file("bb", "", 0);
	put_file("c", "x", 10);
	put_file("d", "x", 10);
	collect_ok(&c, a);
	assert_int_equal(a->nupload, 4);
	assert_int_equal(a->n, 5);
}

static void assert_url(struct artifacts *a, const char *path, const char *url)
{
	struct artifact_file *f = find(a, path);

	if (f->rec.error != NULL)
		fail_msg("%s: error \"%s\"", path, f->rec.error);
	assert_non_null(f->rec.url);
	assert_string_equal(f->rec.url, url);
}

static void assert_error(struct artifacts *a, const char *path,
			 const char *error)
{
	struct artifact_file *f = find(a, path);

	assert_null(f->rec.url);
	if (f->rec.error == NULL || strcmp(f->rec.error, error) != 0)
		fail_msg("%s: error \"%s\", want \"%s\"", path,
			 f->rec.error ? f->rec.error : "(none)", error);
}

static void test_upload_done_lines(void **state)
{
	static const char out[] =
	    "ok http://h/s/r/t/1/a\n"
	    "error PUT http://h/s/r/t/1/b: got 403 after 1 try\n"
	    "ok http://h/s/r/t/1/c\n"
	    "error PUT http://h/s/r/t/1/d: got 503 after 5 tries\n";
	struct artifacts a;

	(void)state;
	collect_four(&a);
	artifacts_upload_done(&a, out, strlen(out), NULL);
	assert_url(&a, "a", "http://h/s/r/t/1/a");
	assert_error(&a, "b", "PUT http://h/s/r/t/1/b: got 403 after 1 try");
	assert_url(&a, "c", "http://h/s/r/t/1/c");
	assert_error(&a, "d", "PUT http://h/s/r/t/1/d: got 503 after 5 tries");
	/* The inline file took no line and is as it was. */
	assert_null(find(&a, "bb")->rec.url);
	assert_null(find(&a, "bb")->rec.error);
	assert_non_null(find(&a, "bb")->data);
	artifacts_release(&a);
}

static void test_upload_done_noise(void **state)
{
	static const char out[] = "* curl: something on stdout\n"
				  "ok http://h/a\n"
				  "\n"
				  "okay this is not a line of the protocol\n"
				  "ok http://h/b\n"
				  "ok \n"
				  "error\n"
				  "ok http://h/c\n"
				  "ok http://h/d\n";
	struct artifacts a;

	(void)state;
	collect_four(&a);
	/* Lines say everything: a failed exit does not undo them. */
	artifacts_upload_done(&a, out, strlen(out),
			      "the uploader exited with status 1");
	assert_url(&a, "a", "http://h/a");
	assert_url(&a, "b", "http://h/b");
	assert_url(&a, "c", "http://h/c");
	assert_url(&a, "d", "http://h/d");
	artifacts_release(&a);
}

static void test_upload_done_missing_lines(void **state)
{
	static const char out[] = "ok http://h/a\n"
				  "error PUT http://h/b: got 500 after 1 try\n"
				  "ok http://h/c"; /* cut: no newline */
	struct artifacts a;

	(void)state;
	/* Missing lines get the reason the uploader failed. */
	collect_four(&a);
	artifacts_upload_done(&a, out, strlen(out),
			      "the uploader was killed by signal 9");
	assert_url(&a, "a", "http://h/a");
	assert_error(&a, "b", "PUT http://h/b: got 500 after 1 try");
	assert_error(&a, "c", "the uploader was killed by signal 9");
	assert_error(&a, "d", "the uploader was killed by signal 9");
	artifacts_release(&a);

	/* No reason: the last line that was not the protocol's says why. */
	collect_four(&a);
	{
		static const char noisy[] =
		    "ok http://h/a\n"
		    "testfleet-upload: TESTFLEET_ARTIFACTS_HEADERS: bad\n";

		artifacts_upload_done(&a, noisy, strlen(noisy), NULL);
	}
	assert_url(&a, "a", "http://h/a");
	assert_error(&a, "b",
		     "testfleet-upload: TESTFLEET_ARTIFACTS_HEADERS: bad");
	assert_error(&a, "d",
		     "testfleet-upload: TESTFLEET_ARTIFACTS_HEADERS: bad");
	artifacts_release(&a);

	/* Nothing at all. */
	collect_four(&a);
	artifacts_upload_done(&a, "", 0, NULL);
	assert_error(&a, "a", "the uploader said nothing about it");
	assert_error(&a, "d", "the uploader said nothing about it");
	artifacts_release(&a);

	/* The uploader never ran (no output buffer at all). */
	collect_four(&a);
	artifacts_upload_done(&a, NULL, 0, "upload timed out");
	assert_error(&a, "a", "upload timed out");
	assert_error(&a, "b", "upload timed out");
	assert_error(&a, "c", "upload timed out");
	assert_error(&a, "d", "upload timed out");
	assert_non_null(find(&a, "bb")->data);
	assert_null(find(&a, "bb")->rec.error);
	artifacts_release(&a);
}

static void test_upload_done_sanitized(void **state)
{
	/* Bytes that are not UTF-8 never reach a record; a NUL inside the
	 * output does not cut it; a long noise line is cut to 300 bytes. */
	static const char out[] = "ok http://h/\xff\x00x\n"
				  "error bad \xc0 byte\n";
	char noise[2000];
	struct artifacts a;

	(void)state;
	collect_four(&a);
	artifacts_upload_done(&a, out, sizeof(out) - 1, "x");
	assert_url(&a, "a", "http://h/\xef\xbf\xbd\xef\xbf\xbdx");
	assert_error(&a, "b", "bad \xef\xbf\xbd byte");
	assert_error(&a, "c", "x");
	artifacts_release(&a);

	collect_four(&a);
	memset(noise, 'n', sizeof(noise) - 1);
	noise[sizeof(noise) - 2] = '\n';
	noise[sizeof(noise) - 1] = '\0';
	artifacts_upload_done(&a, noise, strlen(noise), NULL);
	assert_int_equal(strlen(find(&a, "a")->rec.error), 300);
	artifacts_release(&a);
}

/* ---- into the result ---- */

static void test_to_result(void **state)
{
	struct artifacts_conf c = conf_upload(5);
	struct task_result r;
	struct artifacts a;
	static const char out[] = "ok http://h/s/big\n";
	size_t i;

	(void)state;
	memset(&r, 0, sizeof(r));
	put_file("small", "s", 5);
	put_file("big", "b", 100);
	put_symlink("link", "/etc/passwd");
	collect_ok(&c, &a);
	artifacts_upload_done(&a, out, strlen(out), NULL);
	artifacts_to_result(&a, &r);
	/* The result owns copies: the artifacts can go first. */
	artifacts_release(&a);
	assert_int_equal(r.nartifacts, 3);
	assert_string_equal(r.artifacts[0].path, "big");
	assert_int_equal(r.artifacts[0].size, 100);
	assert_string_equal(r.artifacts[0].url, "http://h/s/big");
	assert_null(r.artifacts[0].error);
	assert_string_equal(r.artifacts[1].path, "link");
	assert_null(r.artifacts[1].url);
	assert_non_null(strstr(r.artifacts[1].error, "symbolic link"));
	assert_string_equal(r.artifacts[2].path, "small");
	assert_int_equal(r.artifacts[2].size, 5);
	assert_null(r.artifacts[2].url);
	assert_null(r.artifacts[2].error);
	for (i = 0; i < r.nartifacts; i++)
		artifact_release(&r.artifacts[i]);
	free(r.artifacts);

	/* Nothing listed: the result stays without artifacts. */
	memset(&r, 0, sizeof(r));
	memset(&a, 0, sizeof(a));
	artifacts_to_result(&a, &r);
	assert_null(r.artifacts);
	assert_int_equal(r.nartifacts, 0);
}

/* The records survive the protocol: what the worker publishes is what
 * the producer reads. */
static void test_result_roundtrip(void **state)
{
	struct artifacts_conf c = conf_upload(4);
	struct task_result r = {.run = "r",
				.task = "t00001",
				.attempt = 2,
				.worker = "w/slot-1",
				.suite = "s",
				.phase = "p",
				.status = TASK_COMPLETED};
	struct task_result d;
	struct artifacts a;
	static const char out[] = "error PUT http://h/x: got 403 after 1 try\n";
	char err[256], *buf;
	size_t len;

	(void)state;
	put_file("in redis", "i", 4);
	put_file("\xc3\xbc/big", "b", 10);
	collect_ok(&c, &a);
	artifacts_upload_done(&a, out, strlen(out), NULL);
	artifacts_to_result(&a, &r);
	artifacts_release(&a);
	proto_encode_task_result(&r, &buf, &len);
	if (proto_decode_task_result(buf, len, &d, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(d.nartifacts, 2);
	assert_string_equal(d.artifacts[0].path, "in redis");
	assert_int_equal(d.artifacts[0].size, 4);
	assert_null(d.artifacts[0].error);
	assert_string_equal(d.artifacts[1].path, "\xc3\xbc/big");
	assert_string_equal(d.artifacts[1].error,
			    "PUT http://h/x: got 403 after 1 try");
	task_result_release(&d);
	free(buf);
	/* r's strings are literals but its artifacts are ours. */
	for (len = 0; len < r.nartifacts; len++)
		artifact_release(&r.artifacts[len]);
	free(r.artifacts);
}

static void test_field(void **state)
{
	char *f;

	(void)state;
	f = artifacts_field("t00001", 2, "test-results/x/trace.zip");
	assert_string_equal(f, "t00001/2/test-results/x/trace.zip");
	free(f);
	f = artifacts_field("t", 4294967295u, "a b");
	assert_string_equal(f, "t/4294967295/a b");
	free(f);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_nested_files),
	    T(test_empty_and_missing),
	    T(test_symlinks_not_followed),
	    T(test_fifo),
	    T(test_cap_smallest_first),
	    T(test_cap_sizes_in_messages),
	    T(test_cap_with_upload),
	    T(test_too_many_files),
	    T(test_exactly_the_limit),
	    T(test_too_deep),
	    T(test_path_too_long),
	    T(test_path_at_the_limit),
	    T(test_names_not_utf8),
	    T(test_upload_argv),
	    T(test_upload_done_lines),
	    T(test_upload_done_noise),
	    T(test_upload_done_missing_lines),
	    T(test_upload_done_sanitized),
	    T(test_to_result),
	    T(test_result_roundtrip),
	    T(test_field),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
