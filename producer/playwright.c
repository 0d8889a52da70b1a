/* playwright.c -- Playwright test listing (see playwright.h). */
#include "playwright.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "proc.h"
#include "pwid.h"
#include "xmalloc.h"


#define PW_MAX_DEPTH 256 /* nested describe blocks */
#define PW_MAX_STDERR (64u << 10)
#define PW_DETAIL_LINES 30
#define PW_LINE_MAX 300

/* ---- the listing parser ------------------------------------------------ */

struct pw_entry {
	char *id;
	size_t project; /* index in the configuration's projects */
	size_t file;	/* index of its file suite */
	unsigned long line, column;
	size_t seq; /* order in the listing */
};

struct pw_walk {
	const char *cwd;
	const char *rootdir;
	char **projects; /* borrowed from the JSON */
	size_t nprojects;
	int multi;
	struct pw_entry *v;
	size_t n, cap;
	const char *titles[PW_MAX_DEPTH + 1];
	size_t ntitles;
	size_t file_index;
	char *last_file; /* relpath cache: spec "file" ... */
	char *last_rel;	 /* ... and the path relative to cwd */
	char *err;
	size_t errlen;
};

/* Removes ANSI escape sequences (colours) in place. */
static void pw_strip_ansi(char *s)
{
	char *w = s;

	while (*s != '\0') {
		if (*s != '\033') {
			*w++ = *s++;
			continue;
		}
		s++;
		if (*s == '[') {
			s++;
			while (*s != '\0' && (*s < '@' || *s > '~'))
				s++;
			if (*s != '\0')
				s++;
		} else if (*s != '\0') {
			s++;
		}
	}
	*w = '\0';
}

/* Appends the components of path (relative, or absolute from "/") to the
 * stack v, resolving "." and "..". Returns -1 when ".." climbs above the
 * root. */
static int pw_push_path(char **v, size_t *n, size_t max, char *path)
{
	char *p = path;

	while (*p != '\0') {
		char *slash = strchr(p, '/');
		size_t len = slash != NULL ? (size_t)(slash - p) : strlen(p);

		if (slash != NULL)
			*slash = '\0';
		if (len == 0 || strcmp(p, ".") == 0) {
			/* nothing */
		} else if (strcmp(p, "..") == 0) {
			if (*n == 0)
				return -1;
			(*n)--;
		} else {
			if (*n == max)
				return -1;
			v[(*n)++] = p;
		}
		if (slash == NULL)
			break;
		p = slash + 1;
	}
	return 0;
}

/* The path of rootdir/file relative to cwd, lexically (both absolute), or
 * NULL when it is not below cwd. Caller frees. */
static char *pw_relpath(const char *cwd, const char *rootdir, const char *file)
{
	char *a = xstrdup(cwd), *b = NULL, *f = xstrdup(file);
	char **va = NULL, **vb = NULL;
	size_t na = 0, nb = 0, max, i;
	struct buf out;
	char *ret = NULL;

	max = strlen(cwd) + strlen(rootdir) + strlen(file) + 2;
	va = xcalloc(max, sizeof(*va));
	vb = xcalloc(max, sizeof(*vb));
	if (file[0] == '/') {
		if (pw_push_path(vb, &nb, max, f) < 0)
			goto out;
	} else {
		b = xstrdup(rootdir);
		if (pw_push_path(vb, &nb, max, b) < 0 ||
		    pw_push_path(vb, &nb, max, f) < 0)
			goto out;
	}
	if (pw_push_path(va, &na, max, a) < 0 || nb <= na)
		goto out;
	for (i = 0; i < na; i++)
		if (strcmp(va[i], vb[i]) != 0)
			goto out;
	buf_init(&out, 0);
	for (i = na; i < nb; i++)
		buf_printf(&out, "%s%s", i > na ? "/" : "", vb[i]);
	ret = buf_detach(&out, NULL);
out:
	free(va);
	free(vb);
	free(a);
	free(b);
	free(f);
	return ret;
}

static const char *pw_str(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static unsigned long pw_uint(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);
	json_int_t i = json_is_integer(v) ? json_integer_value(v) : 0;

	return i > 0 ? (unsigned long)i : 0;
}

static size_t pw_project_index(const struct pw_walk *w, const char *name)
{
	size_t i;

	for (i = 0; i < w->nprojects; i++)
		if (strcmp(w->projects[i], name) == 0)
			return i;
	return w->nprojects;
}

static int pw_add(struct pw_walk *w, const char *project, const char *rel,
		  unsigned long line, unsigned long column)
{
	struct pw_entry *e;
	struct pwid check;
	char *id;

	if (w->n >= PLAYWRIGHT_MAX_IDS) {
		snprintf(w->err, w->errlen, "more than %u tests",
			 PLAYWRIGHT_MAX_IDS);
		return -1;
	}
	id = pwid_format(w->multi ? project : NULL, rel, line,
			 (char *const *)w->titles, w->ntitles);
	if (pwid_parse(id, &check, w->err, w->errlen) < 0) {
		free(id);
		return -1;
	}
	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 64;
		w->v = xreallocarray(w->v, w->cap, sizeof(*w->v));
	}
	e = &w->v[w->n];
	e->id = id;
	e->project = pw_project_index(w, project);
	e->file = w->file_index;
	e->line = line;
	e->column = column;
	e->seq = w->n;
	w->n++;
	return 0;
}

static int pw_spec(struct pw_walk *w, const json_t *spec)
{
	const char *title = pw_str(spec, "title");
	const char *file = pw_str(spec, "file");
	const json_t *tests = json_object_get(spec, "tests");
	unsigned long line = pw_uint(spec, "line");
	unsigned long column = pw_uint(spec, "column");
	const json_t *t;
	size_t i;

	if (file == NULL || !json_is_array(tests)) {
		snprintf(w->err, w->errlen,
			 "a spec without \"file\" or \"tests\"");
		return -1;
	}
	if (w->last_file == NULL || strcmp(w->last_file, file) != 0) {
		free(w->last_file);
		free(w->last_rel);
		w->last_file = xstrdup(file);
		w->last_rel = pw_relpath(w->cwd, w->rootdir, file);
		if (w->last_rel == NULL) {
			snprintf(w->err, w->errlen,
				 "test file %s/%s is outside the directory "
				 "Playwright runs in (%s); run it from a "
				 "directory above its tests",
				 w->rootdir, file, w->cwd);
			return -1;
		}
	}
	w->titles[w->ntitles] = title != NULL ? title : "";
	w->ntitles++;
	json_array_foreach(tests, i, t)
	{
		const char *project = pw_str(t, "projectName");

		if (pw_add(w, project != NULL ? project : "", w->last_rel, line,
			   column) < 0) {
			w->ntitles--;
			return -1;
		}
	}
	w->ntitles--;
	return 0;
}

/* A suite: its specs, then its nested describe blocks. top: a file suite,
 * whose title (the file name) is not part of the title path. */
static int pw_suite(struct pw_walk *w, const json_t *suite, int top)
{
	const json_t *specs = json_object_get(suite, "specs");
	const json_t *suites = json_object_get(suite, "suites");
	const json_t *x;
	size_t i;
	int ret = 0;

	if (!top) {
		const char *title = pw_str(suite, "title");

		if (w->ntitles == PW_MAX_DEPTH) {
			snprintf(w->err, w->errlen,
				 "describe blocks nested deeper than %d",
				 PW_MAX_DEPTH);
			return -1;
		}
		w->titles[w->ntitles++] = title != NULL ? title : "";
	}
	if (json_is_array(specs)) {
		json_array_foreach(specs, i, x)
		{
			if ((ret = pw_spec(w, x)) < 0)
				goto out;
		}
	}
	if (json_is_array(suites)) {
		json_array_foreach(suites, i, x)
		{
			if ((ret = pw_suite(w, x, 0)) < 0)
				goto out;
		}
	}
out:
	if (!top)
		w->ntitles--;
	return ret;
}

static int pw_entry_cmp(const void *x, const void *y)
{
	const struct pw_entry *a = x, *b = y;

	if (a->project != b->project)
		return a->project < b->project ? -1 : 1;
	if (a->file != b->file)
		return a->file < b->file ? -1 : 1;
	if (a->line != b->line)
		return a->line < b->line ? -1 : 1;
	if (a->column != b->column)
		return a->column < b->column ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* The listing's errors, first lines, into out. */
static void pw_errors(const json_t *errors, struct playwright_list *out)
{
	struct buf b;
	const json_t *e;
	size_t i;

	if (!json_is_array(errors) || json_array_size(errors) == 0)
		return;
	buf_init(&b, 0);
	json_array_foreach(errors, i, e)
	{
		const char *msg = pw_str(e, "message");
		char *line;
		size_t n;

		if (msg == NULL)
			msg = pw_str(e, "value");
		if (msg == NULL)
			msg = "(an error without a message)";
		out->nerrors++;
		if (strstr(msg, "No tests found") != NULL)
			out->no_tests = 1;
		if (i >= PW_DETAIL_LINES)
			continue;
		n = strcspn(msg, "\r\n");
		line = xstrndup(msg, n);
		pw_strip_ansi(line);
		if (strlen(line) > PW_LINE_MAX)
			line[PW_LINE_MAX] = '\0';
		buf_printf(&b, "  %s\n", line);
		free(line);
	}
	out->errors = buf_detach(&b, NULL);
}

int playwright_list_parse(const char *json, size_t len, const char *cwd,
			  struct playwright_list *out, char *err, size_t errlen)
{
	struct pw_walk w;
	json_error_t jerr;
	json_t *root = NULL;
	const json_t *config, *projects, *suites, *x;
	size_t i;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	memset(&w, 0, sizeof(w));
	w.cwd = cwd;
	w.err = err;
	w.errlen = errlen;
	root = json_loadb(json, len, 0, &jerr);
	if (root == NULL) {
		snprintf(err, errlen, "not a JSON listing (line %d: %s)",
			 jerr.line, jerr.text);
		goto out;
	}
	config = json_object_get(root, "config");
	w.rootdir = pw_str(config, "rootDir");
	if (w.rootdir == NULL || w.rootdir[0] != '/') {
		snprintf(err, errlen, "the listing has no config.rootDir");
		goto out;
	}
	projects = json_object_get(config, "projects");
	if (json_is_array(projects)) {
		w.projects =
		    xcalloc(json_array_size(projects) + 1, sizeof(*w.projects));
		json_array_foreach(projects, i, x)
		{
			const char *name = pw_str(x, "name");

			w.projects[w.nprojects++] =
			    (char *)(name != NULL ? name : "");
		}
	}
	w.multi = w.nprojects > 1;
	pw_errors(json_object_get(root, "errors"), out);
	suites = json_object_get(root, "suites");
	if (json_is_array(suites)) {
		json_array_foreach(suites, i, x)
		{
			w.file_index = i;
			if (pw_suite(&w, x, 1) < 0)
				goto out;
		}
	}
	if (w.n > 1)
		qsort(w.v, w.n, sizeof(*w.v), pw_entry_cmp);
	out->ids = xcalloc(w.n + 1, sizeof(*out->ids));
	for (i = 0; i < w.n; i++) {
		out->ids[i] = w.v[i].id;
		w.v[i].id = NULL;
	}
	out->nids = w.n;
	ret = 0;
out:
	for (i = 0; i < w.n; i++)
		free(w.v[i].id);
	free(w.v);
	free(w.projects);
	free(w.last_file);
	free(w.last_rel);
	if (root != NULL)
		json_decref(root);
	if (ret < 0)
		playwright_list_release(out);
	return ret;
}

void playwright_list_release(struct playwright_list *l)
{
	discover_ids_free(l->ids, l->nids);
	free(l->errors);
	memset(l, 0, sizeof(*l));
}

/* ---- running the listing ----------------------------------------------- */


/* Appends up to max lines of text, "  "-indented, leaving out npm's own
 * warnings ("npm warn ..."). */
static void pw_add_lines(struct buf *b, const char *text, size_t max)
{
	const char *p = text;
	size_t taken = 0;

	while (*p != '\0' && taken < max) {
		size_t l = strcspn(p, "\n");
		char *line = xstrndup(p, l);

		pw_strip_ansi(line);
		l = strlen(line);
		if (l > 0 && line[l - 1] == '\r')
			line[--l] = '\0';
		if (l > 0 && strncmp(line, "npm warn", 8) != 0 &&
		    strncmp(line, "npm WARN", 8) != 0) {
			if (l > PW_LINE_MAX)
				line[PW_LINE_MAX] = '\0';
			buf_printf(b, "  %s\n", line);
			taken++;
		}
		free(line);
		p += strcspn(p, "\n");
		if (*p == '\n')
			p++;
	}
}

/* Splits cmd on blanks into words pointing into *copy (caller frees both).
 * Returns the number of words, or 0 when none or too many. */
static size_t pw_split(const char *cmd, char **copy, char ***words)
{
	char *p;
	size_t n = 0;

	*copy = xstrdup(cmd);
	*words = xcalloc(PLAYWRIGHT_MAX_WORDS + 1, sizeof(**words));
	p = *copy;
	for (;;) {
		p += strspn(p, " \t\n");
		if (*p == '\0')
			break;
		if (n == PLAYWRIGHT_MAX_WORDS)
			return 0;
		(*words)[n++] = p;
		p += strcspn(p, " \t\n");
		if (*p != '\0')
			*p++ = '\0';
	}
	return n;
}

/* A temporary file for the listing ($TMPDIR, else /tmp). Returns its
 * malloc'd path, or NULL with a message in err. */
static char *pw_tmpfile(char *err, size_t errlen)
{
	const char *dir = getenv("TMPDIR");
	char *path;
	int fd;

	if (dir == NULL || dir[0] != '/')
		dir = "/tmp";
	path = xasprintf("%s/testfleet-pwlist-XXXXXX.json", dir);
	fd = mkstemps(path, 5);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create a file in %s: %s", dir,
			 strerror(errno));
		free(path);
		return NULL;
	}
	close(fd);
	return path;
}

enum discover_status playwright_discover(const struct playwright_opts *o,
					 struct discover_result *res)
{
	const char *cmd = o->cmd != NULL ? o->cmd : PLAYWRIGHT_DEFAULT_CMD;
	struct playwright_list list;
	struct proc_capture cap;
	struct proc_opts po = {0};
	struct buf details, listing;
	char err[1024], how[128];
	char *copy = NULL, *tmp = NULL, *grep = NULL, *grep_invert = NULL;
	char *extra[3] = {NULL, NULL, "FORCE_COLOR=0"};
	char **words = NULL, **argv = NULL, **envp = NULL;
	const char *json;
	size_t nwords, json_len, i, k = 0;
	int have_cap = 0, code;

	memset(res, 0, sizeof(*res));
	memset(&list, 0, sizeof(list));
	buf_init(&details, 0);
	buf_init(&listing, PLAYWRIGHT_MAX_OUTPUT);
	nwords = pw_split(cmd, &copy, &words);
	if (nwords == 0) {
		res->status = DISCOVER_USER;
		res->message = xasprintf("bad playwright command \"%s\" (1 "
					 "to %d words)",
					 cmd, PLAYWRIGHT_MAX_WORDS);
		goto out;
	}
	tmp = pw_tmpfile(err, sizeof(err));
	if (tmp == NULL) {
		res->status = DISCOVER_FAILED;
		res->message = xasprintf("test listing failed: %s", err);
		goto out;
	}
	/* The listing goes to a file: whatever the configuration prints on
	 * stdout cannot spoil it. */
	extra[0] = xasprintf("PLAYWRIGHT_JSON_OUTPUT_NAME=%s", tmp);
	extra[1] = xasprintf("PLAYWRIGHT_JSON_OUTPUT_FILE=%s", tmp);
	envp = proc_envp(o->env, o->nenv, extra, 3);
	argv = xcalloc(nwords + o->npaths + 8, sizeof(*argv));
	for (i = 0; i < nwords; i++)
		argv[k++] = words[i];
	argv[k++] = "test";
	argv[k++] = "--list";
	argv[k++] = "--reporter=json";
	if (o->grep != NULL) {
		grep = xasprintf("--grep=%s", o->grep);
		argv[k++] = grep;
	}
	if (o->grep_invert != NULL) {
		grep_invert = xasprintf("--grep-invert=%s", o->grep_invert);
		argv[k++] = grep_invert;
	}
	/* Playwright hands arguments after "--" to the configuration, not
	 * to the test filter: the filters go as plain arguments (none
	 * starts with '-', the caller checked). */
	for (i = 0; i < o->npaths; i++)
		argv[k++] = o->paths[i];
	argv[k] = NULL;
	po.argv = argv;
	po.envp = envp;
	po.cwd = o->cwd;
	po.out_fd = po.err_fd = -1;
	if (proc_run_capture(&po, PLAYWRIGHT_MAX_OUTPUT, PW_MAX_STDERR, o->stop,
			     &cap, err, sizeof(err)) < 0) {
		have_cap = 1;
		if (errno == ENOENT) {
			res->status = DISCOVER_NOT_FOUND;
			res->message = xasprintf(
			    "playwright not found: %s is not installed "
			    "(install Node.js and @playwright/test, or set "
			    "--playwright CMD or TESTFLEET_PLAYWRIGHT)",
			    words[0]);
		} else {
			res->status = DISCOVER_FAILED;
			res->message =
			    xasprintf("test listing failed: %s", err);
		}
		goto out;
	}
	have_cap = 1;
	if (cap.stopped) {
		res->status = DISCOVER_STOPPED;
		res->message = xstrdup("interrupted during test listing");
		goto out;
	}
	if (!WIFEXITED(cap.status)) {
		proc_status_describe(cap.status, how, sizeof(how));
		res->status = DISCOVER_FAILED;
		res->message = xasprintf(
		    "test listing failed: %s test --list %s", cmd, how);
		pw_add_lines(&details, cap.err.data ? cap.err.data : "",
			     PW_DETAIL_LINES);
		goto out;
	}
	code = WEXITSTATUS(cap.status);
	if (buf_read_file(&listing, tmp, err, sizeof(err)) == 0 &&
	    listing.len > 0) {
		json = listing.data;
		json_len = listing.len;
	} else {
		json = cap.out.data ? cap.out.data : "";
		json_len = cap.out.len;
	}
	if (playwright_list_parse(json, json_len, o->cwd, &list, err,
				  sizeof(err)) < 0) {
		const char *e = cap.err.data ? cap.err.data : "";

		if (json_len > 0 && strncmp(err, "not a JSON", 10) != 0) {
			/* A listing we refuse: the user's to fix. */
			res->status = DISCOVER_USER;
			res->message = xasprintf("playwright: %s", err);
		} else if (code == 127 || strstr(e, "missing packages") ||
			   strstr(e, "could not determine executable")) {
			res->status = DISCOVER_NOT_FOUND;
			res->message = xasprintf(
			    "playwright not found: %s found no Playwright in "
			    "%s (npm install -D @playwright/test there, or "
			    "set --playwright CMD or TESTFLEET_PLAYWRIGHT)",
			    cmd, o->cwd);
		} else if (code != 0) {
			/* A configuration that does not load, a bad
			 * option: Playwright says why on stderr. */
			res->status = DISCOVER_USER;
			res->message = xasprintf("test listing failed (%s test "
						 "--list exited with status "
						 "%d):",
						 cmd, code);
			pw_add_lines(&details, e, PW_DETAIL_LINES);
			if (details.len == 0)
				pw_add_lines(&details,
					     cap.out.data ? cap.out.data : "",
					     PW_DETAIL_LINES);
		} else {
			res->status = DISCOVER_FAILED;
			res->message = xasprintf(
			    "unexpected output from %s test --list: %s", cmd,
			    err);
		}
		goto out;
	}
	if (list.nerrors > 0 && !(list.no_tests && list.nids == 0)) {
		res->status = DISCOVER_USER;
		res->message =
		    xasprintf("test listing failed (playwright "
			      "reported %zu error%s):",
			      list.nerrors, list.nerrors == 1 ? "" : "s");
		buf_appendstr(&details, list.errors ? list.errors : "");
		goto out;
	}
	if (list.nids == 0) {
		res->status = DISCOVER_EMPTY;
		res->message =
		    xstrdup(list.no_tests ? "no tests selected (playwright: "
					    "No tests found)"
					  : "no tests selected");
		goto out;
	}
	res->ids = list.ids;
	res->nids = list.nids;
	list.ids = NULL;
	list.nids = 0;
	res->root = xstrdup(o->cwd);
	res->status = DISCOVER_OK;
out:
	if (details.len > 0)
		res->details = buf_detach(&details, NULL);
	buf_release(&details);
	buf_release(&listing);
	playwright_list_release(&list);
	if (have_cap)
		proc_capture_release(&cap);
	if (tmp != NULL) {
		unlink(tmp);
		free(tmp);
	}
	free(extra[0]);
	free(extra[1]);
	proc_envp_free(envp);
	free(grep);
	free(grep_invert);
	free(argv);
	free(words);
	free(copy);
	return res->status;
}
