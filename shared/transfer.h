/* transfer.h -- moving artifact files over HTTP with libcurl: a PUT of a
 * file to a URL (the worker's uploads, through bin/testfleet-upload) and a
 * GET of a URL into a file (the producer bringing uploaded artifacts back).
 * Both retry with full-jitter backoff on what may pass -- a connection
 * that failed or timed out, 408, 429 and any 5xx, honouring Retry-After up
 * to the backoff cap -- and never on other statuses. Redirects are not
 * followed. URL templates are in urltmpl.h. */
#ifndef TF_TRANSFER_H
#define TF_TRANSFER_H

#include <stddef.h>
#include <stdint.h>

struct transfer_opts {
	const char *const *headers; /* "Name: value" lines sent as they are */
	size_t nheaders;
	unsigned tries;		 /* at least 1 */
	uint32_t backoff_base_ms; /* first retry waits up to this */
	uint32_t backoff_cap_ms;  /* and none longer than this */
	long timeout_ms;	  /* per try, whole transfer */
	uint64_t max_bytes;	  /* GET: larger bodies are refused; 0 = none */
};

/* What every testfleet request sets on a libcurl easy handle (a CURL *):
 * the URL, no signals, the timeouts, http and https only, redirects not
 * followed, the user agent. */
void transfer_easy_setup(void *easy, const char *url, long connect_ms,
			 long timeout_ms, const char *agent);

/* Sensible defaults: 5 tries, 500 ms base, 30 s cap, 300 s per try. */
void transfer_opts_init(struct transfer_opts *o);

/* PUTs the file at path (its size sent as Content-Length). Returns 0 on a
 * 2xx, or -1 with a one-line message in err naming the URL without its
 * query string ("PUT http://h/x: got 403 after 1 try"). *tries_out
 * (optional) gets the number of tries made. */
int transfer_put_file(const char *url, const char *path,
		      const struct transfer_opts *o, unsigned *tries_out,
		      char *err, size_t errlen);

/* GETs url into path (created with mode 0644; replaced atomically through
 * a temporary file beside it). Same returns as transfer_put_file. */
int transfer_get_file(const char *url, const char *path,
		      const struct transfer_opts *o, unsigned *tries_out,
		      char *err, size_t errlen);

#endif
