/* discover.c -- pytest collection (see discover.h). */
#include "discover.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "proc.h"
#include "xmalloc.h"

#define DISCOVER_MAX_IDS 10000000u
#define DISCOVER_DETAIL_LINES 30

int discover_parse(const char *out, size_t len, char ***ids, size_t *nids,
		   char *err, size_t errlen)
{
	char **v = NULL;
	size_t n = 0, cap = 0, pos = 0;
	int ret = -1;

	*ids = NULL;
	*nids = 0;
	for (;;) {
		const char *line = out + pos;
		const char *nl;
		size_t l;

		if (pos >= len) {
			snprintf(err, errlen,
				 "no empty line after the node ids (%zu "
				 "lines): not pytest --collect-only output",
				 n);
			goto out;
		}
		nl = memchr(line, '\n', len - pos);
		if (nl == NULL) {
			snprintf(err, errlen,
				 "output ends without an empty line after "
				 "the node ids (%zu lines)",
				 n);
			goto out;
		}
		l = (size_t)(nl - line);
		pos += l + 1;
		if (l > 0 && line[l - 1] == '\r')
			l--;
		if (l == 0)
			break;
		if (memchr(line, '\0', l) != NULL) {
			snprintf(err, errlen, "line %zu holds a NUL byte",
				 n + 1);
			goto out;
		}
		if (l > DISCOVER_MAX_ID) {
			snprintf(err, errlen,
				 "line %zu: node id of %zu bytes (limit %u)",
				 n + 1, l, DISCOVER_MAX_ID);
			goto out;
		}
		if (n >= DISCOVER_MAX_IDS) {
			snprintf(err, errlen, "more than %u node ids",
				 DISCOVER_MAX_IDS);
			goto out;
		}
		if (n + 1 >= cap) {
			cap = cap ? cap * 2 : 64;
			v = xreallocarray(v, cap, sizeof(*v));
		}
		v[n++] = xstrndup(line, l);
	}
	if (v == NULL)
		v = xcalloc(1, sizeof(*v));
	v[n] = NULL;
	*ids = v;
	*nids = n;
	v = NULL;
	ret = 0;
out:
	if (v != NULL)
		discover_ids_free(v, n);
	return ret;
}

void discover_ids_free(char **ids, size_t nids)
{
	size_t i;

	if (ids == NULL)
		return;
	for (i = 0; i < nids; i++)
		free(ids[i]);
	free(ids);
}

/* Whether dir/<file part of id> exists. */
static int discover_has_file(const char *dir, const char *id)
{
	const char *sep = strstr(id, "::");
	size_t flen = sep != NULL ? (size_t)(sep - id) : strlen(id);
	char *path;
	int ok;

	if (flen == 0 || id[0] == '/')
		return 0;
	path = xasprintf("%s/%.*s", strcmp(dir, "/") != 0 ? dir : "", (int)flen,
			 id);
	ok = access(path, F_OK) == 0;
	free(path);
	return ok;
}

/* Cuts path to its parent directory in place; returns 0 at "/". */
static int discover_parent(char *path)
{
	char *slash = strrchr(path, '/');

	if (slash == NULL || strcmp(path, "/") == 0)
		return 0;
	if (slash == path)
		slash[1] = '\0';
	else
		*slash = '\0';
	return 1;
}

/* The directory of one argument: itself when a directory, else its
 * parent; absolute, resolved. NULL when it does not exist. */
static char *discover_arg_dir(const char *cwd, const char *arg)
{
	const char *sep = strstr(arg, "::");
	size_t len = sep != NULL ? (size_t)(sep - arg) : strlen(arg);
	char *joined = arg[0] == '/' ? xstrndup(arg, len)
				     : xasprintf("%s/%.*s", cwd, (int)len, arg);
	char *real = realpath(joined, NULL);
	struct stat st;

	free(joined);
	if (real == NULL)
		return NULL;
	if (stat(real, &st) == 0 && !S_ISDIR(st.st_mode))
		discover_parent(real);
	return real;
}

/* Whether b is a or below it (both absolute and resolved). */
static int discover_is_under(const char *a, const char *b)
{
	size_t n = strlen(a);

	if (strcmp(a, "/") == 0)
		return 1;
	return strncmp(a, b, n) == 0 && (b[n] == '\0' || b[n] == '/');
}

char *discover_find_root(const char *cwd, char *const *paths, size_t npaths,
			 char *const *ids, size_t nids)
{
	char *dir = NULL;
	size_t i;

	for (i = 0; i < npaths; i++) {
		char *d = discover_arg_dir(cwd, paths[i]);

		if (d == NULL)
			continue;
		if (dir == NULL) {
			dir = d;
			continue;
		}
		while (!discover_is_under(dir, d) && discover_parent(dir))
			;
		free(d);
	}
	if (dir == NULL)
		dir = xstrdup(cwd);
	if (nids == 0)
		return dir;
	for (;;) {
		if (discover_has_file(dir, ids[0]) &&
		    discover_has_file(dir, ids[nids / 2]) &&
		    discover_has_file(dir, ids[nids - 1]))
			return dir;
		if (!discover_parent(dir))
			break;
	}
	free(dir);
	return xstrdup(cwd);
}

/* Appends up to max lines of text to b, each prefixed with indent. Returns
 * the number of lines taken. */
static size_t discover_add_lines(struct buf *b, const char *text, size_t max,
				 int (*want)(const char *, size_t))
{
	const char *p = text;
	size_t taken = 0;

	while (*p != '\0' && taken < max) {
		const char *nl = strchr(p, '\n');
		size_t l = nl != NULL ? (size_t)(nl - p) : strlen(p);

		if (l > 0 && p[l - 1] == '\r')
			l--;
		if (l > 0 && (want == NULL || want(p, l))) {
			buf_appendstr(b, "  ");
			buf_append(b, p, l > 300 ? 300 : l);
			buf_appendstr(b, "\n");
			taken++;
		}
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	return taken;
}

/* The lines of a collection error report worth showing: the error text
 * ("E   ..."), the short summary ("ERROR tests/x.py") and the verdict. */
static int discover_error_line(const char *l, size_t n)
{
	return (n >= 2 && l[0] == 'E' && l[1] == ' ') ||
	       (n >= 6 && memcmp(l, "ERROR ", 6) == 0) ||
	       (n >= 7 && memcmp(l, "ERROR: ", 7) == 0) ||
	       memmem(l, n, "Interrupted:", 12) != NULL;
}

/* The last non-empty line of text, trimmed of pytest's "=" decoration and
 * its " in 0.01s" timing; caller frees. */
static char *discover_last_line(const char *text)
{
	const char *end = text + strlen(text), *start;
	const char *in;
	size_t l;

	while (end > text && (end[-1] == '\n' || end[-1] == '\r' ||
			      end[-1] == ' ' || end[-1] == '='))
		end--;
	start = end;
	while (start > text && start[-1] != '\n')
		start--;
	while (start < end && (*start == '=' || *start == ' '))
		start++;
	l = (size_t)(end - start);
	in = l > 4 ? memmem(start, l, " in ", 4) : NULL;
	if (in != NULL && in + 4 < end && in[4] >= '0' && in[4] <= '9')
		l = (size_t)(in - start);
	return xstrndup(start, l > 200 ? 200 : l);
}

/* The first line of stderr that starts with "ERROR: ", without it. */
static char *discover_stderr_error(const char *text)
{
	const char *p = strstr(text, "ERROR: ");
	size_t l;

	while (p != NULL && p != text && p[-1] != '\n')
		p = strstr(p + 1, "ERROR: ");
	if (p == NULL)
		return NULL;
	p += 7;
	l = strcspn(p, "\r\n");
	return xstrndup(p, l > 400 ? 400 : l);
}

static char **discover_argv(const struct discover_opts *o)
{
	size_t n = 0, i, k = 0;
	char **argv;

	while (o->pytest[n] != NULL)
		n++;
	argv = xcalloc(n + o->npaths + 11, sizeof(*argv));
	for (i = 0; i < n; i++)
		argv[k++] = o->pytest[i];
	/* --verbosity=-1 rather than -q: it also wins over a "-q" in the
	 * project's addopts, which would otherwise turn the listing into
	 * per-file counts. */
	argv[k++] = "--collect-only";
	argv[k++] = "--verbosity=-1";
	argv[k++] = "-p";
	argv[k++] = "no:cacheprovider";
	/* Rewritten asserts only change failure reports, never what is
	 * collected; importing the tests without rewriting is quicker. */
	argv[k++] = "--assert=plain";
	if (o->mark != NULL) {
		argv[k++] = "-m";
		argv[k++] = (char *)o->mark;
	}
	if (o->kexpr != NULL) {
		argv[k++] = "-k";
		argv[k++] = (char *)o->kexpr;
	}
	argv[k++] = "--";
	for (i = 0; i < o->npaths; i++)
		argv[k++] = o->paths[i];
	argv[k] = NULL;
	return argv;
}

enum discover_status discover_run(const struct discover_opts *o,
				  struct discover_result *res)
{
	struct proc_capture cap;
	struct proc_opts po = {0};
	struct buf details;
	char err[512], how[128];
	char **argv, **envp = NULL;
	char *line;
	int code;

	memset(res, 0, sizeof(*res));
	buf_init(&details, 0);
	argv = discover_argv(o);
	po.argv = argv;
	po.cwd = o->cwd;
	/* Collected in the environment the tests will run in. */
	po.envp = o->nenv > 0 ? envp = proc_envp(o->env, o->nenv, NULL, 0)
			      : NULL;
	po.out_fd = po.err_fd = -1;
	if (proc_run_capture(&po, DISCOVER_MAX_OUTPUT, DISCOVER_MAX_STDERR,
			     o->stop, &cap, err, sizeof(err)) < 0) {
		if (errno == ENOENT) {
			res->status = DISCOVER_NOT_FOUND;
			res->message = xasprintf(
			    "pytest not found: %s (install pytest, or "
			    "set --pytest CMD or TESTFLEET_PYTEST)",
			    o->pytest[0]);
		} else {
			res->status = DISCOVER_FAILED;
			res->message =
			    xasprintf("test collection failed: %s", err);
		}
		goto out;
	}
	if (cap.stopped) {
		res->status = DISCOVER_STOPPED;
		res->message = xstrdup("interrupted during test collection");
		goto out;
	}
	if (!WIFEXITED(cap.status)) {
		proc_status_describe(cap.status, how, sizeof(how));
		res->status = DISCOVER_FAILED;
		res->message =
		    xasprintf("test collection failed: %s --collect-only %s",
			      o->pytest[0], how);
		discover_add_lines(&details, cap.err.data ? cap.err.data : "",
				   DISCOVER_DETAIL_LINES, NULL);
		goto out;
	}
	code = WEXITSTATUS(cap.status);
	switch (code) {
	case 0:
		if (discover_parse(cap.out.data ? cap.out.data : "",
				   cap.out.len, &res->ids, &res->nids, err,
				   sizeof(err)) < 0) {
			res->status = DISCOVER_FAILED;
			res->message = xasprintf(
			    "unexpected output from %s --collect-only: %s",
			    o->pytest[0], err);
			goto out;
		}
		if (res->nids == 0) {
			discover_ids_free(res->ids, 0);
			res->ids = NULL;
			res->status = DISCOVER_EMPTY;
			res->message = xstrdup("no tests selected");
			goto out;
		}
		res->root = discover_find_root(o->cwd, o->paths, o->npaths,
					       res->ids, res->nids);
		res->status = DISCOVER_OK;
		break;
	case 5:
		line = discover_last_line(cap.out.data ? cap.out.data : "");
		res->status = DISCOVER_EMPTY;
		res->message =
		    xasprintf("no tests selected (pytest: %s)", line);
		free(line);
		break;
	case 2:
		res->status = DISCOVER_USER;
		res->message = xasprintf(
		    "test collection failed (%s exited with status 2):",
		    o->pytest[0]);
		if (discover_add_lines(
			&details, cap.out.data ? cap.out.data : "",
			DISCOVER_DETAIL_LINES, discover_error_line) == 0) {
			discover_add_lines(&details,
					   cap.err.data ? cap.err.data : "",
					   DISCOVER_DETAIL_LINES, NULL);
		}
		break;
	case 3:
	case 4:
		res->status = DISCOVER_USER;
		line = discover_stderr_error(cap.err.data ? cap.err.data : "");
		if (line != NULL) {
			res->message = xasprintf("pytest: %s", line);
			free(line);
		} else {
			res->message =
			    xasprintf("test collection failed (%s exited with "
				      "status %d):",
				      o->pytest[0], code);
			if (discover_add_lines(
				&details, cap.err.data ? cap.err.data : "",
				DISCOVER_DETAIL_LINES, NULL) == 0)
				discover_add_lines(
				    &details, cap.out.data ? cap.out.data : "",
				    DISCOVER_DETAIL_LINES, NULL);
		}
		break;
	default:
		res->status = DISCOVER_FAILED;
		res->message = xasprintf(
		    "test collection failed (%s exited with status %d):",
		    o->pytest[0], code);
		discover_add_lines(&details, cap.err.data ? cap.err.data : "",
				   DISCOVER_DETAIL_LINES, NULL);
		break;
	}
out:
	if (details.len > 0)
		res->details = buf_detach(&details, NULL);
	buf_release(&details);
	proc_capture_release(&cap);
	proc_envp_free(envp);
	free(argv);
	return res->status;
}

void discover_result_release(struct discover_result *res)
{
	discover_ids_free(res->ids, res->nids);
	free(res->root);
	free(res->message);
	free(res->details);
	memset(res, 0, sizeof(*res));
}
