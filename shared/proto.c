/* proto.c -- the msgpack wire codec for tasks, task results and progress
 * events (see proto.h and docs/protocol.md).
 *
 * Encoding goes through msgpack-c's packer. Decoding does not use msgpack-c:
 * its unpacker trusts the lengths and counts it reads, so a five-byte input
 * can ask for gigabytes. Instead a small cursor reader (struct mpr) checks
 * every length and count against the bytes left before anything is
 * allocated, limits nesting to PROTO_MAX_DEPTH and element counts to
 * PROTO_MAX_ITEMS, and names the place of every error ("task.tests[3]"). The
 * decoders are table driven: each message kind is a list of fields with a
 * type and an offset into its struct. */
#include "proto.h"

#include <math.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

/* ---- names ---- */

static const char *const outcome_names[OUTCOME_COUNT] = {
    [OUTCOME_PASSED] = "passed",   [OUTCOME_FAILED] = "failed",
    [OUTCOME_ERROR] = "error",	   [OUTCOME_SKIPPED] = "skipped",
    [OUTCOME_XFAILED] = "xfailed", [OUTCOME_XPASSED] = "xpassed",
    [OUTCOME_FLAKY] = "flaky",
};

static const char *const task_status_names[TASK_STATUS_COUNT] = {
    [TASK_COMPLETED] = "completed", [TASK_CRASHED] = "crashed",
    [TASK_TIMEOUT] = "timeout",	    [TASK_ERROR] = "error",
    [TASK_CANCELLED] = "cancelled", [TASK_LOST] = "lost",
};

static const char *const kind_names[] = {
    [PROTO_TASK] = "task",
    [PROTO_TASK_RESULT] = "result",
    [PROTO_PROGRESS] = "progress",
};

#define NKINDS (sizeof(kind_names) / sizeof(kind_names[0]))

const char *outcome_name(enum outcome o)
{
	if ((unsigned)o >= OUTCOME_COUNT)
		return "unknown";
	return outcome_names[o];
}

/* The index of name in names[0..n), or -1. */
static int name_index(const char *const *names, int n, const char *name)
{
	int i;

	for (i = 0; i < n; i++) {
		if (strcmp(name, names[i]) == 0)
			return i;
	}
	return -1;
}

int outcome_parse(const char *name, enum outcome *out)
{
	int i = name_index(outcome_names, OUTCOME_COUNT, name);

	if (i < 0)
		return -1;
	*out = (enum outcome)i;
	return 0;
}

const char *task_status_name(enum task_status s)
{
	if ((unsigned)s >= TASK_STATUS_COUNT)
		return "unknown";
	return task_status_names[s];
}

int task_status_parse(const char *name, enum task_status *out)
{
	int i = name_index(task_status_names, TASK_STATUS_COUNT, name);

	if (i < 0)
		return -1;
	*out = (enum task_status)i;
	return 0;
}

/* ---- encoding ---- */

/* The sbuffer grows with realloc; running out of memory is fatal, as with
 * xmalloc, so the pack calls below need no checks. */
static int proto_sbuffer_write(void *data, const char *buf, size_t len)
{
	if (msgpack_sbuffer_write(data, buf, len) != 0) {
		fprintf(stderr, "fatal: proto: out of memory (%zu bytes)\n",
			len);
		abort();
	}
	return 0;
}

struct enc {
	msgpack_sbuffer sb;
	msgpack_packer pk;
};

static void enc_init(struct enc *e)
{
	msgpack_sbuffer_init(&e->sb);
	msgpack_packer_init(&e->pk, &e->sb, proto_sbuffer_write);
}

static void enc_finish(struct enc *e, char **out, size_t *len)
{
	*len = e->sb.size;
	*out = msgpack_sbuffer_release(&e->sb);
}

/* A required string that is NULL is encoded as "" so the message stays
 * decodable; callers are expected to fill every required field. */
static void enc_str(struct enc *e, const char *s)
{
	size_t n;

	if (s == NULL)
		s = "";
	n = strlen(s);
	msgpack_pack_str(&e->pk, n);
	msgpack_pack_str_body(&e->pk, s, n);
}

static void enc_key(struct enc *e, const char *key)
{
	enc_str(e, key);
}

static void enc_kstr(struct enc *e, const char *key, const char *s)
{
	enc_key(e, key);
	enc_str(e, s);
}

static void enc_kuint(struct enc *e, const char *key, uint64_t v)
{
	enc_key(e, key);
	msgpack_pack_uint64(&e->pk, v);
}

static void enc_kint(struct enc *e, const char *key, int64_t v)
{
	enc_key(e, key);
	msgpack_pack_int64(&e->pk, v);
}

static void enc_kfloat(struct enc *e, const char *key, double v)
{
	enc_key(e, key);
	msgpack_pack_double(&e->pk, v);
}

static void enc_kstrs(struct enc *e, const char *key, char *const *v, size_t n)
{
	size_t i;

	enc_key(e, key);
	msgpack_pack_array(&e->pk, n);
	for (i = 0; i < n; i++)
		enc_str(e, v[i]);
}

static void enc_header(struct enc *e, size_t nfields, enum proto_kind kind)
{
	msgpack_pack_map(&e->pk, nfields);
	enc_kuint(e, "v", PROTO_VERSION);
	enc_kstr(e, "k", kind_names[kind]);
}

void proto_encode_task(const struct task *t, char **out, size_t *len)
{
	struct enc e;
	size_t n = 10, i;

	n += (t->cwd != NULL) + (t->mark != NULL) + (t->kexpr != NULL) +
	     (t->grep != NULL) + (t->timeout_s != 0) + (t->nargv != 0) +
	     (t->nenv != 0) + (t->reruns != 0) + (t->rerun != 0) +
	     (t->retried_for != NULL) + (t->keep_artifacts != 0);
	n += t->grep_invert != NULL;
	enc_init(&e);
	enc_header(&e, n, PROTO_TASK);
	enc_kstr(&e, "run", t->run);
	enc_kstr(&e, "id", t->id);
	enc_kuint(&e, "att", t->attempt);
	enc_kstr(&e, "suite", t->suite);
	enc_kstr(&e, "phase", t->phase);
	enc_kstr(&e, "runner", t->runner);
	enc_kstr(&e, "queue", t->queue);
	if (t->cwd != NULL)
		enc_kstr(&e, "cwd", t->cwd);
	if (t->mark != NULL)
		enc_kstr(&e, "mark", t->mark);
	if (t->kexpr != NULL)
		enc_kstr(&e, "kexpr", t->kexpr);
	if (t->grep != NULL)
		enc_kstr(&e, "grep", t->grep);
	if (t->grep_invert != NULL)
		enc_kstr(&e, "grep_invert", t->grep_invert);
	if (t->timeout_s != 0)
		enc_kuint(&e, "timeout", t->timeout_s);
	enc_kstrs(&e, "tests", t->tests, t->ntests);
	if (t->nargv != 0)
		enc_kstrs(&e, "argv", t->argv, t->nargv);
	if (t->nenv != 0) {
		enc_key(&e, "env");
		msgpack_pack_map(&e.pk, t->nenv);
		for (i = 0; i < t->nenv; i++) {
			enc_str(&e, t->env[i].key);
			enc_str(&e, t->env[i].value);
		}
	}
	if (t->reruns != 0)
		enc_kuint(&e, "reruns", t->reruns);
	if (t->rerun != 0) {
		enc_key(&e, "rerun");
		msgpack_pack_true(&e.pk);
	}
	if (t->retried_for != NULL)
		enc_kstr(&e, "retried_for", t->retried_for);
	if (t->keep_artifacts != 0) {
		enc_key(&e, "arts");
		msgpack_pack_true(&e.pk);
	}
	enc_finish(&e, out, len);
}

static void enc_test_result(struct enc *e, const struct test_result *r)
{
	size_t n = 3;

	n += (r->message != NULL) + (r->details != NULL) + (r->file != NULL) +
	     (r->line != 0);
	msgpack_pack_map(&e->pk, n);
	enc_kstr(e, "id", r->id);
	enc_kstr(e, "outcome", outcome_name(r->outcome));
	enc_kfloat(e, "dur", r->duration_s);
	if (r->message != NULL)
		enc_kstr(e, "msg", r->message);
	if (r->details != NULL)
		enc_kstr(e, "details", r->details);
	if (r->file != NULL)
		enc_kstr(e, "file", r->file);
	if (r->line != 0)
		enc_kuint(e, "line", r->line);
}

static void enc_artifact(struct enc *e, const struct artifact *a)
{
	msgpack_pack_map(&e->pk,
			 2 + (a->url != NULL) + (a->error != NULL));
	enc_kstr(e, "path", a->path);
	enc_kuint(e, "size", a->size);
	if (a->url != NULL)
		enc_kstr(e, "url", a->url);
	if (a->error != NULL)
		enc_kstr(e, "err", a->error);
}

void proto_encode_task_result(const struct task_result *r, char **out,
			      size_t *len)
{
	struct enc e;
	size_t n = 13, i;

	n += (r->term_signal != 0) + (r->message != NULL) +
	     (r->output != NULL) + (r->running != NULL) +
	     (r->nunfinished != 0) + (r->nretrying != 0) +
	     (r->retry_reason != NULL) + (r->retried_for != NULL) +
	     (r->rerun != 0) + (r->nartifacts != 0);
	enc_init(&e);
	enc_header(&e, n, PROTO_TASK_RESULT);
	enc_kstr(&e, "run", r->run);
	enc_kstr(&e, "task", r->task);
	enc_kuint(&e, "att", r->attempt);
	enc_kstr(&e, "worker", r->worker);
	enc_kstr(&e, "suite", r->suite);
	enc_kstr(&e, "phase", r->phase);
	enc_kstr(&e, "status", task_status_name(r->status));
	enc_kint(&e, "exit", r->exit_code);
	if (r->term_signal != 0)
		enc_kint(&e, "signal", r->term_signal);
	enc_kfloat(&e, "start", r->started_at);
	enc_kfloat(&e, "dur", r->duration_s);
	if (r->message != NULL)
		enc_kstr(&e, "msg", r->message);
	if (r->output != NULL)
		enc_kstr(&e, "out", r->output);
	if (r->running != NULL)
		enc_kstr(&e, "running", r->running);
	enc_key(&e, "tests");
	msgpack_pack_array(&e.pk, r->ntests);
	for (i = 0; i < r->ntests; i++)
		enc_test_result(&e, &r->tests[i]);
	if (r->nunfinished != 0)
		enc_kstrs(&e, "unfinished", r->unfinished, r->nunfinished);
	if (r->nretrying != 0)
		enc_kstrs(&e, "retrying", r->retrying, r->nretrying);
	if (r->retry_reason != NULL)
		enc_kstr(&e, "retry_reason", r->retry_reason);
	if (r->retried_for != NULL)
		enc_kstr(&e, "retried_for", r->retried_for);
	if (r->rerun != 0) {
		enc_key(&e, "rerun");
		msgpack_pack_true(&e.pk);
	}
	if (r->nartifacts != 0) {
		enc_key(&e, "arts");
		msgpack_pack_array(&e.pk, r->nartifacts);
		for (i = 0; i < r->nartifacts; i++)
			enc_artifact(&e, &r->artifacts[i]);
	}
	enc_finish(&e, out, len);
}

void proto_encode_test_result(const struct test_result *r, char **out,
			      size_t *len)
{
	struct enc e;

	enc_init(&e);
	enc_test_result(&e, r);
	enc_finish(&e, out, len);
}

void proto_encode_progress(const struct progress *p, char **out, size_t *len)
{
	struct enc e;
	size_t n = 8;

	if (p->finished)
		n += 2;
	enc_init(&e);
	enc_header(&e, n, PROTO_PROGRESS);
	enc_kstr(&e, "run", p->run);
	enc_kstr(&e, "task", p->task);
	enc_kuint(&e, "att", p->attempt);
	enc_kstr(&e, "worker", p->worker);
	enc_kstr(&e, "test", p->test);
	enc_key(&e, "done");
	if (p->finished) {
		msgpack_pack_true(&e.pk);
		enc_kstr(&e, "outcome", outcome_name(p->outcome));
		enc_kfloat(&e, "dur", p->duration_s);
	} else {
		msgpack_pack_false(&e.pk);
	}
	enc_finish(&e, out, len);
}

/* ---- the bounded reader ---- */

/* A cursor over untrusted msgpack. Every read checks the bytes left; the
 * first failure writes "proto: PATH: problem" to err and every caller
 * unwinds with -1. path names the value being read. */
struct mpr {
	const unsigned char *p;
	const unsigned char *end;
	int depth;
	char path[192];
	size_t pathlen;
	char *err;
	size_t errlen;
};

static void mpr_init(struct mpr *r, const char *buf, size_t len, char *err,
		     size_t errlen)
{
	r->p = (const unsigned char *)buf;
	r->end = r->p + len;
	r->depth = 0;
	r->path[0] = '\0';
	r->pathlen = 0;
	r->err = err;
	r->errlen = errlen;
}

static size_t mpr_left(const struct mpr *r)
{
	return (size_t)(r->end - r->p);
}

static int mpr_fail(struct mpr *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int mpr_fail(struct mpr *r, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (r->err == NULL || r->errlen == 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (r->pathlen > 0)
		snprintf(r->err, r->errlen, "proto: %s: %s", r->path, msg);
	else
		snprintf(r->err, r->errlen, "proto: %s", msg);
	return -1;
}

/* Appends to the path; a path too long for the buffer is cut, which only
 * shortens messages. Returns the old length for mpr_path_restore. */
static size_t mpr_path_push(struct mpr *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static size_t mpr_path_push(struct mpr *r, const char *fmt, ...)
{
	size_t old = r->pathlen, room = sizeof(r->path) - old;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(r->path + old, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		r->path[old] = '\0';
	else if ((size_t)n >= room)
		r->pathlen = sizeof(r->path) - 1;
	else
		r->pathlen = old + (size_t)n;
	return old;
}

static void mpr_path_restore(struct mpr *r, size_t len)
{
	r->pathlen = len;
	r->path[len] = '\0';
}

/* Copies an untrusted name into dst for a message: printable ASCII only,
 * cut at 40 characters. */
static void mpr_sanitize(char *dst, size_t dstlen, const char *s, size_t n)
{
	size_t i, j = 0;

	for (i = 0; i < n && j + 4 < dstlen; i++) {
		if (j >= 40) {
			dst[j++] = '.';
			dst[j++] = '.';
			dst[j++] = '.';
			break;
		}
		dst[j++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	}
	dst[j] = '\0';
}

static const char *mpr_type_name(unsigned char b)
{
	if (b <= 0x7f || b >= 0xe0 || (b >= 0xcc && b <= 0xd3))
		return "integer";
	if (b <= 0x8f || b == 0xde || b == 0xdf)
		return "map";
	if (b <= 0x9f || b == 0xdc || b == 0xdd)
		return "array";
	if (b <= 0xbf || (b >= 0xd9 && b <= 0xdb))
		return "string";
	switch (b) {
	case 0xc0:
		return "nil";
	case 0xc1:
		return "invalid byte 0xc1";
	case 0xc2:
	case 0xc3:
		return "boolean";
	case 0xc4:
	case 0xc5:
	case 0xc6:
		return "binary";
	case 0xca:
	case 0xcb:
		return "float";
	default:
		return "extension";
	}
}

static int mpr_need(struct mpr *r, size_t n)
{
	if (mpr_left(r) < n)
		return mpr_fail(r, "truncated: need %zu bytes but %zu left", n,
				mpr_left(r));
	return 0;
}

/* The type byte of the next value, without consuming it; -1 at the end. */
static int mpr_peek(struct mpr *r, unsigned char *b)
{
	if (mpr_need(r, 1) < 0)
		return -1;
	*b = r->p[0];
	return 0;
}

static uint64_t mpr_be(const unsigned char *p, size_t n)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/* Consumes the type byte and an n-byte big-endian length or value. */
static int mpr_take(struct mpr *r, size_t n, uint64_t *v)
{
	if (mpr_need(r, 1 + n) < 0)
		return -1;
	*v = mpr_be(r->p + 1, n);
	r->p += 1 + n;
	return 0;
}

static int mpr_is_nil(struct mpr *r)
{
	return mpr_left(r) > 0 && r->p[0] == 0xc0;
}

static int mpr_wrong_type(struct mpr *r, const char *want, unsigned char b)
{
	return mpr_fail(r, "expected %s, got %s", want, mpr_type_name(b));
}

/* Any integer encoding. Sets *neg and the magnitude in *u (two's
 * complement cast for negatives in *s). */
static int mpr_read_integer(struct mpr *r, const char *want, int *neg,
			    uint64_t *u, int64_t *s)
{
	unsigned char b;
	uint64_t v;
	size_t n;

	if (mpr_peek(r, &b) < 0)
		return -1;
	if (b <= 0x7f) {
		r->p++;
		*neg = 0;
		*u = b;
		*s = b;
		return 0;
	}
	if (b >= 0xe0) {
		r->p++;
		*neg = 1;
		*s = (int8_t)b;
		*u = 0;
		return 0;
	}
	if (b >= 0xcc && b <= 0xcf) {
		n = (size_t)1 << (b - 0xcc);
		if (mpr_take(r, n, &v) < 0)
			return -1;
		*neg = 0;
		*u = v;
		*s = v > INT64_MAX ? INT64_MAX : (int64_t)v;
		return 0;
	}
	if (b >= 0xd0 && b <= 0xd3) {
		n = (size_t)1 << (b - 0xd0);
		if (mpr_take(r, n, &v) < 0)
			return -1;
		switch (n) {
		case 1:
			*s = (int8_t)(uint8_t)v;
			break;
		case 2:
			*s = (int16_t)(uint16_t)v;
			break;
		case 4:
			*s = (int32_t)(uint32_t)v;
			break;
		default:
			/* Two's complement reinterpretation, well defined
			 * through memcpy. */
			memcpy(s, &v, sizeof(*s));
			break;
		}
		*neg = *s < 0;
		*u = *neg ? 0 : (uint64_t)*s;
		return 0;
	}
	return mpr_wrong_type(r, want, b);
}

static int mpr_read_uint(struct mpr *r, uint64_t max, uint64_t *out)
{
	int neg;
	uint64_t u = 0;
	int64_t s = 0;

	if (mpr_read_integer(r, "unsigned integer", &neg, &u, &s) < 0)
		return -1;
	if (neg)
		return mpr_fail(r, "expected unsigned integer, got %lld",
				(long long)s);
	if (u > max)
		return mpr_fail(r, "%llu is out of range (max %llu)",
				(unsigned long long)u, (unsigned long long)max);
	*out = u;
	return 0;
}

static int mpr_read_int(struct mpr *r, int64_t min, int64_t max, int64_t *out)
{
	int neg;
	uint64_t u = 0;
	int64_t s = 0;

	if (mpr_read_integer(r, "integer", &neg, &u, &s) < 0)
		return -1;
	if (!neg && u > (uint64_t)max)
		return mpr_fail(r, "%llu is out of range (max %lld)",
				(unsigned long long)u, (long long)max);
	if (neg && s < min)
		return mpr_fail(r, "%lld is out of range (min %lld)",
				(long long)s, (long long)min);
	*out = s;
	return 0;
}

/* float32, float64 or any integer; NaN and infinities are rejected (they
 * have no place in durations and times, and no JSON spelling). */
static int mpr_read_float(struct mpr *r, double *out)
{
	unsigned char b;
	uint64_t v;
	double d;

	if (mpr_peek(r, &b) < 0)
		return -1;
	if (b == 0xca) {
		uint32_t bits;
		float f;

		if (mpr_take(r, 4, &v) < 0)
			return -1;
		bits = (uint32_t)v;
		memcpy(&f, &bits, sizeof(f));
		d = f;
	} else if (b == 0xcb) {
		if (mpr_take(r, 8, &v) < 0)
			return -1;
		memcpy(&d, &v, sizeof(d));
	} else if (b <= 0x7f || b >= 0xe0 || (b >= 0xcc && b <= 0xd3)) {
		int neg;
		uint64_t u = 0;
		int64_t s = 0;

		if (mpr_read_integer(r, "number", &neg, &u, &s) < 0)
			return -1;
		d = neg ? (double)s : (double)u;
	} else {
		return mpr_wrong_type(r, "number", b);
	}
	if (!isfinite(d))
		return mpr_fail(r, "expected a finite number");
	*out = d;
	return 0;
}

static int mpr_read_bool(struct mpr *r, int *out)
{
	unsigned char b;

	if (mpr_peek(r, &b) < 0)
		return -1;
	if (b != 0xc2 && b != 0xc3)
		return mpr_wrong_type(r, "boolean", b);
	r->p++;
	*out = b == 0xc3;
	return 0;
}

/* A str (not bin); *s points into the input, not NUL-terminated. */
static int mpr_read_str(struct mpr *r, const char **s, size_t *len)
{
	unsigned char b;
	uint64_t n;

	if (mpr_peek(r, &b) < 0)
		return -1;
	if (b >= 0xa0 && b <= 0xbf) {
		r->p++;
		n = b & 0x1f;
	} else if (b >= 0xd9 && b <= 0xdb) {
		if (mpr_take(r, (size_t)1 << (b - 0xd9), &n) < 0)
			return -1;
	} else {
		return mpr_wrong_type(r, "string", b);
	}
	if (n > mpr_left(r))
		return mpr_fail(r, "string of %llu bytes but %zu left",
				(unsigned long long)n, mpr_left(r));
	*s = (const char *)r->p;
	*len = (size_t)n;
	r->p += n;
	return 0;
}

/* A str as a new C string; embedded NULs are rejected. */
static int mpr_dup_str(struct mpr *r, char **out)
{
	const char *s;
	size_t n;
	char *p;

	if (mpr_read_str(r, &s, &n) < 0)
		return -1;
	if (memchr(s, '\0', n) != NULL)
		return mpr_fail(r, "string contains a NUL byte");
	p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	*out = p;
	return 0;
}

static int mpr_enter(struct mpr *r)
{
	if (r->depth >= PROTO_MAX_DEPTH)
		return mpr_fail(r, "nesting deeper than %d", PROTO_MAX_DEPTH);
	r->depth++;
	return 0;
}

static void mpr_leave(struct mpr *r)
{
	r->depth--;
}

/* Reads a map header and enters it (the caller calls mpr_leave). Each
 * entry needs at least two bytes. */
static int mpr_read_map(struct mpr *r, uint32_t *count)
{
	unsigned char b;
	uint64_t n;

	if (mpr_peek(r, &b) < 0)
		return -1;
	if (b >= 0x80 && b <= 0x8f) {
		r->p++;
		n = b & 0x0f;
	} else if (b == 0xde || b == 0xdf) {
		if (mpr_take(r, b == 0xde ? 2 : 4, &n) < 0)
			return -1;
	} else {
		return mpr_wrong_type(r, "map", b);
	}
	if (n > mpr_left(r) / 2)
		return mpr_fail(r, "map of %llu entries but %zu bytes left",
				(unsigned long long)n, mpr_left(r));
	if (n > PROTO_MAX_ITEMS)
		return mpr_fail(r, "map of %llu entries (limit %u)",
				(unsigned long long)n, PROTO_MAX_ITEMS);
	if (mpr_enter(r) < 0)
		return -1;
	*count = (uint32_t)n;
	return 0;
}

/* Reads an array header and enters it. Each element needs a byte. */
static int mpr_read_array(struct mpr *r, uint32_t *count)
{
	unsigned char b;
	uint64_t n;

	if (mpr_peek(r, &b) < 0)
		return -1;
	if (b >= 0x90 && b <= 0x9f) {
		r->p++;
		n = b & 0x0f;
	} else if (b == 0xdc || b == 0xdd) {
		if (mpr_take(r, b == 0xdc ? 2 : 4, &n) < 0)
			return -1;
	} else {
		return mpr_wrong_type(r, "array", b);
	}
	if (n > mpr_left(r))
		return mpr_fail(r, "array of %llu elements but %zu bytes left",
				(unsigned long long)n, mpr_left(r));
	if (n > PROTO_MAX_ITEMS)
		return mpr_fail(r, "array of %llu elements (limit %u)",
				(unsigned long long)n, PROTO_MAX_ITEMS);
	if (mpr_enter(r) < 0)
		return -1;
	*count = (uint32_t)n;
	return 0;
}

/* Skips one value of any type. Recursion is bounded by PROTO_MAX_DEPTH and
 * every element consumes at least one byte, so the work is linear in the
 * input. */
static int mpr_skip(struct mpr *r)
{
	unsigned char b;
	uint64_t n;
	uint32_t count, i;

	if (mpr_peek(r, &b) < 0)
		return -1;
	if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
		r->p++;
		return 0;
	}
	if ((b >= 0x80 && b <= 0x8f) || b == 0xde || b == 0xdf) {
		if (mpr_read_map(r, &count) < 0)
			return -1;
		for (i = 0; i < count; i++) {
			if (mpr_skip(r) < 0 || mpr_skip(r) < 0)
				return -1;
		}
		mpr_leave(r);
		return 0;
	}
	if ((b >= 0x90 && b <= 0x9f) || b == 0xdc || b == 0xdd) {
		if (mpr_read_array(r, &count) < 0)
			return -1;
		for (i = 0; i < count; i++) {
			if (mpr_skip(r) < 0)
				return -1;
		}
		mpr_leave(r);
		return 0;
	}
	switch (b) {
	case 0xcc:
	case 0xcd:
	case 0xce:
	case 0xcf:
		return mpr_take(r, (size_t)1 << (b - 0xcc), &n);
	case 0xd0:
	case 0xd1:
	case 0xd2:
	case 0xd3:
		return mpr_take(r, (size_t)1 << (b - 0xd0), &n);
	case 0xca:
		return mpr_take(r, 4, &n);
	case 0xcb:
		return mpr_take(r, 8, &n);
	case 0xd4:
	case 0xd5:
	case 0xd6:
	case 0xd7:
	case 0xd8:
		/* fixext: type byte, then 1..16 bytes of data */
		n = (uint64_t)1 << (b - 0xd4);
		if (mpr_need(r, 2 + n) < 0)
			return -1;
		r->p += 2 + n;
		return 0;
	case 0xc1:
		return mpr_fail(r, "invalid byte 0xc1");
	default:
		break;
	}
	/* str, bin and ext with explicit lengths */
	if (b >= 0xa0 && b <= 0xbf) {
		r->p++;
		n = b & 0x1f;
	} else if (b >= 0xd9 && b <= 0xdb) {
		if (mpr_take(r, (size_t)1 << (b - 0xd9), &n) < 0)
			return -1;
	} else if (b >= 0xc4 && b <= 0xc6) {
		if (mpr_take(r, (size_t)1 << (b - 0xc4), &n) < 0)
			return -1;
	} else if (b >= 0xc7 && b <= 0xc9) {
		/* ext 8/16/32: length, then a type byte, then the data */
		if (mpr_take(r, (size_t)1 << (b - 0xc7), &n) < 0)
			return -1;
		n++;
	} else {
		/* every byte value is handled above */
		return mpr_fail(r, "invalid byte 0x%02x", b);
	}
	if (n > mpr_left(r))
		return mpr_fail(r, "%s of %llu bytes but %zu left",
				mpr_type_name(b), (unsigned long long)n,
				mpr_left(r));
	r->p += n;
	return 0;
}

/* ---- table-driven decoding ---- */

enum ftype {
	FT_VERSION, /* "v": must be PROTO_VERSION */
	FT_KIND,    /* "k": must be the kind being decoded */
	FT_STR,	    /* char * */
	FT_U32,	    /* uint32_t */
	FT_INT,	    /* int, 32-bit range */
	FT_FLOAT,   /* double */
	FT_BOOL,    /* int */
	FT_STRS,    /* char ** + size_t count */
	FT_ENV,	    /* struct kv * + size_t count */
	FT_OUTCOME, /* enum outcome */
	FT_STATUS,  /* enum task_status */
	FT_TESTS,   /* struct test_result * + size_t count */
	FT_U64,	    /* uint64_t */
	FT_ARTS,    /* struct artifact * + size_t count */
};

struct field {
	const char *name;
	enum ftype type;
	int required;
	size_t off;	  /* of the value in the struct */
	size_t count_off; /* arrays: of the size_t count */
};

#define F(name, type, req, st, member)                                         \
	{                                                                      \
		name, type, req, offsetof(struct st, member), 0                \
	}
#define FA(name, type, req, st, member, count)                                 \
	{                                                                      \
		name, type, req, offsetof(struct st, member),                  \
		    offsetof(struct st, count)                                 \
	}

static const struct field task_fields[] = {
    {"v", FT_VERSION, 1, 0, 0},
    {"k", FT_KIND, 1, 0, 0},
    F("run", FT_STR, 1, task, run),
    F("id", FT_STR, 1, task, id),
    F("att", FT_U32, 1, task, attempt),
    F("suite", FT_STR, 1, task, suite),
    F("phase", FT_STR, 1, task, phase),
    F("runner", FT_STR, 1, task, runner),
    F("queue", FT_STR, 1, task, queue),
    F("cwd", FT_STR, 0, task, cwd),
    F("mark", FT_STR, 0, task, mark),
    F("kexpr", FT_STR, 0, task, kexpr),
    F("grep", FT_STR, 0, task, grep),
    F("grep_invert", FT_STR, 0, task, grep_invert),
    F("timeout", FT_U32, 0, task, timeout_s),
    FA("tests", FT_STRS, 1, task, tests, ntests),
    FA("argv", FT_STRS, 0, task, argv, nargv),
    FA("env", FT_ENV, 0, task, env, nenv),
    F("reruns", FT_U32, 0, task, reruns),
    F("rerun", FT_BOOL, 0, task, rerun),
    F("retried_for", FT_STR, 0, task, retried_for),
    F("arts", FT_BOOL, 0, task, keep_artifacts),
};

static const struct field test_result_fields[] = {
    F("id", FT_STR, 1, test_result, id),
    F("outcome", FT_OUTCOME, 1, test_result, outcome),
    F("dur", FT_FLOAT, 0, test_result, duration_s),
    F("msg", FT_STR, 0, test_result, message),
    F("details", FT_STR, 0, test_result, details),
    F("file", FT_STR, 0, test_result, file),
    F("line", FT_U32, 0, test_result, line),
};

static const struct field task_result_fields[] = {
    {"v", FT_VERSION, 1, 0, 0},
    {"k", FT_KIND, 1, 0, 0},
    F("run", FT_STR, 1, task_result, run),
    F("task", FT_STR, 1, task_result, task),
    F("att", FT_U32, 1, task_result, attempt),
    F("worker", FT_STR, 1, task_result, worker),
    F("suite", FT_STR, 1, task_result, suite),
    F("phase", FT_STR, 1, task_result, phase),
    F("status", FT_STATUS, 1, task_result, status),
    F("exit", FT_INT, 1, task_result, exit_code),
    F("signal", FT_INT, 0, task_result, term_signal),
    F("start", FT_FLOAT, 1, task_result, started_at),
    F("dur", FT_FLOAT, 1, task_result, duration_s),
    F("msg", FT_STR, 0, task_result, message),
    F("out", FT_STR, 0, task_result, output),
    F("running", FT_STR, 0, task_result, running),
    FA("tests", FT_TESTS, 1, task_result, tests, ntests),
    FA("unfinished", FT_STRS, 0, task_result, unfinished, nunfinished),
    FA("retrying", FT_STRS, 0, task_result, retrying, nretrying),
    F("retry_reason", FT_STR, 0, task_result, retry_reason),
    F("retried_for", FT_STR, 0, task_result, retried_for),
    F("rerun", FT_BOOL, 0, task_result, rerun),
    FA("arts", FT_ARTS, 0, task_result, artifacts, nartifacts),
};

static const struct field artifact_fields[] = {
    F("path", FT_STR, 1, artifact, path),
    F("size", FT_U64, 1, artifact, size),
    F("url", FT_STR, 0, artifact, url),
    F("err", FT_STR, 0, artifact, error),
};

/* "outcome" and "dur" are required when "done" is true; checked after the
 * map is read. */
static const struct field progress_fields[] = {
    {"v", FT_VERSION, 1, 0, 0},
    {"k", FT_KIND, 1, 0, 0},
    F("run", FT_STR, 1, progress, run),
    F("task", FT_STR, 1, progress, task),
    F("att", FT_U32, 1, progress, attempt),
    F("worker", FT_STR, 1, progress, worker),
    F("test", FT_STR, 1, progress, test),
    F("done", FT_BOOL, 1, progress, finished),
    F("outcome", FT_OUTCOME, 0, progress, outcome),
    F("dur", FT_FLOAT, 0, progress, duration_s),
};

#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

/* decode_map tracks the fields seen in a 32-bit mask. */
_Static_assert(NFIELDS(task_fields) <= 32, "too many task fields");
_Static_assert(NFIELDS(task_result_fields) <= 32, "too many result fields");
_Static_assert(NFIELDS(progress_fields) <= 32, "too many progress fields");

static int decode_map(struct mpr *r, const struct field *fields, size_t nf,
		      void *out, enum proto_kind kind, uint32_t *seen_out);

/* Reads a string naming one of names[0..n); *out gets its index. */
static int decode_enum(struct mpr *r, const char *const *names, int n,
		       const char *what, int *out)
{
	char shown[48];
	const char *s;
	size_t len;
	int i;

	if (mpr_read_str(r, &s, &len) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0) {
			*out = i;
			return 0;
		}
	}
	mpr_sanitize(shown, sizeof(shown), s, len);
	return mpr_fail(r, "unknown %s \"%s\"", what, shown);
}

static int decode_strs(struct mpr *r, char ***vp, size_t *np)
{
	uint32_t n, i;
	size_t mark;
	char **v;

	if (mpr_read_array(r, &n) < 0)
		return -1;
	/* The count is published before the elements are read so a failed
	 * decode frees what was read so far. */
	v = n > 0 ? xcalloc(n, sizeof(*v)) : NULL;
	*vp = v;
	*np = n;
	for (i = 0; i < n; i++) {
		mark = mpr_path_push(r, "[%u]", i);
		if (mpr_dup_str(r, &v[i]) < 0)
			return -1;
		mpr_path_restore(r, mark);
	}
	mpr_leave(r);
	return 0;
}

static int decode_env(struct mpr *r, struct kv **vp, size_t *np)
{
	char shown[48];
	uint32_t n, i;
	size_t mark;
	struct kv *v;

	if (mpr_read_map(r, &n) < 0)
		return -1;
	v = n > 0 ? xcalloc(n, sizeof(*v)) : NULL;
	*vp = v;
	*np = n;
	for (i = 0; i < n; i++) {
		const char *k;
		size_t klen;

		mark = mpr_path_push(r, "[%u]", i);
		if (mpr_dup_str(r, &v[i].key) < 0)
			return -1;
		k = v[i].key;
		klen = strlen(k);
		mpr_path_restore(r, mark);
		mpr_sanitize(shown, sizeof(shown), k, klen);
		mark = mpr_path_push(r, ".%s", shown);
		if (klen == 0 || memchr(k, '=', klen) != NULL)
			return mpr_fail(r, "bad environment variable name");
		if (mpr_dup_str(r, &v[i].value) < 0)
			return -1;
		mpr_path_restore(r, mark);
	}
	mpr_leave(r);
	return 0;
}

/* An array of maps of fields, each elem_size bytes: *vp gets the
 * elements (zeroed first) and *np their count, published before they are
 * read so a failed decode frees what was read so far. */
static int decode_maps(struct mpr *r, const struct field *fields, size_t nf,
		       size_t elem_size, void **vp, size_t *np)
{
	uint32_t n, i;
	size_t mark;
	char *v;

	if (mpr_read_array(r, &n) < 0)
		return -1;
	v = n > 0 ? xcalloc(n, elem_size) : NULL;
	*vp = v;
	*np = n;
	for (i = 0; i < n; i++) {
		mark = mpr_path_push(r, "[%u]", i);
		if (decode_map(r, fields, nf, v + (size_t)i * elem_size,
			       PROTO_TASK, NULL) < 0)
			return -1;
		mpr_path_restore(r, mark);
	}
	mpr_leave(r);
	return 0;
}

static int decode_field(struct mpr *r, const struct field *f, void *out,
			enum proto_kind kind)
{
	char *base = out;
	void *p = base + f->off;
	size_t *np = (size_t *)(void *)(base + f->count_off);
	uint64_t u = 0;
	int64_t s = 0;
	int i;

	switch (f->type) {
	case FT_VERSION:
		if (mpr_read_uint(r, UINT64_MAX, &u) < 0)
			return -1;
		if (u != PROTO_VERSION)
			return mpr_fail(r,
					"unsupported version %llu (this "
					"build reads version %d)",
					(unsigned long long)u, PROTO_VERSION);
		return 0;
	case FT_KIND:
		if (decode_enum(r, kind_names, (int)NKINDS, "kind", &i) < 0)
			return -1;
		if (i != (int)kind)
			return mpr_fail(r, "expected kind \"%s\", got \"%s\"",
					kind_names[kind], kind_names[i]);
		return 0;
	case FT_STR:
		return mpr_dup_str(r, (char **)p);
	case FT_U32:
		if (mpr_read_uint(r, UINT32_MAX, &u) < 0)
			return -1;
		*(uint32_t *)p = (uint32_t)u;
		return 0;
	case FT_INT:
		if (mpr_read_int(r, INT32_MIN, INT32_MAX, &s) < 0)
			return -1;
		*(int *)p = (int)s;
		return 0;
	case FT_FLOAT:
		return mpr_read_float(r, (double *)p);
	case FT_BOOL:
		return mpr_read_bool(r, (int *)p);
	case FT_STRS:
		return decode_strs(r, (char ***)p, np);
	case FT_ENV:
		return decode_env(r, (struct kv **)p, np);
	case FT_TESTS:
		return decode_maps(r, test_result_fields,
				   NFIELDS(test_result_fields),
				   sizeof(struct test_result), (void **)p, np);
	case FT_U64:
		if (mpr_read_uint(r, UINT64_MAX, &u) < 0)
			return -1;
		*(uint64_t *)p = u;
		return 0;
	case FT_ARTS:
		return decode_maps(r, artifact_fields, NFIELDS(artifact_fields),
				   sizeof(struct artifact), (void **)p, np);
	case FT_OUTCOME:
		if (decode_enum(r, outcome_names, OUTCOME_COUNT, "outcome",
				&i) < 0)
			return -1;
		*(enum outcome *)p = (enum outcome)i;
		return 0;
	case FT_STATUS:
		if (decode_enum(r, task_status_names, TASK_STATUS_COUNT,
				"status", &i) < 0)
			return -1;
		*(enum task_status *)p = (enum task_status)i;
		return 0;
	}
	return mpr_fail(r, "internal error: field type %d", (int)f->type);
}

/* Decodes a map of fields into out. Unknown keys are skipped, duplicate
 * keys and missing required keys are errors; nil stands for an absent
 * optional field. *seen_out (optional) gets a bit per field present. */
static int decode_map(struct mpr *r, const struct field *fields, size_t nf,
		      void *out, enum proto_kind kind, uint32_t *seen_out)
{
	char shown[48];
	uint32_t n, i, seen = 0;
	size_t j, mark;

	if (mpr_read_map(r, &n) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		const char *key;
		size_t klen;

		if (mpr_read_str(r, &key, &klen) < 0)
			return -1;
		for (j = 0; j < nf; j++) {
			if (strlen(fields[j].name) == klen &&
			    memcmp(fields[j].name, key, klen) == 0)
				break;
		}
		mpr_sanitize(shown, sizeof(shown), key, klen);
		mark =
		    mpr_path_push(r, "%s%s", r->pathlen > 0 ? "." : "", shown);
		if (j == nf) {
			if (mpr_skip(r) < 0)
				return -1;
		} else {
			if (seen & (1u << j))
				return mpr_fail(r, "duplicate key");
			seen |= 1u << j;
			if (mpr_is_nil(r) && !fields[j].required)
				r->p++;
			else if (decode_field(r, &fields[j], out, kind) < 0)
				return -1;
		}
		mpr_path_restore(r, mark);
	}
	for (j = 0; j < nf; j++) {
		if (fields[j].required && !(seen & (1u << j)))
			return mpr_fail(r, "missing required key \"%s\"",
					fields[j].name);
	}
	mpr_leave(r);
	if (seen_out != NULL)
		*seen_out = seen;
	return 0;
}

/* ---- public decoders ---- */

int proto_peek_kind(const char *buf, size_t len, enum proto_kind *kind,
		    char *err, size_t errlen)
{
	struct mpr r;
	char shown[48];
	const char *k = NULL, *key;
	size_t klen = 0, keylen;
	uint64_t v = 0;
	uint32_t n, i;
	int have_v = 0, have_k = 0;
	size_t j;

	mpr_init(&r, buf, len, err, errlen);
	if (len > PROTO_MAX_MSG)
		return mpr_fail(&r,
				"message of %zu bytes exceeds the limit "
				"of %u",
				len, PROTO_MAX_MSG);
	if (len == 0)
		return mpr_fail(&r, "empty message");
	if (mpr_read_map(&r, &n) < 0)
		return -1;
	for (i = 0; i < n && !(have_v && have_k); i++) {
		if (mpr_read_str(&r, &key, &keylen) < 0)
			return -1;
		if (keylen == 1 && key[0] == 'v') {
			mpr_path_push(&r, "v");
			if (have_v)
				return mpr_fail(&r, "duplicate key");
			if (mpr_read_uint(&r, UINT64_MAX, &v) < 0)
				return -1;
			have_v = 1;
		} else if (keylen == 1 && key[0] == 'k') {
			mpr_path_push(&r, "k");
			if (have_k)
				return mpr_fail(&r, "duplicate key");
			if (mpr_read_str(&r, &k, &klen) < 0)
				return -1;
			have_k = 1;
		} else {
			mpr_sanitize(shown, sizeof(shown), key, keylen);
			mpr_path_push(&r, "%s", shown);
			if (mpr_skip(&r) < 0)
				return -1;
		}
		mpr_path_restore(&r, 0);
	}
	if (!have_v)
		return mpr_fail(&r, "missing version key \"v\"");
	if (v != PROTO_VERSION)
		return mpr_fail(&r,
				"unsupported version %llu (this build reads "
				"version %d)",
				(unsigned long long)v, PROTO_VERSION);
	if (!have_k)
		return mpr_fail(&r, "missing kind key \"k\"");
	for (j = 0; j < NKINDS; j++) {
		if (strlen(kind_names[j]) == klen &&
		    memcmp(kind_names[j], k, klen) == 0) {
			*kind = (enum proto_kind)j;
			return 0;
		}
	}
	mpr_sanitize(shown, sizeof(shown), k, klen);
	return mpr_fail(&r, "unknown kind \"%s\"", shown);
}

/* Peeks, checks the kind, decodes the top-level map and rejects trailing
 * bytes. out must be zeroed; the caller releases it on failure. */
static int proto_decode(const char *buf, size_t len, enum proto_kind kind,
			const struct field *fields, size_t nf, void *out,
			uint32_t *seen, char *err, size_t errlen)
{
	struct mpr r;
	enum proto_kind got;

	if (proto_peek_kind(buf, len, &got, err, errlen) < 0)
		return -1;
	mpr_init(&r, buf, len, err, errlen);
	if (got != kind)
		return mpr_fail(&r, "expected a %s message, got a %s",
				kind_names[kind], kind_names[got]);
	mpr_path_push(&r, "%s", kind_names[kind]);
	if (decode_map(&r, fields, nf, out, kind, seen) < 0)
		return -1;
	if (mpr_left(&r) != 0)
		return mpr_fail(&r, "%zu trailing bytes after the message",
				mpr_left(&r));
	return 0;
}

int proto_decode_task(const char *buf, size_t len, struct task *out, char *err,
		      size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (proto_decode(buf, len, PROTO_TASK, task_fields,
			 NFIELDS(task_fields), out, NULL, err, errlen) < 0) {
		task_release(out);
		return -1;
	}
	return 0;
}

int proto_decode_task_result(const char *buf, size_t len,
			     struct task_result *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (proto_decode(buf, len, PROTO_TASK_RESULT, task_result_fields,
			 NFIELDS(task_result_fields), out, NULL, err,
			 errlen) < 0) {
		task_result_release(out);
		return -1;
	}
	return 0;
}

int proto_decode_progress(const char *buf, size_t len, struct progress *out,
			  char *err, size_t errlen)
{
	uint32_t seen = 0, outcome_bit = 0;
	size_t j;

	for (j = 0; j < NFIELDS(progress_fields); j++) {
		if (strcmp(progress_fields[j].name, "outcome") == 0)
			outcome_bit = 1u << j;
	}
	memset(out, 0, sizeof(*out));
	if (proto_decode(buf, len, PROTO_PROGRESS, progress_fields,
			 NFIELDS(progress_fields), out, &seen, err, errlen) < 0)
		goto fail;
	/* A finished test must say how it ended. */
	if (out->finished && !(seen & outcome_bit)) {
		if (errlen > 0)
			snprintf(err, errlen,
				 "proto: progress: missing required key "
				 "\"outcome\" (done is true)");
		goto fail;
	}
	return 0;
fail:
	progress_release(out);
	return -1;
}

int proto_decode_test_result(const char *buf, size_t len,
			     struct test_result *out, char *err, size_t errlen)
{
	struct mpr r;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	mpr_init(&r, buf, len, err, errlen);
	if (len > PROTO_MAX_MSG) {
		mpr_fail(&r, "message of %zu bytes exceeds the limit of %u",
			 len, PROTO_MAX_MSG);
		goto out;
	}
	if (len == 0) {
		mpr_fail(&r, "empty message");
		goto out;
	}
	mpr_path_push(&r, "test");
	if (decode_map(&r, test_result_fields, NFIELDS(test_result_fields),
		       out, PROTO_TASK, NULL) < 0)
		goto out;
	if (mpr_left(&r) != 0) {
		mpr_fail(&r, "%zu trailing bytes after the message",
			 mpr_left(&r));
		goto out;
	}
	rc = 0;
out:
	if (rc < 0)
		test_result_release(out);
	return rc;
}

/* ---- release ---- */

static void strs_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void task_release(struct task *t)
{
	size_t i;

	free(t->run);
	free(t->id);
	free(t->suite);
	free(t->phase);
	free(t->runner);
	free(t->queue);
	free(t->cwd);
	free(t->mark);
	free(t->kexpr);
	free(t->grep);
	free(t->grep_invert);
	strs_free(t->tests, t->ntests);
	strs_free(t->argv, t->nargv);
	for (i = 0; i < t->nenv; i++) {
		free(t->env[i].key);
		free(t->env[i].value);
	}
	free(t->env);
	free(t->retried_for);
	memset(t, 0, sizeof(*t));
}

void test_result_release(struct test_result *r)
{
	free(r->id);
	free(r->message);
	free(r->details);
	free(r->file);
	memset(r, 0, sizeof(*r));
}

void artifact_release(struct artifact *a)
{
	free(a->path);
	free(a->url);
	free(a->error);
	memset(a, 0, sizeof(*a));
}

void task_result_release(struct task_result *r)
{
	size_t i;

	free(r->run);
	free(r->task);
	free(r->worker);
	free(r->suite);
	free(r->phase);
	free(r->message);
	free(r->output);
	free(r->running);
	for (i = 0; i < r->ntests; i++)
		test_result_release(&r->tests[i]);
	free(r->tests);
	strs_free(r->unfinished, r->nunfinished);
	strs_free(r->retrying, r->nretrying);
	free(r->retry_reason);
	free(r->retried_for);
	for (i = 0; i < r->nartifacts; i++)
		artifact_release(&r->artifacts[i]);
	free(r->artifacts);
	memset(r, 0, sizeof(*r));
}

void progress_release(struct progress *p)
{
	free(p->run);
	free(p->task);
	free(p->worker);
	free(p->test);
	memset(p, 0, sizeof(*p));
}
