/* config.c -- testfleet.yaml (see config.h and docs/config.md).
 *
 * The file is loaded into a libyaml document and walked against a fixed
 * schema. Every problem becomes one line "FILE:LINE: KEY.PATH: problem";
 * the first one found is returned. Aliases are allowed (they are references
 * into the document, never copies), so the walk spends a budget of node
 * visits to stay linear in the input even for alias bombs. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "buf.h"
#include "keys.h"
#include "policy.h" /* limits only (macros): no link dependency */
#include "redisurl.h"
#include "xmalloc.h"

#define CONFIG_MAX_BYTES (1u << 20) /* the file, and any expanded value */
#define CONFIG_MAX_VISITS 2000000u  /* node visits, aliases included */
#define CONFIG_MAX_NAME 128	    /* suite, phase and queue names */
#define CONFIG_MAX_SECONDS (366u * 24 * 3600)
#define CONFIG_MAX_WORKERS 10000u
#define CONFIG_MAX_RETRIES 100u
#define CONFIG_MAX_CONCURRENCY 100000u
#define CONFIG_MAX_SHARD_COUNT 100000u
#define CONFIG_MAX_SUITES 10000u
#define CONFIG_MAX_PHASES 1000u
#define CONFIG_MAX_PREFLIGHT 100u
#define CONFIG_MAX_STATUSES 100u
#define CONFIG_MAX_EXCLUDE 100u
#define CONFIG_PREFLIGHT_TIMEOUT_MS 5000L
#define CONFIG_MAX_DEPTH 64    /* nested mappings and lists */
#define CONFIG_MAX_ANCHORS 100 /* libyaml looks anchors up linearly */
#define PATH_LEN 256	       /* key paths in messages */
#define QUOTE_MAX 60	       /* bytes of a value shown in messages */

struct loader {
	const char *name; /* file name for messages */
	yaml_document_t *doc;
	char *err;
	size_t errlen;
	size_t visits; /* budget left */
	int failed;
};

/* ---- messages ---------------------------------------------------------- */

/* Writes s (len bytes) as a double-quoted, escaped, one-line string of at
 * most about QUOTE_MAX bytes into dst. */
static void quote(char *dst, size_t n, const char *s, size_t len)
{
	struct buf b;
	size_t i, shown = len;
	char *out;

	if (shown > QUOTE_MAX) {
		shown = QUOTE_MAX;
		/* Do not cut a UTF-8 sequence in half. */
		while (shown > 0 && ((unsigned char)s[shown] & 0xC0) == 0x80)
			shown--;
	}
	buf_init(&b, 0);
	buf_appendstr(&b, "\"");
	for (i = 0; i < shown; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '"' || ch == '\\')
			buf_printf(&b, "\\%c", ch);
		else if (ch == '\n')
			buf_appendstr(&b, "\\n");
		else if (ch == '\t')
			buf_appendstr(&b, "\\t");
		else if (ch < 0x20 || ch == 0x7F)
			buf_printf(&b, "\\x%02x", ch);
		else
			buf_append(&b, &s[i], 1);
	}
	buf_appendstr(&b, shown < len ? "\"..." : "\"");
	out = buf_detach(&b, NULL);
	snprintf(dst, n, "%s", out);
	free(out);
}

/* A key as it appears in a path: as is when it is a plain name, quoted
 * otherwise, so a message stays one readable line. */
static void path_key(char *dst, size_t n, const char *parent, const char *key)
{
	char q[QUOTE_MAX * 4 + 8];
	const char *k = key;
	size_t i;

	for (i = 0; key[i] != '\0'; i++) {
		unsigned char ch = (unsigned char)key[i];

		if (ch <= 0x20 || ch == 0x7F || ch == '"' || ch == '\\')
			break;
	}
	if (key[i] != '\0' || i == 0 || i > QUOTE_MAX) {
		quote(q, sizeof(q), key, strlen(key));
		k = q;
	}
	if (parent == NULL || parent[0] == '\0')
		snprintf(dst, n, "%s", k);
	else
		snprintf(dst, n, "%s.%s", parent, k);
}

static void path_index(char *dst, size_t n, const char *parent, size_t i)
{
	/* A path cut short still names the place; nothing else to do. */
	if (snprintf(dst, n, "%s[%zu]", parent, i) >= (int)n)
		dst[n - 1] = '\0';
}

static size_t node_line(const yaml_node_t *node)
{
	return node != NULL ? node->start_mark.line + 1 : 1;
}

static int fail(struct loader *L, const yaml_node_t *node, const char *path,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Records the first error as "FILE:LINE: PATH: problem"; returns -1. */
static int fail(struct loader *L, const yaml_node_t *node, const char *path,
		const char *fmt, ...)
{
	va_list ap;
	int off;

	if (L->failed || L->err == NULL || L->errlen == 0) {
		L->failed = 1;
		return -1;
	}
	L->failed = 1;
	off = snprintf(L->err, L->errlen, "%s:%zu: %s: ", L->name,
		       node_line(node), path);
	if (off < 0 || (size_t)off >= L->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(L->err + off, L->errlen - (size_t)off, fmt, ap);
	va_end(ap);
	return -1;
}

/* Describes what a node is, for "expected X, got Y". */
static void describe(char *dst, size_t n, const yaml_node_t *node);

static int is_null(const yaml_node_t *node)
{
	const char *s;

	if (node->type != YAML_SCALAR_NODE ||
	    node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	s = (const char *)node->data.scalar.value;
	return strcmp(s, "") == 0 || strcmp(s, "~") == 0 ||
	       strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
	       strcmp(s, "NULL") == 0;
}

static void describe(char *dst, size_t n, const yaml_node_t *node)
{
	switch (node->type) {
	case YAML_MAPPING_NODE:
		snprintf(dst, n, "a mapping");
		break;
	case YAML_SEQUENCE_NODE:
		snprintf(dst, n, "a list");
		break;
	case YAML_SCALAR_NODE:
		if (is_null(node))
			snprintf(dst, n, "nothing");
		else
			quote(dst, n, (const char *)node->data.scalar.value,
			      node->data.scalar.length);
		break;
	default:
		snprintf(dst, n, "nothing");
		break;
	}
}

static int fail_type(struct loader *L, const yaml_node_t *node,
		     const char *path, const char *expected)
{
	char got[QUOTE_MAX * 4 + 8];

	describe(got, sizeof(got), node);
	return fail(L, node, path, "expected %s, got %s", expected, got);
}

/* ---- document access --------------------------------------------------- */

static int spend(struct loader *L, const yaml_node_t *node, const char *path,
		 size_t n)
{
	if (n > L->visits) {
		L->visits = 0;
		return fail(L, node, path,
			    "document too large once aliases are followed");
	}
	L->visits -= n;
	return 0;
}

static yaml_node_t *node_at(struct loader *L, int index)
{
	return yaml_document_get_node(L->doc, index);
}

/* A scalar's text, NUL-free (YAML's "\0" escape could smuggle one in). */
static int scalar_ok(struct loader *L, const yaml_node_t *node,
		     const char *path)
{
	if (node->type != YAML_SCALAR_NODE)
		return fail_type(L, node, path, "a string");
	if (strlen((const char *)node->data.scalar.value) !=
	    node->data.scalar.length)
		return fail(L, node, path, "contains a NUL byte");
	return 0;
}

static int key_cmp(const void *a, const void *b)
{
	const yaml_node_t *ka = *(const yaml_node_t *const *)a;
	const yaml_node_t *kb = *(const yaml_node_t *const *)b;
	int c = strcmp((const char *)ka->data.scalar.value,
		       (const char *)kb->data.scalar.value);

	if (c != 0)
		return c;
	/* Same key: file order, so the later one is reported. */
	if (ka->start_mark.index != kb->start_mark.index)
		return ka->start_mark.index < kb->start_mark.index ? -1 : 1;
	return 0;
}

/* Checks that node is a mapping whose keys are distinct plain strings.
 * Duplicates are found by sorting, so a huge mapping stays n log n. */
static int check_mapping(struct loader *L, const yaml_node_t *node,
			 const char *path)
{
	const yaml_node_pair_t *p;
	const yaml_node_t **keys = NULL;
	const yaml_node_t *dup = NULL;
	size_t n, i;
	int rc = -1;

	if (node->type != YAML_MAPPING_NODE)
		return fail_type(L, node, path, "a mapping");
	n = (size_t)(node->data.mapping.pairs.top -
		     node->data.mapping.pairs.start);
	if (spend(L, node, path, n + 1) < 0)
		return -1;
	keys = xcalloc(n ? n : 1, sizeof(*keys));
	for (i = 0, p = node->data.mapping.pairs.start;
	     p < node->data.mapping.pairs.top; p++, i++) {
		const yaml_node_t *k = node_at(L, p->key);

		if (k == NULL || node_at(L, p->value) == NULL) {
			fail(L, node, path, "malformed mapping");
			goto out;
		}
		if (k->type != YAML_SCALAR_NODE || is_null(k)) {
			char what[QUOTE_MAX * 4 + 8];

			describe(what, sizeof(what), k);
			fail(L, k, path, "keys must be strings, got %s", what);
			goto out;
		}
		if (strlen((const char *)k->data.scalar.value) !=
		    k->data.scalar.length) {
			fail(L, k, path, "key contains a NUL byte");
			goto out;
		}
		keys[i] = k;
	}
	qsort(keys, n, sizeof(*keys), key_cmp);
	for (i = 1; i < n; i++) {
		if (strcmp((const char *)keys[i - 1]->data.scalar.value,
			   (const char *)keys[i]->data.scalar.value) != 0)
			continue;
		/* Report the duplicate that comes first in the file. */
		if (dup == NULL ||
		    keys[i]->start_mark.index < dup->start_mark.index)
			dup = keys[i];
	}
	if (dup != NULL) {
		char kpath[PATH_LEN];

		path_key(kpath, sizeof(kpath), path,
			 (const char *)dup->data.scalar.value);
		fail(L, dup, kpath, "duplicate key");
		goto out;
	}
	rc = 0;
out:
	free(keys);
	return rc;
}

/* The known key closest to key -- at most two edits away, and fewer than
 * half its length -- or NULL: "did you mean" for typos. */
static const char *closest_key(const char *key, const char *const *known)
{
	unsigned row[33], prev[33];
	const char *best = NULL;
	size_t n = strlen(key), i, j, k;
	unsigned best_d = 3;

	if (n == 0 || n > 32)
		return NULL;
	for (k = 0; known[k] != NULL; k++) {
		size_t m = strlen(known[k]);

		if (m > 32)
			continue;
		for (j = 0; j <= m; j++)
			prev[j] = (unsigned)j;
		for (i = 1; i <= n; i++) {
			row[0] = (unsigned)i;
			for (j = 1; j <= m; j++) {
				unsigned sub = prev[j - 1] +
					       (key[i - 1] != known[k][j - 1]);
				unsigned del = prev[j] + 1,
					 ins = row[j - 1] + 1;

				row[j] = sub < del ? sub : del;
				if (ins < row[j])
					row[j] = ins;
			}
			memcpy(prev, row, (m + 1) * sizeof(*row));
		}
		if (prev[m] < best_d && 2 * prev[m] < n) {
			best_d = prev[m];
			best = known[k];
		}
	}
	return best;
}

/* "unknown key", with the closest known key when there is one, else hint
 * (may be NULL). */
static int fail_unknown(struct loader *L, const yaml_node_t *k,
			const char *path, const char *const *known,
			const char *hint)
{
	const char *near =
	    closest_key((const char *)k->data.scalar.value, known);

	if (near != NULL)
		return fail(L, k, path, "unknown key (did you mean %s?)", near);
	if (hint != NULL)
		return fail(L, k, path, "unknown key (%s)", hint);
	return fail(L, k, path, "unknown key");
}

/* ---- values ------------------------------------------------------------ */

static int is_var_start(int ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	       ch == '_';
}

static int is_var_char(int ch)
{
	return is_var_start(ch) || (ch >= '0' && ch <= '9');
}

/* Expands ${VAR}, ${VAR:-default} and $$ in s. A '$' followed by anything
 * else is literal. Returns a malloc'd string, or NULL with the problem in
 * msg. The default is literal text up to the first '}'. */
static char *env_expand(const char *s, size_t len, char *msg, size_t msglen)
{
	struct buf b;
	size_t i = 0;

	buf_init(&b, CONFIG_MAX_BYTES);
	while (i < len) {
		const char *dollar = memchr(s + i, '$', len - i);
		size_t run =
		    dollar != NULL ? (size_t)(dollar - (s + i)) : len - i;
		size_t name_start, name_end, close;
		const char *value;
		char *name;
		int has_default = 0;

		if (buf_append(&b, s + i, run) < 0)
			goto toolong;
		i += run;
		if (i >= len)
			break;
		/* s[i] == '$' */
		if (i + 1 < len && s[i + 1] == '$') {
			if (buf_append(&b, "$", 1) < 0)
				goto toolong;
			i += 2;
			continue;
		}
		if (i + 1 >= len || s[i + 1] != '{') {
			if (buf_append(&b, "$", 1) < 0)
				goto toolong;
			i++;
			continue;
		}
		name_start = i + 2;
		close = name_start;
		while (close < len && s[close] != '}')
			close++;
		if (close >= len) {
			snprintf(msg, msglen, "unterminated \"${\"");
			goto fail;
		}
		name_end = name_start;
		if (name_end < close &&
		    is_var_start((unsigned char)s[name_end]))
			while (name_end < close &&
			       is_var_char((unsigned char)s[name_end]))
				name_end++;
		if (name_end == name_start ||
		    (name_end != close &&
		     !(close - name_end >= 2 && s[name_end] == ':' &&
		       s[name_end + 1] == '-'))) {
			char q[QUOTE_MAX * 4 + 8];

			quote(q, sizeof(q), s + i, close + 1 - i);
			snprintf(msg, msglen,
				 "bad variable reference %s (use ${NAME} or "
				 "${NAME:-default})",
				 q);
			goto fail;
		}
		has_default = name_end != close;
		name = xstrndup(s + name_start, name_end - name_start);
		value = getenv(name);
		if (value != NULL && value[0] != '\0') {
			if (buf_appendstr(&b, value) < 0) {
				free(name);
				goto toolong;
			}
		} else if (has_default) {
			if (buf_append(&b, s + name_end + 2,
				       close - (name_end + 2)) < 0) {
				free(name);
				goto toolong;
			}
		} else if (value == NULL) {
			snprintf(msg, msglen,
				 "environment variable %s is not set (use "
				 "${%s:-default})",
				 name, name);
			free(name);
			goto fail;
		}
		free(name);
		i = close + 1;
	}
	return buf_detach(&b, NULL);
toolong:
	snprintf(msg, msglen, "value longer than %u bytes once expanded",
		 CONFIG_MAX_BYTES);
fail:
	buf_release(&b);
	return NULL;
}

/* A scalar value, environment-expanded; caller frees *out. */
static int get_text(struct loader *L, const yaml_node_t *node, const char *path,
		    const char *expected, char **out)
{
	char msg[512];

	if (node->type != YAML_SCALAR_NODE || is_null(node))
		return fail_type(L, node, path, expected);
	if (scalar_ok(L, node, path) < 0)
		return -1;
	*out = env_expand((const char *)node->data.scalar.value,
			  node->data.scalar.length, msg, sizeof(msg));
	if (*out == NULL)
		return fail(L, node, path, "%s", msg);
	return 0;
}

static int get_string(struct loader *L, const yaml_node_t *node,
		      const char *path, int allow_empty, char **out)
{
	char *s;

	if (get_text(L, node, path, "a string", &s) < 0)
		return -1;
	if (!allow_empty && s[0] == '\0') {
		free(s);
		return fail(L, node, path, "must not be empty");
	}
	*out = s;
	return 0;
}

static int valid_name(const char *s, const char *extra)
{
	size_t i;

	if (s[0] == '\0' || strlen(s) > CONFIG_MAX_NAME)
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		unsigned char ch = (unsigned char)s[i];

		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' ||
		    ch == '-')
			continue;
		if (extra != NULL && ch != '\0' && strchr(extra, ch) != NULL)
			continue;
		return 0;
	}
	return 1;
}

/* Names become Redis keys and report fields: [A-Za-z0-9_.-]+. */
static int get_name(struct loader *L, const yaml_node_t *node, const char *path,
		    const char *extra, char **out)
{
	char *s, q[QUOTE_MAX * 4 + 8];

	if (get_text(L, node, path, "a name", &s) < 0)
		return -1;
	if (!valid_name(s, extra)) {
		quote(q, sizeof(q), s, strlen(s));
		free(s);
		return fail(L, node, path,
			    "invalid name %s (use 1 to %d letters, digits, "
			    "\"_\", \".\", \"-\"%s)",
			    q, CONFIG_MAX_NAME, extra != NULL ? ", \":\"" : "");
	}
	*out = s;
	return 0;
}

/* Decimal digits only; returns 0 and *out, or -1 (junk, overflow, > max). */
static int parse_uint(const char *s, size_t len, unsigned long long max,
		      unsigned long long *out)
{
	unsigned long long v = 0;
	size_t i;

	if (len == 0)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = (unsigned)(s[i] - '0');
		if (d > max || v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int get_uint(struct loader *L, const yaml_node_t *node, const char *path,
		    unsigned min, unsigned max, unsigned *out)
{
	char expected[96], *s;
	unsigned long long v;
	int rc = 0;

	snprintf(expected, sizeof(expected), "an integer from %u to %u", min,
		 max);
	if (node->type != YAML_SCALAR_NODE || is_null(node))
		return fail_type(L, node, path, expected);
	if (get_text(L, node, path, expected, &s) < 0)
		return -1;
	if (parse_uint(s, strlen(s), max, &v) < 0 || v < min) {
		char q[QUOTE_MAX * 4 + 8];

		quote(q, sizeof(q), s, strlen(s));
		rc = fail(L, node, path, "expected %s, got %s", expected, q);
	} else {
		*out = (unsigned)v;
	}
	free(s);
	return rc;
}

/* Seconds: "600", or a sequence of <int><unit> with units s, m, h, d
 * ("90s", "10m", "1h30m"). */
static int parse_seconds(const char *s, unsigned long long *out)
{
	unsigned long long total = 0;
	size_t i = 0, len = strlen(s);

	if (parse_uint(s, len, CONFIG_MAX_SECONDS, out) == 0)
		return 0;
	if (len == 0)
		return -1;
	while (i < len) {
		size_t start = i;
		unsigned long long v, mult;

		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == start || i >= len)
			return -1;
		if (parse_uint(s + start, i - start, CONFIG_MAX_SECONDS, &v) <
		    0)
			return -1;
		switch (s[i]) {
		case 's':
			mult = 1;
			break;
		case 'm':
			mult = 60;
			break;
		case 'h':
			mult = 3600;
			break;
		case 'd':
			mult = 86400;
			break;
		default:
			return -1;
		}
		i++;
		if (v > CONFIG_MAX_SECONDS / mult)
			return -1;
		total += v * mult;
		if (total > CONFIG_MAX_SECONDS)
			return -1;
	}
	*out = total;
	return 0;
}

static int get_seconds(struct loader *L, const yaml_node_t *node,
		       const char *path, unsigned *out)
{
	unsigned long long v;
	char *s;
	int rc = 0;

	if (node->type != YAML_SCALAR_NODE || is_null(node))
		return fail_type(L, node, path, "seconds");
	if (get_text(L, node, path, "seconds", &s) < 0)
		return -1;
	if (parse_seconds(s, &v) < 0) {
		char q[QUOTE_MAX * 4 + 8];

		quote(q, sizeof(q), s, strlen(s));
		rc = fail(L, node, path, "expected seconds, got %s", q);
	} else {
		*out = (unsigned)v;
	}
	free(s);
	return rc;
}

static int get_bool(struct loader *L, const yaml_node_t *node, const char *path,
		    int *out)
{
	static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes",
					  "YES",  "on",	  "On",	  "ON"};
	static const char *const no[] = {"false", "False", "FALSE", "no", "No",
					 "NO",	  "off",   "Off",   "OFF"};
	char *s, q[QUOTE_MAX * 4 + 8];
	size_t i;
	int rc = -1;

	if (get_text(L, node, path, "true or false", &s) < 0)
		return -1;
	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcmp(s, yes[i]) == 0) {
			*out = 1;
			rc = 0;
		} else if (strcmp(s, no[i]) == 0) {
			*out = 0;
			rc = 0;
		}
	}
	if (rc < 0) {
		quote(q, sizeof(q), s, strlen(s));
		fail(L, node, path, "expected true or false, got %s", q);
	}
	free(s);
	return rc;
}

static int get_shard(struct loader *L, const yaml_node_t *node,
		     const char *path, char **out)
{
	char msg[256], *s;

	if (get_text(L, node, path, "a shard mode", &s) < 0)
		return -1;
	if (config_check_shard(s, msg, sizeof(msg)) < 0) {
		free(s);
		return fail(L, node, path, "%s", msg);
	}
	*out = s;
	return 0;
}

static void strv_free(char **v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

enum list_check { LIST_ANY, LIST_PATH, LIST_ARGV };

/* A list of non-empty strings; single_ok also takes one string for a list
 * of one. */
static int get_string_list(struct loader *L, const yaml_node_t *node,
			   const char *path, int single_ok,
			   enum list_check check, char ***out, size_t *nout)
{
	const yaml_node_item_t *it;
	char **v = NULL, ipath[PATH_LEN];
	size_t n = 0, cap;

	if (node->type == YAML_SCALAR_NODE && single_ok && !is_null(node)) {
		cap = 1;
		v = xcalloc(1, sizeof(*v));
		if (get_string(L, node, path, 0, &v[0]) < 0)
			goto fail;
		n = 1;
		goto check;
	}
	if (node->type != YAML_SEQUENCE_NODE)
		return fail_type(L, node, path,
				 single_ok ? "a list of strings or a string"
					   : "a list of strings");
	cap = (size_t)(node->data.sequence.items.top -
		       node->data.sequence.items.start);
	if (spend(L, node, path, cap + 1) < 0)
		return -1;
	if (cap == 0)
		return fail(L, node, path, "must not be empty");
	v = xcalloc(cap, sizeof(*v));
	for (it = node->data.sequence.items.start;
	     it < node->data.sequence.items.top; it++) {
		const yaml_node_t *item = node_at(L, *it);

		path_index(ipath, sizeof(ipath), path, n);
		if (item == NULL) {
			fail(L, node, ipath, "malformed list");
			goto fail;
		}
		if (get_string(L, item, ipath, check == LIST_ARGV, &v[n]) < 0)
			goto fail;
		n++;
	}
check:
	if (check == LIST_PATH) {
		size_t i;

		for (i = 0; i < n; i++) {
			const yaml_node_t *item =
			    node->type == YAML_SEQUENCE_NODE
				? node_at(L, node->data.sequence.items.start[i])
				: node;
			char q[QUOTE_MAX * 4 + 8];

			if (v[i][0] != '-')
				continue;
			if (node->type == YAML_SEQUENCE_NODE)
				path_index(ipath, sizeof(ipath), path, i);
			else
				snprintf(ipath, sizeof(ipath), "%s", path);
			quote(q, sizeof(q), v[i], strlen(v[i]));
			fail(L, item, ipath,
			     "%s looks like an option (use markers/keyword for "
			     "selection)",
			     q);
			goto fail;
		}
	}
	*out = v;
	*nout = n;
	return 0;
fail:
	strv_free(v, cap);
	return -1;
}

static int get_env(struct loader *L, const yaml_node_t *node, const char *path,
		   struct kv **out, size_t *nout)
{
	const yaml_node_pair_t *p;
	struct kv *env;
	size_t n = 0, cap, i;
	char kpath[PATH_LEN];

	if (check_mapping(L, node, path) < 0)
		return -1;
	cap = (size_t)(node->data.mapping.pairs.top -
		       node->data.mapping.pairs.start);
	env = xcalloc(cap ? cap : 1, sizeof(*env));
	for (p = node->data.mapping.pairs.start;
	     p < node->data.mapping.pairs.top; p++) {
		const yaml_node_t *k = node_at(L, p->key);
		const yaml_node_t *v = node_at(L, p->value);
		const char *key = (const char *)k->data.scalar.value;

		path_key(kpath, sizeof(kpath), path, key);
		for (i = 0; key[i] != '\0'; i++)
			if (!is_var_char((unsigned char)key[i]))
				break;
		if (!is_var_start((unsigned char)key[0]) || key[i] != '\0') {
			fail(L, k, kpath,
			     "invalid environment variable name (use letters, "
			     "digits and \"_\")");
			goto fail;
		}
		if (get_string(L, v, kpath, 1, &env[n].value) < 0)
			goto fail;
		env[n].key = xstrdup(key);
		n++;
	}
	*out = env;
	*nout = n;
	return 0;
fail:
	for (i = 0; i < n; i++) {
		free(env[i].key);
		free(env[i].value);
	}
	free(env);
	return -1;
}

/* exclude: a list of names (or one name): pytest markers, Playwright tags.
 * Unlike other lists it may be empty: a suite's "exclude: []" replaces the
 * defaults with nothing. Names are [A-Za-z0-9_.-]+, listed once, and not
 * a word of pytest's -m grammar. */
static int get_exclude(struct loader *L, const yaml_node_t *node,
		       const char *path, char ***out, size_t *nout)
{
	static const char *const words[] = {"and", "or", "not"};
	char ipath[PATH_LEN], q[QUOTE_MAX * 4 + 8];
	size_t i, k;

	if (node->type == YAML_SEQUENCE_NODE &&
	    node->data.sequence.items.top == node->data.sequence.items.start) {
		*out = xcalloc(1, sizeof(**out));
		*nout = 0;
		return 0;
	}
	if (get_string_list(L, node, path, 1, LIST_ANY, out, nout) < 0)
		return -1;
	if (*nout > CONFIG_MAX_EXCLUDE)
		return fail(L, node, path, "more than %u names",
			    CONFIG_MAX_EXCLUDE);
	for (i = 0; i < *nout; i++) {
		const char *name = (*out)[i];
		const yaml_node_t *item = node;

		if (node->type == YAML_SEQUENCE_NODE) {
			item = node_at(L, node->data.sequence.items.start[i]);
			path_index(ipath, sizeof(ipath), path, i);
		} else {
			snprintf(ipath, sizeof(ipath), "%s", path);
		}
		quote(q, sizeof(q), name, strlen(name));
		if (!valid_name(name, NULL))
			return fail(L, item, ipath,
				    "invalid name %s (a marker or tag name: 1 "
				    "to %d letters, digits, \"_\", \".\", "
				    "\"-\"; no \"@\")",
				    q, CONFIG_MAX_NAME);
		for (k = 0; k < sizeof(words) / sizeof(words[0]); k++)
			if (strcmp(name, words[k]) == 0)
				return fail(
				    L, item, ipath,
				    "%s cannot be a marker name (it is "
				    "a word of pytest's -m expressions)",
				    q);
		for (k = 0; k < i; k++)
			if (strcmp(name, (*out)[k]) == 0)
				return fail(L, item, ipath, "%s listed twice",
					    q);
	}
	return 0;
}

/* ---- shard ------------------------------------------------------------- */

int config_check_shard(const char *mode, char *err, size_t errlen)
{
	unsigned long long n;
	char q[QUOTE_MAX * 4 + 8];

	if (strcmp(mode, "auto") == 0 || strcmp(mode, "file") == 0 ||
	    strcmp(mode, "test") == 0)
		return 0;
	if (strncmp(mode, "count:", 6) == 0 &&
	    parse_uint(mode + 6, strlen(mode + 6), CONFIG_MAX_SHARD_COUNT,
		       &n) == 0 &&
	    n >= 1)
		return 0;
	quote(q, sizeof(q), mode, strlen(mode));
	if (err != NULL && errlen > 0)
		snprintf(err, errlen,
			 "expected auto, file, test or count:N (N from 1 to "
			 "%u), got %s",
			 CONFIG_MAX_SHARD_COUNT, q);
	return -1;
}

/* ---- schema ------------------------------------------------------------ */

/* Key nodes of a suite's fields, for checks that span fields. */
struct suite_keys {
	const yaml_node_t *runner, *paths, *command, *markers, *keyword, *grep;
};

static void suite_release(struct suite_conf *s)
{
	size_t i;

	free(s->name);
	free(s->runner);
	strv_free(s->paths, s->npaths);
	strv_free(s->command, s->ncommand);
	free(s->cwd);
	for (i = 0; i < s->nenv; i++) {
		free(s->env[i].key);
		free(s->env[i].value);
	}
	free(s->env);
	free(s->mark);
	free(s->kexpr);
	free(s->grep);
	free(s->queue);
	free(s->shard);
	strv_free(s->exclude, s->nexclude);
	memset(s, 0, sizeof(*s));
}

static void phase_release(struct phase_conf *p)
{
	free(p->name);
	strv_free(p->suites, p->nsuites);
	memset(p, 0, sizeof(*p));
}

static int load_defaults(struct loader *L, const yaml_node_t *node,
			 struct config *c)
{
	const yaml_node_pair_t *p;
	char path[PATH_LEN];

	if (check_mapping(L, node, "defaults") < 0)
		return -1;
	for (p = node->data.mapping.pairs.start;
	     p < node->data.mapping.pairs.top; p++) {
		const yaml_node_t *k = node_at(L, p->key);
		const yaml_node_t *v = node_at(L, p->value);
		const char *key = (const char *)k->data.scalar.value;
		unsigned u;
		int rc;

		path_key(path, sizeof(path), "defaults", key);
		if (strcmp(key, "redis") == 0) {
			rc = get_string(L, v, path, 0, &c->redis);
		} else if (strcmp(key, "prefix") == 0) {
			rc = get_name(L, v, path, ":", &c->prefix);
		} else if (strcmp(key, "workers") == 0) {
			rc = get_uint(L, v, path, 1, CONFIG_MAX_WORKERS,
				      &c->workers);
		} else if (strcmp(key, "shard") == 0) {
			rc = get_shard(L, v, path, &c->shard);
		} else if (strcmp(key, "timeout") == 0) {
			rc = get_seconds(L, v, path, &c->timeout_s);
		} else if (strcmp(key, "queue") == 0) {
			rc = get_name(L, v, path, NULL, &c->queue);
		} else if (strcmp(key, "retries") == 0) {
			rc = get_uint(L, v, path, 0, CONFIG_MAX_RETRIES, &u);
			if (rc == 0)
				c->retries = (int)u;
		} else if (strcmp(key, "exclude") == 0) {
			rc = get_exclude(L, v, path, &c->exclude, &c->nexclude);
		} else {
			static const char *const known[] = {
			    "redis", "prefix",	"workers", "shard", "timeout",
			    "queue", "retries", "exclude", NULL};

			rc = fail_unknown(L, k, path, known, NULL);
		}
		if (rc < 0)
			return -1;
	}
	return 0;
}

static int load_suite(struct loader *L, const yaml_node_t *node,
		      const char *path, struct suite_conf *s)
{
	const yaml_node_pair_t *p;
	struct suite_keys keys;
	char kpath[PATH_LEN];
	unsigned u;

	memset(&keys, 0, sizeof(keys));
	if (is_null(node))
		goto fill; /* "api:" alone: a pytest suite with defaults */
	if (check_mapping(L, node, path) < 0)
		return -1;
	for (p = node->data.mapping.pairs.start;
	     p < node->data.mapping.pairs.top; p++) {
		const yaml_node_t *k = node_at(L, p->key);
		const yaml_node_t *v = node_at(L, p->value);
		const char *key = (const char *)k->data.scalar.value;
		int rc;

		path_key(kpath, sizeof(kpath), path, key);
		if (strcmp(key, "runner") == 0) {
			keys.runner = k;
			rc = get_text(L, v, kpath, "a runner", &s->runner);
			if (rc == 0 && strcmp(s->runner, "pytest") != 0 &&
			    strcmp(s->runner, "playwright") != 0 &&
			    strcmp(s->runner, "command") != 0) {
				char q[QUOTE_MAX * 4 + 8];

				quote(q, sizeof(q), s->runner,
				      strlen(s->runner));
				rc = fail(L, v, kpath,
					  "expected pytest, playwright or "
					  "command, got %s",
					  q);
			}
		} else if (strcmp(key, "paths") == 0) {
			keys.paths = k;
			rc = get_string_list(L, v, kpath, 1, LIST_PATH,
					     &s->paths, &s->npaths);
		} else if (strcmp(key, "command") == 0) {
			keys.command = k;
			if (v->type == YAML_SCALAR_NODE && !is_null(v))
				rc = fail(L, v, kpath,
					  "expected a list of strings (the "
					  "program and its arguments; no "
					  "shell)");
			else
				rc = get_string_list(L, v, kpath, 0, LIST_ARGV,
						     &s->command, &s->ncommand);
		} else if (strcmp(key, "cwd") == 0) {
			rc = get_string(L, v, kpath, 0, &s->cwd);
		} else if (strcmp(key, "env") == 0) {
			rc = get_env(L, v, kpath, &s->env, &s->nenv);
		} else if (strcmp(key, "markers") == 0) {
			keys.markers = k;
			rc = get_string(L, v, kpath, 0, &s->mark);
		} else if (strcmp(key, "keyword") == 0) {
			keys.keyword = k;
			rc = get_string(L, v, kpath, 0, &s->kexpr);
		} else if (strcmp(key, "grep") == 0) {
			keys.grep = k;
			rc = get_string(L, v, kpath, 0, &s->grep);
		} else if (strcmp(key, "timeout") == 0) {
			rc = get_seconds(L, v, kpath, &s->timeout_s);
		} else if (strcmp(key, "queue") == 0) {
			rc = get_name(L, v, kpath, NULL, &s->queue);
		} else if (strcmp(key, "shard") == 0) {
			rc = get_shard(L, v, kpath, &s->shard);
		} else if (strcmp(key, "retries") == 0) {
			rc = get_uint(L, v, kpath, 0, CONFIG_MAX_RETRIES, &u);
			if (rc == 0)
				s->retries = (int)u;
		} else if (strcmp(key, "max_concurrency") == 0) {
			rc = get_uint(L, v, kpath, 0, CONFIG_MAX_CONCURRENCY,
				      &s->max_concurrency);
		} else if (strcmp(key, "exclude") == 0) {
			rc =
			    get_exclude(L, v, kpath, &s->exclude, &s->nexclude);
			s->has_exclude = rc == 0;
		} else {
			static const char *const known[] = {"runner",
							    "paths",
							    "command",
							    "cwd",
							    "env",
							    "markers",
							    "keyword",
							    "grep",
							    "timeout",
							    "queue",
							    "shard",
							    "retries",
							    "max_concurrency",
							    "exclude",
							    NULL};

			rc = fail_unknown(L, k, kpath, known, NULL);
		}
		if (rc < 0)
			return -1;
	}
fill:
	if (s->runner == NULL)
		s->runner = xstrdup("pytest");
	if (strcmp(s->runner, "command") == 0) {
		if (s->command == NULL)
			return fail(L, keys.runner, path,
				    "the command runner needs \"command\"");
		if (keys.paths != NULL) {
			path_key(kpath, sizeof(kpath), path, "paths");
			return fail(L, keys.paths, kpath,
				    "not used by the command runner (put "
				    "arguments in \"command\")");
		}
	} else if (keys.command != NULL) {
		path_key(kpath, sizeof(kpath), path, "command");
		return fail(L, keys.command, kpath,
			    "only for the command runner (this suite's "
			    "runner is %s)",
			    s->runner);
	}
	if (strcmp(s->runner, "pytest") != 0) {
		const yaml_node_t *k =
		    keys.markers != NULL ? keys.markers : keys.keyword;

		if (k != NULL) {
			path_key(kpath, sizeof(kpath), path,
				 (const char *)k->data.scalar.value);
			return fail(L, k, kpath,
				    "only for the pytest runner (this "
				    "suite's runner is %s)",
				    s->runner);
		}
	}
	if (strcmp(s->runner, "playwright") != 0 && keys.grep != NULL) {
		path_key(kpath, sizeof(kpath), path, "grep");
		return fail(L, keys.grep, kpath,
			    "only for the playwright runner (this suite's "
			    "runner is %s)",
			    s->runner);
	}
	return 0;
}

static int load_suites(struct loader *L, const yaml_node_t *node,
		       struct config *c)
{
	const yaml_node_pair_t *p;
	char path[PATH_LEN];
	size_t n;

	if (check_mapping(L, node, "suites") < 0)
		return -1;
	n = (size_t)(node->data.mapping.pairs.top -
		     node->data.mapping.pairs.start);
	if (n == 0)
		return fail(L, node, "suites", "at least one suite is needed");
	if (n > CONFIG_MAX_SUITES)
		return fail(L, node, "suites", "more than %u suites",
			    CONFIG_MAX_SUITES);
	c->suites = xcalloc(n, sizeof(*c->suites));
	for (p = node->data.mapping.pairs.start;
	     p < node->data.mapping.pairs.top; p++) {
		const yaml_node_t *k = node_at(L, p->key);
		const yaml_node_t *v = node_at(L, p->value);
		const char *key = (const char *)k->data.scalar.value;
		struct suite_conf *s = &c->suites[c->nsuites];

		path_key(path, sizeof(path), "suites", key);
		c->nsuites++;
		s->retries = -1;
		if (!valid_name(key, NULL))
			return fail(L, k, path,
				    "invalid suite name (use 1 to %d "
				    "letters, digits, \"_\", \".\", \"-\")",
				    CONFIG_MAX_NAME);
		s->name = xstrdup(key);
		if (load_suite(L, v, path, s) < 0)
			return -1;
	}
	return 0;
}

/* Suites sorted by name, so phase references resolve in log time even for
 * a long list, and "seen" marks catch a suite listed twice in a phase. */
struct suite_index {
	const struct suite_conf **sorted;
	size_t n;
	size_t *seen; /* per suite: 1 + the last phase listing it */
	const struct suite_conf *base;
};

static int suite_ptr_cmp(const void *a, const void *b)
{
	const struct suite_conf *sa = *(const struct suite_conf *const *)a;
	const struct suite_conf *sb = *(const struct suite_conf *const *)b;

	return strcmp(sa->name, sb->name);
}

static int suite_key_cmp(const void *key, const void *elem)
{
	const struct suite_conf *s = *(const struct suite_conf *const *)elem;

	return strcmp((const char *)key, s->name);
}

static int load_phase(struct loader *L, const yaml_node_t *node,
		      const char *path, struct suite_index *idx,
		      size_t phase_no, struct phase_conf *ph,
		      const yaml_node_t **name_node)
{
	const yaml_node_pair_t *p;
	const yaml_node_t *suites_node = NULL;
	char kpath[PATH_LEN], ipath[PATH_LEN];
	size_t i;

	if (check_mapping(L, node, path) < 0)
		return -1;
	for (p = node->data.mapping.pairs.start;
	     p < node->data.mapping.pairs.top; p++) {
		const yaml_node_t *k = node_at(L, p->key);
		const yaml_node_t *v = node_at(L, p->value);
		const char *key = (const char *)k->data.scalar.value;
		int rc;

		path_key(kpath, sizeof(kpath), path, key);
		if (strcmp(key, "name") == 0) {
			*name_node = v;
			rc = get_name(L, v, kpath, NULL, &ph->name);
		} else if (strcmp(key, "suites") == 0) {
			suites_node = v;
			rc = get_string_list(L, v, kpath, 1, LIST_ANY,
					     &ph->suites, &ph->nsuites);
		} else if (strcmp(key, "required") == 0) {
			rc = get_bool(L, v, kpath, &ph->required);
		} else if (strcmp(key, "parallel") == 0) {
			rc = get_bool(L, v, kpath, &ph->parallel);
		} else if (strcmp(key, "timeout") == 0) {
			rc = get_seconds(L, v, kpath, &ph->timeout_s);
		} else {
			static const char *const known[] = {
			    "name",	"suites",  "required",
			    "parallel", "timeout", NULL};

			rc = fail_unknown(L, k, kpath, known, NULL);
		}
		if (rc < 0)
			return -1;
	}
	if (ph->name == NULL)
		return fail(L, node, path, "missing \"name\"");
	if (suites_node == NULL)
		return fail(L, node, path, "missing \"suites\"");
	path_key(kpath, sizeof(kpath), path, "suites");
	for (i = 0; i < ph->nsuites; i++) {
		const yaml_node_t *item = suites_node;
		const struct suite_conf *const *found;
		char q[QUOTE_MAX * 4 + 8];
		size_t si;

		if (suites_node->type == YAML_SEQUENCE_NODE) {
			item = node_at(
			    L, suites_node->data.sequence.items.start[i]);
			path_index(ipath, sizeof(ipath), kpath, i);
		} else {
			snprintf(ipath, sizeof(ipath), "%s", kpath);
		}
		quote(q, sizeof(q), ph->suites[i], strlen(ph->suites[i]));
		found = bsearch(ph->suites[i], idx->sorted, idx->n,
				sizeof(*idx->sorted), suite_key_cmp);
		if (found == NULL)
			return fail(L, item, ipath, "unknown suite %s", q);
		si = (size_t)(*found - idx->base);
		if (idx->seen[si] == phase_no + 1)
			return fail(L, item, ipath, "suite %s listed twice", q);
		idx->seen[si] = phase_no + 1;
	}
	return 0;
}

static int load_phases(struct loader *L, const yaml_node_t *node,
		       struct config *c)
{
	const yaml_node_item_t *it;
	struct suite_index idx;
	char path[PATH_LEN];
	size_t n, i;
	int rc = -1;

	memset(&idx, 0, sizeof(idx));
	if (node->type != YAML_SEQUENCE_NODE)
		return fail_type(L, node, "phases", "a list of phases");
	n = (size_t)(node->data.sequence.items.top -
		     node->data.sequence.items.start);
	if (spend(L, node, "phases", n + 1) < 0)
		return -1;
	if (n == 0)
		return fail(L, node, "phases",
			    "must not be empty (leave it out to run every "
			    "suite in one phase)");
	if (n > CONFIG_MAX_PHASES)
		return fail(L, node, "phases", "more than %u phases",
			    CONFIG_MAX_PHASES);
	idx.n = c->nsuites;
	idx.base = c->suites;
	idx.sorted = xcalloc(c->nsuites, sizeof(*idx.sorted));
	idx.seen = xcalloc(c->nsuites, sizeof(*idx.seen));
	for (i = 0; i < c->nsuites; i++)
		idx.sorted[i] = &c->suites[i];
	qsort(idx.sorted, idx.n, sizeof(*idx.sorted), suite_ptr_cmp);
	c->phases = xcalloc(n, sizeof(*c->phases));
	for (it = node->data.sequence.items.start;
	     it < node->data.sequence.items.top; it++) {
		const yaml_node_t *v = node_at(L, *it), *name_node = NULL;
		size_t no = c->nphases;
		struct phase_conf *ph = &c->phases[no];

		path_index(path, sizeof(path), "phases", no);
		c->nphases++;
		ph->required = 1;
		ph->parallel = 1;
		if (v == NULL) {
			fail(L, node, path, "malformed list");
			goto out;
		}
		if (load_phase(L, v, path, &idx, no, ph, &name_node) < 0)
			goto out;
		/* At most CONFIG_MAX_PHASES, so quadratic is fine. */
		for (i = 0; i < no; i++) {
			if (strcmp(c->phases[i].name, ph->name) == 0) {
				char kpath[PATH_LEN], q[QUOTE_MAX * 4 + 8];

				path_key(kpath, sizeof(kpath), path, "name");
				quote(q, sizeof(q), ph->name, strlen(ph->name));
				fail(L, name_node, kpath,
				     "duplicate phase name %s", q);
				goto out;
			}
		}
	}
	rc = 0;
out:
	free(idx.sorted);
	free(idx.seen);
	return rc;
}

/* A duration in milliseconds: whole seconds ("2"), or one or more
 * <integer><unit> groups with units ms, s, m, h ("500ms", "1m30s"); at
 * most POLICY_BACKOFF_LIMIT_MS. */
static int parse_millis(const char *s, unsigned long long *out)
{
	unsigned long long total = 0, v, mult;
	size_t i = 0, len = strlen(s);

	if (parse_uint(s, len, POLICY_BACKOFF_LIMIT_MS / 1000, &v) == 0) {
		*out = v * 1000;
		return 0;
	}
	if (len == 0)
		return -1;
	while (i < len) {
		size_t start = i;

		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == start || i >= len)
			return -1;
		if (parse_uint(s + start, i - start, POLICY_BACKOFF_LIMIT_MS,
			       &v) < 0)
			return -1;
		if (s[i] == 'm' && i + 1 < len && s[i + 1] == 's') {
			mult = 1;
			i += 2;
		} else {
			switch (s[i]) {
			case 's':
				mult = 1000;
				break;
			case 'm':
				mult = 60000;
				break;
			case 'h':
				mult = 3600000;
				break;
			default:
				return -1;
			}
			i++;
		}
		if (v > POLICY_BACKOFF_LIMIT_MS / mult)
			return -1;
		total += v * mult;
		if (total > POLICY_BACKOFF_LIMIT_MS)
			return -1;
	}
	*out = total;
	return 0;
}

static int get_millis(struct loader *L, const yaml_node_t *node,
		      const char *path, long *out)
{
	static const char expected[] =
	    "a duration (\"500ms\", \"2s\", \"1m\"; at most 24h)";
	unsigned long long v;
	char *s;
	int rc = 0;

	if (node->type != YAML_SCALAR_NODE || is_null(node))
		return fail_type(L, node, path, expected);
	if (get_text(L, node, path, expected, &s) < 0)
		return -1;
	if (parse_millis(s, &v) < 0) {
		char q[QUOTE_MAX * 4 + 8];

		quote(q, sizeof(q), s, strlen(s));
		rc = fail(L, node, path, "expected %s, got %s", expected, q);
	} else {
		*out = (long)v;
	}
	free(s);
	return rc;
}

/* A list of transient patterns: plain substrings, one line each. Unlike
 * other lists it may be empty ("transient: []" turns the defaults off);
 * one string stands for a list of one. */
static int get_patterns(struct loader *L, const yaml_node_t *node,
			const char *path, char ***out, size_t *nout)
{
	char ipath[PATH_LEN];
	size_t i;

	if (node->type == YAML_SEQUENCE_NODE &&
	    node->data.sequence.items.top == node->data.sequence.items.start) {
		*out = xcalloc(1, sizeof(**out));
		*nout = 0;
		return 0;
	}
	if (get_string_list(L, node, path, 1, LIST_ANY, out, nout) < 0)
		return -1;
	if (*nout > POLICY_MAX_PATTERNS)
		return fail(L, node, path, "more than %d patterns",
			    POLICY_MAX_PATTERNS);
	for (i = 0; i < *nout; i++) {
		const yaml_node_t *item = node;

		if (node->type == YAML_SEQUENCE_NODE) {
			item = node_at(L, node->data.sequence.items.start[i]);
			path_index(ipath, sizeof(ipath), path, i);
		} else {
			snprintf(ipath, sizeof(ipath), "%s", path);
		}
		if (strlen((*out)[i]) > POLICY_MAX_PATTERN)
			return fail(L, item, ipath, "longer than %d bytes",
				    POLICY_MAX_PATTERN);
		if (strpbrk((*out)[i], "\r\n") != NULL)
			return fail(L, item, ipath,
				    "must not contain a newline (a pattern "
				    "is one line)");
	}
	return 0;
}

static int load_retry(struct loader *L, const yaml_node_t *node,
		      struct retry_conf *r)
{
	const yaml_node_pair_t *p;
	const yaml_node_t *cap_key = NULL;
	char path[PATH_LEN];

	if (check_mapping(L, node, "retry") < 0)
		return -1;
	for (p = node->data.mapping.pairs.start;
	     p < node->data.mapping.pairs.top; p++) {
		const yaml_node_t *k = node_at(L, p->key);
		const yaml_node_t *v = node_at(L, p->value);
		const char *key = (const char *)k->data.scalar.value;
		unsigned u;
		int rc;

		path_key(path, sizeof(path), "retry", key);
		if (strcmp(key, "max_attempts") == 0) {
			rc = get_uint(L, v, path, 1, POLICY_ATTEMPTS_LIMIT, &u);
			if (rc == 0)
				r->max_attempts = (int)u;
		} else if (strcmp(key, "transient") == 0) {
			rc = get_patterns(L, v, path, &r->transient,
					  &r->ntransient);
			r->has_transient = rc == 0;
		} else if (strcmp(key, "transient_extra") == 0) {
			rc = get_patterns(L, v, path, &r->transient_extra,
					  &r->ntransient_extra);
		} else if (strcmp(key, "backoff_base") == 0) {
			rc = get_millis(L, v, path, &r->backoff_base_ms);
		} else if (strcmp(key, "backoff_cap") == 0) {
			cap_key = v;
			rc = get_millis(L, v, path, &r->backoff_cap_ms);
		} else {
			static const char *const known[] = {
			    "max_attempts", "transient",   "transient_extra",
			    "backoff_base", "backoff_cap", NULL};

			rc = fail_unknown(L, k, path, known, NULL);
		}
		if (rc < 0)
			return -1;
	}
	if (r->backoff_base_ms >= 0 && r->backoff_cap_ms >= 0 &&
	    r->backoff_cap_ms < r->backoff_base_ms)
		return fail(L, cap_key, "retry.backoff_cap",
			    "%ldms is less than retry.backoff_base (%ldms)",
			    r->backoff_cap_ms, r->backoff_base_ms);
	return 0;
}

/* ---- preflight --------------------------------------------------------- */

static void preflight_release(struct preflight_conf *pf)
{
	free(pf->name);
	free(pf->target);
	free(pf->status);
	memset(pf, 0, sizeof(*pf));
}

/* One HTTP status, 100-599. */
static int get_status(struct loader *L, const yaml_node_t *node,
		      const char *path, int *out)
{
	unsigned u;

	if (get_uint(L, node, path, 100, 599, &u) < 0)
		return -1;
	*out = (int)u;
	return 0;
}

/* status: one integer or a non-empty list of them. */
static int get_statuses(struct loader *L, const yaml_node_t *node,
			const char *path, struct preflight_conf *pf)
{
	const yaml_node_item_t *it;
	char ipath[PATH_LEN];
	size_t n;

	if (node->type != YAML_SEQUENCE_NODE) {
		pf->status = xcalloc(1, sizeof(*pf->status));
		if (get_status(L, node, path, &pf->status[0]) < 0)
			return -1;
		pf->nstatus = 1;
		return 0;
	}
	n = (size_t)(node->data.sequence.items.top -
		     node->data.sequence.items.start);
	if (spend(L, node, path, n + 1) < 0)
		return -1;
	if (n == 0)
		return fail(L, node, path,
			    "must not be empty (leave it out to accept any "
			    "2xx)");
	if (n > CONFIG_MAX_STATUSES)
		return fail(L, node, path, "more than %u statuses",
			    CONFIG_MAX_STATUSES);
	pf->status = xcalloc(n, sizeof(*pf->status));
	for (it = node->data.sequence.items.start;
	     it < node->data.sequence.items.top; it++) {
		const yaml_node_t *v = node_at(L, *it);

		path_index(ipath, sizeof(ipath), path, pf->nstatus);
		if (v == NULL)
			return fail(L, node, path, "malformed list");
		if (get_status(L, v, ipath, &pf->status[pf->nstatus]) < 0)
			return -1;
		pf->nstatus++;
	}
	return 0;
}

/* "host:port" or "[v6]:port", port 1-65535. */
static int check_hostport(const char *s)
{
	const char *colon = strrchr(s, ':');
	unsigned long long port;
	size_t hlen;

	if (colon == NULL || colon == s)
		return -1;
	if (parse_uint(colon + 1, strlen(colon + 1), 65535, &port) < 0 ||
	    port == 0)
		return -1;
	hlen = (size_t)(colon - s);
	if (s[0] == '[')
		return hlen > 2 && s[hlen - 1] == ']' ? 0 : -1;
	/* A bare IPv6 address needs brackets to carry a port. */
	return memchr(s, ':', hlen) == NULL ? 0 : -1;
}

static int get_target(struct loader *L, const yaml_node_t *node,
		      const char *path, enum preflight_kind kind, char **out)
{
	char q[QUOTE_MAX * 4 + 8], msg[256];
	struct redis_url u;
	char *s;
	int ok = 1;

	if (get_string(L, node, path, 0, &s) < 0)
		return -1;
	quote(q, sizeof(q), s, strlen(s));
	if (strlen(s) > 4096 || strpbrk(s, " \t\r\n") != NULL) {
		free(s);
		return fail(L, node, path, "invalid value %s", q);
	}
	switch (kind) {
	case PREFLIGHT_HTTP:
		ok = (strncmp(s, "http://", 7) == 0 && s[7] != '\0') ||
		     (strncmp(s, "https://", 8) == 0 && s[8] != '\0');
		if (!ok) {
			free(s);
			return fail(L, node, path,
				    "expected an http:// or https:// URL, "
				    "got %s",
				    q);
		}
		break;
	case PREFLIGHT_TCP:
		if (check_hostport(s) < 0) {
			free(s);
			return fail(L, node, path,
				    "expected HOST:PORT (port 1-65535, IPv6 "
				    "in brackets), got %s",
				    q);
		}
		break;
	case PREFLIGHT_REDIS:
		if (redis_url_parse(s, &u, msg, sizeof(msg)) < 0) {
			free(s);
			return fail(L, node, path, "%s", msg);
		}
		redis_url_release(&u);
		break;
	}
	*out = s;
	return 0;
}

static int load_preflight_one(struct loader *L, const yaml_node_t *node,
			      const char *path, struct preflight_conf *pf,
			      const yaml_node_t **name_node)
{
	static const char *const kinds[] = {
	    [PREFLIGHT_HTTP] = "http",
	    [PREFLIGHT_TCP] = "tcp",
	    [PREFLIGHT_REDIS] = "redis",
	};
	const yaml_node_pair_t *p;
	const yaml_node_t *target = NULL, *status = NULL;
	char kpath[PATH_LEN];
	int kind;

	if (check_mapping(L, node, path) < 0)
		return -1;
	for (p = node->data.mapping.pairs.start;
	     p < node->data.mapping.pairs.top; p++) {
		const yaml_node_t *k = node_at(L, p->key);
		const yaml_node_t *v = node_at(L, p->value);
		const char *key = (const char *)k->data.scalar.value;
		int rc = 0;

		path_key(kpath, sizeof(kpath), path, key);
		for (kind = PREFLIGHT_HTTP; kind <= PREFLIGHT_REDIS; kind++)
			if (strcmp(key, kinds[kind]) == 0)
				break;
		if (kind <= PREFLIGHT_REDIS) {
			if (target != NULL) {
				rc = fail(L, k, kpath,
					  "only one of http, tcp, redis per "
					  "check (already has %s)",
					  kinds[pf->kind]);
			} else {
				pf->kind = (enum preflight_kind)kind;
				target = v;
			}
		} else if (strcmp(key, "name") == 0) {
			*name_node = v;
			rc = get_name(L, v, kpath, NULL, &pf->name);
		} else if (strcmp(key, "status") == 0) {
			status = v;
		} else if (strcmp(key, "timeout") == 0) {
			rc = get_millis(L, v, kpath, &pf->timeout_ms);
			if (rc == 0 && pf->timeout_ms == 0)
				rc = fail(L, v, kpath, "must be more than 0");
		} else {
			static const char *const known[] = {
			    "name",   "http",	 "tcp", "redis",
			    "status", "timeout", NULL};

			rc = fail_unknown(L, k, kpath, known,
					  "a check is one of http, tcp, redis");
		}
		if (rc < 0)
			return -1;
	}
	if (pf->name == NULL) {
		path_key(kpath, sizeof(kpath), path, "name");
		return fail(L, node, kpath, "missing");
	}
	if (target == NULL)
		return fail(L, node, path,
			    "missing the check: one of http, tcp, redis");
	path_key(kpath, sizeof(kpath), path, kinds[pf->kind]);
	if (get_target(L, target, kpath, pf->kind, &pf->target) < 0)
		return -1;
	if (status != NULL) {
		path_key(kpath, sizeof(kpath), path, "status");
		if (pf->kind != PREFLIGHT_HTTP)
			return fail(L, status, kpath,
				    "only for http checks");
		if (get_statuses(L, status, kpath, pf) < 0)
			return -1;
	}
	return 0;
}

static int load_preflight(struct loader *L, const yaml_node_t *node,
			  struct config *c)
{
	const yaml_node_item_t *it;
	char path[PATH_LEN];
	size_t n, i;

	if (node->type != YAML_SEQUENCE_NODE)
		return fail_type(L, node, "preflight", "a list of checks");
	n = (size_t)(node->data.sequence.items.top -
		     node->data.sequence.items.start);
	if (spend(L, node, "preflight", n + 1) < 0)
		return -1;
	if (n > CONFIG_MAX_PREFLIGHT)
		return fail(L, node, "preflight", "more than %u checks",
			    CONFIG_MAX_PREFLIGHT);
	c->preflight = xcalloc(n ? n : 1, sizeof(*c->preflight));
	for (it = node->data.sequence.items.start;
	     it < node->data.sequence.items.top; it++) {
		const yaml_node_t *v = node_at(L, *it), *name_node = NULL;
		size_t no = c->npreflight;
		struct preflight_conf *pf = &c->preflight[no];

		path_index(path, sizeof(path), "preflight", no);
		c->npreflight++;
		pf->timeout_ms = CONFIG_PREFLIGHT_TIMEOUT_MS;
		if (v == NULL)
			return fail(L, node, path, "malformed list");
		if (load_preflight_one(L, v, path, pf, &name_node) < 0)
			return -1;
		/* At most CONFIG_MAX_PREFLIGHT, so quadratic is fine. */
		for (i = 0; i < no; i++) {
			if (strcmp(c->preflight[i].name, pf->name) == 0) {
				char kpath[PATH_LEN], q[QUOTE_MAX * 4 + 8];

				path_key(kpath, sizeof(kpath), path, "name");
				quote(q, sizeof(q), pf->name, strlen(pf->name));
				return fail(L, name_node, kpath,
					    "duplicate check name %s", q);
			}
		}
	}
	return 0;
}

static int load_root(struct loader *L, const yaml_node_t *root,
		     struct config *c)
{
	const yaml_node_pair_t *p;
	const yaml_node_t *defaults = NULL, *suites = NULL, *phases = NULL;
	const yaml_node_t *retry = NULL, *preflight = NULL;
	size_t i;

	if (root->type != YAML_MAPPING_NODE)
		return fail_type(L, root, "(top level)",
				 "a mapping with \"suites\"");
	if (check_mapping(L, root, "(top level)") < 0)
		return -1;
	for (p = root->data.mapping.pairs.start;
	     p < root->data.mapping.pairs.top; p++) {
		const yaml_node_t *k = node_at(L, p->key);
		const yaml_node_t *v = node_at(L, p->value);
		const char *key = (const char *)k->data.scalar.value;

		if (strcmp(key, "defaults") == 0) {
			defaults = v;
		} else if (strcmp(key, "suites") == 0) {
			suites = v;
		} else if (strcmp(key, "phases") == 0) {
			phases = v;
		} else if (strcmp(key, "retry") == 0) {
			retry = v;
		} else if (strcmp(key, "preflight") == 0) {
			preflight = v;
		} else {
			char path[PATH_LEN];

			static const char *const known[] = {
			    "defaults", "suites",    "phases",
			    "retry",	"preflight", NULL};

			path_key(path, sizeof(path), NULL, key);
			return fail_unknown(L, k, path, known,
					    "the top level has defaults, "
					    "suites, phases, retry, "
					    "preflight");
		}
	}
	c->retries = 0;
	c->retry.max_attempts = -1;
	c->retry.backoff_base_ms = -1;
	c->retry.backoff_cap_ms = -1;
	if (defaults != NULL && load_defaults(L, defaults, c) < 0)
		return -1;
	if (retry != NULL && load_retry(L, retry, &c->retry) < 0)
		return -1;
	if (suites == NULL)
		return fail(L, root, "suites",
			    "missing (at least one suite is needed)");
	if (load_suites(L, suites, c) < 0)
		return -1;
	if (phases != NULL) {
		if (load_phases(L, phases, c) < 0)
			return -1;
	} else {
		c->phases = xcalloc(1, sizeof(*c->phases));
		c->nphases = 1;
		c->phases[0].name = xstrdup("default");
		c->phases[0].required = 1;
		c->phases[0].parallel = 1;
		c->phases[0].suites = xcalloc(c->nsuites, sizeof(char *));
		for (i = 0; i < c->nsuites; i++)
			c->phases[0].suites[i] = xstrdup(c->suites[i].name);
		c->phases[0].nsuites = c->nsuites;
	}
	if (preflight != NULL && load_preflight(L, preflight, c) < 0)
		return -1;
	if (c->prefix == NULL)
		c->prefix = xstrdup(KEYS_DEFAULT_PREFIX);
	if (c->shard == NULL)
		c->shard = xstrdup("auto");
	if (c->queue == NULL)
		c->queue = xstrdup("default");
	return 0;
}

/* ---- entry points ------------------------------------------------------ */

/* Where the event parse is, as a key path, so a syntax error can name the
 * key it is in: one frame per open mapping or list. */
struct ev_frame {
	size_t len; /* length of the path of the container itself */
	int is_map;
	int want_key; /* mapping: the next node is a key */
	size_t index; /* list: the index of the next item */
};

struct ev_path {
	struct ev_frame frames[CONFIG_MAX_DEPTH + 2];
	int depth;
	char path[PATH_LEN];
};

/* The path cut back to the first len bytes, then (when key is not NULL)
 * with key appended, or (when key is NULL and index is not -1) [index]. */
static void ev_set(struct ev_path *p, size_t len, const char *key, size_t index,
		   int has_index)
{
	char parent[PATH_LEN];

	memcpy(parent, p->path, len);
	parent[len] = '\0';
	if (key != NULL)
		path_key(p->path, sizeof(p->path), parent, key);
	else if (has_index)
		path_index(p->path, sizeof(p->path), parent, index);
	else
		snprintf(p->path, sizeof(p->path), "%s", parent);
}

/* A node (scalar, alias, mapping or list) starts. */
static void ev_node_begin(struct ev_path *p)
{
	struct ev_frame *f;

	if (p->depth == 0)
		return;
	f = &p->frames[p->depth - 1];
	if (!f->is_map)
		ev_set(p, f->len, NULL, f->index++, 1);
	else if (f->want_key)
		ev_set(p, f->len, NULL, 0, 0);
}

/* A node ended; key is its text when it is a scalar. */
static void ev_node_end(struct ev_path *p, const char *key)
{
	struct ev_frame *f;

	if (p->depth == 0)
		return;
	f = &p->frames[p->depth - 1];
	if (!f->is_map)
		return;
	if (f->want_key && key != NULL)
		ev_set(p, f->len, key, 0, 0);
	f->want_key = !f->want_key;
}

static void ev_push(struct ev_path *p, int is_map)
{
	struct ev_frame *f;

	if (p->depth >= (int)(sizeof(p->frames) / sizeof(p->frames[0])))
		return; /* deeper than allowed: reported by the caller */
	f = &p->frames[p->depth++];
	memset(f, 0, sizeof(*f));
	f->len = strlen(p->path);
	f->is_map = is_map;
	f->want_key = 1;
}

static void ev_pop(struct ev_path *p)
{
	if (p->depth == 0)
		return;
	p->depth--;
	ev_set(p, p->frames[p->depth].len, NULL, 0, 0);
	ev_node_end(p, NULL);
}

/* The key a syntax error is in: the key whose value is being read, else
 * the mapping or list being read ("" at the top). */
static const char *ev_where(struct ev_path *p)
{
	const struct ev_frame *f;

	if (p->depth == 0)
		return p->path;
	f = &p->frames[p->depth - 1];
	if (!f->is_map || f->want_key)
		ev_set(p, f->len, NULL, 0, 0);
	return p->path;
}

/* Whether the problem libyaml found is a tab: at its place, or in the
 * indentation it stopped in (libyaml words that "found character that
 * cannot start any token" and the like). Columns count characters. */
static int yaml_problem_is_tab(const yaml_parser_t *parser, const char *data,
			       size_t len)
{
	size_t i = 0, line = 0, col = 0;
	int tab_in_indent = 0;

	while (i < len && line < parser->problem_mark.line) {
		if (data[i] == '\n')
			line++;
		i++;
	}
	for (; i < len && (data[i] == ' ' || data[i] == '\t'); i++, col++) {
		tab_in_indent |= data[i] == '\t';
		if (col == parser->problem_mark.column && data[i] == '\t')
			return 1;
	}
	if (parser->problem_mark.column <= col)
		return tab_in_indent;
	for (; i < len && data[i] != '\n'; i++) {
		if (((unsigned char)data[i] & 0xC0) == 0x80)
			continue;
		if (col == parser->problem_mark.column)
			return data[i] == '\t';
		col++;
	}
	return 0;
}

/* Records a libyaml error as "FILE:LINE: [KEY.PATH: ]yaml: problem". */
static void yaml_fail(struct loader *L, const yaml_parser_t *parser,
		      const char *data, size_t len, const char *where)
{
	const char *problem =
	    parser->problem != NULL ? parser->problem : "cannot parse";
	size_t line;

	if (parser->error == YAML_READER_ERROR) {
		size_t i, end = parser->problem_offset < len
				    ? parser->problem_offset
				    : len;

		line = 1;
		for (i = 0; i < end; i++)
			if (data[i] == '\n')
				line++;
	} else {
		line = parser->problem_mark.line + 1;
		if (parser->error == YAML_SCANNER_ERROR &&
		    yaml_problem_is_tab(parser, data, len))
			problem = "a tab character where YAML allows only "
				  "spaces (indent with spaces)";
	}
	L->failed = 1;
	if (L->err == NULL || L->errlen == 0)
		return;
	if (where != NULL && where[0] != '\0')
		snprintf(L->err, L->errlen, "%s:%zu: %s: yaml: %s", L->name,
			 line, where, problem);
	else
		snprintf(L->err, L->errlen, "%s:%zu: yaml: %s", L->name, line,
			 problem);
}

/* Parses the events once to refuse what would make yaml_parser_load slow:
 * libyaml's scanner rechecks every open flow level on each token, so
 * "[[[[..." costs depth squared, and its loader keeps anchors in a list
 * searched on every anchor and alias. Capping depth and anchors keeps the
 * whole load linear. Syntax errors are reported here as well. */
static int check_events(struct loader *L, const char *data, size_t len)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	struct ev_path *where = xcalloc(1, sizeof(*where));
	int depth = 0, rc = -1, done = 0;
	size_t anchors = 0;

	if (!yaml_parser_initialize(&parser)) {
		L->failed = 1;
		if (L->err != NULL && L->errlen > 0)
			snprintf(L->err, L->errlen, "%s: yaml: out of memory",
				 L->name);
		free(where);
		return -1;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
	while (!done) {
		if (!yaml_parser_parse(&parser, &ev)) {
			yaml_fail(L, &parser, data, len, ev_where(where));
			goto out;
		}
		switch (ev.type) {
		case YAML_MAPPING_START_EVENT:
			depth++;
			anchors += ev.data.mapping_start.anchor != NULL;
			ev_node_begin(where);
			ev_push(where, 1);
			break;
		case YAML_SEQUENCE_START_EVENT:
			depth++;
			anchors += ev.data.sequence_start.anchor != NULL;
			ev_node_begin(where);
			ev_push(where, 0);
			break;
		case YAML_SCALAR_EVENT:
			anchors += ev.data.scalar.anchor != NULL;
			ev_node_begin(where);
			ev_node_end(where, (const char *)ev.data.scalar.value);
			break;
		case YAML_ALIAS_EVENT:
			ev_node_begin(where);
			ev_node_end(where, NULL);
			break;
		case YAML_MAPPING_END_EVENT:
		case YAML_SEQUENCE_END_EVENT:
			depth--;
			ev_pop(where);
			break;
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		default:
			break;
		}
		if (depth > CONFIG_MAX_DEPTH) {
			L->failed = 1;
			if (L->err != NULL && L->errlen > 0)
				snprintf(L->err, L->errlen,
					 "%s:%zu: yaml: nested deeper than %d "
					 "levels",
					 L->name, ev.start_mark.line + 1,
					 CONFIG_MAX_DEPTH);
			yaml_event_delete(&ev);
			goto out;
		}
		if (anchors > CONFIG_MAX_ANCHORS) {
			L->failed = 1;
			if (L->err != NULL && L->errlen > 0)
				snprintf(L->err, L->errlen,
					 "%s:%zu: yaml: more than %d anchors",
					 L->name, ev.start_mark.line + 1,
					 CONFIG_MAX_ANCHORS);
			yaml_event_delete(&ev);
			goto out;
		}
		yaml_event_delete(&ev);
	}
	rc = 0;
out:
	yaml_parser_delete(&parser);
	free(where);
	return rc;
}

int config_load_buffer(const char *name, const char *data, size_t len,
		       struct config *out, char *err, size_t errlen)
{
	yaml_parser_t parser;
	yaml_document_t doc, extra;
	int have_doc = 0, rc = -1;
	struct loader L;
	const yaml_node_t *root;

	memset(out, 0, sizeof(*out));
	memset(&L, 0, sizeof(L));
	L.name = name;
	L.doc = &doc;
	L.err = err;
	L.errlen = errlen;
	L.visits = CONFIG_MAX_VISITS;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (len > CONFIG_MAX_BYTES) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen,
				 "%s: file is %zu bytes, larger than the %u "
				 "allowed",
				 name, len, CONFIG_MAX_BYTES);
		return -1;
	}
	if (check_events(&L, data, len) < 0)
		return -1;
	if (!yaml_parser_initialize(&parser)) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s: yaml: out of memory", name);
		return -1;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
	if (!yaml_parser_load(&parser, &doc)) {
		yaml_fail(&L, &parser, data, len, NULL);
		goto out;
	}
	have_doc = 1;
	root = yaml_document_get_root_node(&doc);
	if (root == NULL || is_null(root)) {
		fail(&L, root, "suites",
		     "missing (the file is empty; at least one suite is "
		     "needed)");
		goto out;
	}
	if (!yaml_parser_load(&parser, &extra)) {
		yaml_fail(&L, &parser, data, len, NULL);
		goto out;
	}
	if (yaml_document_get_root_node(&extra) != NULL) {
		const yaml_node_t *r = yaml_document_get_root_node(&extra);

		L.failed = 1;
		if (err != NULL && errlen > 0)
			snprintf(err, errlen,
				 "%s:%zu: yaml: only one document is allowed",
				 name, node_line(r));
		yaml_document_delete(&extra);
		goto out;
	}
	yaml_document_delete(&extra);
	out->path = xstrdup(name);
	if (load_root(&L, root, out) < 0)
		goto out;
	rc = 0;
out:
	if (have_doc)
		yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	if (rc < 0)
		config_release(out);
	return rc;
}

int config_load_file(const char *path, struct config *out, char *err,
		     size_t errlen)
{
	struct buf b;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	buf_init(&b, CONFIG_MAX_BYTES);
	if (buf_read_file(&b, path, err, errlen) == 0)
		rc = config_load_buffer(path, b.data != NULL ? b.data : "",
					b.len, out, err, errlen);
	buf_release(&b);
	return rc;
}

void config_release(struct config *c)
{
	size_t i;

	if (c == NULL)
		return;
	free(c->path);
	free(c->redis);
	free(c->prefix);
	free(c->shard);
	free(c->queue);
	for (i = 0; i < c->nsuites; i++)
		suite_release(&c->suites[i]);
	free(c->suites);
	for (i = 0; i < c->nphases; i++)
		phase_release(&c->phases[i]);
	free(c->phases);
	strv_free(c->retry.transient, c->retry.ntransient);
	strv_free(c->retry.transient_extra, c->retry.ntransient_extra);
	for (i = 0; i < c->npreflight; i++)
		preflight_release(&c->preflight[i]);
	free(c->preflight);
	strv_free(c->exclude, c->nexclude);
	memset(c, 0, sizeof(*c));
}

const struct suite_conf *config_suite(const struct config *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->nsuites; i++)
		if (c->suites[i].name != NULL &&
		    strcmp(c->suites[i].name, name) == 0)
			return &c->suites[i];
	return NULL;
}

char *const *config_suite_exclude(const struct config *c,
				  const struct suite_conf *s, size_t *n)
{
	if (s != NULL && s->has_exclude) {
		*n = s->nexclude;
		return s->exclude;
	}
	*n = c->nexclude;
	return c->exclude;
}

const struct phase_conf *config_phase(const struct config *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->nphases; i++)
		if (c->phases[i].name != NULL &&
		    strcmp(c->phases[i].name, name) == 0)
			return &c->phases[i];
	return NULL;
}
