/* transfer.c -- artifact files over HTTP with libcurl (see transfer.h). */
#include "transfer.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "urltmpl.h"
#include "xmalloc.h"

#define TRANSFER_CONNECT_TIMEOUT_MS 10000L

void transfer_opts_init(struct transfer_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->tries = 5;
	o->backoff_base_ms = 500;
	o->backoff_cap_ms = 30000;
	o->timeout_ms = 300000;
}

/* ---- requests ---------------------------------------------------------- */

void transfer_easy_setup(void *easy, const char *url, long connect_ms,
			 long timeout_ms, const char *agent)
{
	CURL *h = easy;

	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS,
			 (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	/* A redirect is an answer, never followed. */
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, agent);
}

struct transfer_sink {
	FILE *f;	    /* GET: the temporary file; NULL = discard */
	uint64_t got;
	uint64_t max;	    /* 0 = no cap */
	int capped;
};

static size_t transfer_write(char *data, size_t size, size_t n, void *arg)
{
	struct transfer_sink *s = arg;
	size_t len = size * n;

	if (s->max > 0 && s->got + len > s->max) {
		s->capped = 1;
		return 0; /* aborts the transfer */
	}
	s->got += len;
	if (s->f != NULL && fwrite(data, 1, len, s->f) != len)
		return 0;
	return len;
}

static void transfer_sleep_ms(uint32_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000),
			      (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Whether a status is worth another try. */
static int transfer_transient(long code)
{
	return code == 408 || code == 429 || (code >= 500 && code <= 599);
}

/* One request, tried up to o->tries times. put: the file to send (NULL =
 * GET into sink). */
static int transfer_run(const char *method, const char *url, FILE *put,
			uint64_t put_size, struct transfer_sink *sink,
			const struct transfer_opts *o, unsigned *tries_out,
			char *err, size_t errlen)
{
	char cerr[CURL_ERROR_SIZE], last[256];
	struct curl_slist *hdrs = NULL;
	struct backoff bo;
	char *shown = urltmpl_public(url);
	unsigned tries = o->tries > 0 ? o->tries : 1, t;
	int ret = -1;
	size_t i;
	CURL *h;

	h = curl_easy_init();
	if (h == NULL) {
		snprintf(err, errlen, "%s %s: cannot start libcurl", method,
			 shown);
		goto out;
	}
	for (i = 0; i < o->nheaders; i++)
		hdrs = curl_slist_append(hdrs, o->headers[i]);
	if (put != NULL)
		hdrs = curl_slist_append(hdrs, "Expect:");
	backoff_init(&bo, o->backoff_base_ms, o->backoff_cap_ms);
	last[0] = '\0';
	for (t = 1; t <= tries; t++) {
		CURLcode rc;
		long code = 0;
		curl_off_t after = -1;
		uint32_t wait;

		curl_easy_reset(h);
		cerr[0] = '\0';
		transfer_easy_setup(h, url, TRANSFER_CONNECT_TIMEOUT_MS,
				    o->timeout_ms, "testfleet");
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, transfer_write);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, sink);
		if (put != NULL) {
			rewind(put);
			curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
			curl_easy_setopt(h, CURLOPT_READDATA, put);
			curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
					 (curl_off_t)put_size);
		}
		if (sink->f != NULL) {
			rewind(sink->f);
			if (ftruncate(fileno(sink->f), 0) < 0) {
				snprintf(err, errlen, "%s %s: %s", method,
					 shown, strerror(errno));
				goto out;
			}
		}
		sink->got = 0;
		sink->capped = 0;
		rc = curl_easy_perform(h);
		if (rc == CURLE_OK) {
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
			if (code >= 200 && code <= 299) {
				ret = 0;
				break;
			}
			snprintf(last, sizeof(last), "got %ld", code);
			if (!transfer_transient(code))
				break;
			curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &after);
		} else if (sink->capped) {
			snprintf(last, sizeof(last),
				 "larger than the cap of %llu bytes",
				 (unsigned long long)sink->max);
			break;
		} else {
			if (cerr[0] == '\0')
				snprintf(cerr, sizeof(cerr), "%s",
					 curl_easy_strerror(rc));
			cerr[strcspn(cerr, "\r\n")] = '\0';
			snprintf(last, sizeof(last), "%s", cerr);
			if (rc != CURLE_COULDNT_CONNECT &&
			    rc != CURLE_OPERATION_TIMEDOUT &&
			    rc != CURLE_GOT_NOTHING && rc != CURLE_SEND_ERROR &&
			    rc != CURLE_RECV_ERROR &&
			    rc != CURLE_COULDNT_RESOLVE_HOST)
				break;
		}
		if (t == tries)
			break;
		wait = backoff_next(&bo);
		if (after > 0) {
			uint64_t ms = (uint64_t)after * 1000;

			wait = ms > o->backoff_cap_ms ? o->backoff_cap_ms
						      : (uint32_t)ms;
		}
		transfer_sleep_ms(wait);
	}
	if (tries_out != NULL)
		*tries_out = t > tries ? tries : t;
	if (ret < 0)
		snprintf(err, errlen, "%s %s: %s after %u tr%s", method, shown,
			 last, t > tries ? tries : t,
			 (t > tries ? tries : t) == 1 ? "y" : "ies");
out:
	curl_slist_free_all(hdrs);
	if (h != NULL)
		curl_easy_cleanup(h);
	free(shown);
	return ret;
}

int transfer_put_file(const char *url, const char *path,
		      const struct transfer_opts *o, unsigned *tries_out,
		      char *err, size_t errlen)
{
	struct transfer_sink sink = {NULL, 0, 0, 0};
	struct stat st;
	FILE *f;
	int fd, rc;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: %s", path,
			 fd < 0 ? strerror(errno) : "not a regular file");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	f = fdopen(fd, "rb");
	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	rc = transfer_run("PUT", url, f, (uint64_t)st.st_size, &sink, o,
			  tries_out, err, errlen);
	fclose(f);
	return rc;
}

int transfer_get_file(const char *url, const char *path,
		      const struct transfer_opts *o, unsigned *tries_out,
		      char *err, size_t errlen)
{
	struct transfer_sink sink = {NULL, 0, o->max_bytes, 0};
	char *tmp = xasprintf("%s.partXXXXXX", path);
	int fd, rc = -1;

	fd = mkstemp(tmp);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	sink.f = fdopen(fd, "w+b");
	if (sink.f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		unlink(tmp);
		goto out;
	}
	rc = transfer_run("GET", url, NULL, 0, &sink, o, tries_out, err,
			  errlen);
	if (fflush(sink.f) != 0 && rc == 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		rc = -1;
	}
	fchmod(fd, 0644);
	fclose(sink.f);
	if (rc == 0 && rename(tmp, path) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		rc = -1;
	}
	if (rc < 0)
		unlink(tmp);
out:
	free(tmp);
	return rc;
}
