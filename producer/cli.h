/* cli.h -- the testfleet command line: which command, which options, which
 * positional arguments, checked against what each command accepts. Pure:
 * argv in, a struct out (pointing into argv), or one error line. The help
 * text lives here too; docs/cli.md is its long form. */
#ifndef TF_CLI_H
#define TF_CLI_H

#include <stddef.h>
#include <stdio.h>

#ifndef TESTFLEET_VERSION
#define TESTFLEET_VERSION "0.1.0"
#endif

enum cli_command {
	CLI_NONE,
	CLI_RUN,
	CLI_SUBMIT,
	CLI_WATCH,
	CLI_REPORT,
	CLI_STATUS,
	CLI_CANCEL,
	CLI_SERVE,
};

/* Option values are borrowed from argv; -1 (or NULL) means "not given". */
struct cli {
	enum cli_command cmd;
	int help;	      /* -h/--help */
	int version;	      /* --version */
	const char *config;   /* -c/--config */
	const char *redis;    /* --redis */
	const char *prefix;   /* --prefix */
	long workers;	      /* -w/--workers, >= 1 */
	const char *runner;   /* --runner */
	const char *shard;    /* --shard, already validated */
	long retries;	      /* --retries, >= 0 */
	long timeout_s;	      /* --timeout, >= 0 (0 = none) */
	long max_failures;    /* --max-failures, >= 0 (0 = off) */
	long max_attempts;    /* --max-attempts, 1-100 */
	long run_timeout_s;   /* --run-timeout, >= 0 (0 = none) */
	const char *mark;     /* -m */
	const char *kexpr;    /* -k */
	const char *phase;    /* --phase */
	const char *junit;    /* --junit FILE */
	const char *json;     /* --json FILE */
	const char *markdown; /* --markdown FILE */
	int detach;	      /* --detach */
	int dry_run;	      /* --dry-run: print the plan, queue nothing */
	int no_cache;	      /* --no-cache: local mode keeps no cache */
	int fresh_collection; /* --fresh-collection: no start from the last
			       * collection */
	int quiet;	      /* -q/--quiet */
	int verbose;	      /* -v/--verbose, counted */
	int no_color;	      /* --no-color */
	const char *pytest;   /* --pytest CMD */
	const char *playwright; /* --playwright CMD */
	const char *grep;	/* --grep EXPR (Playwright) */
	char **args;	      /* positional arguments (malloc'd array of
			       * borrowed strings) */
	size_t nargs;
	int skip_preflight;   /* --skip-preflight (appended) */
	char **include;	      /* --include names (owned copies, once each) */
	size_t ninclude;
	int include_all;      /* --include all */
	const char *artifacts; /* --artifacts DIR */
	int keep_artifacts;    /* --keep-artifacts */
};

/* Parses argv[1..argc-1]. Options may come before or after the command;
 * "--" ends the options. Returns 0 (help and version requests included),
 * or -1 with one line in err (no "testfleet: " prefix), e.g. "unknown
 * option --frobnicate (see testfleet --help)". The caller releases out
 * with cli_release either way. */
int cli_parse(int argc, char **argv, struct cli *out, char *err, size_t errlen);
void cli_release(struct cli *c);

/* The help text. */
void cli_usage(FILE *out);
const char *cli_command_name(enum cli_command cmd);

#endif
