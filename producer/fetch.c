/* fetch.c -- a run's artifacts into a local folder (see fetch.h). */
#include "fetch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keys.h"
#include "transfer.h"
#include "urltmpl.h"
#include "xmalloc.h"

#define FETCH_MAX_DOWNLOAD (2ull << 30) /* an uploaded file, at most */

/* Whether path is safe below a folder: relative, no empty, "." or ".."
 * parts. */
static int fetch_path_ok(const char *path)
{
	const char *p = path;
	size_t len;

	if (path[0] == '\0' || path[0] == '/')
		return 0;
	while (*p) {
		len = strcspn(p, "/");
		if (len == 0 || (len == 1 && p[0] == '.') ||
		    (len == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		p += len;
		if (*p == '/')
			p++;
		else
			break;
	}
	return p[-1] != '/';
}

/* A task id as one safe file name: [A-Za-z0-9._-], others '_'; never
 * "." or "..". Caller frees. */
static char *fetch_safe_name(const char *s)
{
	char *out = xstrdup(s[0] ? s : "_"), *p;

	for (p = out; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
		      (*p == '.' && p != out)))
			*p = '_';
	return out;
}

/* mkdir -p of the folders above file (dir itself included). */
static int fetch_mkparents(const char *file, char *err, size_t errlen)
{
	char *tmp = xstrdup(file), *p;
	int rc = 0;

	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create %s: %s", tmp,
				 strerror(errno));
			rc = -1;
			break;
		}
		*p = '/';
	}
	free(tmp);
	return rc;
}

/* Writes len bytes to path through a temporary file beside it. */
static int fetch_write(const char *path, const char *data, size_t len,
		       char *err, size_t errlen)
{
	char *tmp = xasprintf("%s.partXXXXXX", path);
	size_t off = 0;
	ssize_t n;
	int fd, rc = -1;

	fd = mkstemp(tmp);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	while (off < len) {
		n = write(fd, data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "%s: %s", path,
				 n < 0 ? strerror(errno) : "short write");
			break;
		}
		off += (size_t)n;
	}
	if (fchmod(fd, 0644) < 0 && off == len) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		off = 0;
	}
	if (close(fd) < 0 && off == len) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		off = 0;
	}
	if (off == len && rename(tmp, path) == 0)
		rc = 0;
	else if (off == len)
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
	if (rc < 0)
		unlink(tmp);
out:
	free(tmp);
	return rc;
}

static int fetch_from_redis(redisContext *c, const char *key,
			    const struct report_artifact *a, const char *file,
			    char *err, size_t errlen)
{
	char *field = xasprintf("%s/%u/%s", a->task, a->attempt, a->path);
	const char *argv[3] = {"HGET", key, field};
	redisReply *r = redisCommandArgv(c, 3, argv, NULL);
	int rc = -1;

	if (r == NULL)
		snprintf(err, errlen, "redis: %s",
			 c->errstr[0] ? c->errstr : "no reply");
	else if (r->type == REDIS_REPLY_NIL)
		snprintf(err, errlen,
			 "no longer in Redis (expired, or the run's keys "
			 "were removed)");
	else if (r->type != REDIS_REPLY_STRING)
		snprintf(err, errlen, "redis: HGET %s: %s", key,
			 r->type == REDIS_REPLY_ERROR ? r->str
						      : "unexpected reply");
	else
		rc = fetch_write(file, r->str, r->len, err, errlen);
	if (r != NULL)
		freeReplyObject(r);
	free(field);
	return rc;
}

static int by_path(const void *x, const void *y, void *arg)
{
	const struct report *rep = arg;
	size_t a = *(const size_t *)x, b = *(const size_t *)y;

	return strcmp(rep->artifacts[a].path, rep->artifacts[b].path);
}

int fetch_artifacts(redisContext *c, const char *prefix, struct report *rep,
		    const char *dir, struct fetch_stats *st, char *err,
		    size_t errlen)
{
	struct transfer_opts topt;
	char *hdr_env = NULL, *headers[URLTMPL_MAX_HEADERS];
	size_t *order = NULL, i, j, k;
	char *key = key_artifacts(prefix, rep->run), *probe;
	char ferr[512];
	int rc = -1;

	memset(st, 0, sizeof(*st));
	transfer_opts_init(&topt);
	topt.max_bytes = FETCH_MAX_DOWNLOAD;
	/* The workers' credentials, when this machine has them too. */
	if (getenv("TESTFLEET_ARTIFACTS_HEADERS") != NULL) {
		hdr_env = xstrdup(getenv("TESTFLEET_ARTIFACTS_HEADERS"));
		if (urltmpl_headers(hdr_env, headers, &topt.nheaders, err,
				    errlen) < 0)
			goto out;
		topt.headers = (const char *const *)headers;
	}
	probe = xasprintf("%s/x", dir);
	if (fetch_mkparents(probe, err, errlen) < 0) {
		free(probe);
		goto out;
	}
	free(probe);
	/* Paths that more than one artifact has go under <task>-a<att>/. */
	order = rep->nartifacts ? xcalloc(rep->nartifacts, sizeof(*order))
				: NULL;
	for (i = 0; i < rep->nartifacts; i++)
		order[i] = i;
	if (rep->nartifacts > 1)
		qsort_r(order, rep->nartifacts, sizeof(*order), by_path, rep);
	for (i = 0; i < rep->nartifacts; i = j) {
		int shared;

		for (j = i + 1; j < rep->nartifacts &&
				strcmp(rep->artifacts[order[i]].path,
				       rep->artifacts[order[j]].path) == 0;
		     j++)
			;
		shared = j - i > 1;
		for (k = i; k < j; k++) {
			struct report_artifact *a = &rep->artifacts[order[k]];
			char *file;

			if (a->error != NULL) {
				st->not_kept++;
				continue;
			}
			if (!fetch_path_ok(a->path)) {
				a->fetch_error = xstrdup("unsafe path");
				st->failed++;
				continue;
			}
			if (shared) {
				char *task = fetch_safe_name(a->task);

				file = xasprintf("%s/%s-a%u/%s", dir, task,
						 a->attempt, a->path);
				free(task);
			} else {
				file = xasprintf("%s/%s", dir, a->path);
			}
			ferr[0] = '\0';
			if (fetch_mkparents(file, ferr, sizeof(ferr)) == 0 &&
			    (a->url != NULL
				 ? transfer_get_file(a->url, file, &topt, NULL,
						     ferr, sizeof(ferr))
				 : fetch_from_redis(c, key, a, file, ferr,
						    sizeof(ferr))) == 0) {
				a->file = file;
				st->fetched++;
				st->bytes += a->size;
				continue;
			}
			a->fetch_error = xstrdup(ferr);
			st->failed++;
			free(file);
		}
	}
	rc = 0;
out:
	free(order);
	free(key);
	free(hdr_env);
	return rc;
}
