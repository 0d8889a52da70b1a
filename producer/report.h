/* report.h -- writing a merged report: console summary, JSON
 * (testfleet.report/1, DESIGN section 3, through jansson) and JUnit XML
 * (through libxml2's writer, valid for Jenkins, GitLab and GitHub). Pure:
 * a struct report in, bytes out. */
#ifndef TF_REPORT_H
#define TF_REPORT_H

#include <stdio.h>

#include "aggregate.h"

/* Write to path ("-" = stdout). Return 0, or -1 with a one-line message in
 * err naming the path. */
int report_write_json(const struct report *r, const char *path, char *err,
		      size_t errlen);
int report_write_junit(const struct report *r, const char *path, char *err,
		       size_t errlen);
int report_write_markdown(const struct report *r, const char *path,
			  char *err, size_t errlen);
/* The end-of-run summary: failures with their messages, then one line
 * with the counts, like pytest's. */
void report_print_console(const struct report *r, FILE *out, int color);

#endif
