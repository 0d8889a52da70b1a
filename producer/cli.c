/* cli.c -- command-line parsing (see cli.h). A small table-driven parser
 * rather than getopt_long: it accepts options on either side of the
 * command, knows which command each option applies to, and words every
 * error the same way. */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "shard.h"
#include "xmalloc.h"

enum cli_opt {
	OPT_HELP,
	OPT_VERSION,
	OPT_CONFIG,
	OPT_REDIS,
	OPT_PREFIX,
	OPT_WORKERS,
	OPT_RUNNER,
	OPT_SHARD,
	OPT_RETRIES,
	OPT_TIMEOUT,
	OPT_MAXFAIL,
	OPT_MAXATT,
	OPT_RUNTIMEOUT,
	OPT_MARK,
	OPT_KEXPR,
	OPT_PHASE,
	OPT_JUNIT,
	OPT_JSON,
	OPT_MARKDOWN,
	OPT_DETACH,
	OPT_DRYRUN,
	OPT_NOCACHE,
	OPT_FRESHCOLLECT,
	OPT_QUIET,
	OPT_VERBOSE,
	OPT_NOCOLOR,
	OPT_PYTEST,
	OPT_PLAYWRIGHT,
	OPT_GREP,
	OPT_SKIPPREFLIGHT,
	OPT_ARTIFACTS,
	OPT_KEEPARTIFACTS,
	OPT_INCLUDE,
	OPT_COUNT
};

/* Which commands an option applies to. */
#define ON_RUN (1u << CLI_RUN)
#define ON_SUBMIT (1u << CLI_SUBMIT)
#define ON_WATCH (1u << CLI_WATCH)
#define ON_REPORT (1u << CLI_REPORT)
#define ON_STATUS (1u << CLI_STATUS)
#define ON_CANCEL (1u << CLI_CANCEL)
#define ON_SERVE (1u << CLI_SERVE)
#define ON_RUNLIKE (ON_RUN | ON_SUBMIT)
#define ON_LATER ON_SERVE /* not implemented yet: takes anything */
#define ON_ALL 0xffffu

struct cli_option {
	const char *name; /* long name, without "--" */
	char letter;	  /* short form, or 0 */
	int has_arg;
	unsigned on;
};

static const struct cli_option cli_options[OPT_COUNT] = {
    [OPT_HELP] = {"help", 'h', 0, ON_ALL},
    [OPT_VERSION] = {"version", 0, 0, ON_ALL},
    [OPT_CONFIG] = {"config", 'c', 1, ON_ALL},
    [OPT_REDIS] = {"redis", 0, 1, ON_ALL},
    [OPT_PREFIX] = {"prefix", 0, 1, ON_ALL},
    [OPT_WORKERS] = {"workers", 'w', 1, ON_RUNLIKE | ON_LATER},
    [OPT_RUNNER] = {"runner", 0, 1, ON_RUNLIKE | ON_LATER},
    [OPT_SHARD] = {"shard", 0, 1, ON_RUNLIKE | ON_LATER},
    [OPT_RETRIES] = {"retries", 0, 1, ON_RUNLIKE | ON_LATER},
    [OPT_TIMEOUT] = {"timeout", 0, 1, ON_RUNLIKE | ON_LATER},
    [OPT_MAXFAIL] = {"max-failures", 0, 1, ON_RUNLIKE | ON_LATER},
    [OPT_MAXATT] = {"max-attempts", 0, 1, ON_RUNLIKE | ON_LATER},
    [OPT_RUNTIMEOUT] = {"run-timeout", 0, 1, ON_RUNLIKE | ON_LATER},
    [OPT_MARK] = {NULL, 'm', 1, ON_RUNLIKE | ON_LATER},
    [OPT_KEXPR] = {NULL, 'k', 1, ON_RUNLIKE | ON_LATER},
    [OPT_PHASE] = {"phase", 0, 1, ON_RUNLIKE | ON_LATER},
    [OPT_JUNIT] = {"junit", 0, 1, ON_RUNLIKE | ON_WATCH | ON_REPORT | ON_LATER},
    [OPT_JSON] = {"json", 0, 1, ON_RUNLIKE | ON_WATCH | ON_REPORT | ON_LATER},
    [OPT_MARKDOWN] = {"markdown", 0, 1,
		      ON_RUNLIKE | ON_WATCH | ON_REPORT | ON_LATER},
    [OPT_DETACH] = {"detach", 0, 0, ON_RUNLIKE | ON_LATER},
    [OPT_DRYRUN] = {"dry-run", 0, 0, ON_RUNLIKE | ON_LATER},
    [OPT_NOCACHE] = {"no-cache", 0, 0, ON_RUN | ON_LATER},
    [OPT_FRESHCOLLECT] = {"fresh-collection", 0, 0, ON_RUNLIKE | ON_LATER},
    [OPT_QUIET] = {"quiet", 'q', 0, ON_ALL},
    [OPT_VERBOSE] = {"verbose", 'v', 0, ON_ALL},
    [OPT_NOCOLOR] = {"no-color", 0, 0, ON_ALL},
    [OPT_PYTEST] = {"pytest", 0, 1, ON_RUNLIKE | ON_LATER},
    [OPT_PLAYWRIGHT] = {"playwright", 0, 1, ON_RUNLIKE | ON_LATER},
    [OPT_GREP] = {"grep", 0, 1, ON_RUNLIKE | ON_LATER},
    [OPT_SKIPPREFLIGHT] = {"skip-preflight", 0, 0, ON_RUNLIKE | ON_LATER},
    [OPT_INCLUDE] = {"include", 0, 1, ON_RUNLIKE | ON_LATER},
    [OPT_ARTIFACTS] = {"artifacts", 0, 1, ON_RUN | ON_WATCH | ON_REPORT},
    [OPT_KEEPARTIFACTS] = {"keep-artifacts", 0, 0, ON_RUNLIKE},
};

static const char *const cli_commands[] = {
    [CLI_NONE] = "",	     [CLI_RUN] = "run",	      [CLI_SUBMIT] = "submit",
    [CLI_WATCH] = "watch",   [CLI_REPORT] = "report", [CLI_STATUS] = "status",
    [CLI_CANCEL] = "cancel", [CLI_SERVE] = "serve",
};

const char *cli_command_name(enum cli_command cmd)
{
	return cli_commands[cmd];
}

static int cli_number(const char *opt, const char *s, long min, long max,
		      long *out, char *err, size_t errlen)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (s[0] == '\0' || *end != '\0' || errno != 0 || v < min || v > max) {
		snprintf(err, errlen,
			 "option %s: expected a whole number from %ld to %ld, "
			 "got \"%s\"",
			 opt, min, max, s);
		return -1;
	}
	*out = v;
	return 0;
}

#define CLI_MAX_INCLUDE 100 /* names of --include, all uses together */
#define CLI_MAX_NAME 128    /* as config.c's names */

/* --include NAME[,NAME...]: adds each name (copied) to c->include, once;
 * "all" sets c->include_all. Names are [A-Za-z0-9_.-]+, as in exclude:. */
static int cli_include(struct cli *c, const char *spelled, const char *val,
		       char *err, size_t errlen)
{
	const char *p = val;

	for (;;) {
		size_t len = strcspn(p, ","), i, ok;
		char *name;

		ok = len > 0 && len <= CLI_MAX_NAME;
		for (i = 0; ok && i < len; i++) {
			unsigned char ch = (unsigned char)p[i];

			ok = (ch >= 'A' && ch <= 'Z') ||
			     (ch >= 'a' && ch <= 'z') ||
			     (ch >= '0' && ch <= '9') || ch == '_' ||
			     ch == '.' || ch == '-';
		}
		if (!ok) {
			snprintf(err, errlen,
				 "option %s: bad name \"%.*s\" in \"%.100s\" "
				 "(names of markers or tags: letters, digits, "
				 "\"_\", \".\", \"-\"; or all)",
				 spelled, (int)(len > 100 ? 100 : len), p, val);
			return -1;
		}
		if (len == 3 && memcmp(p, "all", 3) == 0) {
			c->include_all = 1;
		} else {
			name = xstrndup(p, len);
			for (i = 0; i < c->ninclude; i++)
				if (strcmp(c->include[i], name) == 0)
					break;
			if (i < c->ninclude) {
				free(name);
			} else if (c->ninclude == CLI_MAX_INCLUDE) {
				free(name);
				snprintf(err, errlen,
					 "option %s: more than %d names",
					 spelled, CLI_MAX_INCLUDE);
				return -1;
			} else {
				c->include =
				    xreallocarray(c->include, c->ninclude + 1,
						  sizeof(*c->include));
				c->include[c->ninclude++] = name;
			}
		}
		if (p[len] == '\0')
			return 0;
		p += len + 1;
	}
}

/* Stores one option's value. spelled is the option as typed ("-w",
 * "--workers"), for messages. */
static int cli_set(struct cli *c, enum cli_opt id, const char *spelled,
		   const char *val, char *err, size_t errlen)
{
	struct shard_mode mode;
	char serr[200];

	switch (id) {
	case OPT_HELP:
		c->help = 1;
		return 0;
	case OPT_VERSION:
		c->version = 1;
		return 0;
	case OPT_CONFIG:
		c->config = val;
		return 0;
	case OPT_REDIS:
		c->redis = val;
		return 0;
	case OPT_PREFIX:
		if (val[0] == '\0' || strpbrk(val, " \t\r\n") != NULL) {
			snprintf(err, errlen,
				 "option %s: bad key prefix \"%s\"", spelled,
				 val);
			return -1;
		}
		c->prefix = val;
		return 0;
	case OPT_WORKERS:
		return cli_number(spelled, val, 1, 4096, &c->workers, err,
				  errlen);
	case OPT_RUNNER:
		if (strcmp(val, "pytest") != 0 &&
		    strcmp(val, "playwright") != 0) {
			snprintf(err, errlen,
				 "option %s: expected pytest or playwright, "
				 "got \"%s\" (command suites need a config "
				 "file)",
				 spelled, val);
			return -1;
		}
		c->runner = val;
		return 0;
	case OPT_SHARD:
		if (shard_mode_parse(val, &mode, serr, sizeof(serr)) < 0) {
			snprintf(err, errlen, "option %s: %s", spelled, serr);
			return -1;
		}
		c->shard = val;
		return 0;
	case OPT_RETRIES:
		return cli_number(spelled, val, 0, 100, &c->retries, err,
				  errlen);
	case OPT_TIMEOUT:
		return cli_number(spelled, val, 0, 7 * 24 * 3600, &c->timeout_s,
				  err, errlen);
	case OPT_MAXFAIL:
		return cli_number(spelled, val, 0, INT_MAX, &c->max_failures,
				  err, errlen);
	case OPT_MAXATT:
		return cli_number(spelled, val, 1, POLICY_ATTEMPTS_LIMIT,
				  &c->max_attempts, err, errlen);
	case OPT_RUNTIMEOUT:
		return cli_number(spelled, val, 0, 366L * 24 * 3600,
				  &c->run_timeout_s, err, errlen);
	case OPT_MARK:
		c->mark = val;
		return 0;
	case OPT_KEXPR:
		c->kexpr = val;
		return 0;
	case OPT_PHASE:
		c->phase = val;
		return 0;
	case OPT_JUNIT:
		c->junit = val;
		return 0;
	case OPT_JSON:
		c->json = val;
		return 0;
	case OPT_MARKDOWN:
		c->markdown = val;
		return 0;
	case OPT_DETACH:
		c->detach = 1;
		return 0;
	case OPT_DRYRUN:
		c->dry_run = 1;
		return 0;
	case OPT_NOCACHE:
		c->no_cache = 1;
		return 0;
	case OPT_FRESHCOLLECT:
		c->fresh_collection = 1;
		return 0;
	case OPT_SKIPPREFLIGHT:
		c->skip_preflight = 1;
		return 0;
	case OPT_ARTIFACTS:
		if (val[0] == '\0') {
			snprintf(err, errlen, "option %s: empty folder name",
				 spelled);
			return -1;
		}
		c->artifacts = val;
		return 0;
	case OPT_KEEPARTIFACTS:
		c->keep_artifacts = 1;
		return 0;
	case OPT_QUIET:
		c->quiet = 1;
		return 0;
	case OPT_VERBOSE:
		c->verbose++;
		return 0;
	case OPT_NOCOLOR:
		c->no_color = 1;
		return 0;
	case OPT_PYTEST:
		if (strspn(val, " \t") == strlen(val)) {
			snprintf(err, errlen, "option %s: empty command",
				 spelled);
			return -1;
		}
		c->pytest = val;
		return 0;
	case OPT_PLAYWRIGHT:
		if (strspn(val, " \t") == strlen(val)) {
			snprintf(err, errlen, "option %s: empty command",
				 spelled);
			return -1;
		}
		c->playwright = val;
		return 0;
	case OPT_GREP:
		c->grep = val;
		return 0;
	case OPT_INCLUDE:
		return cli_include(c, spelled, val, err, errlen);
	case OPT_COUNT:
		break;
	}
	return -1;
}

static int cli_find_long(const char *name, size_t len)
{
	int i;

	for (i = 0; i < OPT_COUNT; i++) {
		const char *n = cli_options[i].name;

		if (n != NULL && strlen(n) == len && memcmp(n, name, len) == 0)
			return i;
	}
	return -1;
}

static int cli_find_short(char letter)
{
	int i;

	for (i = 0; i < OPT_COUNT; i++)
		if (cli_options[i].letter == letter)
			return i;
	return -1;
}

static void cli_add_arg(struct cli *c, char *arg, size_t *cap)
{
	if (c->nargs == *cap) {
		*cap = *cap ? *cap * 2 : 8;
		c->args = xreallocarray(c->args, *cap, sizeof(*c->args));
	}
	c->args[c->nargs++] = arg;
}

/* The first spelling of each option seen, to check against the command
 * once it is known. */
struct cli_seen {
	char spelled[64];
	int seen;
};

static int cli_positional(struct cli *c, char *arg, size_t *cap, char *err,
			  size_t errlen)
{
	size_t i;

	if (c->cmd != CLI_NONE) {
		cli_add_arg(c, arg, cap);
		return 0;
	}
	for (i = 1; i < sizeof(cli_commands) / sizeof(cli_commands[0]); i++) {
		if (strcmp(arg, cli_commands[i]) == 0) {
			c->cmd = (enum cli_command)i;
			return 0;
		}
	}
	snprintf(err, errlen, "unknown command %s (see testfleet --help)", arg);
	return -1;
}

int cli_parse(int argc, char **argv, struct cli *c, char *err, size_t errlen)
{
	struct cli_seen seen[OPT_COUNT];
	size_t cap = 0;
	int i, k, only_args = 0;

	memset(c, 0, sizeof(*c));
	memset(seen, 0, sizeof(seen));
	c->workers = c->retries = c->timeout_s = c->max_failures = -1;
	c->max_attempts = c->run_timeout_s = -1;
	for (i = 1; i < argc; i++) {
		char *a = argv[i];

		if (only_args || a[0] != '-' || a[1] == '\0') {
			if (cli_positional(c, a, &cap, err, errlen) < 0)
				return -1;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			only_args = 1;
			continue;
		}
		if (a[1] == '-') {
			const char *name = a + 2;
			const char *eq = strchr(name, '=');
			size_t len = eq ? (size_t)(eq - name) : strlen(name);
			const char *val = NULL;
			int id = cli_find_long(name, len);

			if (id < 0) {
				snprintf(err, errlen,
					 "unknown option --%.*s (see testfleet "
					 "--help)",
					 (int)(len > 100 ? 100 : len), name);
				return -1;
			}
			if (!cli_options[id].has_arg && eq != NULL) {
				snprintf(err, errlen,
					 "option --%s takes no value (see "
					 "testfleet --help)",
					 cli_options[id].name);
				return -1;
			}
			if (cli_options[id].has_arg) {
				if (eq != NULL)
					val = eq + 1;
				else if (i + 1 < argc)
					val = argv[++i];
				else {
					snprintf(err, errlen,
						 "option --%s requires an "
						 "argument (see testfleet "
						 "--help)",
						 cli_options[id].name);
					return -1;
				}
			}
			if (!seen[id].seen) {
				seen[id].seen = 1;
				snprintf(seen[id].spelled,
					 sizeof(seen[id].spelled), "--%s",
					 cli_options[id].name);
			}
			if (cli_set(c, (enum cli_opt)id, seen[id].spelled, val,
				    err, errlen) < 0)
				return -1;
			continue;
		}
		/* One or more short options: "-qv", "-w4", "-w 4". */
		for (k = 1; a[k] != '\0'; k++) {
			int id = cli_find_short(a[k]);
			const char *val = NULL;
			char spelled[3] = {'-', a[k], '\0'};

			if (id < 0) {
				snprintf(err, errlen,
					 "unknown option -%c (see testfleet "
					 "--help)",
					 a[k]);
				return -1;
			}
			if (cli_options[id].has_arg) {
				if (a[k + 1] != '\0')
					val = a + k + 1;
				else if (i + 1 < argc)
					val = argv[++i];
				else {
					snprintf(err, errlen,
						 "option %s requires an "
						 "argument (see testfleet "
						 "--help)",
						 spelled);
					return -1;
				}
			}
			if (!seen[id].seen) {
				seen[id].seen = 1;
				snprintf(seen[id].spelled,
					 sizeof(seen[id].spelled), "%s",
					 spelled);
			}
			if (cli_set(c, (enum cli_opt)id, spelled, val, err,
				    errlen) < 0)
				return -1;
			if (val != NULL)
				break;
		}
	}
	if (c->cmd == CLI_NONE)
		return 0;
	for (k = 0; k < OPT_COUNT; k++) {
		if (seen[k].seen && !(cli_options[k].on & (1u << c->cmd))) {
			snprintf(err, errlen,
				 "option %s does not apply to %s (see "
				 "testfleet --help)",
				 seen[k].spelled, cli_commands[c->cmd]);
			return -1;
		}
	}
	if (c->help || c->version)
		return 0;
	switch (c->cmd) {
	case CLI_WATCH:
	case CLI_REPORT:
	case CLI_CANCEL:
		if (c->nargs == 0) {
			snprintf(err, errlen,
				 "%s needs a run id (see testfleet --help)",
				 cli_commands[c->cmd]);
			return -1;
		}
		if (c->nargs > 1) {
			snprintf(err, errlen,
				 "unexpected argument %s (%s takes one run id)",
				 c->args[1], cli_commands[c->cmd]);
			return -1;
		}
		break;
	case CLI_STATUS:
		if (c->nargs > 1) {
			snprintf(err, errlen,
				 "unexpected argument %s (status takes at "
				 "most one run id)",
				 c->args[1]);
			return -1;
		}
		break;
	default:
		break;
	}
	return 0;
}

void cli_release(struct cli *c)
{
	size_t i;

	for (i = 0; i < c->ninclude; i++)
		free(c->include[i]);
	free(c->include);
	c->include = NULL;
	c->ninclude = 0;
	free(c->args);
	c->args = NULL;
	c->nargs = 0;
}

void cli_usage(FILE *out)
{
	fputs("usage: testfleet COMMAND [options] [args]\n"
	      "\n"
	      "Commands:\n"
	      "  run [PATH|SUITE ...]   discover, queue, follow a run and "
	      "report (default:\n"
	      "                         local mode with a private "
	      "redis-server and workers)\n"
	      "  submit [PATH|SUITE ...] queue a run and print its id\n"
	      "  watch RUN              follow a run to its end and report\n"
	      "  report RUN             rebuild a run's report from Redis\n"
	      "  status [RUN]           recent runs, or one run and the live "
	      "workers\n"
	      "  cancel RUN             stop a run: queued tasks never start, "
	      "running ones\n"
	      "                         are killed\n"
	      "  serve                  not implemented yet\n"
	      "\n"
	      "Run options (run, submit):\n"
	      "  --redis URL            redis://[user:pass@]host:port/db or "
	      "unix:///path.sock\n"
	      "                         (else TESTFLEET_REDIS_URL, else the "
	      "config's\n"
	      "                         defaults.redis, else local mode)\n"
	      "  -w, --workers N        runner slots (local mode; default: "
	      "CPU count)\n"
	      "  --runner NAME          pytest (default) or playwright, for "
	      "the paths\n"
	      "                         given without a config\n"
	      "  --shard MODE           auto | file | test | count:N "
	      "(default auto)\n"
	      "  --retries N            reruns of failed tests; a test that "
	      "then passes is\n"
	      "                         flaky (default 0)\n"
	      "  --timeout SEC          per-task timeout (0 = none)\n"
	      "  --max-failures N       cancel the run after N failed tests "
	      "(0 = off)\n"
	      "  --max-attempts N       attempts of a test failing for "
	      "transient reasons\n"
	      "                         (default: retry.max_attempts, else 3)\n"
	      "  --run-timeout SEC      cancel the run after SEC seconds "
	      "(0 = none)\n"
	      "  -m EXPR, -k EXPR       pytest marker / keyword selection\n"
	      "  --grep EXPR            Playwright --grep (playwright "
	      "suites)\n"
	      "  --include NAME[,NAME]  run the tests the config's exclude: "
	      "leaves out\n"
	      "                         (pytest markers, Playwright tags), "
	      "e.g. slow;\n"
	      "                         repeatable; all lifts every "
	      "exclusion\n"
	      "  --phase NAME           run one phase of the config\n"
	      "  --pytest CMD           pytest command (default: "
	      "TESTFLEET_PYTEST or pytest)\n"
	      "  --playwright CMD       Playwright command (default: "
	      "TESTFLEET_PLAYWRIGHT or\n"
	      "                         npx --no-install playwright)\n"
	      "  --detach               print the run id and return\n"
	      "  --dry-run              print the task plan (tests and "
	      "estimates), queue\n"
	      "                         nothing\n"
	      "  --no-cache             local mode: no .testfleet cache "
	      "folder (no history)\n"
	      "  --fresh-collection     queue nothing before this run's "
	      "collection ends (default:\n"
	      "                         with Redis, start from the suite's "
	      "last collection)\n"
	      "  --skip-preflight       do not run the config's preflight "
	      "checks\n"
	      "  --keep-artifacts       keep what tests leave in "
	      "$TESTFLEET_ARTIFACTS, for a\n"
	      "                         later --artifacts (run --artifacts "
	      "implies it)\n"
	      "\n"
	      "Report options (run, watch, report):\n"
	      "  --junit FILE, --json FILE, --markdown FILE\n"
	      "  --artifacts DIR        bring the tasks' artifacts (traces, "
	      "screenshots) to DIR\n"
	      "\n"
	      "Common options:\n"
	      "  -c, --config FILE      testfleet.yaml to use (default: "
	      "./testfleet.yaml if any)\n"
	      "  --prefix P             Redis key prefix (default tf)\n"
	      "  -q, --quiet            no progress line\n"
	      "  -v, --verbose          more detail; local workers log to "
	      "stderr\n"
	      "  --no-color             plain console output\n"
	      "  -h, --help             this help\n"
	      "  --version              print the version\n"
	      "\n"
	      "Exit codes: 0 passed, 1 tests failed, 2 usage or configuration "
	      "error,\n"
	      "3 infrastructure error, 4 cancelled, run timeout or "
	      "interrupted.\n"
	      "cancel: 0 cancelled, 1 the run had already finished, 2 unknown "
	      "run.\n"
	      "See docs/cli.md for details.\n",
	      out);
}
