/* main.c -- bin/testfleet: parses the command line, loads the config, and
 * drives each command (run, submit, watch, report, status, cancel) through the
 * producer's modules; the one place that prints errors and picks the exit
 * code (DESIGN section 2: 0 passed, 1 failed, 2 usage or configuration, 3
 * infrastructure, 4 cancelled). */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aggregate.h"
#include "buf.h"
#include "cli.h"
#include "collected.h"
#include "command.h"
#include "config.h"
#include "cpus.h"
#include "preflight.h"
#include "discover.h"
#include "fetch.h"
#include "follow.h"
#include "history.h"
#include "keys.h"
#include "localmode.h"
#include "log.h"
#include "playwright.h"
#include "policy.h"
#include "queues.h"
#include "redisconn.h"
#include "redisurl.h"
#include "report.h"
#include "run.h"
#include "shard.h"
#include "status.h"
#include "xmalloc.h"

enum {
	EXIT_PASSED = 0,
	EXIT_FAILED = 1,
	EXIT_USAGE = 2,
	EXIT_INFRA = 3,
	EXIT_CANCELLED = 4
};

#define MAIN_TIMEOUT_MS 10000 /* per Redis command; > the 1 s XREAD block */
#define MAIN_MAX_PYTEST_WORDS 64
#define MAIN_STATUS_RUNS 20

/* Set by SIGINT, SIGTERM and SIGHUP; every wait in the producer checks it
 * at least once a second. */
static volatile sig_atomic_t main_stop;

static void main_on_signal(int sig)
{
	(void)sig;
	main_stop = 1;
}

/* The one-line error format of DESIGN section 2. */
static void main_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static void main_error(const char *fmt, ...)
{
	va_list ap;

	fputs("testfleet: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Everything a command needs, resolved from the command line, the
 * environment and the config. */
struct main_ctx {
	struct cli cli;
	struct config conf;
	int have_conf;
	char *conf_dir;	   /* absolute directory of the config file */
	const char *redis; /* URL, or NULL for local mode */
	struct redis_url url;
	int have_url;
	const char *prefix;
	const char *pytest_str; /* the pytest command as given, or NULL */
	const char *playwright_str; /* the Playwright command, or NULL */
	char *pytest_words;	/* its split copy, backing pytest[] */
	char *pytest[MAIN_MAX_PYTEST_WORDS + 1];
	char *cwd;
	int color;
	char *args; /* the command line, for the run hash */
};

/* One suite's share of a run: settings, collected ids, shard plan. */
struct main_job {
	const char *suite;
	const char *phase;
	const char *runner;   /* pytest | playwright | command */
	const char *grep;     /* playwright --grep */
	char *const *command; /* command runner: its argv */
	size_t ncommand;
	/* command runner: per task, a plan of that task alone and its
	 * environment (with TESTFLEET_SHARD) -- one batch each */
	struct shard_plan *cmd_plans;
	struct kv **cmd_env;
	size_t *cmd_nenv;
	const char *queue;
	char *cwd; /* absolute; where pytest collects */
	char *const *paths;
	size_t npaths;
	const char *mark;
	const char *kexpr;
	unsigned timeout_s;
	unsigned reruns; /* --retries budget */
	const char *shard;
	const struct kv *env;
	size_t nenv;
	struct discover_result disc;
	struct shard_plan plan;
	double *est;	  /* per id: history's estimate, -1 = unknown */
	size_t nknown;	  /* ids with an estimate */
	double unknown_s; /* what the unknown ones count (the median) */
	/* what a task start costs: the history's, or the runner's default */
	struct shard_startup startup;
	char fp[HISTORY_FP_LEN + 1]; /* the history's fingerprint */
	/* exclude: of its suite (config.h; none for the command runner or
	 * without a config), and what is left of it after --include, as the
	 * runner takes it: pytest's -m (mark then points here) or
	 * Playwright's --grep-invert. */
	char *const *excluded;
	size_t nexcluded;
	char *mark_own;
	char *grep_invert;
};

static void main_install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = main_on_signal;
	sigemptyset(&sa.sa_mask);
	/* SA_RESTART keeps stdio writes whole; the blocking waits (poll,
	 * nanosleep, a 1 s XREAD) return within a second anyway. */
	sa.sa_flags = SA_RESTART;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

/* Splits cmd on blanks into ctx->pytest (no quoting: a path with spaces
 * needs a wrapper script). Returns 0, or -1 when it has no words or too
 * many. */
static int main_split_pytest(struct main_ctx *ctx, const char *cmd)
{
	size_t n = 0;
	char *p;

	free(ctx->pytest_words);
	ctx->pytest_words = xstrdup(cmd);
	p = ctx->pytest_words;
	for (;;) {
		p += strspn(p, " \t\n");
		if (*p == '\0')
			break;
		if (n == MAIN_MAX_PYTEST_WORDS)
			return -1;
		ctx->pytest[n++] = p;
		p += strcspn(p, " \t\n");
		if (*p != '\0')
			*p++ = '\0';
	}
	ctx->pytest[n] = NULL;
	return n > 0 ? 0 : -1;
}

/* A --redis value as it may be shown: without its password. */
static char *main_redact_url(const char *s)
{
	struct redis_url u;
	char err[256];
	char *shown;

	if (redis_url_parse(s, &u, err, sizeof(err)) < 0)
		return xstrdup(strchr(s, '@') != NULL ? "(redacted)" : s);
	shown = redis_url_display(&u);
	redis_url_release(&u);
	return shown;
}

/* The command line for the run hash, arguments with blanks or quotes
 * single-quoted and Redis passwords left out. */
static char *main_join_args(int argc, char **argv)
{
	struct buf b;
	int i;

	buf_init(&b, 64 << 10);
	for (i = 0; i < argc; i++) {
		const char *a = i == 0 ? "testfleet" : argv[i];
		char *owned = NULL;

		if (i > 0 && strcmp(argv[i - 1], "--redis") == 0) {
			owned = main_redact_url(a);
			a = owned;
		} else if (strncmp(a, "--redis=", 8) == 0) {
			char *url = main_redact_url(a + 8);

			owned = xasprintf("--redis=%s", url);
			free(url);
			a = owned;
		}
		if (i > 0)
			buf_appendstr(&b, " ");
		if (a[0] != '\0' && strpbrk(a, " \t\n'\"\\$`*?[]") == NULL) {
			buf_appendstr(&b, a);
		} else {
			buf_appendstr(&b, "'");
			for (; *a != '\0'; a++) {
				if (*a == '\'')
					buf_appendstr(&b, "'\\''");
				else
					buf_append(&b, a, 1);
			}
			buf_appendstr(&b, "'");
		}
		free(owned);
	}
	return buf_detach(&b, NULL);
}

/* Loads -c FILE, or ./testfleet.yaml when present. Returns an exit code
 * (0 = fine). */
static int main_load_config(struct main_ctx *ctx)
{
	const char *path = ctx->cli.config;
	char err[1024], real[PATH_MAX];
	char *slash;

	if (path == NULL) {
		if (access("testfleet.yaml", F_OK) != 0)
			return 0;
		path = "testfleet.yaml";
	}
	if (config_load_file(path, &ctx->conf, err, sizeof(err)) < 0) {
		main_error("%s", err);
		return EXIT_USAGE;
	}
	ctx->have_conf = 1;
	if (realpath(path, real) == NULL) {
		main_error("%s: %s", path, strerror(errno));
		return EXIT_USAGE;
	}
	slash = strrchr(real, '/');
	if (slash == real)
		slash[1] = '\0';
	else if (slash != NULL)
		*slash = '\0';
	ctx->conf_dir = xstrdup(real);
	return 0;
}

/* Settles the Redis URL, prefix and pytest command. */
static int main_resolve(struct main_ctx *ctx)
{
	const char *env = getenv("TESTFLEET_REDIS_URL");
	char err[512];

	ctx->redis = ctx->cli.redis;
	if (ctx->redis == NULL && env != NULL && env[0] != '\0')
		ctx->redis = env;
	if (ctx->redis == NULL && ctx->have_conf && ctx->conf.redis != NULL)
		ctx->redis = ctx->conf.redis;
	if (ctx->redis != NULL) {
		if (redis_url_parse(ctx->redis, &ctx->url, err, sizeof(err)) <
		    0) {
			main_error("%s", err);
			return EXIT_USAGE;
		}
		ctx->have_url = 1;
	}
	ctx->prefix = ctx->cli.prefix;
	if (ctx->prefix == NULL && ctx->have_conf && ctx->conf.prefix != NULL)
		ctx->prefix = ctx->conf.prefix;
	if (ctx->prefix == NULL)
		ctx->prefix = KEYS_DEFAULT_PREFIX;
	ctx->pytest_str = ctx->cli.pytest;
	if (ctx->pytest_str == NULL) {
		env = getenv("TESTFLEET_PYTEST");
		if (env != NULL && strspn(env, " \t") != strlen(env))
			ctx->pytest_str = env;
	}
	ctx->playwright_str = ctx->cli.playwright;
	if (ctx->playwright_str == NULL) {
		env = getenv("TESTFLEET_PLAYWRIGHT");
		if (env != NULL && strspn(env, " \t") != strlen(env))
			ctx->playwright_str = env;
	}
	if (main_split_pytest(ctx, ctx->pytest_str ? ctx->pytest_str
						   : "pytest") < 0) {
		main_error("bad pytest command \"%s\" (1 to %d words)",
			   ctx->pytest_str, MAIN_MAX_PYTEST_WORDS);
		return EXIT_USAGE;
	}
	return 0;
}

/* Runs the config's preflight checks in order; the first failure is the
 * error line and exit 3, before anything is collected or queued. */
static int main_preflight(struct main_ctx *ctx)
{
	char err[1024];
	size_t i;

	if (!ctx->have_conf || ctx->cli.skip_preflight || ctx->cli.dry_run)
		return 0;
	for (i = 0; i < ctx->conf.npreflight; i++) {
		const struct preflight_conf *pf = &ctx->conf.preflight[i];

		if (preflight_run(pf, err, sizeof(err)) < 0) {
			main_error("preflight \"%s\" failed: %s", pf->name,
				   err);
			return EXIT_INFRA;
		}
		if (ctx->cli.verbose > 0)
			fprintf(stderr, "testfleet: preflight \"%s\": ok\n",
				pf->name);
	}
	return 0;
}

static redisContext *main_connect(struct main_ctx *ctx, int *code)
{
	char err[512];
	redisContext *c =
	    redisconn_open(&ctx->url, MAIN_TIMEOUT_MS, err, sizeof(err));

	if (c == NULL) {
		main_error("%s", err);
		*code = EXIT_INFRA;
	}
	return c;
}

/* Commands other than run need a Redis that outlives the producer. */
static int main_need_redis(struct main_ctx *ctx, const char *what)
{
	if (ctx->have_url)
		return 0;
	main_error("%s needs --redis URL or TESTFLEET_REDIS_URL (local mode "
		   "keeps no Redis after its run)",
		   what);
	return EXIT_USAGE;
}

/* Checks that a report can be written to path before any work is done:
 * its directory must exist and be writable. */
static int main_check_output(const char *opt, const char *path)
{
	char *dir, *slash;
	int ok;

	if (path == NULL || strcmp(path, "-") == 0)
		return 0;
	dir = xstrdup(path);
	slash = strrchr(dir, '/');
	if (slash == NULL) {
		free(dir);
		dir = xstrdup(".");
	} else if (slash == dir) {
		slash[1] = '\0';
	} else {
		*slash = '\0';
	}
	ok = access(dir, W_OK) == 0;
	if (!ok)
		main_error("cannot write %s %s: %s: %s", opt, path, dir,
			   strerror(errno));
	free(dir);
	return ok ? 0 : EXIT_USAGE;
}

static int main_check_outputs(const struct cli *cli)
{
	int rc;

	if ((rc = main_check_output("--junit", cli->junit)) != 0)
		return rc;
	if ((rc = main_check_output("--json", cli->json)) != 0)
		return rc;
	return main_check_output("--markdown", cli->markdown);
}

/* --artifacts DIR: brings the run's artifacts there (before local mode's
 * Redis goes away) and says what happened in one line on stderr, plus one
 * per file that could not be fetched. A failure here never changes the
 * exit code: the tests' results stand. */
static void main_fetch(struct main_ctx *ctx, redisContext *c,
		       struct report *rep)
{
	struct fetch_stats st;
	char err[1024];
	size_t i, shown = 0;

	if (ctx->cli.artifacts == NULL || rep == NULL || c == NULL)
		return;
	if (fetch_artifacts(c, ctx->prefix, rep, ctx->cli.artifacts, &st, err,
			    sizeof(err)) < 0) {
		main_error("--artifacts: %s", err);
		return;
	}
	for (i = 0; i < rep->nartifacts && shown < 10; i++) {
		if (rep->artifacts[i].fetch_error == NULL)
			continue;
		main_error("artifact %s (task %s): %s", rep->artifacts[i].path,
			   rep->artifacts[i].task,
			   rep->artifacts[i].fetch_error);
		shown++;
	}
	if (!ctx->cli.quiet)
		fprintf(stderr,
			"testfleet: artifacts: %u file%s (%.1f %s) in %s; %u "
			"not kept by the workers, %u not fetched\n",
			st.fetched, st.fetched == 1 ? "" : "s",
			st.bytes >= (1u << 20) ? (double)st.bytes / (1u << 20)
					       : (double)st.bytes / 1024,
			st.bytes >= (1u << 20) ? "MiB" : "KiB",
			ctx->cli.artifacts, st.not_kept, st.failed);
}

/* Prints the report and writes the requested files. Returns the exit
 * code: the report's, or 3 when a file could not be written. */
static int main_report(struct main_ctx *ctx, struct report *rep)
{
	char err[1024];
	int code = report_exit_code(rep);

	fflush(stderr);
	report_print_console(rep, stdout, ctx->color);
	fflush(stdout);
	if (ctx->cli.junit != NULL &&
	    report_write_junit(rep, ctx->cli.junit, err, sizeof(err)) < 0) {
		main_error("%s", err);
		code = EXIT_INFRA;
	}
	if (ctx->cli.json != NULL &&
	    report_write_json(rep, ctx->cli.json, err, sizeof(err)) < 0) {
		main_error("%s", err);
		code = EXIT_INFRA;
	}
	if (ctx->cli.markdown != NULL &&
	    report_write_markdown(rep, ctx->cli.markdown, err, sizeof(err)) <
		0) {
		main_error("%s", err);
		code = EXIT_INFRA;
	}
	return code;
}

static enum follow_progress main_progress_mode(const struct main_ctx *ctx)
{
	if (ctx->cli.quiet)
		return FOLLOW_PROGRESS_NONE;
	return isatty(STDERR_FILENO) ? FOLLOW_PROGRESS_TTY
				     : FOLLOW_PROGRESS_PLAIN;
}

/* ---- run and submit ---------------------------------------------------- */

static double main_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The absolute, resolved form of dir (relative to base when relative).
 * NULL when it does not exist. */
static char *main_abs_dir(const char *base, const char *dir)
{
	char real[PATH_MAX];
	char *joined =
	    dir[0] == '/' ? xstrdup(dir) : xasprintf("%s/%s", base, dir);
	struct stat st;
	char *out = NULL;

	if (realpath(joined, real) != NULL && stat(real, &st) == 0 &&
	    S_ISDIR(st.st_mode))
		out = xstrdup(real);
	free(joined);
	return out;
}

/* Undoes main_plan_job. */
static void main_job_unplan(struct main_job *j)
{
	size_t t;

	for (t = 0; j->cmd_env != NULL && t < j->plan.ntasks; t++)
		command_env_free(j->cmd_env[t], j->cmd_nenv[t]);
	free(j->cmd_env);
	free(j->cmd_nenv);
	free(j->cmd_plans);
	shard_plan_release(&j->plan);
	free(j->est);
	j->cmd_env = NULL;
	j->cmd_nenv = NULL;
	j->cmd_plans = NULL;
	j->est = NULL;
	j->nknown = 0;
}

static void main_job_release(struct main_job *j)
{
	main_job_unplan(j);
	discover_result_release(&j->disc);
	free(j->cwd);
	free(j->mark_own);
	free(j->grep_invert);
}

/* The job's exclusions that --include leaves in force, joined: for pytest
 * "a or b", for Playwright "a|b" with the names' dots escaped (names are
 * [A-Za-z0-9_.-]+, so nothing else is special in a regular expression).
 * NULL when none is left. */
static char *main_exclusions(const struct cli *cli, const struct main_job *j,
			     int regex)
{
	struct buf b;
	size_t i, k, n = 0;

	if (cli->include_all)
		return NULL;
	buf_init(&b, 0);
	for (i = 0; i < j->nexcluded; i++) {
		const char *name = j->excluded[i];

		for (k = 0; k < cli->ninclude; k++)
			if (strcmp(cli->include[k], name) == 0)
				break;
		if (k < cli->ninclude)
			continue;
		if (n++ > 0)
			buf_appendstr(&b, regex ? "|" : " or ");
		for (k = 0; name[k] != '\0'; k++) {
			if (regex && name[k] == '.')
				buf_appendstr(&b, "\\");
			buf_append(&b, &name[k], 1);
		}
	}
	if (n == 0) {
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b, NULL);
}

/* Applies the exclusions (docs/config.md, "exclude"): pytest's -m becomes
 * "not (a or b)", or "(EXPR) and not (a or b)" with an -m of its own;
 * Playwright gets --grep-invert "@(?:a|b)(?![\w-])" -- a tag is "@NAME"
 * not followed by a letter, digit, "_" or "-". Discovery and the tasks
 * both use them. */
static void main_job_exclude(struct main_ctx *ctx, struct main_job *j)
{
	int pw = strcmp(j->runner, "playwright") == 0;
	char *names;

	if (!pw && strcmp(j->runner, "pytest") != 0)
		return;
	names = main_exclusions(&ctx->cli, j, pw);
	if (names == NULL)
		return;
	if (pw)
		j->grep_invert = xasprintf("@(?:%s)(?![\\w-])", names);
	else if (j->mark != NULL)
		j->mark_own = xasprintf("(%s) and not (%s)", j->mark, names);
	else
		j->mark_own = xasprintf("not (%s)", names);
	if (j->mark_own != NULL)
		j->mark = j->mark_own;
	free(names);
}

/* Every --include NAME must name something a selected pytest or
 * Playwright suite excludes: a typo must not pass silently. */
static int main_check_includes(const struct main_ctx *ctx,
			       const struct main_job *jobs, size_t njobs)
{
	const struct cli *cli = &ctx->cli;
	size_t i, k, x;

	for (i = 0; i < cli->ninclude; i++) {
		int found = 0;

		for (k = 0; k < njobs && !found; k++) {
			if (strcmp(jobs[k].runner, "pytest") != 0 &&
			    strcmp(jobs[k].runner, "playwright") != 0)
				continue;
			for (x = 0; x < jobs[k].nexcluded && !found; x++)
				found = strcmp(jobs[k].excluded[x],
					       cli->include[i]) == 0;
		}
		if (!found) {
			main_error("--include: \"%s\" is not excluded by any "
				   "selected suite (see exclude: in "
				   "docs/config.md)",
				   cli->include[i]);
			return EXIT_USAGE;
		}
	}
	return 0;
}

/* Fills the job's settings from a config suite (NULL = no config) and
 * the command line, command line first. */
static int main_job_settings(struct main_ctx *ctx, struct main_job *j,
			     const struct suite_conf *s)
{
	const struct cli *cli = &ctx->cli;

	j->runner = s != NULL ? (s->runner != NULL ? s->runner : "pytest")
		    : cli->runner != NULL ? cli->runner
					  : "pytest";
	if (strcmp(j->runner, "pytest") == 0) {
		j->mark = cli->mark != NULL ? cli->mark : s ? s->mark : NULL;
		j->kexpr = cli->kexpr != NULL ? cli->kexpr
			   : s		      ? s->kexpr
					      : NULL;
	} else if (strcmp(j->runner, "playwright") == 0) {
		j->grep = cli->grep != NULL ? cli->grep : s ? s->grep : NULL;
	} else if (strcmp(j->runner, "command") == 0 && s != NULL) {
		j->command = s->command;
		j->ncommand = s->ncommand;
	} else {
		main_error("suite %s: unknown runner %s", j->suite, j->runner);
		return EXIT_USAGE;
	}
	if (cli->timeout_s >= 0)
		j->timeout_s = (unsigned)cli->timeout_s;
	else if (s != NULL && s->timeout_s > 0)
		j->timeout_s = s->timeout_s;
	else if (ctx->have_conf)
		j->timeout_s = ctx->conf.timeout_s;
	if (cli->retries >= 0)
		j->reruns = (unsigned)cli->retries;
	else if (s != NULL && s->retries >= 0)
		j->reruns = (unsigned)s->retries;
	else if (ctx->have_conf && ctx->conf.retries > 0)
		j->reruns = (unsigned)ctx->conf.retries;
	j->shard = cli->shard;
	if (j->shard == NULL && s != NULL)
		j->shard = s->shard;
	if (j->shard == NULL && ctx->have_conf)
		j->shard = ctx->conf.shard;
	if (j->shard == NULL)
		j->shard = "auto";
	j->queue = s != NULL && s->queue != NULL       ? s->queue
		   : ctx->have_conf && ctx->conf.queue ? ctx->conf.queue
						       : "default";
	if (s != NULL) {
		j->cwd =
		    main_abs_dir(ctx->conf_dir, s->cwd != NULL ? s->cwd : ".");
		if (j->cwd == NULL) {
			main_error("%s: suites.%s.cwd: no such directory: %s",
				   ctx->conf.path ? ctx->conf.path : "config",
				   s->name, s->cwd ? s->cwd : ".");
			return EXIT_USAGE;
		}
		j->paths = s->paths;
		j->npaths = s->npaths;
		j->env = s->env;
		j->nenv = s->nenv;
		j->excluded =
		    config_suite_exclude(&ctx->conf, s, &j->nexcluded);
	}
	main_job_exclude(ctx, j);
	return 0;
}

/* Adds (suite, phase) unless already there. */
static int main_add_job(struct main_ctx *ctx, struct main_job **jobs, size_t *n,
			const struct suite_conf *s, const char *phase)
{
	size_t i;
	int rc;

	for (i = 0; i < *n; i++)
		if (strcmp((*jobs)[i].suite, s->name) == 0)
			return 0;
	*jobs = xreallocarray(*jobs, *n + 1, sizeof(**jobs));
	memset(&(*jobs)[*n], 0, sizeof(**jobs));
	(*jobs)[*n].suite = s->name;
	(*jobs)[*n].phase = phase;
	rc = main_job_settings(ctx, &(*jobs)[*n], s);
	(*n)++;
	return rc;
}

/* The jobs a run consists of. Without a config: one, over the positional
 * paths. With one: the suites of the named phases and the named suites,
 * or of every phase when none is named. */
static int main_plan_jobs(struct main_ctx *ctx, struct main_job **jobs,
			  size_t *njobs)
{
	const struct config *conf = &ctx->conf;
	const struct cli *cli = &ctx->cli;
	size_t i, k, p;
	int rc;

	*jobs = NULL;
	*njobs = 0;
	if (!ctx->have_conf) {
		if (cli->phase != NULL) {
			main_error("--phase needs a config file (-c FILE or "
				   "./testfleet.yaml)");
			return EXIT_USAGE;
		}
		*jobs = xcalloc(1, sizeof(**jobs));
		*njobs = 1;
		(*jobs)->suite = "default";
		(*jobs)->phase = "default";
		(*jobs)->cwd = xstrdup(ctx->cwd);
		(*jobs)->paths = cli->args;
		(*jobs)->npaths = cli->nargs;
		return main_job_settings(ctx, *jobs, NULL);
	}
	if (cli->phase != NULL && config_phase(conf, cli->phase) == NULL) {
		main_error("unknown phase %s in %s", cli->phase,
			   conf->path ? conf->path : "the config");
		return EXIT_USAGE;
	}
	for (i = 0; i < cli->nargs; i++) {
		if (config_phase(conf, cli->args[i]) == NULL &&
		    config_suite(conf, cli->args[i]) == NULL) {
			main_error("unknown suite or phase %s in %s",
				   cli->args[i],
				   conf->path ? conf->path : "the config");
			return EXIT_USAGE;
		}
	}
	/* Phase order decides job order; a suite runs in the first selected
	 * phase that lists it. */
	for (p = 0; p < conf->nphases; p++) {
		const struct phase_conf *ph = &conf->phases[p];
		int whole = cli->nargs == 0 && cli->phase == NULL;

		if (cli->phase != NULL && strcmp(cli->phase, ph->name) == 0)
			whole = 1;
		for (i = 0; i < cli->nargs; i++)
			if (strcmp(cli->args[i], ph->name) == 0)
				whole = 1;
		for (k = 0; k < ph->nsuites; k++) {
			const struct suite_conf *s =
			    config_suite(conf, ph->suites[k]);
			int want = whole;

			for (i = 0; i < cli->nargs && !want; i++)
				want = strcmp(cli->args[i], ph->suites[k]) == 0;
			if (!want || s == NULL)
				continue;
			rc = main_add_job(ctx, jobs, njobs, s, ph->name);
			if (rc != 0)
				return rc;
		}
	}
	/* A named suite that no phase lists runs in phase "default". */
	for (i = 0; i < cli->nargs; i++) {
		const struct suite_conf *s = config_suite(conf, cli->args[i]);

		if (s == NULL)
			continue;
		rc = main_add_job(ctx, jobs, njobs, s, "default");
		if (rc != 0)
			return rc;
	}
	if (*njobs == 0) {
		main_error("no suites selected in %s",
			   conf->path ? conf->path : "the config");
		return EXIT_USAGE;
	}
	return 0;
}

/* Every path or node id must name something that exists (pytest would
 * say "file or directory not found" with exit 4). */
static int main_check_paths(const struct main_job *j)
{
	size_t i;

	/* Playwright's arguments are file patterns (regular expressions),
	 * not paths: Playwright says when none matches. */
	for (i = 0; strcmp(j->runner, "playwright") == 0 && i < j->npaths;
	     i++) {
		if (j->paths[i][0] == '-' || j->paths[i][0] == '\0') {
			main_error("bad playwright test filter \"%s\"",
				   j->paths[i]);
			return EXIT_USAGE;
		}
	}
	if (strcmp(j->runner, "pytest") != 0)
		return 0;
	for (i = 0; i < j->npaths; i++) {
		const char *p = j->paths[i];
		const char *sep = strstr(p, "::");
		size_t len = sep ? (size_t)(sep - p) : strlen(p);
		char *file = xstrndup(p, len);
		char *full = file[0] == '/' ? xstrdup(file)
					    : xasprintf("%s/%s", j->cwd, file);
		struct stat st;
		int ok = len > 0 && stat(full, &st) == 0;

		free(full);
		free(file);
		if (!ok) {
			main_error("no such file or directory: %s", p);
			return EXIT_USAGE;
		}
	}
	return 0;
}

/* The tests of a job that is not pytest's: Playwright's listing, or a
 * command suite's one id per task. */
static enum discover_status main_discover_other(struct main_ctx *ctx,
						struct main_job *j)
{
	struct playwright_opts po;
	struct shard_mode mode;
	char err[256];

	if (strcmp(j->runner, "command") == 0) {
		unsigned n = 1;

		if (shard_mode_parse(j->shard, &mode, err, sizeof(err)) == 0 &&
		    mode.kind == SHARD_COUNT)
			n = mode.count;
		memset(&j->disc, 0, sizeof(j->disc));
		j->disc.ids = command_ids(j->suite, n);
		j->disc.nids = n;
		j->disc.root = xstrdup(j->cwd);
		j->disc.status = DISCOVER_OK;
		return DISCOVER_OK;
	}
	memset(&po, 0, sizeof(po));
	po.cmd = ctx->playwright_str;
	po.cwd = j->cwd;
	po.grep = j->grep;
	po.grep_invert = j->grep_invert;
	po.paths = j->paths;
	po.npaths = j->npaths;
	po.env = j->env;
	po.nenv = j->nenv;
	po.stop = &main_stop;
	return playwright_discover(&po, &j->disc);
}

static void main_discover_opts(const struct main_ctx *ctx,
			       const struct main_job *j,
			       struct discover_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->pytest = ctx->pytest;
	o->cwd = j->cwd;
	o->mark = j->mark;
	o->kexpr = j->kexpr;
	o->paths = j->paths;
	o->npaths = j->npaths;
	o->env = j->env;
	o->nenv = j->nenv;
	o->stop = &main_stop;
}

/* What a collection that did not give ids means for the user: the error
 * and pytest's own lines on stderr, and the exit status. */
static int main_discover_failed(const struct main_ctx *ctx,
				const struct main_job *j)
{
	if (j->disc.status == DISCOVER_STOPPED) {
		main_error("interrupted");
		return EXIT_CANCELLED;
	}
	if (ctx->have_conf)
		main_error("suite %s: %s", j->suite, j->disc.message);
	else
		main_error("%s", j->disc.message);
	if (j->disc.details != NULL)
		fputs(j->disc.details, stderr);
	return j->disc.status == DISCOVER_FAILED ? EXIT_INFRA : EXIT_USAGE;
}

static int main_discover(struct main_ctx *ctx, struct main_job *j)
{
	struct discover_opts o;

	main_discover_opts(ctx, j, &o);
	if (strcmp(j->runner, "pytest") == 0)
		discover_run(&o, &j->disc);
	else
		main_discover_other(ctx, j);
	if (j->disc.status != DISCOVER_OK)
		return main_discover_failed(ctx, j);
	log_debug("suite %s: %zu tests collected in %s (ids relative to %s)",
		  j->suite, j->disc.nids, j->cwd, j->disc.root);
	return 0;
}

/* ---- starting from the last collection (collected.h) ------------------ */

/* The nice value of the collection beside the run (main_recollect_thread). */
#define MAIN_RECOLLECT_NICE 10

/* The collection running beside a run queued from the last one. */
struct main_recollect {
	const struct main_ctx *ctx;
	struct main_job *jobs;
	size_t njobs;
	struct discover_result *fresh; /* per job */
	pthread_t thread;
	int running;
};

static char *main_collected_key(const struct main_ctx *ctx,
				const struct main_job *j)
{
	struct discover_opts o;

	main_discover_opts(ctx, j, &o);
	return collected_key(ctx->prefix, j->runner, &o);
}

/* Keeps each pytest suite's collection for the next run -- or, when the
 * kept one proved right (renew), only renews its TTL instead of writing
 * the same list again. A failure is only a warning (the next run then
 * waits for its collection). */
static void main_keep_collections(const struct main_ctx *ctx,
				  redisContext *c, const struct main_job *jobs,
				  size_t njobs, int renew)
{
	char err[1024];
	size_t i;

	for (i = 0; c != NULL && i < njobs; i++) {
		char *key;
		int rc;

		if (strcmp(jobs[i].runner, "pytest") != 0 ||
		    jobs[i].disc.status != DISCOVER_OK)
			continue;
		key = main_collected_key(ctx, &jobs[i]);
		rc = renew ? collected_touch(c, key, err, sizeof(err))
			   : collected_store(c, key, &jobs[i].disc, err,
					     sizeof(err));
		if (rc < 0)
			log_warn("suite %s: collection not kept: %s",
				 jobs[i].suite, err);
		free(key);
	}
}

static void *main_recollect_thread(void *arg)
{
	struct main_recollect *r = arg;
	struct discover_opts o;
	size_t i;

	/* Behind the run's first tasks for the CPU, which their start-ups
	 * need at the same moment: Linux keeps a nice value per thread, and
	 * the collection inherits this one's. Not idle-only: under tests
	 * that keep every CPU busy it still gets a share. */
	if (setpriority(PRIO_PROCESS, (id_t)gettid(), MAIN_RECOLLECT_NICE) <
	    0)
		log_debug("collection beside the run: setpriority: %s",
			  strerror(errno));
	for (i = 0; i < r->njobs; i++) {
		main_discover_opts(r->ctx, &r->jobs[i], &o);
		discover_run(&o, &r->fresh[i]);
	}
	return NULL;
}

/* With Redis, every suite a pytest one and each with a kept collection
 * (and neither --dry-run nor --fresh-collection): fills the jobs' disc
 * from the kept ones, starts collecting afresh beside the run and
 * returns 1. Else 0, and the jobs are collected as usual. */
static int main_speculate(const struct main_ctx *ctx, redisContext *c,
			  struct main_job *jobs, size_t njobs,
			  struct main_recollect *r)
{
	char err[1024];
	size_t i;
	int e;

	memset(r, 0, sizeof(*r));
	if (c == NULL || njobs == 0 || ctx->cli.dry_run ||
	    ctx->cli.fresh_collection)
		return 0;
	for (i = 0; i < njobs; i++) {
		if (strcmp(jobs[i].runner, "pytest") != 0)
			return 0;
	}
	r->fresh = xcalloc(njobs, sizeof(*r->fresh));
	for (i = 0; i < njobs; i++) {
		char *key = main_collected_key(ctx, &jobs[i]);
		int got = collected_load(c, key, &r->fresh[i], err,
					 sizeof(err));

		if (got < 0)
			log_warn("suite %s: last collection not read: %s",
				 jobs[i].suite, err);
		free(key);
		if (got <= 0)
			goto none;
	}
	r->ctx = ctx;
	r->jobs = jobs;
	r->njobs = njobs;
	for (i = 0; i < njobs; i++) {
		jobs[i].disc = r->fresh[i];
		memset(&r->fresh[i], 0, sizeof(r->fresh[i]));
		log_debug("suite %s: starting from its last collection (%zu "
			  "tests) while collecting again",
			  jobs[i].suite, jobs[i].disc.nids);
	}
	e = pthread_create(&r->thread, NULL, main_recollect_thread, r);
	if (e != 0) {
		log_warn("cannot collect beside the run: %s", strerror(e));
		for (i = 0; i < njobs; i++)
			discover_result_release(&jobs[i].disc);
		goto none;
	}
	r->running = 1;
	return 1;
none:
	for (i = 0; i < njobs; i++)
		discover_result_release(&r->fresh[i]);
	free(r->fresh);
	memset(r, 0, sizeof(*r));
	return 0;
}

/* Waits for the fresh collection. Returns 1 when every suite's is the
 * one the run was queued from, else 0 (r->fresh then holds them). */
static int main_recollect_join(struct main_recollect *r)
{
	size_t i;
	int same = 1;

	if (!r->running)
		return 1;
	pthread_join(r->thread, NULL);
	r->running = 0;
	for (i = 0; i < r->njobs; i++) {
		if (!collected_same(&r->jobs[i].disc, &r->fresh[i]))
			same = 0;
	}
	return same;
}

static void main_recollect_release(struct main_recollect *r)
{
	size_t i;

	if (r->running) {
		pthread_join(r->thread, NULL);
		r->running = 0;
	}
	for (i = 0; r->fresh != NULL && i < r->njobs; i++)
		discover_result_release(&r->fresh[i]);
	free(r->fresh);
	memset(r, 0, sizeof(*r));
}

/* Once the run queued from the last collection is created: waits for the
 * fresh one. Returns 0 when they agree (the run goes on), -1 when the
 * tests changed -- run cancelled, the jobs given the fresh ids to plan
 * again -- or an exit status when the fresh collection failed (run
 * cancelled, the error said). */
static int main_recollected(const struct main_ctx *ctx, redisContext *c,
			    struct main_recollect *r, struct main_job *jobs,
			    size_t njobs, const char *run)
{
	const char *why = "superseded";
	char err[1024];
	size_t i, before = 0, now = 0;

	if (main_recollect_join(r)) {
		main_keep_collections(ctx, c, jobs, njobs, 1);
		return 0;
	}
	for (i = 0; i < njobs; i++) {
		before += jobs[i].disc.nids;
		now += r->fresh[i].nids;
		if (r->fresh[i].status == DISCOVER_STOPPED)
			why = "interrupted";
		else if (r->fresh[i].status != DISCOVER_OK &&
			 strcmp(why, "superseded") == 0)
			why = "collection-failed";
	}
	if (run_cancel(c, ctx->prefix, run, why, err, sizeof(err)) < 0)
		log_warn("run %s not cancelled: %s", run, err);
	for (i = 0; i < njobs; i++) {
		discover_result_release(&jobs[i].disc);
		jobs[i].disc = r->fresh[i];
		memset(&r->fresh[i], 0, sizeof(r->fresh[i]));
	}
	for (i = 0; i < njobs; i++) {
		if (jobs[i].disc.status != DISCOVER_OK)
			return main_discover_failed(ctx, &jobs[i]);
	}
	/* Even with -q: a cancelled run of its own is news. */
	fprintf(stderr,
		"testfleet: the tests changed since the last collection (%zu "
		"then, %zu now): run %s cancelled, queued again\n",
		before, now, run);
	main_keep_collections(ctx, c, jobs, njobs, 0);
	return -1;
}

static unsigned main_cpu_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (unsigned)n : 1;
}

static unsigned main_slots(const struct main_ctx *ctx)
{
	if (ctx->cli.workers > 0)
		return (unsigned)ctx->cli.workers;
	if (ctx->have_conf && ctx->conf.workers > 0)
		return ctx->conf.workers;
	return main_cpu_count();
}

/* The live workers' slots and start gates behind each of the nq queues
 * (queues_capacity), read once for the plan; zeros where no worker says
 * or Redis could not be read. */
static void main_read_caps(const struct main_ctx *ctx, redisContext *c,
			   char *const *queues, size_t nq, unsigned *slots,
			   unsigned *gate)
{
	char err[512];
	size_t i;

	for (i = 0; i < nq; i++) {
		slots[i] = gate[i] = 0;
		if (c != NULL &&
		    queues_capacity(c, ctx->prefix, queues[i], main_now(),
				    &slots[i], &gate[i], err, sizeof(err)) < 0)
			log_debug("queue %s: worker capacity not read: %s",
				  queues[i], err);
	}
}

/* Without -w or defaults.workers, a run on a fleet is planned for the
 * slots its live workers have (the largest of the run's queues), rather
 * than for this machine's CPUs; fallback when no worker says. */
static unsigned main_fleet_slots(const struct main_ctx *ctx,
				 const unsigned *slots, size_t nq,
				 unsigned fallback)
{
	unsigned best = 0;
	size_t i;

	if (ctx->cli.workers > 0 || (ctx->have_conf && ctx->conf.workers > 0))
		return fallback;
	for (i = 0; i < nq; i++)
		if (slots[i] > best)
			best = slots[i];
	return best > 0 ? best : fallback;
}

/* The distinct queues of the jobs (borrowed strings). */
static char **main_queues(const struct main_job *jobs, size_t n, size_t *nq)
{
	char **q = xcalloc(n + 1, sizeof(*q));
	size_t i, k, cnt = 0;

	for (i = 0; i < n; i++) {
		int dup = 0;

		for (k = 0; k < cnt; k++)
			dup |= strcmp(q[k], jobs[i].queue) == 0;
		if (!dup)
			q[cnt++] = (char *)jobs[i].queue;
	}
	*nq = cnt;
	return q;
}

/* The phases that have jobs, in order, with their settings. */
static struct run_phase_decl *main_phases(const struct main_ctx *ctx,
					  const struct main_job *jobs, size_t n,
					  size_t *np)
{
	struct run_phase_decl *v = xcalloc(n + 1, sizeof(*v));
	size_t i, k, cnt = 0;

	for (i = 0; i < n; i++) {
		const struct phase_conf *ph =
		    ctx->have_conf ? config_phase(&ctx->conf, jobs[i].phase)
				   : NULL;
		int dup = 0;

		for (k = 0; k < cnt; k++)
			dup |= strcmp(v[k].name, jobs[i].phase) == 0;
		if (dup)
			continue;
		v[cnt].name = jobs[i].phase;
		v[cnt].required = ph != NULL ? ph->required : 1;
		v[cnt].sequential = ph != NULL && !ph->parallel;
		v[cnt].timeout_s = ph != NULL ? ph->timeout_s : 0;
		cnt++;
	}
	*np = cnt;
	return v;
}

/* One line on stderr saying why a run was cancelled, from the reason of
 * its "end" entry (or of its hash): "run cancelled by testfleet cancel",
 * "run cancelled (max-failures: 5 tests failed)". */
static void main_say_cancelled(const char *reason, const struct run_info *ri)
{
	const char *limit = run_info_get(ri, "run_timeout");

	if (reason == NULL || reason[0] == '\0')
		reason = run_info_get(ri, "reason");
	if (reason == NULL || reason[0] == '\0')
		main_error("run cancelled");
	else if (strcmp(reason, "cancelled") == 0)
		main_error("run cancelled by testfleet cancel");
	else if (strncmp(reason, "max-failures", 12) == 0 ||
		 strncmp(reason, "max failures", 12) == 0)
		main_error("run cancelled (max-failures: %u test%s failed)",
			   ri->tests_failed, ri->tests_failed == 1 ? "" : "s");
	else if (strcmp(reason, "run-timeout") == 0)
		main_error("run cancelled (run-timeout: %ss passed)",
			   limit != NULL ? limit : "?");
	else
		main_error("run cancelled (%s)", reason);
}

/* Whether the run ended cancelled: its "end" entry gives a reason, or the
 * hash says so. */
static int main_is_cancelled(const struct follow_ending *e,
			     const struct run_info *ri)
{
	return (e->ended && e->reason[0] != '\0') ||
	       (ri->status != NULL && strcmp(ri->status, "cancelled") == 0);
}

static unsigned main_field_uint(const struct run_info *ri, const char *field)
{
	const char *v = run_info_get(ri, field);
	char *end;
	unsigned long n;

	if (v == NULL)
		return 0;
	n = strtoul(v, &end, 10);
	return end == v || *end != '\0' || n > UINT_MAX ? 0 : (unsigned)n;
}

/* A non-negative number field of the run hash; 0 when absent or bad (a
 * run made before the field existed). */
static double main_field_double(const struct run_info *ri, const char *field)
{
	const char *v = run_info_get(ri, field);
	char *end;
	double d;

	if (v == NULL)
		return 0;
	d = strtod(v, &end);
	return end == v || *end != '\0' || !(d >= 0 && d < 1e9) ? 0 : d;
}

/* After a run has ended (or a local run was interrupted): folds its
 * durations into the history (once per run) and lets its keys expire.
 * Failures are warnings (debug messages when quiet_errors: `report` may
 * run with a read-only Redis user); the report does not depend on them. */
static void main_remember(const struct main_ctx *ctx, redisContext *c,
			  const char *run, const struct run_info *ri,
			  const struct report *rep, int quiet_errors)
{
	char err[1024];
	long n;

	n = history_record_run(c, ctx->prefix, run,
			       run_info_get(ri, HISTORY_RUN_FIELD), rep,
			       (long long)time(NULL), err, sizeof(err));
	if (n < 0)
		log_msg(quiet_errors ? LOG_DEBUG : LOG_WARN,
			"duration history not updated: %s", err);
	else if (n > 0)
		log_debug("duration history: %ld test%s of run %s recorded", n,
			  n == 1 ? "" : "s", run);
	if (run_expire(c, ctx->prefix, run, RUN_RETENTION_S, err, sizeof(err)) <
	    0)
		log_msg(quiet_errors ? LOG_DEBUG : LOG_WARN,
			"run %s will not expire: %s", run, err);
}

/* Called by the queue watch while a run is followed. */
static void main_on_stuck_queue(void *arg, const char *queue, double waited_s)
{
	(void)arg;
	if (isatty(STDERR_FILENO))
		fputs("\r\033[K", stderr); /* over the progress line */
	log_warn("tasks have waited %.0fs in queue %s and no live worker "
		 "serves it (testfleet-worker --queue %s)",
		 waited_s, queue, queue);
}

/* The follow-and-report half of run, shared with watch. Returns the exit
 * code. lm is the local mode instance (NULL when remote); it is torn down
 * here, after the history is saved and before the report is printed. */
static int main_follow(struct main_ctx *ctx, redisContext **c, const char *run,
		       struct localmode **lm)
{
	struct run_info ri, fin;
	struct follow_opts fo;
	struct follow_ending ending;
	struct run_estimates est;
	struct aggregator *agg = NULL;
	struct report *rep = NULL;
	struct queue_watch *qw = NULL;
	enum follow_end end;
	const struct run_info *last = NULL;
	unsigned run_timeout;
	char err[1024];
	int rc, code = EXIT_INFRA, have_fin = 0, cancelled = 0;

	memset(&fin, 0, sizeof(fin));
	memset(&est, 0, sizeof(est));
	rc = run_load(*c, ctx->prefix, run, &ri, err, sizeof(err));
	if (rc != 0) {
		if (rc > 0) {
			main_error("unknown run %s", run);
			code = EXIT_USAGE;
		} else {
			main_error("%s", err);
		}
		goto out_noinfo;
	}
	agg = aggregator_new(run);
	run_info_declare(&ri, agg);
	/* Without estimates the progress line simply shows no time left. */
	if (run_load_estimates(*c, ctx->prefix, run, &est, err, sizeof(err)) <
	    0)
		log_debug("no estimates for the progress line: %s", err);
	memset(&fo, 0, sizeof(fo));
	fo.prefix = ctx->prefix;
	fo.run = run;
	fo.url = &ctx->url;
	fo.timeout_ms = MAIN_TIMEOUT_MS;
	/* Phases queue their tasks as they start: the plan's count. */
	fo.tasks_total = main_field_uint(&ri, "tasks_planned") > 0
			     ? main_field_uint(&ri, "tasks_planned")
			     : ri.tasks_total;
	fo.tests_total = ri.tests_total;
	fo.progress = main_progress_mode(ctx);
	fo.progress_out = stderr;
	fo.stop = &main_stop;
	fo.estimates = &est;
	fo.slots = main_field_uint(&ri, "slots");
	fo.startup_s = main_field_double(&ri, "startup_s");
	/* Whoever follows the run enforces its run timeout (submit stored
	 * it; the cancel script makes a second cancel a no-op). */
	run_timeout = main_field_uint(&ri, "run_timeout");
	if (run_timeout > 0 && ri.created_at > 0)
		fo.deadline = ri.created_at + run_timeout;
	if (*lm != NULL) {
		fo.check = localmode_check;
		fo.check_arg = *lm;
	} else {
		/* The local worker serves every queue of a local run; with
		 * a shared Redis, say when a queue waits for nobody. */
		qw =
		    queue_watch_new(c, ctx->prefix, run_info_get(&ri, "queues"),
				    main_on_stuck_queue, NULL);
		fo.check = queue_watch_check;
		fo.check_arg = qw;
	}
	end = follow_run(c, &fo, agg, &ending, err, sizeof(err));
	if (end == FOLLOW_STOPPED && *lm != NULL) {
		/* Ctrl-C in local mode: cancel the run in Redis first, so the
		 * local worker kills its tasks at once, then read back
		 * everything that landed before the cancel. */
		char why[512];
		struct aggregator *all;

		if (run_cancel(*c, ctx->prefix, run, "interrupted", why,
			       sizeof(why)) < 0) {
			main_error("%s", why);
		} else {
			all = aggregator_new(run);
			run_info_declare(&ri, all);
			if (follow_replay(*c, ctx->prefix, run, all, &ending,
					  why, sizeof(why)) == 0) {
				aggregator_free(agg);
				agg = all;
			} else {
				main_error("%s", why);
				aggregator_free(all);
			}
		}
	}
	/* The hash as it ended (status, reason, counters), while Redis is
	 * still there. */
	if (end == FOLLOW_DONE &&
	    run_load(*c, ctx->prefix, run, &fin, err, sizeof(err)) == 0)
		have_fin = 1;
	last = have_fin ? &fin : &ri;
	/* The hash as the run ended: every task queued, phases timed out. */
	if (have_fin)
		run_info_declare(&fin, agg);
	/* The report, and what the next run learns from it, before local
	 * mode (and its Redis) goes away. */
	if (end == FOLLOW_DONE || (end == FOLLOW_STOPPED && *lm != NULL)) {
		if (end == FOLLOW_STOPPED) {
			aggregator_set_cancelled(agg);
		} else if (main_is_cancelled(&ending, last)) {
			aggregator_set_cancelled(agg);
			cancelled = 1;
		}
		aggregator_set_times(agg, ri.created_at,
				     ending.at > 0 ? ending.at
						   : last->finished_at);
		rep = aggregator_report(agg);
		main_remember(ctx, *c, run, last, rep, 0);
	}
	main_fetch(ctx, *c, rep);
	/* Local mode ends here, whatever happened, before any output. */
	localmode_stop(*lm);
	*lm = NULL;
	switch (end) {
	case FOLLOW_DONE:
		break;
	case FOLLOW_STOPPED:
		if (qw != NULL) {
			main_error("interrupted; run %s goes on (testfleet "
				   "watch %s, testfleet status %s)",
				   run, run, run);
			code = EXIT_CANCELLED;
			goto out;
		}
		main_error("interrupted; local run %s cancelled", run);
		break;
	case FOLLOW_ERROR:
		main_error("%s", err);
		code = EXIT_INFRA;
		goto out;
	}
	if (cancelled)
		main_say_cancelled(ending.reason, last);
	code = main_report(ctx, rep);
	if (end == FOLLOW_STOPPED)
		code = EXIT_CANCELLED;
out:
	queue_watch_free(qw);
	if (rep != NULL)
		report_free(rep);
	aggregator_free(agg);
	if (have_fin)
		run_info_release(&fin);
	run_info_release(&ri);
out_noinfo:
	run_estimates_release(&est);
	return code;
}

/* The run policy: the config's retry section, then the command line. */
static int main_policy(const struct main_ctx *ctx, struct policy *p)
{
	const struct cli *cli = &ctx->cli;
	const struct retry_conf *rc = &ctx->conf.retry;
	const char *file = ctx->conf.path ? ctx->conf.path : "config";
	char err[256];

	policy_init(p);
	if (ctx->have_conf) {
		if (rc->max_attempts > 0)
			p->max_attempts = (uint32_t)rc->max_attempts;
		if (rc->has_transient &&
		    policy_set_transient(p, rc->transient, rc->ntransient, err,
					 sizeof(err)) < 0) {
			main_error("%s: retry.transient: %s", file, err);
			return EXIT_USAGE;
		}
		if (policy_add_transient(p, rc->transient_extra,
					 rc->ntransient_extra, err,
					 sizeof(err)) < 0) {
			main_error("%s: retry.transient_extra: %s", file, err);
			return EXIT_USAGE;
		}
		if (rc->backoff_base_ms >= 0)
			p->backoff_base_ms = (uint32_t)rc->backoff_base_ms;
		if (rc->backoff_cap_ms >= 0)
			p->backoff_cap_ms = (uint32_t)rc->backoff_cap_ms;
		/* A base above the default cap raises the cap with it. */
		if (p->backoff_cap_ms < p->backoff_base_ms)
			p->backoff_cap_ms = p->backoff_base_ms;
		if (ctx->conf.retries > 0)
			p->retries = (uint32_t)ctx->conf.retries;
	}
	if (cli->max_attempts > 0)
		p->max_attempts = (uint32_t)cli->max_attempts;
	if (cli->retries >= 0)
		p->retries = (uint32_t)cli->retries;
	if (cli->max_failures >= 0)
		p->max_failures = (uint32_t)cli->max_failures;
	return 0;
}

/* The cache folder of local mode: <project root>/.testfleet, the project
 * root being the config file's directory, else the first suite's rootdir.
 * NULL with --no-cache; NULL with a warning when it cannot be created (the
 * run goes on without it); a dry run only reads an existing cache (NULL
 * when there is none). Caller frees. */
static char *main_cache_dir(const struct main_ctx *ctx,
			    const struct main_job *jobs, int create)
{
	const char *root = ctx->have_conf ? ctx->conf_dir : jobs[0].disc.root;
	char err[PATH_MAX + 256];
	char *dir, *file;

	if (ctx->cli.no_cache)
		return NULL;
	dir = localmode_cache_dir(root, create, err, sizeof(err));
	if (dir == NULL) {
		if (create)
			log_warn("no cache, so no duration history: %s", err);
		return NULL;
	}
	if (!create) {
		file = xasprintf("%s/%s", dir, LOCALMODE_CACHE_FILE);
		if (access(file, R_OK) != 0) {
			free(dir);
			dir = NULL;
		}
		free(file);
	}
	return dir;
}

/* Starts local mode (no_worker: only redis-server, to read the cache)
 * and connects to it. Returns an exit code (0 = fine). */
static int main_start_local(struct main_ctx *ctx, char **queues, size_t nq,
			    unsigned slots, const char *cache, int no_worker,
			    int allow_command, struct localmode **lm,
			    redisContext **c)
{
	struct localmode_opts lo;
	enum localmode_error why;
	char err[1024];
	int code;

	memset(&lo, 0, sizeof(lo));
	lo.slots = slots;
	lo.prefix = ctx->prefix;
	lo.pytest = ctx->pytest_str;
	lo.playwright = ctx->playwright_str;
	lo.allow_command = allow_command;
	lo.queues = queues;
	lo.nqueues = nq;
	lo.verbose = ctx->cli.verbose > 0;
	lo.stop = &main_stop;
	lo.cache_dir = cache;
	lo.no_worker = no_worker;
	*lm = localmode_start(&lo, &why, err, sizeof(err));
	if (*lm == NULL) {
		main_error("%s", err);
		return why == LOCALMODE_STOPPED ? EXIT_CANCELLED : EXIT_INFRA;
	}
	if (cache != NULL)
		log_debug("local mode: cache in %s", cache);
	if (redis_url_parse(localmode_url(*lm), &ctx->url, err, sizeof(err)) <
	    0) {
		main_error("%s", err);
		return EXIT_INFRA;
	}
	ctx->have_url = 1;
	*c = main_connect(ctx, &code);
	return *c == NULL ? code : 0;
}

/* How many of the job's tasks the fleet starts at once (the live
 * workers' start gates of its queue, from main_read_caps; docs/scheduling.md
 * "Start gate"): 0 when none says; in local mode, without its worker's
 * heartbeat yet, the CPUs here (that worker's default). */
static unsigned main_job_gate(const struct main_ctx *ctx,
			      const struct main_job *j, char *const *queues,
			      const unsigned *gates, size_t nq)
{
	unsigned gate = 0;
	size_t i;

	if (j->runner == NULL || strcmp(j->runner, "command") == 0)
		return 0; /* not gated */
	for (i = 0; i < nq; i++)
		if (strcmp(queues[i], j->queue) == 0)
			gate = gates[i];
	if (gate == 0 && !ctx->have_url)
		gate = usable_cpus();
	log_debug("suite %s: the fleet starts %u runners at once", j->suite,
		  gate);
	return gate;
}

/* Reads the job's estimates from the history (c NULL: none) and shards
 * it. A history that cannot be read is a warning: the run goes on with
 * unknown durations. */
static void main_plan_job(const struct main_ctx *ctx, redisContext *c,
			  struct main_job *j, unsigned slots, unsigned gate)
{
	struct shard_mode mode;
	char err[1024];
	size_t i;

	history_fingerprint(j->runner, j->disc.root, j->suite, j->fp);
	j->est = xcalloc(j->disc.nids, sizeof(*j->est));
	for (i = 0; i < j->disc.nids; i++)
		j->est[i] = -1;
	memset(&j->startup, 0, sizeof(j->startup));
	j->startup.default_s = shard_startup_default(j->runner);
	if (c != NULL) {
		char *key = history_key(ctx->prefix, j->suite, j->fp);
		long known = history_load(c, key, j->disc.ids, j->disc.nids,
					  j->est, err, sizeof(err));

		if (known < 0)
			log_warn("suite %s: duration history not read: %s",
				 j->suite, err);
		else
			j->nknown = (size_t)known;
		if (known >= 0 && history_startup_load(c, key, &j->startup, err,
						       sizeof(err)) < 0)
			log_warn("suite %s: start-up history not read: %s",
				 j->suite, err);
		free(key);
		j->startup.gate = gate;
	}
	j->unknown_s = shard_unknown_estimate(j->est, j->disc.nids, NULL);
	log_debug("suite %s: history %s:durations:%s:%s knows %zu of %zu "
		  "tests; the others count %.3fs each",
		  j->suite, ctx->prefix, j->suite, j->fp, j->nknown,
		  j->disc.nids, j->unknown_s);
	shard_mode_parse(j->shard, &mode, err, sizeof(err));
	if (strcmp(j->runner, "command") == 0)
		mode.kind = SHARD_TEST; /* one task per shard */
	shard_plan_build_with(j->disc.ids, j->est, j->disc.nids, slots, mode,
			      &j->startup, &j->plan);
	if (strcmp(j->runner, "command") == 0) {
		size_t t;

		j->cmd_plans = xcalloc(j->plan.ntasks, sizeof(*j->cmd_plans));
		j->cmd_env = xcalloc(j->plan.ntasks, sizeof(*j->cmd_env));
		j->cmd_nenv = xcalloc(j->plan.ntasks, sizeof(*j->cmd_nenv));
		for (t = 0; t < j->plan.ntasks; t++) {
			j->cmd_plans[t].tasks = &j->plan.tasks[t];
			j->cmd_plans[t].ntasks = 1;
			j->cmd_env[t] = command_env(
			    j->env, j->nenv,
			    (unsigned)j->plan.tasks[t].tests[0],
			    (unsigned)j->disc.nids, &j->cmd_nenv[t]);
		}
	}
}

/* The estimated wall time of every job's tasks, in queue order. */
static double main_eta(const struct main_job *jobs, size_t njobs,
		       unsigned slots)
{
	size_t n = 0, k = 0, i, t;
	double *v, *up, eta;

	for (i = 0; i < njobs; i++)
		n += jobs[i].plan.ntasks;
	v = xcalloc(n ? n : 1, sizeof(*v));
	up = xcalloc(n ? n : 1, sizeof(*up));
	for (i = 0; i < njobs; i++) {
		const struct shard_plan *p = &jobs[i].plan;
		size_t at_once = p->ntasks < slots ? p->ntasks : slots;

		for (t = 0; t < p->ntasks; t++) {
			/* Through a start gate the first wave's tasks are
			 * ready one group after another. */
			up[k] = p->gate > 0 && t < at_once
				    ? shard_ready_at(&p->st, at_once, t)
				    : p->startup_s;
			v[k++] = p->tasks[t].estimate_s;
		}
	}
	eta = shard_eta_with(v, up, n, slots);
	free(up);
	free(v);
	return eta;
}

/* The start-up a task of the run costs as planned, on average over its
 * tasks (the jobs' runners differ): for the live ETA. */
static double main_mean_startup(const struct main_job *jobs, size_t njobs)
{
	double sum = 0;
	size_t i, n = 0;

	for (i = 0; i < njobs; i++) {
		sum += jobs[i].plan.startup_s * (double)jobs[i].plan.ntasks;
		n += jobs[i].plan.ntasks;
	}
	return n > 0 ? sum / (double)n : 0;
}

/* --dry-run: the plan on stdout, task by task in queue order (task ids as
 * the run would number them), each test with its estimate; "~" marks an
 * estimate that is not from the history (the median of the known ones,
 * or the default). */
static void main_print_plan(const struct main_job *jobs, size_t njobs,
			    unsigned slots, double eta)
{
	size_t i, t, k, seq = 0, ntests = 0, ntasks = 0, nknown = 0;
	char d[32];

	for (i = 0; i < njobs; i++) {
		ntests += jobs[i].disc.nids;
		ntasks += jobs[i].plan.ntasks;
		nknown += jobs[i].nknown;
	}
	shard_format_duration(eta, d, sizeof(d));
	printf("plan: %zu test%s in %zu task%s, estimated %s on %u slot%s "
	       "(history: %zu/%zu tests)\n",
	       ntests, ntests == 1 ? "" : "s", ntasks, ntasks == 1 ? "" : "s",
	       d, slots, slots == 1 ? "" : "s", nknown, ntests);
	for (i = 0; i < njobs; i++) {
		const struct main_job *j = &jobs[i];
		size_t at_once =
		    j->plan.ntasks < slots ? j->plan.ntasks : slots;

		printf("suite %s (phase %s, rootdir %s, history %zu/%zu, "
		       "unknown tests count %.3fs, ",
		       j->suite, j->phase, j->disc.root, j->nknown,
		       j->disc.nids, j->unknown_s);
		if (j->plan.gate > 0 && j->plan.gate < at_once)
			printf("start-up %.3fs a task, %u at a time (the "
			       "workers' start gates)",
			       shard_ready_at(&j->plan.st, at_once, 0),
			       j->plan.gate);
		else
			printf("start-up %.3fs a task", j->plan.startup_s);
		if (j->startup.learned)
			printf(" (history: %.3fs with %.1f starting at once, "
			       "floor %.3fs))\n",
			       j->startup.overhead_s, j->startup.concurrency,
			       j->startup.floor_s);
		else
			printf(" (default))\n");
		for (t = 0; t < j->plan.ntasks; t++) {
			const struct shard_task *st = &j->plan.tasks[t];

			printf("t%05zu %.3fs %zu test%s\n", ++seq,
			       st->estimate_s, st->ntests,
			       st->ntests == 1 ? "" : "s");
			for (k = 0; k < st->ntests; k++) {
				size_t x = st->tests[k];
				int known = j->est[x] >= 0;

				printf("  %s%.3fs %s\n", known ? "" : "~",
				       known ? j->est[x] : j->unknown_s,
				       j->disc.ids[x]);
			}
		}
	}
}

/* Whether any job runs a command suite (the local worker then needs
 * --allow-command). */
static int main_has_commands(const struct main_job *jobs, size_t njobs)
{
	size_t i;

	for (i = 0; i < njobs; i++)
		if (strcmp(jobs[i].runner, "command") == 0)
			return 1;
	return 0;
}

/* The run's batches: one per job, but one per task for a command suite
 * (each task has its own TESTFLEET_SHARD). Caller frees the array. */
static struct run_batch *main_batches(const struct main_job *jobs, size_t njobs,
				      size_t *nbatches)
{
	struct run_batch *v;
	size_t i, t, n = 0, k = 0;

	for (i = 0; i < njobs; i++)
		n += jobs[i].cmd_plans != NULL ? jobs[i].plan.ntasks : 1;
	v = xcalloc(n + 1, sizeof(*v));
	for (i = 0; i < njobs; i++) {
		const struct main_job *j = &jobs[i];
		size_t parts = j->cmd_plans != NULL ? j->plan.ntasks : 1;

		for (t = 0; t < parts; t++, k++) {
			v[k].suite = j->suite;
			v[k].phase = j->phase;
			v[k].queue = j->queue;
			v[k].cwd = j->disc.root;
			v[k].runner = j->runner;
			v[k].mark = j->mark;
			v[k].kexpr = j->kexpr;
			v[k].grep = j->grep;
			v[k].grep_invert = j->grep_invert;
			v[k].argv = j->command;
			v[k].nargv = j->ncommand;
			v[k].timeout_s = j->timeout_s;
			v[k].reruns = j->reruns;
			v[k].env =
			    j->cmd_plans != NULL ? j->cmd_env[t] : j->env;
			v[k].nenv =
			    j->cmd_plans != NULL ? j->cmd_nenv[t] : j->nenv;
			v[k].ids = j->disc.ids;
			v[k].plan =
			    j->cmd_plans != NULL ? &j->cmd_plans[t] : &j->plan;
		}
	}
	*nbatches = n;
	return v;
}

/* The run hash's history field: each suite's fingerprint (made with its
 * runner) and name. */
static char *main_history_field(const struct main_job *jobs, size_t njobs)
{
	struct buf b;
	size_t i;

	buf_init(&b, 0);
	for (i = 0; i < njobs; i++) {
		char *one = history_run_field(jobs[i].runner,
					      (char *const *)&jobs[i].suite,
					      &jobs[i].disc.root, 1);

		buf_appendstr(&b, one);
		free(one);
	}
	return buf_detach(&b, NULL);
}

/* A remote run: one warning per queue that no live worker serves (its
 * tasks wait until one starts). */
static void main_warn_idle_queues(struct main_ctx *ctx, redisContext *c,
				  char **queues, size_t nq)
{
	int live[QUEUES_MAX];
	char err[512];
	size_t i;

	if (nq > QUEUES_MAX)
		nq = QUEUES_MAX;
	if (queues_live(c, ctx->prefix, queues, nq, main_now(), live, err,
			sizeof(err)) < 0) {
		log_debug("live workers not checked: %s", err);
		return;
	}
	for (i = 0; i < nq; i++)
		if (!live[i])
			log_warn("no live worker serves queue %s; its tasks "
				 "wait until one does (testfleet-worker "
				 "--queue %s)",
				 queues[i], queues[i]);
}

static int main_run(struct main_ctx *ctx, int submit)
{
	const struct cli *cli = &ctx->cli;
	struct main_job *jobs = NULL;
	size_t njobs = 0, i, ntasks = 0, ntests = 0, nq = 0, nphases = 0;
	size_t nknown = 0, nbatches = 0;
	struct run_batch *batches = NULL;
	struct run_phase_decl *phases = NULL;
	struct localmode *lm = NULL;
	struct main_recollect rec;
	struct run_spec spec;
	struct policy policy;
	redisContext *c = NULL;
	char **queues = NULL;
	unsigned *cap_slots = NULL, *cap_gates = NULL;
	char *run = NULL, *cache = NULL, *history = NULL;
	char err[1024], eta_s[32];
	unsigned slots = main_slots(ctx);
	double eta;
	int code = 0, tries, speculative = 0;
	long swept;

	memset(&rec, 0, sizeof(rec));
	/* Settled first: a bad retry section is a usage error, and out:
	 * releases it on every path. */
	if ((code = main_policy(ctx, &policy)) != 0) {
		policy_release(&policy);
		return code;
	}
	if (cli->runner != NULL && ctx->have_conf) {
		main_error("--runner applies to paths given without a config "
			   "file; the suites of %s name their runner",
			   ctx->conf.path ? ctx->conf.path : "the config");
		code = EXIT_USAGE;
		goto out;
	}
	/* Without a config the runner is known: a selection for the other
	 * one is a mistake, not something to ignore. */
	if (!ctx->have_conf) {
		int pw = cli->runner != NULL &&
			 strcmp(cli->runner, "playwright") == 0;

		if (pw && (cli->mark != NULL || cli->kexpr != NULL)) {
			main_error("-m and -k select pytest tests; for "
				   "Playwright use --grep EXPR");
			code = EXIT_USAGE;
			goto out;
		}
		if (!pw && cli->grep != NULL) {
			main_error("--grep selects Playwright tests (with "
				   "--runner playwright); for pytest use -k "
				   "EXPR");
			code = EXIT_USAGE;
			goto out;
		}
	}
	if ((submit || cli->detach) && !cli->dry_run && !ctx->have_url) {
		main_error("%s needs --redis URL or TESTFLEET_REDIS_URL (a "
			   "local-mode run ends with its producer)",
			   submit ? "submit" : "--detach");
		code = EXIT_USAGE;
		goto out;
	}
	if (!submit && !cli->detach && !cli->dry_run &&
	    (code = main_check_outputs(cli)) != 0)
		goto out;
	if ((code = main_plan_jobs(ctx, &jobs, &njobs)) != 0)
		goto out;
	if ((code = main_check_includes(ctx, jobs, njobs)) != 0)
		goto out;
	for (i = 0; i < njobs; i++) {
		struct shard_mode mode;

		if (shard_mode_parse(jobs[i].shard, &mode, err, sizeof(err)) <
		    0) {
			main_error("suite %s: %s", jobs[i].suite, err);
			code = EXIT_USAGE;
			goto out;
		}
		if ((code = main_check_paths(&jobs[i])) != 0)
			goto out;
	}
	if ((code = main_preflight(ctx)) != 0)
		goto out;
	/* A remote Redis is checked first: no point collecting for a run
	 * that cannot be queued. Local mode starts only after collection,
	 * so bad paths and empty selections never start anything. */
	if (ctx->have_url && (c = main_connect(ctx, &code)) == NULL)
		goto out;
	/* With Redis, the run can be queued from the suites' last
	 * collection while pytest collects again; the fresh one decides
	 * (main_recollected). */
	speculative = main_speculate(ctx, c, jobs, njobs, &rec);
	for (i = 0; !speculative && i < njobs; i++) {
		if ((code = main_discover(ctx, &jobs[i])) != 0)
			goto out;
	}
	if (!speculative)
		main_keep_collections(ctx, c, jobs, njobs, 0);
	for (i = 0; i < njobs; i++)
		ntests += jobs[i].disc.nids;
	if (main_stop) {
		main_error("interrupted");
		code = EXIT_CANCELLED;
		goto out;
	}
	queues = main_queues(jobs, njobs, &nq);
	cap_slots = xcalloc(nq ? nq : 1, sizeof(*cap_slots));
	cap_gates = xcalloc(nq ? nq : 1, sizeof(*cap_gates));
	if (ctx->have_url) {
		main_read_caps(ctx, c, queues, nq, cap_slots, cap_gates);
		slots = main_fleet_slots(ctx, cap_slots, nq, slots);
	} else {
		/* The history of local mode is in its cache: a run starts
		 * everything, a dry run only a redis-server to read an
		 * existing cache. */
		cache = main_cache_dir(ctx, jobs, !cli->dry_run);
		if ((!cli->dry_run || cache != NULL) &&
		    (code = main_start_local(
			 ctx, queues, nq, slots, cache, cli->dry_run,
			 main_has_commands(jobs, njobs), &lm, &c)) != 0)
			goto out;
		/* Its worker may have said already. */
		main_read_caps(ctx, c, queues, nq, cap_slots, cap_gates);
	}
plan:
	for (i = 0; i < njobs; i++) {
		main_plan_job(
		    ctx, c, &jobs[i], slots,
		    main_job_gate(ctx, &jobs[i], queues, cap_gates, nq));
		ntasks += jobs[i].plan.ntasks;
		nknown += jobs[i].nknown;
	}
	eta = main_eta(jobs, njobs, slots);
	shard_format_duration(eta, eta_s, sizeof(eta_s));
	if (cli->dry_run) {
		main_print_plan(jobs, njobs, slots, eta);
		fflush(stdout);
		code = EXIT_PASSED;
		goto out;
	}
	/* Retention: a slice of the old runs goes with each new one. */
	swept = run == NULL
		    ? run_sweep(c, ctx->prefix, main_now(), err, sizeof(err))
		    : 0;
	if (swept < 0)
		log_warn("old runs not swept: %s", err);
	else if (swept > 0)
		log_debug("swept %ld old run%s", swept, swept == 1 ? "" : "s");
	for (tries = 0;; tries++) {
		int rc;

		free(run);
		run = run_id_new();
		rc = run_exists(c, ctx->prefix, run, err, sizeof(err));
		if (rc < 0) {
			main_error("%s", err);
			code = EXIT_INFRA;
			goto out;
		}
		if (rc == 0 || tries == 10)
			break;
	}
	batches = main_batches(jobs, njobs, &nbatches);
	history = main_history_field(jobs, njobs);
	phases = main_phases(ctx, jobs, njobs, &nphases);
	memset(&spec, 0, sizeof(spec));
	spec.prefix = ctx->prefix;
	spec.id = run;
	spec.cwd = ctx->cwd;
	spec.args = ctx->args;
	spec.batches = batches;
	spec.nbatches = nbatches;
	spec.phases = phases;
	spec.nphases = nphases;
	spec.policy = &policy;
	spec.timeout_s = cli->timeout_s >= 0 ? (unsigned)cli->timeout_s : 0;
	spec.run_timeout_s =
	    cli->run_timeout_s >= 0 ? (unsigned)cli->run_timeout_s : 0;
	spec.slots = slots;
	spec.keep_artifacts =
	    ctx->cli.keep_artifacts || ctx->cli.artifacts != NULL;
	spec.eta_s = eta;
	spec.startup_s = main_mean_startup(jobs, njobs);
	spec.history = history;
	if (run_create(c, &spec, err, sizeof(err)) < 0) {
		main_error("%s", err);
		code = EXIT_INFRA;
		goto out;
	}
	if (speculative) {
		speculative = 0;
		code = main_recollected(ctx, c, &rec, jobs, njobs, run);
		if (code > 0)
			goto out;
		if (code < 0) {
			/* The tests changed: plan the fresh ones. */
			code = 0;
			ntests = ntasks = nknown = 0;
			for (i = 0; i < njobs; i++) {
				main_job_unplan(&jobs[i]);
				ntests += jobs[i].disc.nids;
			}
			free(batches);
			free(history);
			free(phases);
			batches = NULL;
			history = NULL;
			phases = NULL;
			goto plan;
		}
	}
	if (!cli->quiet) {
		/* One write: stderr is unbuffered, and local workers with -v
		 * log to the same stderr. */
		struct buf line;

		buf_init(&line, 0);
		buf_printf(&line, "testfleet: run %s: %zu test%s in %zu task%s",
			   run, ntests, ntests == 1 ? "" : "s", ntasks,
			   ntasks == 1 ? "" : "s");
		if (lm != NULL)
			buf_printf(&line,
				   " (local mode, %u slot%s), estimated %s",
				   slots, slots == 1 ? "" : "s", eta_s);
		else
			buf_printf(&line, " queued, estimated %s on %u slot%s",
				   eta_s, slots, slots == 1 ? "" : "s");
		buf_printf(&line, " (history: %zu/%zu tests)\n", nknown,
			   ntests);
		fputs(line.data, stderr);
		buf_release(&line);
	}
	if (lm == NULL)
		main_warn_idle_queues(ctx, c, queues, nq);
	/* submit and --detach: the id alone on stdout, for scripts. */
	if (submit || cli->detach) {
		printf("%s\n", run);
		fflush(stdout);
		code = EXIT_PASSED;
		goto out;
	}
	code = main_follow(ctx, &c, run, &lm);
out:
	main_recollect_release(&rec);
	if (c != NULL)
		redisFree(c);
	localmode_stop(lm);
	free(history);
	free(cache);
	free(phases);
	free(batches);
	free(queues);
	free(cap_gates);
	free(cap_slots);
	free(run);
	for (i = 0; i < njobs; i++)
		main_job_release(&jobs[i]);
	free(jobs);
	policy_release(&policy);
	return code;
}

/* ---- watch, report, status -------------------------------------------- */

static int main_watch(struct main_ctx *ctx)
{
	struct localmode *none = NULL;
	redisContext *c;
	int code;

	if ((code = main_need_redis(ctx, "watch")) != 0)
		return code;
	if ((code = main_check_outputs(&ctx->cli)) != 0)
		return code;
	if ((c = main_connect(ctx, &code)) == NULL)
		return code;
	code = main_follow(ctx, &c, ctx->cli.args[0], &none);
	redisFree(c);
	return code;
}

static int main_report_cmd(struct main_ctx *ctx)
{
	const char *run = ctx->cli.args[0];
	struct aggregator *agg = NULL;
	struct report *rep = NULL;
	struct run_info ri;
	struct follow_ending ending;
	redisContext *c;
	char err[1024];
	int code, rc, running;

	if ((code = main_need_redis(ctx, "report")) != 0)
		return code;
	if ((code = main_check_outputs(&ctx->cli)) != 0)
		return code;
	if ((c = main_connect(ctx, &code)) == NULL)
		return code;
	rc = run_load(c, ctx->prefix, run, &ri, err, sizeof(err));
	if (rc != 0) {
		if (rc > 0) {
			main_error("unknown run %s", run);
			code = EXIT_USAGE;
		} else {
			main_error("%s", err);
			code = EXIT_INFRA;
		}
		redisFree(c);
		return code;
	}
	agg = aggregator_new(run);
	run_info_declare(&ri, agg);
	if (follow_replay(c, ctx->prefix, run, agg, &ending, err, sizeof(err)) <
	    0) {
		main_error("%s", err);
		code = EXIT_INFRA;
		goto out;
	}
	running = !ending.ended && strcmp(ri.status, "running") == 0;
	if (main_is_cancelled(&ending, &ri)) {
		aggregator_set_cancelled(agg);
		main_say_cancelled(ending.reason, &ri);
	}
	aggregator_set_times(agg, ri.created_at,
			     ending.at > 0	  ? ending.at
			     : ri.finished_at > 0 ? ri.finished_at
						  : main_now());
	if (running)
		main_error("run %s is still running (%u/%u tasks done)", run,
			   ri.tasks_done, ri.tasks_total);
	rep = aggregator_report(agg);
	/* A finished run: its durations are folded in if nobody did yet
	 * (a submitted run nobody watched), and its keys' expiry renewed. */
	if (!running)
		main_remember(ctx, c, run, &ri, rep, 1);
	main_fetch(ctx, c, rep);
	code = main_report(ctx, rep);
	if (running)
		code = EXIT_INFRA;
out:
	if (rep != NULL)
		report_free(rep);
	aggregator_free(agg);
	run_info_release(&ri);
	redisFree(c);
	return code;
}

static int main_status(struct main_ctx *ctx)
{
	redisContext *c;
	char err[1024];
	int code, rc;

	if ((code = main_need_redis(ctx, "status")) != 0)
		return code;
	if ((c = main_connect(ctx, &code)) == NULL)
		return code;
	if (ctx->cli.nargs == 0)
		rc = status_list(c, ctx->prefix, MAIN_STATUS_RUNS, stdout, err,
				 sizeof(err));
	else
		rc = status_show(c, ctx->prefix, ctx->cli.args[0], stdout, err,
				 sizeof(err));
	redisFree(c);
	if (rc > 0) {
		main_error("unknown run %s", ctx->cli.args[0]);
		return EXIT_USAGE;
	}
	if (rc < 0) {
		main_error("%s", err);
		return EXIT_INFRA;
	}
	return EXIT_PASSED;
}

/* testfleet cancel RUN: 0 cancelled, 1 it had already finished, 2 no such
 * run, 3 Redis trouble. */
static int main_cancel(struct main_ctx *ctx)
{
	const char *run = ctx->cli.args[0];
	struct run_info ri;
	redisContext *c;
	char err[1024];
	int code, rc;

	if ((code = main_need_redis(ctx, "cancel")) != 0)
		return code;
	if ((c = main_connect(ctx, &code)) == NULL)
		return code;
	rc = run_load(c, ctx->prefix, run, &ri, err, sizeof(err));
	if (rc != 0) {
		if (rc > 0) {
			main_error("unknown run %s", run);
			code = EXIT_USAGE;
		} else {
			main_error("%s", err);
			code = EXIT_INFRA;
		}
		goto out;
	}
	run_info_release(&ri);
	rc = run_cancel(c, ctx->prefix, run, "cancelled", err, sizeof(err));
	if (rc < 0) {
		main_error("%s", err);
		code = EXIT_INFRA;
	} else if (rc == 1) {
		printf("cancelled %s\n", run);
		code = EXIT_PASSED;
	} else {
		/* Read again: it may have ended between the two calls. */
		rc = run_load(c, ctx->prefix, run, &ri, err, sizeof(err));
		main_error("run %s already finished (status %s)", run,
			   rc == 0 ? ri.status : "unknown");
		if (rc == 0)
			run_info_release(&ri);
		code = EXIT_FAILED;
	}
out:
	redisFree(c);
	return code;
}

static int main_dispatch(struct main_ctx *ctx)
{
	switch (ctx->cli.cmd) {
	case CLI_RUN:
		return main_run(ctx, 0);
	case CLI_SUBMIT:
		return main_run(ctx, 1);
	case CLI_WATCH:
		return main_watch(ctx);
	case CLI_REPORT:
		return main_report_cmd(ctx);
	case CLI_STATUS:
		return main_status(ctx);
	case CLI_CANCEL:
		return main_cancel(ctx);
	case CLI_SERVE:
		main_error("%s is not implemented yet",
			   cli_command_name(ctx->cli.cmd));
		return EXIT_USAGE;
	case CLI_NONE:
		break;
	}
	return EXIT_USAGE;
}

int main(int argc, char **argv)
{
	struct main_ctx ctx;
	char err[1024], cwd[PATH_MAX];
	const char *nocolor = getenv("NO_COLOR");
	int code;

	memset(&ctx, 0, sizeof(ctx));
	main_install_signals();
	log_init("testfleet", LOG_INFO);
	if (cli_parse(argc, argv, &ctx.cli, err, sizeof(err)) < 0) {
		main_error("%s", err);
		code = EXIT_USAGE;
		goto out;
	}
	if (ctx.cli.version) {
		printf("testfleet %s\n", TESTFLEET_VERSION);
		code = EXIT_PASSED;
		goto out;
	}
	if (ctx.cli.help) {
		cli_usage(stdout);
		code = EXIT_PASSED;
		goto out;
	}
	if (ctx.cli.cmd == CLI_NONE) {
		cli_usage(stderr);
		code = EXIT_USAGE;
		goto out;
	}
	log_set_level(ctx.cli.verbose ? LOG_DEBUG
		      : ctx.cli.quiet ? LOG_WARN
				      : LOG_INFO);
	ctx.color = !ctx.cli.no_color && isatty(STDOUT_FILENO) &&
		    (nocolor == NULL || nocolor[0] == '\0');
	if (getcwd(cwd, sizeof(cwd)) == NULL) {
		main_error("cannot read the current directory: %s",
			   strerror(errno));
		code = EXIT_USAGE;
		goto out;
	}
	ctx.cwd = xstrdup(cwd);
	ctx.args = main_join_args(argc, argv);
	if ((code = main_load_config(&ctx)) != 0)
		goto out;
	if ((code = main_resolve(&ctx)) != 0)
		goto out;
	code = main_dispatch(&ctx);
out:
	if (ctx.have_url)
		redis_url_release(&ctx.url);
	if (ctx.have_conf)
		config_release(&ctx.conf);
	free(ctx.conf_dir);
	free(ctx.pytest_words);
	free(ctx.args);
	free(ctx.cwd);
	cli_release(&ctx.cli);
	fflush(stdout);
	return code;
}
