/* main.c -- testfleet-upload: PUTs a task's larger artifacts to the HTTP
 * endpoint the worker was given (--artifacts-url), one file after another,
 * each retried on 408/429/5xx and connection errors (shared/transfer.h).
 * The worker runs it as a child once a task's runner has ended, so libcurl
 * never sits in the worker itself and a slow endpoint never blocks its
 * event loop (leases go on being renewed meanwhile).
 *
 * Protocol with the worker (worker/artifacts.c): the files are named after
 * the options, relative to --dir; stdout gets exactly one line per file, in
 * order: "ok <url without query>" or "error <message>". Request headers
 * (credentials) come from $TESTFLEET_ARTIFACTS_HEADERS, one "Name: value"
 * per line, so they stay out of the process list. Exit status 0 when every
 * line was written, 2 on a usage error. */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transfer.h"
#include "urltmpl.h"
#include "xmalloc.h"

#define PROG "testfleet-upload"

static int upload_usage(const char *msg)
{
	fprintf(stderr,
		PROG ": %s\nusage: " PROG " --url TEMPLATE --run ID --task "
		     "ID --attempt N --dir DIR [--tries N] [--timeout SEC] "
		     "FILE...\n",
		msg);
	return 2;
}

static int upload_number(const char *s, unsigned long max,
			 unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 10);
	return errno != 0 || end == s || *end != '\0' || s[0] == '-' ||
		       *out > max
		   ? -1
		   : 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"url", required_argument, NULL, 'u'},
	    {"run", required_argument, NULL, 'r'},
	    {"task", required_argument, NULL, 't'},
	    {"attempt", required_argument, NULL, 'a'},
	    {"dir", required_argument, NULL, 'd'},
	    {"tries", required_argument, NULL, 'n'},
	    {"timeout", required_argument, NULL, 'T'},
	    {NULL, 0, NULL, 0}};
	const char *tmpl = NULL, *run = NULL, *task = NULL, *dir = NULL;
	char err[1024], *hdr_env = NULL, *headers[URLTMPL_MAX_HEADERS];
	struct transfer_opts o;
	unsigned long attempt = 0, v;
	int c, i, rc = 0;

	transfer_opts_init(&o);
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'u':
			tmpl = optarg;
			break;
		case 'r':
			run = optarg;
			break;
		case 't':
			task = optarg;
			break;
		case 'd':
			dir = optarg;
			break;
		case 'a':
			if (upload_number(optarg, 1000000, &attempt) < 0)
				return upload_usage("bad --attempt");
			break;
		case 'n':
			if (upload_number(optarg, 100, &v) < 0 || v == 0)
				return upload_usage("bad --tries (1-100)");
			o.tries = (unsigned)v;
			break;
		case 'T':
			if (upload_number(optarg, 86400, &v) < 0 || v == 0)
				return upload_usage("bad --timeout");
			o.timeout_ms = (long)v * 1000;
			break;
		default:
			return upload_usage("unknown option");
		}
	}
	if (tmpl == NULL || run == NULL || task == NULL || dir == NULL ||
	    attempt == 0)
		return upload_usage(
		    "--url, --run, --task, --attempt and --dir are required");
	if (urltmpl_check(tmpl, err, sizeof(err)) < 0)
		return upload_usage(err);
	if (getenv("TESTFLEET_ARTIFACTS_HEADERS") != NULL)
		hdr_env = xstrdup(getenv("TESTFLEET_ARTIFACTS_HEADERS"));
	if (urltmpl_headers(hdr_env, headers, &o.nheaders, err,
			    sizeof(err)) < 0) {
		free(hdr_env);
		return upload_usage(err);
	}
	o.headers = (const char *const *)headers;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		free(hdr_env);
		fprintf(stderr, PROG ": cannot start libcurl\n");
		return 1;
	}
	for (i = optind; i < argc; i++) {
		char *url = urltmpl_expand(tmpl, run, task,
					    (unsigned)attempt, argv[i]);
		char *path = xasprintf("%s/%s", dir, argv[i]);

		if (transfer_put_file(url, path, &o, NULL, err, sizeof(err)) ==
		    0) {
			char *shown = urltmpl_public(url);

			printf("ok %s\n", shown);
			free(shown);
		} else {
			err[strcspn(err, "\r\n")] = '\0';
			printf("error %s\n", err);
		}
		if (fflush(stdout) != 0)
			rc = 1;
		free(path);
		free(url);
	}
	curl_global_cleanup();
	free(hdr_env);
	return rc;
}
