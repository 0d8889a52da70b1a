/* report.c -- writes a merged report as JSON (testfleet.report/1, through
 * jansson), JUnit XML (through libxml2's text writer), Markdown (GitHub
 * step summaries) and the console summary (see report.h). Strings from
 * runners are untrusted: each is made valid UTF-8 (bad bytes become
 * U+FFFD) and, where the format cannot carry them, control characters are
 * written as "\xNN". Files are written to "<path>.tmp" and renamed. */
#include "report.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <libxml/xmlIO.h>
#include <libxml/xmlwriter.h>

#include "utf8.h"
#include "xmalloc.h"

#define REPORT_SCHEMA "testfleet.report/1"
#define CONSOLE_WIDTH 80
#define CONSOLE_OUTPUT_LINES 20
#define CONSOLE_MESSAGE_MAX 300
#define CONSOLE_MAX_ARTIFACTS 30
#define MD_MAX_ITEMS 200
#define MD_MESSAGE_MAX 500
#define MD_OUTPUT_LINES 20

/* What a cleaned string must avoid besides invalid UTF-8. */
enum clean_mode {
	CLEAN_UTF8, /* JSON: jansson escapes control characters itself */
	CLEAN_XML,  /* XML 1.0: only \t \n \r below 0x20; no U+FFFE/U+FFFF */
	CLEAN_TEXT, /* terminal/Markdown: only \t \n; no escape sequences */
};

/* A malloc'd copy of s made safe for mode (see enum clean_mode); NULL for
 * NULL. Invalid UTF-8 bytes become U+FFFD; control characters the mode
 * cannot carry become "\xNN". */
static char *clean_str(const char *s, enum clean_mode mode)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	char *out, *o;

	if (s == NULL)
		return NULL;
	/* Worst case: every byte becomes "\xNN" (4 bytes). */
	out = xmalloc(strlen(s) * 4 + 1);
	o = out;
	while (*p != '\0') {
		uint32_t cp;
		/* 4 bytes at most; a NUL ends any sequence early, so this
		 * never reads past the string. */
		size_t n = utf8_decode(p, strnlen((const char *)p, 4), &cp);
		int escape = 0;

		if (n == 0) {
			memcpy(o, "\xEF\xBF\xBD", 3);
			o += 3;
			p++;
			continue;
		}
		if (mode == CLEAN_XML)
			escape =
			    cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r';
		else if (mode == CLEAN_TEXT)
			escape = (cp < 0x20 && cp != '\t' && cp != '\n') ||
				 cp == 0x7F || (cp >= 0x80 && cp <= 0x9F);
		if (escape && cp < 0x80) {
			*o++ = '\\';
			*o++ = 'x';
			*o++ = hex[cp >> 4];
			*o++ = hex[cp & 0xF];
		} else if (escape || (mode == CLEAN_XML &&
				      (cp == 0xFFFE || cp == 0xFFFF))) {
			/* C1 controls and XML's non-characters (2-3 bytes
			 * each) become U+FFFD (3 bytes): never longer. */
			memcpy(o, "\xEF\xBF\xBD", 3);
			o += 3;
		} else {
			memcpy(o, p, n);
			o += n;
		}
		p += n;
	}
	*o = '\0';
	return out;
}

/* The first line of s, cleaned for mode and cut to max bytes (at a
 * character boundary, with "..."); NULL for NULL. */
static char *clean_line(const char *s, enum clean_mode mode, size_t max)
{
	char *line, *c;
	size_t n;

	if (s == NULL)
		return NULL;
	line = xstrndup(s, strcspn(s, "\r\n"));
	c = clean_str(line, mode);
	free(line);
	n = strlen(c);
	if (max > 3 && n > max) {
		n = max - 3;
		while (n > 0 && ((unsigned char)c[n] & 0xC0) == 0x80)
			n--;
		memcpy(c + n, "...", 4);
	}
	return c;
}

static double round_to(double x, double unit)
{
	if (!isfinite(x))
		return 0;
	return round(x / unit) * unit;
}

static double report_duration(const struct report *r)
{
	double d = r->finished_at - r->started_at;

	return d > 0 && isfinite(d) ? d : 0;
}

/* "2026-11-21T05:42:10.123Z"; with zulu = 0, "2026-11-21T05:42:10" (what
 * JUnit's timestamp attribute expects). Returns 0, or -1 when t is not a
 * plausible unix time. */
static int format_time(double t, int zulu, char *out, size_t outlen)
{
	struct tm tm;
	time_t secs;
	double whole;
	long ms;
	unsigned msec;
	char date[24];

	if (!isfinite(t) || t <= 0 || t > 253402300799.0)
		return -1;
	whole = floor(t);
	ms = lround((t - whole) * 1000.0);
	if (ms >= 1000) {
		whole += 1;
		ms -= 1000;
	}
	secs = (time_t)whole;
	if (gmtime_r(&secs, &tm) == NULL)
		return -1;
	if (strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		return -1;
	msec = (unsigned)ms % 1000u;
	if (zulu)
		snprintf(out, outlen, "%.19s.%03uZ", date, msec);
	else
		snprintf(out, outlen, "%.19s", date);
	return 0;
}

/* ---- output files ---------------------------------------------------- */

struct out_file {
	FILE *f;
	char *tmp;	  /* NULL for stdout */
	const char *path; /* borrowed */
};

static int out_open(struct out_file *o, const char *path, const char *what,
		    char *err, size_t errlen)
{
	memset(o, 0, sizeof(*o));
	o->path = path;
	if (path == NULL || path[0] == '\0') {
		snprintf(err, errlen, "%s: empty output path", what);
		return -1;
	}
	if (strcmp(path, "-") == 0) {
		o->f = stdout;
		return 0;
	}
	o->tmp = xasprintf("%s.tmp", path);
	o->f = fopen(o->tmp, "w");
	if (o->f == NULL) {
		snprintf(err, errlen, "%s: %s: %s", what, o->tmp,
			 strerror(errno));
		free(o->tmp);
		o->tmp = NULL;
		return -1;
	}
	return 0;
}

/* Finishes the file: on success renames the temporary file over path; on
 * failure (ok == 0, or a write error) removes it. Returns 0 or -1 (err set
 * unless the caller's ok == 0 already explained why). */
static int out_close(struct out_file *o, int ok, const char *what, char *err,
		     size_t errlen)
{
	int rc = ok ? 0 : -1;

	if (o->f == NULL)
		return -1;
	if (o->tmp == NULL) {
		if (fflush(o->f) != 0 || ferror(o->f)) {
			if (rc == 0)
				snprintf(err, errlen, "%s: stdout: %s", what,
					 strerror(errno));
			rc = -1;
		}
		o->f = NULL;
		return rc;
	}
	if (ferror(o->f) && rc == 0) {
		snprintf(err, errlen, "%s: %s: write error", what, o->tmp);
		rc = -1;
	}
	if (fclose(o->f) != 0 && rc == 0) {
		snprintf(err, errlen, "%s: %s: %s", what, o->tmp,
			 strerror(errno));
		rc = -1;
	}
	o->f = NULL;
	if (rc == 0 && rename(o->tmp, o->path) != 0) {
		snprintf(err, errlen, "%s: %s: %s", what, o->path,
			 strerror(errno));
		rc = -1;
	}
	if (rc != 0)
		unlink(o->tmp);
	free(o->tmp);
	o->tmp = NULL;
	return rc;
}

/* ---- JSON ------------------------------------------------------------ */

/* Adds value under key; a NULL value (jansson out of memory) is recorded
 * in *failed rather than checked at every call. */
static void jset(json_t *obj, const char *key, json_t *value, int *failed)
{
	if (value == NULL || json_object_set_new(obj, key, value) != 0)
		*failed = 1;
}

static json_t *jstr(const char *s)
{
	char *c;
	json_t *v;

	if (s == NULL)
		return json_null();
	c = clean_str(s, CLEAN_UTF8);
	v = json_string(c);
	free(c);
	return v;
}

static json_t *jtime(double t)
{
	char buf[40];

	if (format_time(t, 1, buf, sizeof(buf)) != 0)
		return json_null();
	return json_string(buf);
}

static json_t *json_totals(const struct report *r, int *failed)
{
	json_t *o = json_object();
	int i;

	if (o == NULL) {
		*failed = 1;
		return NULL;
	}
	jset(o, "tests", json_integer(r->ntotal), failed);
	for (i = 0; i < OUTCOME_COUNT; i++)
		jset(o, outcome_name((enum outcome)i),
		     json_integer(r->totals[i]), failed);
	return o;
}

static json_t *json_phase(const struct report_phase *p, int *failed)
{
	json_t *o = json_object();

	if (o == NULL) {
		*failed = 1;
		return NULL;
	}
	jset(o, "name", jstr(p->name), failed);
	jset(o, "status", jstr(p->status), failed);
	jset(o, "required", json_boolean(p->required), failed);
	jset(o, "duration_s", json_real(round_to(p->duration_s, 0.001)),
	     failed);
	jset(o, "tasks", json_integer(p->tasks), failed);
	if (p->has_planned)
		jset(o, "planned", json_integer(p->planned), failed);
	return o;
}

static json_t *json_test(const struct report_test *t, int *failed)
{
	json_t *o = json_object();

	if (o == NULL) {
		*failed = 1;
		return NULL;
	}
	jset(o, "id", jstr(t->id), failed);
	jset(o, "suite", jstr(t->suite), failed);
	jset(o, "phase", jstr(t->phase), failed);
	jset(o, "outcome", json_string(outcome_name(t->outcome)), failed);
	jset(o, "attempts", json_integer(t->attempts ? t->attempts : 1),
	     failed);
	/* Tests are often sub-millisecond: keep microseconds. */
	jset(o, "duration_s", json_real(round_to(t->duration_s, 1e-6)), failed);
	jset(o, "message", jstr(t->message), failed);
	jset(o, "retried_for", jstr(t->retried_for), failed);
	jset(o, "worker", jstr(t->worker), failed);
	if (t->file != NULL)
		jset(o, "file", jstr(t->file), failed);
	if (t->line > 0)
		jset(o, "line", json_integer(t->line), failed);
	if (t->details != NULL)
		jset(o, "details", jstr(t->details), failed);
	return o;
}

static json_t *json_artifact(const struct report_artifact *a, int *failed)
{
	json_t *o = json_object();

	if (o == NULL) {
		*failed = 1;
		return NULL;
	}
	jset(o, "task", jstr(a->task), failed);
	jset(o, "attempt", json_integer(a->attempt), failed);
	jset(o, "path", jstr(a->path), failed);
	jset(o, "size", json_integer((json_int_t)a->size), failed);
	jset(o, "stored",
	     json_string(a->error != NULL ? "none"
			 : a->url != NULL ? "url"
					  : "redis"),
	     failed);
	if (a->url != NULL)
		jset(o, "url", jstr(a->url), failed);
	if (a->file != NULL)
		jset(o, "file", jstr(a->file), failed);
	if (a->error != NULL)
		jset(o, "error", jstr(a->error), failed);
	if (a->fetch_error != NULL)
		jset(o, "fetch_error", jstr(a->fetch_error), failed);
	return o;
}

/* The testfleet.report/1 document; NULL when jansson ran out of memory. */
static json_t *json_report(const struct report *r)
{
	json_t *root = json_object(), *arr;
	int failed = 0;
	size_t i;

	if (root == NULL)
		return NULL;
	jset(root, "schema", json_string(REPORT_SCHEMA), &failed);
	jset(root, "run", jstr(r->run), &failed);
	jset(root, "status", jstr(r->status), &failed);
	jset(root, "started_at", jtime(r->started_at), &failed);
	jset(root, "finished_at", jtime(r->finished_at), &failed);
	jset(root, "duration_s", json_real(round_to(report_duration(r), 0.001)),
	     &failed);
	jset(root, "totals", json_totals(r, &failed), &failed);

	arr = json_array();
	for (i = 0; arr != NULL && i < r->nphases; i++)
		if (json_array_append_new(
			arr, json_phase(&r->phases[i], &failed)) != 0)
			failed = 1;
	jset(root, "phases", arr, &failed);

	arr = json_array();
	for (i = 0; arr != NULL && i < r->ntests; i++)
		if (json_array_append_new(
			arr, json_test(&r->tests[i], &failed)) != 0)
			failed = 1;
	jset(root, "tests", arr, &failed);

	/* Only when some task kept artifacts: the key is optional. */
	if (r->nartifacts > 0) {
		arr = json_array();
		for (i = 0; arr != NULL && i < r->nartifacts; i++)
			if (json_array_append_new(
				arr, json_artifact(&r->artifacts[i],
						   &failed)) != 0)
				failed = 1;
		jset(root, "artifacts", arr, &failed);
	}

	if (failed) {
		json_decref(root);
		return NULL;
	}
	return root;
}

int report_write_json(const struct report *r, const char *path, char *err,
		      size_t errlen)
{
	struct out_file o;
	json_t *root = NULL;
	int ok = 0, rc = -1;

	root = json_report(r);
	if (root == NULL) {
		snprintf(err, errlen,
			 "json: %s: out of memory building the "
			 "report",
			 path ? path : "(null)");
		goto out;
	}
	if (out_open(&o, path, "json", err, errlen) != 0)
		goto out;
	if (json_dumpf(root, o.f, JSON_INDENT(2) | JSON_REAL_PRECISION(15)) !=
		0 ||
	    fputc('\n', o.f) == EOF)
		snprintf(err, errlen, "json: %s: write error",
			 o.tmp ? o.tmp : "stdout");
	else
		ok = 1;
	rc = out_close(&o, ok, "json", err, errlen);
out:
	json_decref(root);
	return rc;
}

/* ---- JUnit XML ------------------------------------------------------- */

struct xw {
	xmlTextWriterPtr w;
	int failed;
};

static void xw_start(struct xw *x, const char *name)
{
	if (xmlTextWriterStartElement(x->w, BAD_CAST name) < 0)
		x->failed = 1;
}

static void xw_end(struct xw *x)
{
	if (xmlTextWriterEndElement(x->w) < 0)
		x->failed = 1;
}

static void xw_attr(struct xw *x, const char *name, const char *value)
{
	char *c = clean_str(value != NULL ? value : "", CLEAN_XML);

	if (xmlTextWriterWriteAttribute(x->w, BAD_CAST name, BAD_CAST c) < 0)
		x->failed = 1;
	free(c);
}

static void xw_attr_uint(struct xw *x, const char *name, unsigned long v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lu", v);
	xw_attr(x, name, buf);
}

static void xw_attr_time(struct xw *x, const char *name, double secs)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "%.3f",
		 isfinite(secs) && secs > 0 ? secs : 0.0);
	xw_attr(x, name, buf);
}

static void xw_text(struct xw *x, const char *text)
{
	char *c;

	if (text == NULL || text[0] == '\0')
		return;
	c = clean_str(text, CLEAN_XML);
	if (xmlTextWriterWriteString(x->w, BAD_CAST c) < 0)
		x->failed = 1;
	free(c);
}

static void xw_property(struct xw *x, const char *name, const char *value)
{
	xw_start(x, "property");
	xw_attr(x, "name", name);
	xw_attr(x, "value", value);
	xw_end(x);
}

/* classname and name the way pytest's junitxml derives them from a node
 * id: "tests/sub/test_a.py::TestC::test_x[p]" gives "tests.sub.test_a.TestC"
 * and "test_x[p]". Ids without "::" (Playwright, command runners) keep the
 * whole id as name, with the suite as classname. Both are malloc'd. */
static void junit_names(const char *id, const char *suite, char **classname,
			char **name)
{
	const char *sep = strstr(id, "::");
	const char *bracket, *last, *p;
	size_t pathlen, i;
	char *cls, *o;

	if (sep == NULL) {
		*classname = xstrdup(suite != NULL ? suite : "testfleet");
		*name = xstrdup(id);
		return;
	}
	/* Parameters ("[a::b]") may contain "::": look only before them. */
	bracket = strchr(sep, '[');
	last = sep;
	for (p = sep + 2; (p = strstr(p, "::")) != NULL; p += 2) {
		if (bracket != NULL && p > bracket)
			break;
		last = p;
	}
	pathlen = (size_t)(sep - id);
	if (pathlen >= 3 && strncmp(sep - 3, ".py", 3) == 0)
		pathlen -= 3;
	cls = xmalloc((size_t)(last - id) + 1);
	o = cls;
	for (i = 0; i < pathlen; i++)
		*o++ = (id[i] == '/' || id[i] == '\\') ? '.' : id[i];
	for (p = sep; p < last;) {
		if (strncmp(p, "::", 2) == 0) {
			*o++ = '.';
			p += 2;
		} else {
			*o++ = *p++;
		}
	}
	*o = '\0';
	*classname = cls;
	*name = xstrdup(last + 2);
}

static void junit_testcase(struct xw *x, const struct report_test *t)
{
	char *classname, *name, *file = NULL, *msg;
	const char *sep;
	char buf[32];

	junit_names(t->id, t->suite, &classname, &name);
	if (t->file != NULL)
		file = xstrdup(t->file);
	else if ((sep = strstr(t->id, "::")) != NULL && sep > t->id)
		file = xstrndup(t->id, (size_t)(sep - t->id));

	xw_start(x, "testcase");
	xw_attr(x, "classname", classname);
	xw_attr(x, "name", name);
	if (file != NULL)
		xw_attr(x, "file", file);
	if (t->line > 0)
		xw_attr_uint(x, "line", t->line);
	xw_attr_time(x, "time", t->duration_s);

	/* The exact id is what reruns select on; keep it. */
	xw_start(x, "properties");
	xw_property(x, "testfleet.id", t->id);
	if (t->outcome == OUTCOME_XPASSED || t->outcome == OUTCOME_FLAKY ||
	    t->outcome == OUTCOME_XFAILED)
		xw_property(x, "testfleet.outcome", outcome_name(t->outcome));
	if (t->attempts > 1) {
		snprintf(buf, sizeof(buf), "%u", (unsigned)t->attempts);
		xw_property(x, "testfleet.attempts", buf);
	}
	if (t->retried_for != NULL)
		xw_property(x, "testfleet.retried_for", t->retried_for);
	if (t->worker != NULL)
		xw_property(x, "testfleet.worker", t->worker);
	xw_end(x);

	msg = clean_line(t->message, CLEAN_XML, 0);
	switch (t->outcome) {
	case OUTCOME_FAILED:
	case OUTCOME_ERROR:
		xw_start(x, t->outcome == OUTCOME_FAILED ? "failure" : "error");
		xw_attr(x, "message",
			msg != NULL ? msg
				    : (t->outcome == OUTCOME_FAILED ? "failed"
								    : "error"));
		xw_text(x, t->details != NULL ? t->details : t->message);
		xw_end(x);
		break;
	case OUTCOME_SKIPPED:
	case OUTCOME_XFAILED:
		xw_start(x, "skipped");
		xw_attr(x, "type",
			t->outcome == OUTCOME_XFAILED ? "pytest.xfail"
						      : "pytest.skip");
		xw_attr(x, "message", msg != NULL ? msg : "");
		xw_end(x);
		break;
	case OUTCOME_PASSED:
	case OUTCOME_XPASSED:
	case OUTCOME_FLAKY:
	default:
		break;
	}
	xw_end(x);
	free(msg);
	free(file);
	free(name);
	free(classname);
}

struct junit_suite {
	const char *name;
	size_t *tests; /* indexes into report.tests */
	size_t ntests;
	unsigned failures, errors, skipped;
	double time;
};

static size_t suite_get(struct junit_suite **suites, size_t *nsuites,
			const char *name, size_t hint)
{
	size_t i;

	if (hint < *nsuites && strcmp((*suites)[hint].name, name) == 0)
		return hint;
	for (i = 0; i < *nsuites; i++)
		if (strcmp((*suites)[i].name, name) == 0)
			return i;
	*suites = xreallocarray(*suites, *nsuites + 1, sizeof(**suites));
	memset(&(*suites)[*nsuites], 0, sizeof(**suites));
	(*suites)[*nsuites].name = name;
	return (*nsuites)++;
}

static void junit_system_err(struct xw *x, const struct report *r,
			     const char *suite)
{
	size_t i;
	int open = 0;

	for (i = 0; i < r->nissues; i++) {
		const struct report_task_issue *is = &r->issues[i];
		char *head;

		if (strcmp(is->suite != NULL ? is->suite : "default", suite) !=
		    0)
			continue;
		if (!open) {
			xw_start(x, "system-err");
			open = 1;
		}
		head = xasprintf("task %s %s%s%s: %s\n", is->task, is->status,
				 is->worker ? " on " : "",
				 is->worker ? is->worker : "",
				 is->message ? is->message : "");
		xw_text(x, head);
		free(head);
		if (is->output != NULL) {
			size_t n = strlen(is->output);

			xw_text(x, is->output);
			if (n > 0 && is->output[n - 1] != '\n')
				xw_text(x, "\n");
		}
	}
	if (open)
		xw_end(x);
}

static void junit_document(struct xw *x, const struct report *r)
{
	struct junit_suite *suites = NULL;
	size_t nsuites = 0, i, j, hint = 0;
	size_t *slots = NULL;
	char stamp[40];
	int have_stamp;

	/* Group tests by suite, in order of first appearance. */
	slots = xcalloc(r->ntests ? r->ntests : 1, sizeof(*slots));
	for (i = 0; i < r->ntests; i++) {
		const struct report_test *t = &r->tests[i];
		struct junit_suite *s;

		hint = suite_get(&suites, &nsuites,
				 t->suite != NULL ? t->suite : "default", hint);
		slots[i] = hint;
		s = &suites[hint];
		s->ntests++;
		if (t->outcome == OUTCOME_FAILED)
			s->failures++;
		else if (t->outcome == OUTCOME_ERROR)
			s->errors++;
		else if (t->outcome == OUTCOME_SKIPPED ||
			 t->outcome == OUTCOME_XFAILED)
			s->skipped++;
		if (isfinite(t->duration_s) && t->duration_s > 0)
			s->time += t->duration_s;
	}
	/* Suites whose tasks failed without naming a test still get an
	 * element, for their system-err. */
	for (i = 0; i < r->nissues; i++)
		suite_get(&suites, &nsuites,
			  r->issues[i].suite ? r->issues[i].suite : "default",
			  0);
	for (i = 0; i < nsuites; i++)
		suites[i].tests = xcalloc(
		    suites[i].ntests ? suites[i].ntests : 1, sizeof(size_t));
	for (i = 0; i < nsuites; i++)
		suites[i].ntests = 0;
	for (i = 0; i < r->ntests; i++) {
		struct junit_suite *s = &suites[slots[i]];

		s->tests[s->ntests++] = i;
	}

	have_stamp = format_time(r->started_at, 0, stamp, sizeof(stamp)) == 0;
	if (xmlTextWriterStartDocument(x->w, NULL, "UTF-8", NULL) < 0)
		x->failed = 1;
	xw_start(x, "testsuites");
	xw_attr(x, "name", "testfleet");
	xw_attr_uint(x, "tests", r->ntotal);
	xw_attr_uint(x, "failures", r->totals[OUTCOME_FAILED]);
	xw_attr_uint(x, "errors", r->totals[OUTCOME_ERROR]);
	xw_attr_uint(x, "skipped",
		     r->totals[OUTCOME_SKIPPED] + r->totals[OUTCOME_XFAILED]);
	xw_attr_time(x, "time", report_duration(r));
	for (i = 0; i < nsuites && !x->failed; i++) {
		const struct junit_suite *s = &suites[i];

		xw_start(x, "testsuite");
		xw_attr(x, "name", s->name);
		xw_attr_uint(x, "tests", s->ntests);
		xw_attr_uint(x, "failures", s->failures);
		xw_attr_uint(x, "errors", s->errors);
		xw_attr_uint(x, "skipped", s->skipped);
		xw_attr_time(x, "time", s->time);
		if (have_stamp)
			xw_attr(x, "timestamp", stamp);
		for (j = 0; j < s->ntests && !x->failed; j++)
			junit_testcase(x, &r->tests[s->tests[j]]);
		junit_system_err(x, r, s->name);
		xw_end(x);
	}
	xw_end(x);
	if (xmlTextWriterEndDocument(x->w) < 0)
		x->failed = 1;

	for (i = 0; i < nsuites; i++)
		free(suites[i].tests);
	free(suites);
	free(slots);
}

int report_write_junit(const struct report *r, const char *path, char *err,
		       size_t errlen)
{
	struct out_file o;
	xmlOutputBufferPtr ob;
	struct xw x = {NULL, 0};
	int ok = 0;

	if (out_open(&o, path, "junit", err, errlen) != 0)
		return -1;
	/* The buffer writes to o.f and never closes it. */
	ob = xmlOutputBufferCreateFile(o.f, NULL);
	if (ob == NULL) {
		snprintf(err, errlen, "junit: %s: cannot create the XML writer",
			 path);
		goto out;
	}
	x.w = xmlNewTextWriter(ob); /* owns ob from here */
	if (x.w == NULL) {
		xmlOutputBufferClose(ob);
		snprintf(err, errlen, "junit: %s: cannot create the XML writer",
			 path);
		goto out;
	}
	if (xmlTextWriterSetIndent(x.w, 1) < 0 ||
	    xmlTextWriterSetIndentString(x.w, BAD_CAST "  ") < 0)
		x.failed = 1;
	junit_document(&x, r);
	if (xmlTextWriterFlush(x.w) < 0)
		x.failed = 1;
	xmlFreeTextWriter(x.w);
	if (x.failed)
		snprintf(err, errlen, "junit: %s: write error",
			 o.tmp ? o.tmp : "stdout");
	else
		ok = 1;
out:
	return out_close(&o, ok, "junit", err, errlen);
}

/* ---- Markdown -------------------------------------------------------- */

/* Writes text (already cleaned) so Markdown and HTML show it literally. */
static void md_escape(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '&':
			fputs("&amp;", f);
			break;
		case '\\':
		case '`':
		case '*':
		case '_':
		case '[':
		case ']':
		case '|':
		case '~':
		case '#':
		case '!':
			fputc('\\', f);
			fputc(*s, f);
			break;
		case '\t':
			fputc(' ', f);
			break;
		default:
			fputc(*s, f);
		}
	}
}

static size_t longest_run(const char *s, char c)
{
	size_t best = 0, cur = 0;

	for (; *s != '\0'; s++) {
		cur = *s == c ? cur + 1 : 0;
		if (cur > best)
			best = cur;
	}
	return best;
}

/* A code span that shows s literally, whatever backticks it holds. */
static void md_code(FILE *f, const char *raw)
{
	char *s = clean_line(raw != NULL ? raw : "", CLEAN_TEXT, 0);
	size_t n = longest_run(s, '`') + 1, len = strlen(s), i;
	/* CommonMark strips one space from each side of a padded span. */
	int pad = len > 0 && (s[0] == '`' || s[len - 1] == '`' ||
			      (s[0] == ' ' && s[len - 1] == ' '));

	for (i = 0; i < n; i++)
		fputc('`', f);
	if (pad)
		fputc(' ', f);
	fputs(s, f);
	if (pad)
		fputc(' ', f);
	for (i = 0; i < n; i++)
		fputc('`', f);
	free(s);
}

/* The start of the last `lines` lines of s (ignoring a final newline). */
static const char *tail_lines(const char *s, size_t lines)
{
	const char *p = s + strlen(s);

	if (p > s && p[-1] == '\n')
		p--;
	while (p > s) {
		if (p[-1] == '\n' && --lines == 0)
			break;
		p--;
	}
	return p;
}

static const char *status_emoji(const char *status)
{
	if (strcmp(status, "passed") == 0)
		return "\xE2\x9C\x85"; /* white heavy check mark */
	if (strcmp(status, "failed") == 0)
		return "\xE2\x9D\x8C"; /* cross mark */
	if (strcmp(status, "cancelled") == 0)
		return "\xF0\x9F\x9A\xAB"; /* no entry sign */
	return "\xE2\x9A\xA0\xEF\xB8\x8F"; /* warning sign */
}

static void md_summary(FILE *f, const struct report *r)
{
	size_t i;
	int o;

	fprintf(f, "## %s testfleet run ", status_emoji(r->status));
	md_code(f, r->run);
	fprintf(f, ": %s\n\n", r->status);

	fputs("| status | tests |", f);
	for (o = 0; o < OUTCOME_COUNT; o++)
		fprintf(f, " %s |", outcome_name((enum outcome)o));
	fputs(" duration |\n|---|---:|", f);
	for (o = 0; o < OUTCOME_COUNT; o++)
		fputs("---:|", f);
	fprintf(f, "---:|\n| %s | %u |", r->status, r->ntotal);
	for (o = 0; o < OUTCOME_COUNT; o++)
		fprintf(f, " %u |", r->totals[o]);
	fprintf(f, " %.2fs |\n", report_duration(r));

	if (r->tasks_expected > 0 && r->tasks_seen < r->tasks_expected)
		fprintf(f,
			"\n**Incomplete:** %u of %u tasks reported a "
			"result.\n",
			r->tasks_seen, r->tasks_expected);
	if (r->nphases == 0)
		return;
	fputs("\n### Phases\n\n| phase | status | required | tasks | "
	      "duration |\n|---|---|---|---:|---:|\n",
	      f);
	for (i = 0; i < r->nphases; i++) {
		const struct report_phase *p = &r->phases[i];
		char *name = clean_line(p->name, CLEAN_TEXT, MD_MESSAGE_MAX);

		fputs("| ", f);
		md_escape(f, name);
		fprintf(f, " | %s | %s | %u | %.2fs |\n", p->status,
			p->required ? "yes" : "no", p->tasks, p->duration_s);
		free(name);
	}
}

static int is_bad(const struct report_test *t)
{
	return t->outcome == OUTCOME_FAILED || t->outcome == OUTCOME_ERROR;
}

static void md_failures(FILE *f, const struct report *r)
{
	size_t i, shown = 0, bad = 0;

	for (i = 0; i < r->ntests; i++)
		bad += is_bad(&r->tests[i]);
	if (bad == 0)
		return;
	fprintf(f, "\n### Failures and errors (%zu)\n\n", bad);
	for (i = 0; i < r->ntests && shown < MD_MAX_ITEMS; i++) {
		const struct report_test *t = &r->tests[i];
		char *msg;

		if (!is_bad(t))
			continue;
		shown++;
		fprintf(f, "- **%s** ",
			t->outcome == OUTCOME_FAILED ? "FAILED" : "ERROR");
		md_code(f, t->id);
		msg = clean_line(t->message, CLEAN_TEXT, MD_MESSAGE_MAX);
		if (msg != NULL) {
			fputs(" \xE2\x80\x94 ", f); /* em dash */
			md_escape(f, msg);
		}
		fputc('\n', f);
		free(msg);
	}
	if (bad > shown)
		fprintf(f, "- ... and %zu more\n", bad - shown);
}

/* The tail of a task's output in a collapsed block. It stays at top level:
 * a fence inside a list item would need every output line indented. */
static void md_output(FILE *f, const struct report_task_issue *is)
{
	char *task = clean_line(is->task, CLEAN_TEXT, MD_MESSAGE_MAX);
	char *out =
	    clean_str(tail_lines(is->output, MD_OUTPUT_LINES), CLEAN_TEXT);
	size_t fence = longest_run(out, '`') + 1, k;

	if (fence < 3)
		fence = 3;
	fputs("\n<details><summary>output of ", f);
	md_escape(f, task);
	fprintf(f, " (last %d lines)</summary>\n\n", MD_OUTPUT_LINES);
	for (k = 0; k < fence; k++)
		fputc('`', f);
	fputs("text\n", f);
	fputs(out, f);
	if (out[0] != '\0' && out[strlen(out) - 1] != '\n')
		fputc('\n', f);
	for (k = 0; k < fence; k++)
		fputc('`', f);
	fputs("\n</details>\n\n", f);
	free(out);
	free(task);
}

static void md_issues(FILE *f, const struct report *r)
{
	size_t i;

	if (r->nissues == 0)
		return;
	fprintf(f, "\n### Task issues (%zu)\n\n", r->nissues);
	for (i = 0; i < r->nissues && i < MD_MAX_ITEMS; i++) {
		const struct report_task_issue *is = &r->issues[i];
		char *msg = clean_line(is->message, CLEAN_TEXT, MD_MESSAGE_MAX);

		fputs("- ", f);
		md_code(f, is->task);
		fprintf(f, " %s", is->status);
		if (is->worker != NULL) {
			fputs(" on ", f);
			md_code(f, is->worker);
		}
		if (msg != NULL) {
			fputs(": ", f);
			md_escape(f, msg);
		}
		fputc('\n', f);
		free(msg);
		if (is->output != NULL && is->output[0] != '\0')
			md_output(f, is);
	}
	if (r->nissues > MD_MAX_ITEMS)
		fprintf(f, "- ... and %zu more\n", r->nissues - MD_MAX_ITEMS);
}

int report_write_markdown(const struct report *r, const char *path, char *err,
			  size_t errlen)
{
	struct out_file o;

	if (out_open(&o, path, "markdown", err, errlen) != 0)
		return -1;
	md_summary(o.f, r);
	md_failures(o.f, r);
	md_issues(o.f, r);
	return out_close(&o, 1, "markdown", err, errlen);
}

/* ---- console --------------------------------------------------------- */

#define ANSI_RED "\033[31m"
#define ANSI_GREEN "\033[32m"
#define ANSI_YELLOW "\033[33m"
#define ANSI_BOLD "\033[1m"
#define ANSI_RESET "\033[0m"

/* pytest's separator line: "==== text ====" padded to the width. */
static void console_sep(FILE *out, const char *text, const char *color)
{
	size_t len = strlen(text), n, i;

	n = len + 2 < CONSOLE_WIDTH ? (CONSOLE_WIDTH - len - 2) / 2 : 1;
	if (n < 1)
		n = 1;
	if (color != NULL)
		fputs(color, out);
	for (i = 0; i < n; i++)
		fputc('=', out);
	fprintf(out, " %s ", text);
	for (i = 0; i < n; i++)
		fputc('=', out);
	if (2 * n + len + 2 < CONSOLE_WIDTH)
		fputc('=', out);
	if (color != NULL)
		fputs(ANSI_RESET, out);
	fputc('\n', out);
}

/* "3 failed, 15 passed, ..." in pytest's order and words. */
static char *console_counts(const struct report *r)
{
	static const struct {
		enum outcome o;
		const char *one, *many;
	} order[] = {
	    {OUTCOME_FAILED, "failed", "failed"},
	    {OUTCOME_PASSED, "passed", "passed"},
	    {OUTCOME_SKIPPED, "skipped", "skipped"},
	    {OUTCOME_XFAILED, "xfailed", "xfailed"},
	    {OUTCOME_XPASSED, "xpassed", "xpassed"},
	    {OUTCOME_ERROR, "error", "errors"},
	    {OUTCOME_FLAKY, "flaky", "flaky"},
	};
	char *s = xstrdup(""), *next;
	size_t i;

	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		unsigned n = r->totals[order[i].o];

		if (n == 0)
			continue;
		next = xasprintf("%s%s%u %s", s, s[0] ? ", " : "", n,
				 n == 1 ? order[i].one : order[i].many);
		free(s);
		s = next;
	}
	return s;
}

static void console_failures(FILE *out, const struct report *r, const char *red,
			     const char *reset)
{
	size_t i;

	for (i = 0; i < r->ntests; i++) {
		const struct report_test *t = &r->tests[i];
		char *id, *msg;

		if (!is_bad(t))
			continue;
		id = clean_line(t->id, CLEAN_TEXT, 0);
		msg = clean_line(t->message, CLEAN_TEXT, CONSOLE_MESSAGE_MAX);
		fprintf(out, "%s%s%s %s%s%s\n", red,
			t->outcome == OUTCOME_FAILED ? "FAILED" : "ERROR",
			reset, id, msg ? " - " : "", msg ? msg : "");
		free(msg);
		free(id);
	}
}

static void console_issues(FILE *out, const struct report *r, const char *red,
			   const char *reset)
{
	size_t i;

	for (i = 0; i < r->nissues; i++) {
		const struct report_task_issue *is = &r->issues[i];
		char *task = clean_line(is->task, CLEAN_TEXT, 0);
		char *worker = clean_line(is->worker, CLEAN_TEXT, 0);
		char *msg =
		    clean_line(is->message, CLEAN_TEXT, CONSOLE_MESSAGE_MAX);
		char *tail = NULL;
		const char *p;

		fprintf(out, "%sTASK%s %s %s%s%s%s%s\n", red, reset, task,
			is->status, worker ? " on " : "", worker ? worker : "",
			msg ? ": " : "", msg ? msg : "");
		if (is->output != NULL)
			tail = clean_str(
			    tail_lines(is->output, CONSOLE_OUTPUT_LINES),
			    CLEAN_TEXT);
		for (p = tail; p != NULL && *p != '\0';) {
			size_t n = strcspn(p, "\n");

			fprintf(out, "    | %.*s\n", (int)n, p);
			p += n;
			if (*p == '\n')
				p++;
		}
		free(tail);
		free(msg);
		free(worker);
		free(task);
	}
}

/* One line per phase that did not pass, when the run has phases: a
 * skipped phase's tests never ran and appear nowhere else. */
static void console_phases(FILE *out, const struct report *r, const char *red,
			   const char *reset)
{
	const char *first_failed = NULL;
	size_t i;

	if (r->nphases < 2)
		return;
	for (i = 0; i < r->nphases; i++) {
		const struct report_phase *p = &r->phases[i];
		char *name = clean_line(p->name, CLEAN_TEXT, 0);

		if (strcmp(p->status, "passed") == 0) {
			free(name);
			continue;
		}
		if (strcmp(p->status, "skipped") == 0)
			fprintf(out, "%sPHASE%s %s skipped%s%s%s\n", red, reset,
				name,
				first_failed ? " (required phase " : "",
				first_failed ? first_failed : "",
				first_failed ? " failed)" : "");
		else
			fprintf(out, "%sPHASE%s %s %s%s (%u task%s ran)\n", red,
				reset, name, p->status,
				p->required ? "" : ", optional", p->tasks,
				p->tasks == 1 ? "" : "s");
		if (p->required && first_failed == NULL &&
		    strcmp(p->status, "skipped") != 0)
			first_failed = p->name;
		free(name);
	}
}

/* One line per artifact that was fetched, uploaded or lost (at most
 * CONSOLE_MAX_ARTIFACTS, then a count). */
static void console_artifacts(FILE *out, const struct report *r)
{
	size_t i;

	if (r->nartifacts == 0)
		return;
	console_sep(out, "artifacts", NULL);
	for (i = 0; i < r->nartifacts && i < CONSOLE_MAX_ARTIFACTS; i++) {
		const struct report_artifact *a = &r->artifacts[i];
		char *path = clean_line(a->file ? a->file : a->path,
					CLEAN_TEXT, 0);
		char *where = clean_line(a->error	  ? a->error
					 : a->fetch_error ? a->fetch_error
					 : a->file	  ? NULL
							  : a->url,
					 CLEAN_TEXT, CONSOLE_MESSAGE_MAX);

		fprintf(out, "%s (task %s, %llu bytes)%s%s\n", path, a->task,
			(unsigned long long)a->size, where ? ": " : "",
			where ? where : "");
		free(where);
		free(path);
	}
	if (r->nartifacts > CONSOLE_MAX_ARTIFACTS)
		fprintf(out, "... and %zu more (see the JSON report)\n",
			r->nartifacts - CONSOLE_MAX_ARTIFACTS);
}

/* "== 3 failed, 15 passed in 12.34s (run X) ==", with the run status
 * when it is neither passed nor failed. */
static void console_final(FILE *out, const struct report *r, int color)
{
	const char *line_color = NULL;
	int other = strcmp(r->status, "passed") != 0 &&
		    strcmp(r->status, "failed") != 0;
	double d = report_duration(r);
	char *counts, *run, *dur, *summary;

	counts = console_counts(r);
	run = clean_line(r->run, CLEAN_TEXT, 0);
	if (d >= 60)
		dur = xasprintf("%.2fs (%d:%02d:%02d)", d, (int)(d / 3600),
				(int)(fmod(d, 3600) / 60), (int)fmod(d, 60));
	else
		dur = xasprintf("%.2fs", d);
	summary = xasprintf("%s in %s (run %s%s%s)",
			    counts[0] ? counts : "no tests ran", dur, run,
			    other ? ", " : "", other ? r->status : "");
	if (color) {
		if (strcmp(r->status, "passed") != 0)
			line_color = ANSI_BOLD ANSI_RED;
		else if (r->ntotal == 0 || r->totals[OUTCOME_FLAKY] > 0 ||
			 r->totals[OUTCOME_XPASSED] > 0)
			line_color = ANSI_BOLD ANSI_YELLOW;
		else
			line_color = ANSI_BOLD ANSI_GREEN;
	}
	console_sep(out, summary, line_color);
	free(summary);
	free(dur);
	free(run);
	free(counts);
}

void report_print_console(const struct report *r, FILE *out, int color)
{
	const char *red = color ? ANSI_RED : "";
	const char *reset = color ? ANSI_RESET : "";
	size_t i, bad = 0;

	for (i = 0; i < r->ntests; i++)
		bad += is_bad(&r->tests[i]);
	if (bad > 0 || r->nissues > 0)
		console_sep(out, "short test summary info", NULL);
	console_failures(out, r, red, reset);
	console_issues(out, r, red, reset);
	console_phases(out, r, red, reset);
	if (strcmp(r->status, "error") == 0 && r->tasks_expected > 0 &&
	    r->tasks_seen < r->tasks_expected)
		fprintf(out,
			"%sERROR%s run incomplete: %u of %u tasks "
			"reported a result\n",
			red, reset, r->tasks_seen, r->tasks_expected);
	console_artifacts(out, r);
	console_final(out, r, color);
}
