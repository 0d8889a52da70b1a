/* junit.c -- reading JUnit XML (see junit.h).
 *
 * libxml2 parses with no network, no entity substitution and no DTD
 * loading. A document with a DOCTYPE at all is refused, and refused early:
 * the parser is stopped from the internalSubset callback, before any
 * entity declaration is read, so neither billion laughs nor XXE gets a
 * chance to run. The first error libxml2 reports becomes the message.
 *
 * pytest writes a failed test whose teardown also failed as two adjacent
 * <testcase> elements with the same classname and name (one <failure>, one
 * <error>); adjacent twins are merged into one case, the worse outcome
 * winning, so each test has exactly one outcome.
 *
 * Built with -DJUNIT_DLOPEN (the worker's copy, see the Makefile), the
 * file does not link libxml2: it loads libxml2.so.2 with dlopen the first
 * time a document is parsed and calls the functions below through a table
 * filled by dlsym, under their usual names (the macros after the table).
 * A worker reads JUnit XML only from runners that sent no per-test
 * events, so an idle one maps neither libxml2 nor the ICU and libstdc++
 * it pulls in (1.9 MiB of an idle worker's 4.5). The table is process
 * state by nature, filled once (pthread_once) and never unloaded; a host
 * without libxml2 gets junit_load's one-line error for every document,
 * not a crash. Without the flag, junit_load is a no-op and libxml2 is
 * linked as usual (the producer, the unit tests, the fuzz target). */
#include "junit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/SAX2.h>
#include <libxml/parserInternals.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include "buf.h"
#include "xmalloc.h"

#ifdef JUNIT_DLOPEN
#include <dlfcn.h>
#include <pthread.h>

#define JUNIT_LIBXML2 "libxml2.so.2"

/* The libxml2 functions this file calls, with the types its headers give
 * them. */
struct libxml {
	__typeof__(&xmlSAX2GetLineNumber) SAX2GetLineNumber;
	__typeof__(&xmlStopParser) StopParser;
	__typeof__(&xmlGetProp) GetProp;
	__typeof__(&xmlNodeGetContent) NodeGetContent;
	__typeof__(&xmlInitParser) InitParser;
	__typeof__(&xmlSetGenericErrorFunc) SetGenericErrorFunc;
	__typeof__(&xmlCreateMemoryParserCtxt) CreateMemoryParserCtxt;
	__typeof__(&xmlCtxtUseOptions) CtxtUseOptions;
	__typeof__(&xmlParseDocument) ParseDocument;
	__typeof__(&xmlDocGetRootElement) DocGetRootElement;
	__typeof__(&xmlFreeDoc) FreeDoc;
	__typeof__(&xmlFreeParserCtxt) FreeParserCtxt;
#ifdef LIBXML_THREAD_ALLOC_ENABLED
	__typeof__(&__xmlFree) Free_; /* returns xmlFree's address */
#else
	xmlFreeFunc *Free_; /* the address of the variable xmlFree */
#endif
};

static const struct {
	const char *name;
	size_t off;
} libxml_syms[] = {
    {"xmlSAX2GetLineNumber", offsetof(struct libxml, SAX2GetLineNumber)},
    {"xmlStopParser", offsetof(struct libxml, StopParser)},
    {"xmlGetProp", offsetof(struct libxml, GetProp)},
    {"xmlNodeGetContent", offsetof(struct libxml, NodeGetContent)},
    {"xmlInitParser", offsetof(struct libxml, InitParser)},
    {"xmlSetGenericErrorFunc", offsetof(struct libxml, SetGenericErrorFunc)},
    {"xmlCreateMemoryParserCtxt",
     offsetof(struct libxml, CreateMemoryParserCtxt)},
    {"xmlCtxtUseOptions", offsetof(struct libxml, CtxtUseOptions)},
    {"xmlParseDocument", offsetof(struct libxml, ParseDocument)},
    {"xmlDocGetRootElement", offsetof(struct libxml, DocGetRootElement)},
    {"xmlFreeDoc", offsetof(struct libxml, FreeDoc)},
    {"xmlFreeParserCtxt", offsetof(struct libxml, FreeParserCtxt)},
#ifdef LIBXML_THREAD_ALLOC_ENABLED
    {"__xmlFree", offsetof(struct libxml, Free_)},
#else
    {"xmlFree", offsetof(struct libxml, Free_)},
#endif
};

static struct libxml libxml;
static int libxml_ok;
static char libxml_why[512]; /* when not ok */
static pthread_once_t libxml_once = PTHREAD_ONCE_INIT;

_Static_assert(sizeof(void *) == sizeof(libxml.GetProp),
	       "dlsym results are stored as function pointers");

static void libxml_open(void)
{
	const char *why;
	void *h, *p;
	size_t i;

	h = dlopen(JUNIT_LIBXML2, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		why = dlerror();
		snprintf(libxml_why, sizeof(libxml_why), "%s",
			 why != NULL ? why : "dlopen failed");
		return;
	}
	for (i = 0; i < sizeof(libxml_syms) / sizeof(libxml_syms[0]); i++) {
		p = dlsym(h, libxml_syms[i].name);
		if (p == NULL) {
			snprintf(libxml_why, sizeof(libxml_why), "%s has no %s",
				 JUNIT_LIBXML2, libxml_syms[i].name);
			return; /* the handle stays: unloading buys nothing */
		}
		memcpy((char *)&libxml + libxml_syms[i].off, &p, sizeof(p));
	}
	libxml_ok = 1;
}

/* From here on, the names call through the table. */
#define xmlSAX2GetLineNumber (*libxml.SAX2GetLineNumber)
#define xmlStopParser (*libxml.StopParser)
#define xmlGetProp (*libxml.GetProp)
#define xmlNodeGetContent (*libxml.NodeGetContent)
#define xmlInitParser (*libxml.InitParser)
#define xmlSetGenericErrorFunc (*libxml.SetGenericErrorFunc)
#define xmlCreateMemoryParserCtxt (*libxml.CreateMemoryParserCtxt)
#define xmlCtxtUseOptions (*libxml.CtxtUseOptions)
#define xmlParseDocument (*libxml.ParseDocument)
#define xmlDocGetRootElement (*libxml.DocGetRootElement)
#define xmlFreeDoc (*libxml.FreeDoc)
#define xmlFreeParserCtxt (*libxml.FreeParserCtxt)
#undef xmlFree
#ifdef LIBXML_THREAD_ALLOC_ENABLED
#define xmlFree (*(*libxml.Free_)())
#else
#define xmlFree (*libxml.Free_)
#endif
#endif /* JUNIT_DLOPEN */

#define JUNIT_MAX_TEXT (64u << 10) /* message and details, per case */
#define JUNIT_MAX_DEPTH 512	   /* nested testsuites (libxml2 caps 256) */
#define JUNIT_MAX_ATTRS 100	   /* attributes on one element */

/* What the SAX hooks saw, reached through ctxt->_private. */
struct parse_state {
	int saw_doctype;
	int doctype_line;
	int have_error;
	int error_line;
	char error[256];
};

struct collector {
	struct junit_case *cases;
	size_t n;
	size_t cap;
	const xmlNode *last_parent; /* suite of cases[n - 1], for merging */
	char *err;
	size_t errlen;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- pre-scan ---------------------------------------------------------- */

/* Skips from s + i past the first occurrence of end; len when absent. */
static size_t skip_past(const char *s, size_t len, size_t i, const char *end)
{
	size_t elen = strlen(end);
	const char *p = memmem(s + i, len - i, end, elen);

	return p != NULL ? (size_t)(p - s) + elen : len;
}

static int starts_with(const char *s, size_t len, size_t i, const char *pre)
{
	size_t n = strlen(pre);

	return len - i >= n && memcmp(s + i, pre, n) == 0;
}

/* libxml2 2.9 checks each attribute of an element against all the others,
 * so one tag with 100000 attributes costs minutes. Before parsing, count
 * the '=' outside quotes in every tag (skipping comments, CDATA, PIs and
 * declarations) and refuse a tag with too many. Linear; returns the byte
 * offset of the offending tag, or len when all is well. The count is only
 * a bound: a false alarm needs JUNIT_MAX_ATTRS stray '=' in one tag. */
static size_t find_attr_bomb(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		const char *lt = memchr(s + i, '<', len - i);
		size_t j, count = 0;
		char quote = 0;

		if (lt == NULL)
			break;
		i = (size_t)(lt - s);
		if (starts_with(s, len, i, "<!--")) {
			i = skip_past(s, len, i + 4, "-->");
			continue;
		}
		if (starts_with(s, len, i, "<![CDATA[")) {
			i = skip_past(s, len, i + 9, "]]>");
			continue;
		}
		if (starts_with(s, len, i, "<?")) {
			i = skip_past(s, len, i + 2, "?>");
			continue;
		}
		if (starts_with(s, len, i, "<!")) {
			i = skip_past(s, len, i + 2, ">");
			continue;
		}
		for (j = i + 1; j < len; j++) {
			char ch = s[j];

			if (quote != 0) {
				if (ch == quote)
					quote = 0;
			} else if (ch == '"' || ch == '\'') {
				quote = ch;
			} else if (ch == '=') {
				if (++count > JUNIT_MAX_ATTRS)
					return i;
			} else if (ch == '>') {
				break;
			}
		}
		i = j + 1;
	}
	return len;
}

static int line_at(const char *s, size_t off)
{
	size_t i;
	int line = 1;

	for (i = 0; i < off; i++)
		if (s[i] == '\n' && line < INT_MAX)
			line++;
	return line;
}

/* ---- parser hooks ------------------------------------------------------ */

static void stop_at_doctype(void *ctx, const xmlChar *name,
			    const xmlChar *external_id,
			    const xmlChar *system_id)
{
	xmlParserCtxtPtr ctxt = ctx;
	struct parse_state *st = ctxt->_private;

	(void)name;
	(void)external_id;
	(void)system_id;
	if (!st->saw_doctype) {
		st->saw_doctype = 1;
		st->doctype_line = xmlSAX2GetLineNumber(ctx);
	}
	xmlStopParser(ctxt);
}

static void stop_at_entity(void *ctx, const xmlChar *name, int type,
			   const xmlChar *public_id, const xmlChar *system_id,
			   xmlChar *content)
{
	(void)type;
	(void)content;
	stop_at_doctype(ctx, name, public_id, system_id);
}

/* Keeps the first error, on one line. */
static void keep_first_error(void *ctx, xmlErrorPtr e)
{
	xmlParserCtxtPtr ctxt = ctx;
	struct parse_state *st = ctxt->_private;
	size_t i;

	if (st->have_error || e == NULL || e->level == XML_ERR_WARNING)
		return;
	st->have_error = 1;
	st->error_line = e->line;
	snprintf(st->error, sizeof(st->error), "%s",
		 e->message != NULL ? e->message : "parse error");
	for (i = 0; st->error[i] != '\0'; i++)
		if (st->error[i] == '\n' || st->error[i] == '\r')
			st->error[i] = ' ';
	while (i > 0 && st->error[i - 1] == ' ')
		st->error[--i] = '\0';
}

/* ---- values ------------------------------------------------------------ */

/* Copies an xmlChar string to a malloc'd C string of at most max bytes
 * (cut at a UTF-8 boundary, with a note of what was dropped); NULL stays
 * NULL. Frees s. */
static char *take_text(xmlChar *s, size_t max)
{
	char *out;
	size_t len, keep;

	if (s == NULL)
		return NULL;
	len = strlen((const char *)s);
	if (len <= max) {
		out = xstrdup((const char *)s);
	} else {
		keep = max;
		while (keep > 0 && (s[keep] & 0xC0) == 0x80)
			keep--;
		out = xasprintf("%.*s\n[... %zu more bytes not shown]",
				(int)keep, (const char *)s, len - keep);
	}
	xmlFree(s);
	return out;
}

static char *get_attr(const xmlNode *node, const char *name)
{
	return take_text(xmlGetProp(node, (const xmlChar *)name),
			 JUNIT_MAX_TEXT);
}

static const char *skip_space(const char *s)
{
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	return s;
}

/* "time": a finite, non-negative number of seconds; anything else is 0. */
static double parse_time(const char *s)
{
	char *end;
	double v;

	if (s == NULL)
		return 0;
	s = skip_space(s);
	if (*s == '\0')
		return 0;
	errno = 0;
	v = strtod(s, &end);
	if (end == s || *skip_space(end) != '\0' || errno == ERANGE ||
	    !isfinite(v) || v < 0)
		return 0;
	return v;
}

/* "line": decimal digits that fit in 32 bits; anything else is 0. */
static unsigned parse_line(const char *s)
{
	unsigned long v = 0;

	if (s == NULL)
		return 0;
	s = skip_space(s);
	if (*s < '0' || *s > '9')
		return 0;
	for (; *s >= '0' && *s <= '9'; s++) {
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > UINT32_MAX)
			return 0;
	}
	if (*skip_space(s) != '\0')
		return 0;
	return (unsigned)v;
}

static int is_element(const xmlNode *node, const char *name)
{
	return node->type == XML_ELEMENT_NODE &&
	       strcmp((const char *)node->name, name) == 0;
}

/* ---- cases ------------------------------------------------------------- */

static void case_release(struct junit_case *c)
{
	free(c->classname);
	free(c->name);
	free(c->file);
	free(c->message);
	free(c->details);
}

/* How bad an outcome is, for merging twins. */
static int outcome_rank(enum outcome o)
{
	switch (o) {
	case OUTCOME_FAILED:
		return 6;
	case OUTCOME_ERROR:
		return 5;
	case OUTCOME_XPASSED:
		return 4;
	case OUTCOME_PASSED:
		return 3;
	case OUTCOME_XFAILED:
		return 2;
	default:
		return 1;
	}
}

static int same_str(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* Reads one <testcase>: attributes, and the outcome from its failure,
 * error or skipped child (failure wins over error: pytest writes both for
 * a failed test whose teardown failed too). */
static void read_case(const xmlNode *node, struct junit_case *c)
{
	const xmlNode *child, *failure = NULL, *error = NULL, *skipped = NULL;
	const xmlNode *why = NULL;
	char *s;

	memset(c, 0, sizeof(*c));
	c->classname = get_attr(node, "classname");
	c->name = get_attr(node, "name");
	if (c->name == NULL)
		c->name = xstrdup("");
	c->file = get_attr(node, "file");
	s = get_attr(node, "line");
	c->line = parse_line(s);
	free(s);
	s = get_attr(node, "time");
	c->time_s = parse_time(s);
	free(s);

	for (child = node->children; child != NULL; child = child->next) {
		if (failure == NULL && is_element(child, "failure"))
			failure = child;
		else if (error == NULL && is_element(child, "error"))
			error = child;
		else if (skipped == NULL && is_element(child, "skipped"))
			skipped = child;
	}
	c->outcome = OUTCOME_PASSED;
	if (failure != NULL) {
		c->outcome = OUTCOME_FAILED;
		why = failure;
	} else if (error != NULL) {
		c->outcome = OUTCOME_ERROR;
		why = error;
	} else if (skipped != NULL) {
		why = skipped;
		s = get_attr(skipped, "type");
		c->outcome = s != NULL && strcmp(s, "pytest.xfail") == 0
				 ? OUTCOME_XFAILED
				 : OUTCOME_SKIPPED;
		free(s);
	}
	if (why != NULL) {
		c->message = get_attr(why, "message");
		c->details = take_text(xmlNodeGetContent(why), JUNIT_MAX_TEXT);
		if (c->details != NULL && c->details[0] == '\0') {
			free(c->details);
			c->details = NULL;
		}
	}
}

/* Folds twin b (the later element) into a. */
static void merge_case(struct junit_case *a, struct junit_case *b)
{
	a->time_s += b->time_s;
	if (outcome_rank(b->outcome) > outcome_rank(a->outcome)) {
		a->outcome = b->outcome;
		free(a->message);
		free(a->details);
		a->message = b->message;
		a->details = b->details;
		b->message = NULL;
		b->details = NULL;
	}
	if (a->line == 0)
		a->line = b->line;
	case_release(b);
}

static int add_case(struct collector *col, const xmlNode *suite,
		    const xmlNode *node)
{
	struct junit_case c;

	read_case(node, &c);
	if (col->n > 0 && col->last_parent == suite) {
		struct junit_case *prev = &col->cases[col->n - 1];

		if (same_str(prev->classname, c.classname) &&
		    same_str(prev->name, c.name) &&
		    same_str(prev->file, c.file)) {
			merge_case(prev, &c);
			return 0;
		}
	}
	if (col->n >= JUNIT_MAX_CASES) {
		case_release(&c);
		set_err(col->err, col->errlen, "junit: more than %d test cases",
			JUNIT_MAX_CASES);
		return -1;
	}
	if (col->n == col->cap) {
		col->cap = col->cap ? col->cap * 2 : 64;
		col->cases =
		    xreallocarray(col->cases, col->cap, sizeof(*col->cases));
	}
	col->cases[col->n++] = c;
	col->last_parent = suite;
	return 0;
}

/* Collects the testcases of a testsuite or testsuites element, descending
 * into nested suites. */
static int walk_suite(struct collector *col, const xmlNode *suite, int depth)
{
	const xmlNode *child;

	if (depth > JUNIT_MAX_DEPTH) {
		set_err(col->err, col->errlen,
			"junit: test suites nested deeper than %d",
			JUNIT_MAX_DEPTH);
		return -1;
	}
	for (child = suite->children; child != NULL; child = child->next) {
		if (child->type != XML_ELEMENT_NODE)
			continue;
		if (is_element(child, "testcase")) {
			if (add_case(col, suite, child) < 0)
				return -1;
		} else if (is_element(child, "testsuite") ||
			   is_element(child, "testsuites")) {
			if (walk_suite(col, child, depth + 1) < 0)
				return -1;
		}
	}
	return 0;
}

/* ---- entry points ------------------------------------------------------ */

/* name is the file for messages, or NULL for a buffer. */
static void ignore_generic_error(void *ctx, const char *msg, ...)
{
	(void)ctx;
	(void)msg;
}

static int parse_named(const char *name, const char *data, size_t len,
		       struct junit_case **cases, size_t *ncases, char *err,
		       size_t errlen)
{
	xmlParserCtxtPtr ctxt = NULL;
	xmlDocPtr doc = NULL;
	const xmlNode *root;
	struct parse_state st;
	struct collector col;
	char where[PATH_MAX + 16];
	int rc = -1;
	size_t i, bomb;

	*cases = NULL;
	*ncases = 0;
	memset(&st, 0, sizeof(st));
	memset(&col, 0, sizeof(col));
	col.err = err;
	col.errlen = errlen;
	if (name != NULL)
		snprintf(where, sizeof(where), "junit: %s", name);
	else
		snprintf(where, sizeof(where), "junit");
	if (len > JUNIT_MAX_BYTES) {
		set_err(err, errlen,
			"%s: document is %zu bytes, larger than the %u allowed",
			where, len, JUNIT_MAX_BYTES);
		return -1;
	}
	if (len == 0) {
		set_err(err, errlen, "%s: empty document", where);
		return -1;
	}
	bomb = find_attr_bomb(data, len);
	if (bomb < len) {
		set_err(err, errlen,
			"%s: line %d: more than %d attributes on one element",
			where, line_at(data, bomb), JUNIT_MAX_ATTRS);
		return -1;
	}
	if (junit_load(err, errlen) < 0)
		return -1;
	xmlInitParser();
	/* Encoding errors are raised outside the parser context, through the
	 * generic handler, which prints to stderr; this module reports
	 * errors in err instead. */
	xmlSetGenericErrorFunc(NULL, ignore_generic_error);
	ctxt = xmlCreateMemoryParserCtxt(data, (int)len);
	if (ctxt == NULL) {
		set_err(err, errlen, "%s: cannot create an XML parser", where);
		return -1;
	}
	/* No XML_PARSE_NOENT (no substitution), no DTDLOAD/DTDVALID, no
	 * HUGE (keeps libxml2's depth and text-size limits). */
	xmlCtxtUseOptions(ctxt, XML_PARSE_NONET | XML_PARSE_NOERROR |
				    XML_PARSE_NOWARNING);
	ctxt->_private = &st;
	ctxt->sax->internalSubset = stop_at_doctype;
	ctxt->sax->externalSubset = stop_at_doctype;
	ctxt->sax->entityDecl = stop_at_entity;
	ctxt->sax->serror = keep_first_error;
	ctxt->sax->warning = NULL;
	ctxt->sax->error = NULL;
	ctxt->sax->fatalError = NULL;

	xmlParseDocument(ctxt);
	doc = ctxt->myDoc;
	ctxt->myDoc = NULL;
	if (st.saw_doctype || (doc != NULL && (doc->intSubset != NULL ||
					       doc->extSubset != NULL))) {
		set_err(err, errlen,
			"%s: line %d: DOCTYPE is not allowed in JUnit XML "
			"(entity expansion and external entities are refused)",
			where, st.doctype_line);
		goto out;
	}
	if (!ctxt->wellFormed || doc == NULL) {
		if (st.have_error)
			set_err(err, errlen, "%s: line %d: %s", where,
				st.error_line, st.error);
		else
			set_err(err, errlen, "%s: not well-formed XML", where);
		goto out;
	}
	root = xmlDocGetRootElement(doc);
	if (root == NULL) {
		set_err(err, errlen, "%s: no root element", where);
		goto out;
	}
	if (!is_element(root, "testsuites") && !is_element(root, "testsuite")) {
		char q[64];

		snprintf(q, sizeof(q), "%s", (const char *)root->name);
		set_err(err, errlen,
			"%s: root element is <%s>, expected <testsuites> or "
			"<testsuite>",
			where, q);
		goto out;
	}
	if (walk_suite(&col, root, 0) < 0)
		goto out;
	rc = 0;
out:
	if (rc == 0) {
		*cases =
		    col.cases != NULL ? col.cases : xcalloc(1, sizeof(**cases));
		*ncases = col.n;
	} else {
		for (i = 0; i < col.n; i++)
			case_release(&col.cases[i]);
		free(col.cases);
	}
	if (doc != NULL)
		xmlFreeDoc(doc);
	xmlFreeParserCtxt(ctxt);
	return rc;
}

int junit_load(char *err, size_t errlen)
{
#ifdef JUNIT_DLOPEN
	size_t i;

	pthread_once(&libxml_once, libxml_open);
	if (!libxml_ok) {
		set_err(err, errlen,
			"junit: cannot read JUnit XML on this host: %s "
			"(install libxml2)",
			libxml_why);
		/* dlerror's text, on one line. */
		for (i = 0; err != NULL && i < errlen && err[i] != '\0'; i++)
			if (err[i] == '\n' || err[i] == '\r')
				err[i] = ' ';
		return -1;
	}
#else
	(void)err;
	(void)errlen;
#endif
	return 0;
}

int junit_parse(const char *data, size_t len, struct junit_case **cases,
		size_t *ncases, char *err, size_t errlen)
{
	return parse_named(NULL, data, len, cases, ncases, err, errlen);
}

int junit_parse_file(const char *path, struct junit_case **cases,
		     size_t *ncases, char *err, size_t errlen)
{
	char why[512];
	struct buf b;
	int rc = -1;

	*cases = NULL;
	*ncases = 0;
	buf_init(&b, JUNIT_MAX_BYTES);
	if (buf_read_file(&b, path, why, sizeof(why)) < 0)
		set_err(err, errlen, "junit: %s", why);
	else
		rc = parse_named(path, b.data != NULL ? b.data : "", b.len,
				 cases, ncases, err, errlen);
	buf_release(&b);
	return rc;
}

void junit_cases_free(struct junit_case *cases, size_t n)
{
	size_t i;

	if (cases == NULL)
		return;
	for (i = 0; i < n; i++)
		case_release(&cases[i]);
	free(cases);
}
