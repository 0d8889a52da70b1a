/* main.c -- bin/testfleet: parses the command line, loads the config, and
 * drives each command (run, submit, watch, report, status) through the
 * producer's modules; the one place that prints errors and picks the exit
 * code (DESIGN section 2: 0 passed, 1 failed, 2 usage or configuration, 3
 * infrastructure, 4 cancelled). */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aggregate.h"
#include "buf.h"
#include "cli.h"
#include "config.h"
#include "discover.h"
#include "follow.h"
#include "keys.h"
#include "localmode.h"
#include "log.h"
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
	const char *queue;
	char *cwd; /* absolute; where pytest collects */
	char *const *paths;
	size_t npaths;
	const char *mark;
	const char *kexpr;
	unsigned timeout_s;
	const char *shard;
	const struct kv *env;
	size_t nenv;
	struct discover_result disc;
	struct shard_plan plan;
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
	if (main_split_pytest(ctx, ctx->pytest_str ? ctx->pytest_str
						   : "pytest") < 0) {
		main_error("bad pytest command \"%s\" (1 to %d words)",
			   ctx->pytest_str, MAIN_MAX_PYTEST_WORDS);
		return EXIT_USAGE;
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

static void main_job_release(struct main_job *j)
{
	discover_result_release(&j->disc);
	shard_plan_release(&j->plan);
	free(j->cwd);
}

/* Fills the job's settings from a config suite (NULL = no config) and
 * the command line, command line first. */
static int main_job_settings(struct main_ctx *ctx, struct main_job *j,
			     const struct suite_conf *s)
{
	const struct cli *cli = &ctx->cli;

	j->mark = cli->mark != NULL ? cli->mark : s ? s->mark : NULL;
	j->kexpr = cli->kexpr != NULL ? cli->kexpr : s ? s->kexpr : NULL;
	if (cli->timeout_s >= 0)
		j->timeout_s = (unsigned)cli->timeout_s;
	else if (s != NULL && s->timeout_s > 0)
		j->timeout_s = s->timeout_s;
	else if (ctx->have_conf)
		j->timeout_s = ctx->conf.timeout_s;
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
		const char *runner = s->runner != NULL ? s->runner : "pytest";

		if (strcmp(runner, "pytest") != 0) {
			main_error("suite %s: runner %s is not supported yet "
				   "(only pytest)",
				   s->name, runner);
			return EXIT_USAGE;
		}
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
	}
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

static int main_discover(struct main_ctx *ctx, struct main_job *j)
{
	struct discover_opts o;
	const char *d;

	memset(&o, 0, sizeof(o));
	o.pytest = ctx->pytest;
	o.cwd = j->cwd;
	o.mark = j->mark;
	o.kexpr = j->kexpr;
	o.paths = j->paths;
	o.npaths = j->npaths;
	o.stop = &main_stop;
	switch (discover_run(&o, &j->disc)) {
	case DISCOVER_OK:
		log_debug("suite %s: %zu tests collected in %s (ids relative "
			  "to %s)",
			  j->suite, j->disc.nids, j->cwd, j->disc.root);
		return 0;
	case DISCOVER_STOPPED:
		main_error("interrupted");
		return EXIT_CANCELLED;
	default:
		break;
	}
	if (ctx->have_conf)
		main_error("suite %s: %s", j->suite, j->disc.message);
	else
		main_error("%s", j->disc.message);
	d = j->disc.details;
	if (d != NULL)
		fputs(d, stderr);
	return j->disc.status == DISCOVER_FAILED ? EXIT_INFRA : EXIT_USAGE;
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

/* The phases that have jobs, in order, with their required flags. */
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
		cnt++;
	}
	*np = cnt;
	return v;
}

/* The follow-and-report half of run, shared with watch. Returns the exit
 * code. lm is the local mode instance (NULL when remote); it is torn down
 * here, before the report is printed. */
static int main_follow(struct main_ctx *ctx, redisContext **c, const char *run,
		       struct localmode **lm)
{
	struct run_info ri;
	struct follow_opts fo;
	struct aggregator *agg = NULL;
	struct report *rep = NULL;
	enum follow_end end;
	double ended_at = 0;
	char err[1024];
	int rc, code = EXIT_INFRA;

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
	memset(&fo, 0, sizeof(fo));
	fo.prefix = ctx->prefix;
	fo.run = run;
	fo.url = &ctx->url;
	fo.timeout_ms = MAIN_TIMEOUT_MS;
	fo.tasks_total = ri.tasks_total;
	fo.tests_total = ri.tests_total;
	fo.progress = main_progress_mode(ctx);
	fo.progress_out = stderr;
	fo.stop = &main_stop;
	if (*lm != NULL) {
		fo.check = localmode_check;
		fo.check_arg = *lm;
	}
	end = follow_run(c, &fo, agg, &ended_at, err, sizeof(err));
	/* Local mode ends here, whatever happened, before any output. */
	localmode_stop(*lm);
	*lm = NULL;
	switch (end) {
	case FOLLOW_DONE:
		break;
	case FOLLOW_STOPPED:
		if (fo.check == NULL) {
			main_error("interrupted; run %s goes on (testfleet "
				   "watch %s, testfleet status %s)",
				   run, run, run);
			code = EXIT_CANCELLED;
			goto out;
		}
		main_error("interrupted; local run %s stopped", run);
		aggregator_set_cancelled(agg);
		break;
	case FOLLOW_ERROR:
		main_error("%s", err);
		code = EXIT_INFRA;
		goto out;
	}
	if (ri.status != NULL && strcmp(ri.status, "cancelled") == 0)
		aggregator_set_cancelled(agg);
	aggregator_set_times(agg, ri.created_at,
			     ended_at > 0 ? ended_at : ri.finished_at);
	rep = aggregator_report(agg);
	code = main_report(ctx, rep);
	if (end == FOLLOW_STOPPED)
		code = EXIT_CANCELLED;
out:
	if (rep != NULL)
		report_free(rep);
	aggregator_free(agg);
	run_info_release(&ri);
out_noinfo:
	return code;
}

static int main_run(struct main_ctx *ctx, int submit)
{
	const struct cli *cli = &ctx->cli;
	struct main_job *jobs = NULL;
	size_t njobs = 0, i, ntasks = 0, ntests = 0, nq = 0, nphases = 0;
	struct run_batch *batches = NULL;
	struct run_phase_decl *phases = NULL;
	struct localmode *lm = NULL;
	struct run_spec spec;
	redisContext *c = NULL;
	char **queues = NULL;
	char *run = NULL;
	char err[1024];
	unsigned slots = main_slots(ctx);
	int code = 0, tries;

	if (cli->runner != NULL && strcmp(cli->runner, "pytest") != 0) {
		main_error("--runner %s is not supported yet (only pytest)",
			   cli->runner);
		return EXIT_USAGE;
	}
	if ((submit || cli->detach) && !ctx->have_url) {
		main_error("%s needs --redis URL or TESTFLEET_REDIS_URL (a "
			   "local-mode run ends with its producer)",
			   submit ? "submit" : "--detach");
		return EXIT_USAGE;
	}
	if (!submit && !cli->detach && (code = main_check_outputs(cli)) != 0)
		return code;
	if ((code = main_plan_jobs(ctx, &jobs, &njobs)) != 0)
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
	/* A remote Redis is checked first: no point collecting for a run
	 * that cannot be queued. Local mode starts only after collection,
	 * so bad paths and empty selections never start anything. */
	if (ctx->have_url && (c = main_connect(ctx, &code)) == NULL)
		goto out;
	for (i = 0; i < njobs; i++) {
		struct shard_mode mode;

		if ((code = main_discover(ctx, &jobs[i])) != 0)
			goto out;
		shard_mode_parse(jobs[i].shard, &mode, err, sizeof(err));
		shard_plan_build(jobs[i].disc.ids, NULL, jobs[i].disc.nids,
				 slots, mode, &jobs[i].plan);
		ntasks += jobs[i].plan.ntasks;
		ntests += jobs[i].disc.nids;
	}
	if (main_stop) {
		main_error("interrupted");
		code = EXIT_CANCELLED;
		goto out;
	}
	queues = main_queues(jobs, njobs, &nq);
	if (!ctx->have_url) {
		struct localmode_opts lo;
		enum localmode_error why;

		memset(&lo, 0, sizeof(lo));
		lo.slots = slots;
		lo.prefix = ctx->prefix;
		lo.pytest = ctx->pytest_str;
		lo.queues = queues;
		lo.nqueues = nq;
		lo.verbose = cli->verbose > 0;
		lo.stop = &main_stop;
		lm = localmode_start(&lo, &why, err, sizeof(err));
		if (lm == NULL) {
			main_error("%s", err);
			code = why == LOCALMODE_STOPPED ? EXIT_CANCELLED
							: EXIT_INFRA;
			goto out;
		}
		if (redis_url_parse(localmode_url(lm), &ctx->url, err,
				    sizeof(err)) < 0) {
			main_error("%s", err);
			code = EXIT_INFRA;
			goto out;
		}
		ctx->have_url = 1;
		if ((c = main_connect(ctx, &code)) == NULL)
			goto out;
	}
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
	batches = xcalloc(njobs, sizeof(*batches));
	for (i = 0; i < njobs; i++) {
		batches[i].suite = jobs[i].suite;
		batches[i].phase = jobs[i].phase;
		batches[i].queue = jobs[i].queue;
		batches[i].cwd = jobs[i].disc.root;
		batches[i].mark = jobs[i].mark;
		batches[i].kexpr = jobs[i].kexpr;
		batches[i].timeout_s = jobs[i].timeout_s;
		batches[i].env = jobs[i].env;
		batches[i].nenv = jobs[i].nenv;
		batches[i].ids = jobs[i].disc.ids;
		batches[i].plan = &jobs[i].plan;
	}
	phases = main_phases(ctx, jobs, njobs, &nphases);
	memset(&spec, 0, sizeof(spec));
	spec.prefix = ctx->prefix;
	spec.id = run;
	spec.cwd = ctx->cwd;
	spec.args = ctx->args;
	spec.batches = batches;
	spec.nbatches = njobs;
	spec.phases = phases;
	spec.nphases = nphases;
	spec.retries = cli->retries >= 0 ? (unsigned)cli->retries
		       : ctx->have_conf && ctx->conf.retries > 0
			   ? (unsigned)ctx->conf.retries
			   : 0;
	spec.max_failures =
	    cli->max_failures >= 0 ? (unsigned)cli->max_failures : 0;
	spec.timeout_s = cli->timeout_s >= 0 ? (unsigned)cli->timeout_s : 0;
	if (run_create(c, &spec, err, sizeof(err)) < 0) {
		main_error("%s", err);
		code = EXIT_INFRA;
		goto out;
	}
	if (submit || cli->detach) {
		printf("%s\n", run);
		fflush(stdout);
		code = EXIT_PASSED;
		goto out;
	}
	if (!cli->quiet) {
		fprintf(stderr, "testfleet: run %s: %zu test%s in %zu task%s",
			run, ntests, ntests == 1 ? "" : "s", ntasks,
			ntasks == 1 ? "" : "s");
		if (lm != NULL)
			fprintf(stderr, " (local mode, %u slot%s)\n", slots,
				slots == 1 ? "" : "s");
		else
			fprintf(stderr, " queued\n");
	}
	code = main_follow(ctx, &c, run, &lm);
out:
	if (c != NULL)
		redisFree(c);
	localmode_stop(lm);
	free(phases);
	free(batches);
	free(queues);
	free(run);
	for (i = 0; i < njobs; i++)
		main_job_release(&jobs[i]);
	free(jobs);
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

static double main_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int main_report_cmd(struct main_ctx *ctx)
{
	const char *run = ctx->cli.args[0];
	struct aggregator *agg = NULL;
	struct report *rep = NULL;
	struct run_info ri;
	redisContext *c;
	double ended_at = 0;
	char err[1024];
	int code, ended = 0, rc, running;

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
	if (follow_replay(c, ctx->prefix, run, agg, &ended, &ended_at, err,
			  sizeof(err)) < 0) {
		main_error("%s", err);
		code = EXIT_INFRA;
		goto out;
	}
	running = !ended && strcmp(ri.status, "running") == 0;
	if (strcmp(ri.status, "cancelled") == 0)
		aggregator_set_cancelled(agg);
	aggregator_set_times(agg, ri.created_at,
			     ended_at > 0	  ? ended_at
			     : ri.finished_at > 0 ? ri.finished_at
						  : main_now());
	if (running)
		main_error("run %s is still running (%u/%u tasks done)", run,
			   ri.tasks_done, ri.tasks_total);
	rep = aggregator_report(agg);
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
