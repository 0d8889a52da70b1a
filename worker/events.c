/* events.c -- runner event lines into per-test results (see events.h). */
#include "events.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"
#include "xmalloc.h"

void runner_event_release(struct runner_event *ev)
{
	test_result_release(&ev->test);
}

/* A copy of s capped at max bytes without cutting a UTF-8 sequence; with
 * one_line, cut at the first newline too. jansson hands out valid UTF-8
 * without NUL, so no other repair is needed. */
static char *copy_capped(const char *s, size_t len, size_t max, int one_line)
{
	const char *nl;

	if (one_line) {
		nl = memchr(s, '\n', len);
		if (nl)
			len = (size_t)(nl - s);
		while (len > 0 && (s[len - 1] == '\r' || s[len - 1] == ' '))
			len--;
	}
	len = utf8_prefix(s, len, max);
	return xstrndup(s, len);
}

/* Reads optional string key; 0 ok (absent leaves *out NULL), -1 wrong
 * type. */
static int get_str(json_t *obj, const char *key, size_t max, int one_line,
		   char **out)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return -1;
	*out = copy_capped(json_string_value(v), json_string_length(v), max,
			   one_line);
	return 0;
}

int event_parse(const char *line, size_t len, struct runner_event *out,
		char *err, size_t errlen)
{
	json_t *root = NULL, *v;
	json_error_t jerr;
	const char *kind, *s;
	const char *bad = NULL;
	double dur;
	json_int_t lineno;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	root = json_loadb(line, len, 0, &jerr);
	if (!root) {
		snprintf(err, errlen, "events: bad json at column %d: %s",
			 jerr.column, jerr.text);
		goto out;
	}
	if (!json_is_object(root)) {
		snprintf(err, errlen, "events: line is not a json object");
		goto out;
	}
	v = json_object_get(root, "e");
	kind = json_is_string(v) ? json_string_value(v) : NULL;
	if (!kind) {
		snprintf(err, errlen, "events: missing string \"e\"");
		goto out;
	}
	if (strcmp(kind, "start") == 0) {
		out->kind = EVENT_START;
	} else if (strcmp(kind, "finish") == 0) {
		out->kind = EVENT_FINISH;
	} else {
		snprintf(err, errlen, "events: unknown event \"%.40s\"", kind);
		goto out;
	}
	v = json_object_get(root, "id");
	if (!json_is_string(v) || json_string_length(v) == 0) {
		snprintf(err, errlen, "events: %s: missing string \"id\"",
			 kind);
		goto out;
	}
	if (json_string_length(v) > EVENTS_MAX_ID) {
		snprintf(err, errlen, "events: %s: id of %zu bytes (max %u)",
			 kind, json_string_length(v), EVENTS_MAX_ID);
		goto out;
	}
	out->test.id = xstrndup(json_string_value(v), json_string_length(v));
	if (out->kind == EVENT_START) {
		rc = 0;
		goto out;
	}

	v = json_object_get(root, "outcome");
	s = json_is_string(v) ? json_string_value(v) : NULL;
	if (!s) {
		snprintf(err, errlen,
			 "events: finish: missing string "
			 "\"outcome\"");
		goto out;
	}
	if (outcome_parse(s, &out->test.outcome) < 0) {
		snprintf(err, errlen, "events: finish: bad outcome \"%.40s\"",
			 s);
		goto out;
	}
	v = json_object_get(root, "dur");
	if (v && !json_is_null(v)) {
		if (!json_is_number(v)) {
			bad = "dur";
			goto bad_type;
		}
		dur = json_number_value(v);
		out->test.duration_s = isfinite(dur) && dur > 0 ? dur : 0;
	}
	if (get_str(root, "msg", EVENTS_MAX_MSG, 1, &out->test.message) < 0) {
		bad = "msg";
		goto bad_type;
	}
	if (out->test.message && !out->test.message[0]) {
		free(out->test.message);
		out->test.message = NULL;
	}
	if (get_str(root, "details", EVENTS_MAX_DETAILS, 0,
		    &out->test.details) < 0) {
		bad = "details";
		goto bad_type;
	}
	if (get_str(root, "file", EVENTS_MAX_FILE, 1, &out->test.file) < 0) {
		bad = "file";
		goto bad_type;
	}
	v = json_object_get(root, "line");
	if (v && !json_is_null(v)) {
		if (!json_is_integer(v)) {
			bad = "line";
			goto bad_type;
		}
		lineno = json_integer_value(v);
		if (lineno > 0 && lineno <= (json_int_t)UINT32_MAX)
			out->test.line = (uint32_t)lineno;
	}
	rc = 0;
	goto out;

bad_type:
	snprintf(err, errlen, "events: finish: \"%s\" has the wrong type", bad);
out:
	if (rc < 0)
		runner_event_release(out);
	json_decref(root);
	return rc;
}

void events_init(struct events *e)
{
	memset(e, 0, sizeof(*e));
}

void events_release(struct events *e)
{
	size_t i;

	for (i = 0; i < e->nresults; i++)
		test_result_release(&e->results[i]);
	free(e->results);
	free(e->index);
	free(e->line);
	free(e->running);
	free(e->only);
	memset(e, 0, sizeof(*e));
}

static size_t hash_id(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 1099511628211ULL;
	}
	return (size_t)h;
}

/* The slot for id in the index: either holding id or empty. */
static size_t *index_slot(const struct events *e, const char *id)
{
	size_t mask = e->index_cap - 1;
	size_t i = hash_id(id) & mask;

	while (e->index[i] != 0 &&
	       strcmp(e->results[e->index[i] - 1].id, id) != 0)
		i = (i + 1) & mask;
	return &e->index[i];
}

static void index_grow(struct events *e)
{
	size_t i;

	free(e->index);
	e->index_cap = e->index_cap ? e->index_cap * 2 : 64;
	e->index = xcalloc(e->index_cap, sizeof(*e->index));
	for (i = 0; i < e->nresults; i++)
		*index_slot(e, e->results[i].id) = i + 1;
}

static size_t result_bytes(const struct test_result *r)
{
	size_t n = strlen(r->id) + 16;

	if (r->message)
		n += strlen(r->message);
	if (r->details)
		n += strlen(r->details);
	if (r->file)
		n += strlen(r->file);
	return n;
}

/* Folds a finished test in, taking its strings. Returns 0, or -1 when the
 * result was dropped because the task's budget is spent. */
static int events_add(struct events *e, struct test_result *r)
{
	size_t *slot, n;

	/* Under pressure, keep the outcome and drop the long text first. */
	if (e->bytes + result_bytes(r) > EVENTS_SOFT_BYTES) {
		free(r->details);
		r->details = NULL;
	}
	if (e->bytes + result_bytes(r) > EVENTS_SOFT_BYTES) {
		free(r->message);
		r->message = NULL;
	}
	if ((e->nresults + 1) * 2 > e->index_cap)
		index_grow(e);
	slot = index_slot(e, r->id);
	if (*slot != 0) {
		/* A repeated finish replaces the earlier result. */
		n = *slot - 1;
		e->bytes -= result_bytes(&e->results[n]);
		test_result_release(&e->results[n]);
		e->results[n] = *r;
		e->bytes += result_bytes(r);
		memset(r, 0, sizeof(*r));
		return 0;
	}
	if (e->nresults >= EVENTS_MAX_RESULTS ||
	    e->bytes + result_bytes(r) > EVENTS_HARD_BYTES)
		return -1;
	if (e->nresults == e->cap) {
		e->cap = e->cap ? e->cap * 2 : 16;
		e->results =
		    xreallocarray(e->results, e->cap, sizeof(*e->results));
	}
	e->results[e->nresults] = *r;
	e->bytes += result_bytes(r);
	*slot = ++e->nresults;
	memset(r, 0, sizeof(*r));
	return 0;
}

static int events_cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void events_only(struct events *e, char *const *ids, size_t n)
{
	free(e->only);
	e->only = xcalloc(n + 1, sizeof(*e->only));
	memcpy(e->only, ids, n * sizeof(*ids));
	e->nonly = n;
	qsort(e->only, n, sizeof(*e->only), events_cmp_str);
}

static int events_wanted(const struct events *e, const char *id)
{
	return e->only == NULL ||
	       bsearch(&id, e->only, e->nonly, sizeof(*e->only),
		       events_cmp_str) != NULL;
}

static void events_line(struct events *e, const char *line, size_t len,
			events_fn fn, void *arg)
{
	struct runner_event ev;
	char err[256];
	char *id;

	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' '))
		len--;
	if (len == 0)
		return;
	if (event_parse(line, len, &ev, err, sizeof(err)) < 0) {
		e->dropped++;
		if (fn)
			fn(arg, NULL, err);
		return;
	}
	if (!events_wanted(e, ev.test.id)) {
		e->ignored++;
		runner_event_release(&ev);
		return;
	}
	if (ev.kind == EVENT_START) {
		e->starts++;
		free(e->running);
		e->running = xstrdup(ev.test.id);
		if (fn)
			fn(arg, &ev, NULL);
		runner_event_release(&ev);
		return;
	}
	e->finishes++;
	if (e->running && strcmp(e->running, ev.test.id) == 0) {
		free(e->running);
		e->running = NULL;
	}
	/* The callback sees the event before its strings move. */
	if (fn)
		fn(arg, &ev, NULL);
	id = xstrdup(ev.test.id);
	if (events_add(e, &ev.test) < 0) {
		e->dropped++;
		snprintf(err, sizeof(err),
			 "events: result limit reached, dropped \"%.200s\"",
			 id);
		if (fn)
			fn(arg, NULL, err);
	}
	free(id);
	runner_event_release(&ev);
}

void events_feed(struct events *e, const char *data, size_t len, events_fn fn,
		 void *arg)
{
	const char *nl;
	size_t n;
	char err[128];

	while (len > 0) {
		nl = memchr(data, '\n', len);
		n = nl ? (size_t)(nl - data) : len;
		if (e->skipping) {
			/* The rest of an overlong line: discard. */
		} else if (e->line_len + n > EVENTS_MAX_LINE) {
			e->skipping = 1;
			e->line_len = 0;
			e->dropped++;
			snprintf(err, sizeof(err),
				 "events: line longer than %u bytes dropped",
				 EVENTS_MAX_LINE);
			if (fn)
				fn(arg, NULL, err);
		} else if (nl && e->line_len == 0) {
			/* A whole line in the input: no copy. */
			events_line(e, data, n, fn, arg);
		} else {
			if (!e->line)
				e->line = xmalloc(EVENTS_MAX_LINE);
			memcpy(e->line + e->line_len, data, n);
			e->line_len += n;
			if (nl) {
				events_line(e, e->line, e->line_len, fn, arg);
				e->line_len = 0;
			}
		}
		if (nl) {
			e->skipping = 0;
			n++;
		}
		data += n;
		len -= n;
	}
}

void events_end(struct events *e, events_fn fn, void *arg)
{
	if (!e->skipping && e->line_len > 0)
		events_line(e, e->line, e->line_len, fn, arg);
	e->line_len = 0;
	e->skipping = 0;
	free(e->line);
	e->line = NULL;
}

const char *events_running(const struct events *e)
{
	return e->running;
}

struct test_result *events_take_results(struct events *e, size_t *n)
{
	struct test_result *r = e->results;

	*n = e->nresults;
	e->results = NULL;
	e->nresults = 0;
	e->cap = 0;
	free(e->index);
	e->index = NULL;
	e->index_cap = 0;
	e->bytes = 0;
	return r;
}
