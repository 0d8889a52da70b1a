/* runner.c -- runner argv, test id checks, JUnit id mapping (see
 * runner.h). */
#include "runner.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "pwid.h"
#include "xmalloc.h"

int runner_check_test_id(const char *id, char *err, size_t errlen)
{
	const char *end, *p, *slash;
	size_t n;

	if (!id || !id[0]) {
		snprintf(err, errlen, "bad test id: empty");
		return -1;
	}
	if (id[0] == '-') {
		snprintf(err, errlen, "bad test id \"%.200s\": starts with '-'",
			 id);
		return -1;
	}
	if (strpbrk(id, "\n\r")) {
		snprintf(err, errlen, "bad test id: contains a newline");
		return -1;
	}
	if (id[0] == '/') {
		snprintf(err, errlen, "bad test id \"%.200s\": absolute path",
			 id);
		return -1;
	}
	end = strstr(id, "::");
	if (!end)
		end = id + strlen(id);
	for (p = id; p < end; p = slash + 1) {
		slash = memchr(p, '/', (size_t)(end - p));
		if (!slash)
			slash = end;
		n = (size_t)(slash - p);
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			snprintf(err, errlen,
				 "bad test id \"%.200s\": \"..\" in its path",
				 id);
			return -1;
		}
		if (slash == end)
			break;
	}
	return 0;
}

struct argv_builder {
	char **v;
	size_t n;
	size_t cap;
};

static void argv_push(struct argv_builder *a, char *s)
{
	if (a->n + 2 > a->cap) {
		a->cap = a->cap ? a->cap * 2 : 16;
		a->v = xreallocarray(a->v, a->cap, sizeof(*a->v));
	}
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

void runner_argv_free(char **argv)
{
	size_t i;

	if (!argv)
		return;
	for (i = 0; argv[i]; i++)
		free(argv[i]);
	free(argv);
}

static int pytest_argv(const struct runner_conf *rc, const struct task *t,
		       const char *junit_path, struct argv_builder *a,
		       char *err, size_t errlen)
{
	size_t i;

	if (rc->npytest == 0) {
		snprintf(err, errlen, "pytest command is empty");
		return -1;
	}
	if (t->ntests == 0) {
		snprintf(err, errlen, "pytest task has no test ids");
		return -1;
	}
	for (i = 0; i < t->ntests; i++) {
		if (runner_check_test_id(t->tests[i], err, errlen) < 0)
			return -1;
	}
	for (i = 0; i < rc->npytest; i++)
		argv_push(a, xstrdup(rc->pytest[i]));
	argv_push(a, xstrdup("-p"));
	argv_push(a, xstrdup("testfleet_pytest"));
	argv_push(a, xstrdup("-p"));
	argv_push(a, xstrdup("no:cacheprovider"));
	argv_push(a, xstrdup("-q"));
	argv_push(a, xasprintf("--junitxml=%s", junit_path));
	/* One word each ("-mEXPR") so an expression starting with '-' is
	 * still taken as the option's value. */
	if (t->mark && t->mark[0])
		argv_push(a, xasprintf("-m%s", t->mark));
	if (t->kexpr && t->kexpr[0])
		argv_push(a, xasprintf("-k%s", t->kexpr));
	argv_push(a, xstrdup("--"));
	for (i = 0; i < t->ntests; i++)
		argv_push(a, xstrdup(t->tests[i]));
	return 0;
}

static int cmp_str(const void *a, const void *b);

/* Sorts v (n strings, owned) and frees the duplicates; returns the new
 * count. */
static size_t sort_unique(char **v, size_t n)
{
	size_t i, k = 0;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_str);
	for (i = 1; i < n; i++) {
		if (strcmp(v[i], v[k]) == 0)
			free(v[i]);
		else
			v[++k] = v[i];
	}
	return k + 1;
}

static int playwright_argv(const struct runner_conf *rc, const struct task *t,
			   const char *artifacts_dir, struct argv_builder *a,
			   char *err, size_t errlen)
{
	char **sel = NULL, **proj = NULL;
	size_t nsel = 0, nproj = 0, i;
	struct pwid p;
	int ret = -1;

	if (rc->nplaywright == 0) {
		snprintf(err, errlen, "playwright command is empty");
		return -1;
	}
	if (!rc->playwright_reporter) {
		snprintf(err, errlen,
			 "playwright reporter testfleet-playwright-reporter.js "
			 "not found (set TESTFLEET_PLUGIN_DIR)");
		return -1;
	}
	if (t->ntests == 0) {
		snprintf(err, errlen, "playwright task has no test ids");
		return -1;
	}
	sel = xcalloc(t->ntests, sizeof(*sel));
	proj = xcalloc(t->ntests, sizeof(*proj));
	for (i = 0; i < t->ntests; i++) {
		if (pwid_parse(t->tests[i], &p, err, errlen) < 0)
			goto out;
		sel[nsel++] = pwid_selector(&p);
		if (p.project)
			proj[nproj++] = xasprintf(
			    "--project=%.*s", (int)p.project_len, p.project);
	}
	/* Ids either all name their project or none does (the project
	 * count of the configuration decides); when in doubt, run every
	 * project: the worker keeps only the requested ids anyway. */
	if (nproj != t->ntests) {
		for (i = 0; i < nproj; i++)
			free(proj[i]);
		nproj = 0;
	}
	nsel = sort_unique(sel, nsel);
	nproj = sort_unique(proj, nproj);
	for (i = 0; i < rc->nplaywright; i++)
		argv_push(a, xstrdup(rc->playwright[i]));
	argv_push(a, xstrdup("test"));
	argv_push(a, xasprintf("--reporter=%s", rc->playwright_reporter));
	/* testfleet retries and parallelises; Playwright does neither. */
	argv_push(a, xstrdup("--retries=0"));
	argv_push(a, xstrdup("--workers=1"));
	argv_push(a, xasprintf("--output=%s", artifacts_dir));
	if (t->grep && t->grep[0])
		argv_push(a, xasprintf("--grep=%s", t->grep));
	if (t->grep_invert && t->grep_invert[0])
		argv_push(a, xasprintf("--grep-invert=%s", t->grep_invert));
	for (i = 0; i < nproj; i++) {
		argv_push(a, proj[i]);
		proj[i] = NULL;
	}
	for (i = 0; i < nsel; i++) {
		argv_push(a, sel[i]);
		sel[i] = NULL;
	}
	ret = 0;
out:
	for (i = 0; i < t->ntests; i++) {
		if (i < nsel)
			free(sel[i]);
		if (i < nproj)
			free(proj[i]);
	}
	free(sel);
	free(proj);
	return ret;
}

int runner_argv(const struct runner_conf *rc, const struct task *t,
		const char *junit_path, const char *artifacts_dir, char ***argv,
		char *err, size_t errlen)
{
	struct argv_builder a = {NULL, 0, 0};
	size_t i;
	int rc_ = -1;

	*argv = NULL;
	if (!t->runner) {
		snprintf(err, errlen, "task has no runner");
		goto out;
	}
	if (strcmp(t->runner, "pytest") == 0) {
		if (pytest_argv(rc, t, junit_path, &a, err, errlen) < 0)
			goto out;
	} else if (strcmp(t->runner, "command") == 0) {
		if (!rc->allow_command) {
			snprintf(err, errlen,
				 "runner command is not allowed on this "
				 "worker (start it with --allow-command)");
			goto out;
		}
		if (t->nargv == 0 || !t->argv[0] || !t->argv[0][0]) {
			snprintf(err, errlen, "command task has no argv");
			goto out;
		}
		for (i = 0; i < t->nargv; i++)
			argv_push(&a, xstrdup(t->argv[i] ? t->argv[i] : ""));
	} else if (strcmp(t->runner, "playwright") == 0) {
		if (playwright_argv(rc, t, artifacts_dir, &a, err, errlen) < 0)
			goto out;
	} else {
		snprintf(err, errlen, "unknown runner \"%.64s\"", t->runner);
		goto out;
	}
	*argv = a.v;
	a.v = NULL;
	rc_ = 0;
out:
	runner_argv_free(a.v);
	return rc_;
}

/* --- JUnit case -> test id --- */

struct sorted_ids {
	const char **v;
	size_t n;
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int runner_id_covers(const char *want, const char *got, int partial)
{
	size_t n = strlen(want);

	if (strcmp(want, got) == 0)
		return 1;
	if (!partial || strncmp(want, got, n) != 0)
		return 0;
	if (got[n] == '[')
		return 1;
	if (got[n] == ':' && got[n + 1] == ':')
		return 1;
	/* A directory covers the files below it. */
	if (got[n] == '/' && !strstr(want, "::"))
		return 1;
	return 0;
}

static int match_exact(char *const *tests, size_t ntests, const char *id)
{
	size_t i;

	for (i = 0; i < ntests; i++) {
		if (strcmp(tests[i], id) == 0)
			return 1;
	}
	return 0;
}

static int match_under(char *const *tests, size_t ntests, const char *id)
{
	size_t i;

	for (i = 0; i < ntests; i++) {
		if (runner_id_covers(tests[i], id, 1))
			return 1;
	}
	return 0;
}

/* The file part of a pytest id: before the first "::". */
static size_t file_part_len(const char *id)
{
	const char *p = strstr(id, "::");

	return p ? (size_t)(p - id) : strlen(id);
}

static int match_file(char *const *tests, size_t ntests, const char *id)
{
	size_t i, n = file_part_len(id);

	for (i = 0; i < ntests; i++) {
		if (file_part_len(tests[i]) == n &&
		    strncmp(tests[i], id, n) == 0)
			return 1;
	}
	return 0;
}

static const char *case_name(const struct junit_case *jc);

/* The pytest ids a JUnit case could stand for, most likely first:
 * classname "a.b.TestC" splits into a module path and classes at each dot.
 * A split whose last module part starts with a capital letter (a class
 * name, by convention) is tried last. */
static size_t pytest_candidates(const struct junit_case *jc, char **out,
				size_t max)
{
	const char *cls = jc->classname ? jc->classname : "";
	size_t nparts = 1, k, i, n = 0, late = 0;
	char *late_v[64];
	const char *p;
	struct buf b;
	char *file_mod = NULL;

	if (!cls[0])
		return 0;
	/* With a "file" attribute (xunit1) the module is known. */
	if (jc->file && jc->file[0]) {
		size_t flen = strlen(jc->file);

		if (flen > 3 && strcmp(jc->file + flen - 3, ".py") == 0) {
			file_mod = xstrndup(jc->file, flen - 3);
			for (i = 0; file_mod[i]; i++) {
				if (file_mod[i] == '/')
					file_mod[i] = '.';
			}
			flen = strlen(file_mod);
			if (strcmp(cls, file_mod) == 0) {
				out[n++] = xasprintf("%s::%s", jc->file,
						     case_name(jc));
			} else if (strncmp(cls, file_mod, flen) == 0 &&
				   cls[flen] == '.') {
				buf_init(&b, 0);
				buf_printf(&b, "%s", jc->file);
				for (p = cls + flen; *p; p++) {
					if (*p == '.')
						buf_appendstr(&b, "::");
					else
						buf_append(&b, p, 1);
				}
				buf_printf(&b, "::%s", case_name(jc));
				out[n++] = buf_detach(&b, NULL);
			}
			free(file_mod);
		}
	}
	for (p = cls; *p; p++) {
		if (*p == '.')
			nparts++;
	}
	for (k = nparts; k >= 1 && n + late < max && late < 64; k--) {
		const char *q = cls;
		size_t seen = 0;
		const char *last_mod = cls;

		buf_init(&b, 0);
		for (q = cls; *q; q++) {
			if (*q == '.') {
				seen++;
				if (seen < k) {
					buf_append(&b, "/", 1);
					last_mod = q + 1;
				} else if (seen == k) {
					buf_appendstr(&b, ".py::");
				} else {
					buf_appendstr(&b, "::");
				}
			} else {
				buf_append(&b, q, 1);
			}
		}
		if (seen < k)
			buf_appendstr(&b, ".py");
		buf_printf(&b, "::%s", case_name(jc));
		if (isupper((unsigned char)*last_mod))
			late_v[late++] = buf_detach(&b, NULL);
		else
			out[n++] = buf_detach(&b, NULL);
	}
	for (i = 0; i < late; i++) {
		if (n < max)
			out[n++] = late_v[i];
		else
			free(late_v[i]);
	}
	return n;
}

static const char *case_name(const struct junit_case *jc)
{
	return jc->name ? jc->name : "";
}

static char *plain_id(const struct junit_case *jc)
{
	if (jc->classname && jc->classname[0])
		return xasprintf("%s::%s", jc->classname, case_name(jc));
	return xstrdup(case_name(jc));
}

char *runner_junit_id(const char *runner, const struct junit_case *jc,
		      char *const *tests, size_t ntests)
{
	char *cand[66];
	size_t n = 0, i;
	char *found = NULL;
	int pass, hit;

	if (runner && strcmp(runner, "pytest") == 0)
		n = pytest_candidates(jc, cand, 64);
	if (jc->classname && jc->classname[0]) {
		cand[n++] = plain_id(jc);
		cand[n++] = xstrdup(case_name(jc));
	}
	/* Exact match first, then a test selected by its file, class or
	 * directory, then a pytest candidate in one of the requested files. */
	for (pass = 0; pass < 3 && !found; pass++) {
		for (i = 0; i < n && !found; i++) {
			if (pass == 0)
				hit = match_exact(tests, ntests, cand[i]);
			else if (pass == 1)
				hit = match_under(tests, ntests, cand[i]);
			else
				hit = strstr(cand[i], ".py::") &&
				      match_file(tests, ntests, cand[i]);
			if (hit) {
				found = cand[i];
				cand[i] = NULL;
			}
		}
	}
	/* With the file known (xunit1) the first candidate is certain. */
	if (!found && n > 0 && cand[0] && jc->file && jc->file[0] &&
	    strncmp(cand[0], jc->file, strlen(jc->file)) == 0 &&
	    strncmp(cand[0] + strlen(jc->file), "::", 2) == 0) {
		found = cand[0];
		cand[0] = NULL;
	}
	for (i = 0; i < n; i++)
		free(cand[i]);
	return found ? found : plain_id(jc);
}

struct test_result *runner_junit_results(const char *runner,
					 const struct junit_case *cases,
					 size_t ncases, char *const *tests,
					 size_t ntests, size_t *nresults)
{
	struct test_result *out;
	size_t i;

	*nresults = 0;
	if (ncases == 0)
		return NULL;
	out = xcalloc(ncases, sizeof(*out));
	for (i = 0; i < ncases; i++) {
		const struct junit_case *jc = &cases[i];
		struct test_result *r = &out[i];

		r->id = runner_junit_id(runner, jc, tests, ntests);
		r->outcome = jc->outcome;
		r->duration_s = jc->time_s > 0 ? jc->time_s : 0;
		if (jc->message && jc->message[0]) {
			size_t n = strcspn(jc->message, "\r\n");

			if (n > 1000)
				n = 1000;
			r->message = xstrndup(jc->message, n);
		}
		if (jc->details && jc->details[0])
			r->details = xstrdup(jc->details);
		if (jc->file && jc->file[0])
			r->file = xstrdup(jc->file);
		r->line = jc->line;
	}
	*nresults = ncases;
	return out;
}

/* --- unfinished tests --- */

/* Whether any sorted id answers want. */
static int sorted_covers(const struct sorted_ids *s, const char *want,
			 int partial)
{
	size_t lo = 0, hi = s->n, mid, n = strlen(want);

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (strcmp(s->v[mid], want) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < s->n && strncmp(s->v[lo], want, n) == 0; lo++) {
		if (runner_id_covers(want, s->v[lo], partial))
			return 1;
		if (!partial)
			return 0;
	}
	return 0;
}

char **runner_unfinished(char *const *tests, size_t ntests,
			 const struct test_result *results, size_t nresults,
			 int completed, size_t *n)
{
	struct sorted_ids s = {NULL, 0};
	char **out = NULL;
	size_t i;

	*n = 0;
	if (ntests == 0)
		return NULL;
	if (nresults > 0) {
		s.v = xcalloc(nresults, sizeof(*s.v));
		for (i = 0; i < nresults; i++)
			s.v[i] = results[i].id;
		s.n = nresults;
		qsort(s.v, s.n, sizeof(*s.v), cmp_str);
	}
	for (i = 0; i < ntests; i++) {
		if (sorted_covers(&s, tests[i], completed))
			continue;
		if (!out)
			out = xcalloc(ntests, sizeof(*out));
		out[(*n)++] = xstrdup(tests[i]);
	}
	free(s.v);
	return out;
}
