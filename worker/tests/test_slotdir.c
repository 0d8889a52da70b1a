/* test_slotdir.c -- a slot's temporary directory: made on first use with
 * the name the sweep of dead workers reads, the same directory for the
 * next task, emptied in between (files, nested and read-only directories,
 * symbolic links not followed, a replaced or non-empty artifacts/, a
 * changed mode), a new one when it vanished or could not be emptied, and
 * nothing left after release. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "child.h"
#include "slotdir.h"
#include "xmalloc.h"

static char *base; /* a private $TMPDIR for each test */
static char *old_tmpdir;

static int setup(void **state)
{
	char err[256];

	(void)state;
	old_tmpdir = getenv("TMPDIR") ? xstrdup(getenv("TMPDIR")) : NULL;
	unsetenv("TMPDIR");
	base = child_mkdtemp("tfw-test-slotdir-", err, sizeof(err));
	if (!base)
		return -1;
	setenv("TMPDIR", base, 1);
	return 0;
}

static int teardown(void **state)
{
	char err[256];
	int rc;

	(void)state;
	rc = child_rmtree(base, err, sizeof(err));
	free(base);
	if (old_tmpdir)
		setenv("TMPDIR", old_tmpdir, 1);
	else
		unsetenv("TMPDIR");
	free(old_tmpdir);
	return rc;
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	free(path);
}

/* The names in dir, sorted and joined by spaces ("" when empty). */
static char *list_dir(const char *dir)
{
	struct dirent **names;
	size_t len = 0;
	char *out = xstrdup("");
	int n, i;

	n = scandir(dir, &names, NULL, alphasort);
	assert_true(n >= 0);
	for (i = 0; i < n; i++) {
		if (strcmp(names[i]->d_name, ".") != 0 &&
		    strcmp(names[i]->d_name, "..") != 0) {
			char *next = xasprintf("%s%s%s", out, len ? " " : "",
					       names[i]->d_name);

			free(out);
			out = next;
			len = strlen(out);
		}
		free(names[i]);
	}
	free(names);
	return out;
}

/* Only artifacts/, empty, mode 0700, in a directory of mode 0700. */
static void assert_pristine(const char *dir)
{
	struct stat st;
	char *names, *art;

	assert_int_equal(lstat(dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0700);
	names = list_dir(dir);
	assert_string_equal(names, SLOTDIR_ARTIFACTS);
	free(names);
	art = xasprintf("%s/" SLOTDIR_ARTIFACTS, dir);
	assert_int_equal(lstat(art, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0700);
	names = list_dir(art);
	assert_string_equal(names, "");
	free(names);
	free(art);
}

static void test_made_on_first_use(void **state)
{
	struct slotdir d;
	char err[256], *want, *left;
	const char *p;

	(void)state;
	slotdir_init(&d, "h a/1-9", 3);
	/* Nothing is made before a task needs it. */
	assert_null(d.path);
	assert_int_equal(slotdir_clear(&d, err, sizeof(err)), 0);
	p = slotdir_path(&d, err, sizeof(err));
	assert_non_null(p);
	/* The name job_sweep_dead reads the worker's pid from. */
	want = xasprintf("%s/testfleet-h_a_1-9-s3-", base);
	assert_int_equal(strncmp(p, want, strlen(want)), 0);
	assert_int_equal(strlen(p), strlen(want) + 6);
	free(want);
	assert_pristine(p);
	assert_int_equal(slotdir_release(&d, err, sizeof(err)), 0);
	assert_null(d.path);
	left = list_dir(base);
	assert_string_equal(left, "");
	free(left);
}

/* What a task leaves goes; the directory and artifacts/ stay. */
static void test_cleared_between_tasks(void **state)
{
	struct slotdir d;
	struct stat st0, st1, a0, a1;
	char err[256], *p, *sub, *outside, *art, *names;

	(void)state;
	outside = child_mkdtemp("tfw-test-outside-", err, sizeof(err));
	assert_non_null(outside);
	write_file(outside, "keep", "precious");
	slotdir_init(&d, "w-1", 1);
	p = xstrdup(slotdir_path(&d, err, sizeof(err)));
	art = xasprintf("%s/" SLOTDIR_ARTIFACTS, p);
	assert_int_equal(stat(p, &st0), 0);
	assert_int_equal(stat(art, &a0), 0);

	/* An untouched directory is kept as it is. */
	assert_int_equal(slotdir_clear(&d, err, sizeof(err)), 0);
	assert_string_equal(slotdir_path(&d, err, sizeof(err)), p);
	assert_int_equal(stat(art, &a1), 0);
	assert_int_equal(a0.st_ino, a1.st_ino);

	/* A task's leftovers: files, nested read-only directories, links
	 * out of the tree, something in artifacts/. */
	write_file(p, "junit.xml", "<testsuite/>");
	write_file(art, "shot.png", "png");
	sub = xasprintf("%s/a", p);
	assert_int_equal(mkdir(sub, 0700), 0);
	free(sub);
	sub = xasprintf("%s/a/b", p);
	assert_int_equal(mkdir(sub, 0700), 0);
	write_file(sub, "f", "x");
	assert_int_equal(chmod(sub, 0), 0);
	free(sub);
	sub = xasprintf("%s/link", p);
	assert_int_equal(symlink(outside, sub), 0);
	free(sub);
	sub = xasprintf("%s/.hidden", p);
	assert_int_equal(symlink("/nonexistent", sub), 0);
	free(sub);
	/* The task made its TMPDIR world-readable. */
	assert_int_equal(chmod(p, 0755), 0);

	assert_int_equal(slotdir_clear(&d, err, sizeof(err)), 0);
	assert_string_equal(slotdir_path(&d, err, sizeof(err)), p);
	assert_int_equal(stat(p, &st1), 0);
	assert_int_equal(st0.st_ino, st1.st_ino);
	assert_pristine(p);
	names = list_dir(outside);
	assert_string_equal(names, "keep");
	free(names);

	/* artifacts/ replaced by a link to elsewhere, or made a file, or
	 * removed: an empty directory again, and the target untouched. */
	assert_int_equal(rmdir(art), 0);
	assert_int_equal(symlink(outside, art), 0);
	assert_int_equal(slotdir_clear(&d, err, sizeof(err)), 0);
	assert_pristine(p);
	names = list_dir(outside);
	assert_string_equal(names, "keep");
	free(names);
	assert_int_equal(rmdir(art), 0);
	write_file(p, SLOTDIR_ARTIFACTS, "not a folder");
	assert_int_equal(slotdir_clear(&d, err, sizeof(err)), 0);
	assert_pristine(p);
	assert_int_equal(rmdir(art), 0);
	assert_int_equal(slotdir_clear(&d, err, sizeof(err)), 0);
	assert_pristine(p);
	/* A changed mode on artifacts/. */
	assert_int_equal(chmod(art, 0500), 0);
	assert_int_equal(slotdir_clear(&d, err, sizeof(err)), 0);
	assert_pristine(p);

	assert_int_equal(slotdir_release(&d, err, sizeof(err)), 0);
	assert_int_equal(access(p, F_OK), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(child_rmtree(outside, err, sizeof(err)), 0);
	free(outside);
	free(art);
	free(p);
}

/* A task removed its own TMPDIR (or a temp cleaner did): the clear says
 * so and the next task gets a new directory. */
static void test_vanished(void **state)
{
	struct slotdir d;
	char err[256], *p;
	const char *q;

	(void)state;
	slotdir_init(&d, "w-2", 2);
	p = xstrdup(slotdir_path(&d, err, sizeof(err)));
	assert_int_equal(child_rmtree(p, err, sizeof(err)), 0);
	assert_int_equal(slotdir_clear(&d, err, sizeof(err)), -1);
	assert_non_null(strstr(err, p));
	assert_null(d.path);
	q = slotdir_path(&d, err, sizeof(err));
	assert_non_null(q);
	assert_pristine(q);

	/* Gone between two tasks with no clear in between: noticed when the
	 * next task asks for it. */
	assert_int_equal(child_rmtree(q, err, sizeof(err)), 0);
	q = slotdir_path(&d, err, sizeof(err));
	assert_non_null(q);
	assert_pristine(q);
	assert_int_equal(slotdir_release(&d, err, sizeof(err)), 0);
	free(p);
}

/* Two slots, two directories; release of one leaves the other. */
static void test_slots_apart(void **state)
{
	struct slotdir a, b;
	char err[256], *pa, *pb;

	(void)state;
	slotdir_init(&a, "w-3", 1);
	slotdir_init(&b, "w-3", 2);
	pa = xstrdup(slotdir_path(&a, err, sizeof(err)));
	pb = xstrdup(slotdir_path(&b, err, sizeof(err)));
	assert_string_not_equal(pa, pb);
	assert_non_null(strstr(pa, "/testfleet-w-3-s1-"));
	assert_non_null(strstr(pb, "/testfleet-w-3-s2-"));
	assert_int_equal(slotdir_release(&a, err, sizeof(err)), 0);
	assert_int_equal(access(pa, F_OK), -1);
	assert_pristine(pb);
	assert_int_equal(slotdir_release(&b, err, sizeof(err)), 0);
	assert_int_equal(access(pb, F_OK), -1);
	free(pa);
	free(pb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_made_on_first_use, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_cleared_between_tasks, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_vanished, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_slots_apart, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
