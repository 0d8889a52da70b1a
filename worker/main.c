/* main.c -- testfleet-worker: command line, process setup (subreaper,
 * signals, descriptors), plugin lookup, then the worker loop (worker.h). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpus.h"
#include "log.h"
#include "redisurl.h"
#include "urltmpl.h"
#include "warm.h"
#include "worker.h"
#include "xmalloc.h"

#define PROG "testfleet-worker"
#define MAX_SLOTS 1024
#define MAX_TIMEOUT_S (7u * 86400u)
#define MAX_GRACE_S 3600u
#define MAX_LEASE_S 86400u
#define PLUGIN_FILE "testfleet_pytest.py"
#define REPORTER_FILE "testfleet-playwright-reporter.js"
#define DEFAULT_PLAYWRIGHT "npx --no-install playwright"

static void usage(FILE *out)
{
	fputs("usage: " PROG " [options]\n"
	      "Takes test tasks from Redis queues and runs them.\n"
	      "\n"
	      "  --redis URL          redis://[user:pass@]host:port/db or "
	      "unix:///path.sock\n"
	      "                       (default: $TESTFLEET_REDIS_URL)\n"
	      "  --queue NAME         queue to serve; repeat or separate with "
	      "commas\n"
	      "                       (default: default)\n"
	      "  --slots N            tasks run at once (default 1)\n"
	      "  --name NAME          worker name in results (default: host "
	      "name)\n"
	      "  --prefix PREFIX      Redis key prefix (default tf)\n"
	      "  --timeout SEC        task timeout when the task sets none "
	      "(default 3600)\n"
	      "  --lease SEC          lease of a task: renewed every SEC/3; a "
	      "task idle\n"
	      "                       longer is taken over by another worker "
	      "(default 30)\n"
	      "  --grace SEC          drain period after SIGTERM (default 20)\n"
	      "  --pytest CMD         pytest command, split on spaces "
	      "(default: $TESTFLEET_PYTEST or pytest)\n"
	      "  --playwright CMD     Playwright command, split on spaces "
	      "(default:\n"
	      "                       $TESTFLEET_PLAYWRIGHT "
	      "or " DEFAULT_PLAYWRIGHT ")\n"
	      "  --no-warm            exec pytest for every task instead of "
	      "forking it from\n"
	      "                       a warm interpreter (also "
	      "TESTFLEET_PYTEST_WARM=0)\n"
	      "  --start-gate N       at most N pytest or Playwright runners "
	      "starting at once\n"
	      "                       (default: the CPUs it may use; 0 = no "
	      "gate)\n"
	      "  --allow-command      run tasks of the \"command\" runner "
	      "(their own argv)\n"
	      "  --exit-when-idle SEC exit once no task came for SEC "
	      "seconds\n"
	      "  --once               exit as soon as the queues are empty\n"
	      "  --artifacts-max SIZE bytes of a task's artifacts kept in "
	      "Redis (K, M, G;\n"
	      "                       default 8M; 0 = none)\n"
	      "  --artifacts-url URL  PUT larger artifacts there (template "
	      "with {run},\n"
	      "                       {task}, {attempt}, {path}; default: "
	      "$TESTFLEET_ARTIFACTS_URL);\n"
	      "                       request headers from "
	      "$TESTFLEET_ARTIFACTS_HEADERS\n"
	      "  --log-level LEVEL    debug, info, warn, error or quiet "
	      "(default info)\n"
	      "  -h, --help           this text\n"
	      "\n"
	      "SIGTERM or SIGINT drains: no new tasks, running ones get the "
	      "grace period,\nthen are killed and their unfinished tests "
	      "handed back at once. A second\nsignal exits at once (the "
	      "lease then runs out and another worker takes over).\n"
	      "Exit status: 0 clean exit or drain, 1 work that could not be "
	      "handed back\nor fatal error, 2 usage error.\n",
	      out);
}

static int fail_usage(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static int fail_usage(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 2;
}

/* Parses an unsigned decimal within [min, max]; -1 otherwise. */
static int parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	unsigned long v;
	char *end;

	if (!s || !*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* A name usable in keys and labels: printable, no spaces. */
static int plain_word(const char *s, const char *extra_bad)
{
	const unsigned char *p = (const unsigned char *)s;

	if (!*p)
		return 0;
	for (; *p; p++) {
		if (*p <= ' ' || *p == 0x7f || strchr(extra_bad, *p))
			return 0;
	}
	return 1;
}

static void strv_push(char ***v, size_t *n, char *s)
{
	*v = xreallocarray(*v, *n + 2, sizeof(**v));
	(*v)[(*n)++] = s;
	(*v)[*n] = NULL;
}

static void strv_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Splits s on any of seps into new strings appended to v. */
static void split_words(const char *s, const char *seps, char ***v, size_t *n)
{
	size_t len;

	while (*s) {
		s += strspn(s, seps);
		len = strcspn(s, seps);
		if (len > 0)
			strv_push(v, n, xstrndup(s, len));
		s += len;
	}
}

static int has_plugin(const char *dir)
{
	char *path = xasprintf("%s/%s", dir, PLUGIN_FILE);
	int ok = access(path, R_OK) == 0;

	free(path);
	return ok;
}

/* TESTFLEET_PLUGIN_DIR, else beside an installed binary
 * (<prefix>/share/testfleet/plugins), else the source tree
 * (bin/../worker/plugins). Returns a new absolute path or NULL. */
static char *find_plugin_dir(char *err, size_t errlen, int *bad_env)
{
	static const char *const rel[] = {"../share/testfleet/plugins",
					  "../worker/plugins"};
	const char *env = getenv("TESTFLEET_PLUGIN_DIR");
	char exe[PATH_MAX], *slash, *cand, *real;
	ssize_t n;
	size_t i;

	*bad_env = 0;
	if (env && env[0]) {
		if (!has_plugin(env)) {
			snprintf(err, errlen,
				 "TESTFLEET_PLUGIN_DIR=%s: no %s "
				 "there",
				 env, PLUGIN_FILE);
			*bad_env = 1;
			return NULL;
		}
		real = realpath(env, NULL);
		return real ? real : xstrdup(env);
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0) {
		snprintf(err, errlen, "cannot read /proc/self/exe: %s",
			 strerror(errno));
		return NULL;
	}
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	for (i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
		cand = xasprintf("%s/%s", exe, rel[i]);
		if (has_plugin(cand)) {
			real = realpath(cand, NULL);
			free(cand);
			if (real)
				return real;
			continue;
		}
		free(cand);
	}
	snprintf(err, errlen,
		 "pytest plugin %s not found beside %.300s (set "
		 "TESTFLEET_PLUGIN_DIR); pytest tasks will fail",
		 PLUGIN_FILE, exe);
	return NULL;
}

/* Parses a size: digits with an optional K, M or G (powers of 1024), at
 * most 512M (Redis's largest string). */
static int parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || !*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s)
		return -1;
	if (*end == 'K' || *end == 'k')
		v <<= 10, end++;
	else if (*end == 'M' || *end == 'm')
		v <<= 20, end++;
	else if (*end == 'G' || *end == 'g')
		v <<= 30, end++;
	if (*end != '\0' || v > (512ull << 20))
		return -1;
	*out = v;
	return 0;
}

/* testfleet-upload: $TESTFLEET_UPLOADER, else beside this binary. Returns
 * a new path, or NULL with a message. */
static char *find_uploader(char *err, size_t errlen)
{
	const char *env = getenv("TESTFLEET_UPLOADER");
	char exe[PATH_MAX], *slash, *path;
	ssize_t n;

	if (env && env[0]) {
		if (access(env, X_OK) == 0)
			return xstrdup(env);
		snprintf(err, errlen, "TESTFLEET_UPLOADER=%s: %s", env,
			 strerror(errno));
		return NULL;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0) {
		snprintf(err, errlen, "cannot read /proc/self/exe: %s",
			 strerror(errno));
		return NULL;
	}
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	path = xasprintf("%s/testfleet-upload", exe);
	if (access(path, X_OK) == 0)
		return path;
	snprintf(err, errlen,
		 "testfleet-upload not found beside %.300s (set "
		 "TESTFLEET_UPLOADER)",
		 exe);
	free(path);
	return NULL;
}

/* Runs with descriptors 0-2 open, so a pipe never lands on them. */
static void ensure_std_fds(void)
{
	int fd;

	for (;;) {
		fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (fd < 0)
			return;
		if (fd > 2)
			break;
		/* The descriptor stays open on 0, 1 or 2: clear CLOEXEC so it
		 * behaves like an inherited one. */
		fcntl(fd, F_SETFD, 0);
	}
	close(fd);
}

enum {
	OPT_REDIS = 256,
	OPT_QUEUE,
	OPT_SLOTS,
	OPT_NAME,
	OPT_PREFIX,
	OPT_TIMEOUT,
	OPT_GRACE,
	OPT_LEASE,
	OPT_PYTEST,
	OPT_PLAYWRIGHT,
	OPT_ALLOW_COMMAND,
	OPT_EXIT_IDLE,
	OPT_ONCE,
	OPT_LOG_LEVEL,
	OPT_METRICS,
	OPT_ARTIFACTS_MAX,
	OPT_ARTIFACTS_URL,
	OPT_NO_WARM,
	OPT_START_GATE,
};

static const struct option long_opts[] = {
    {"redis", required_argument, NULL, OPT_REDIS},
    {"queue", required_argument, NULL, OPT_QUEUE},
    {"slots", required_argument, NULL, OPT_SLOTS},
    {"name", required_argument, NULL, OPT_NAME},
    {"prefix", required_argument, NULL, OPT_PREFIX},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"grace", required_argument, NULL, OPT_GRACE},
    {"lease", required_argument, NULL, OPT_LEASE},
    {"pytest", required_argument, NULL, OPT_PYTEST},
    {"playwright", required_argument, NULL, OPT_PLAYWRIGHT},
    {"allow-command", no_argument, NULL, OPT_ALLOW_COMMAND},
    {"exit-when-idle", required_argument, NULL, OPT_EXIT_IDLE},
    {"once", no_argument, NULL, OPT_ONCE},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"metrics", required_argument, NULL, OPT_METRICS},
    {"artifacts-max", required_argument, NULL, OPT_ARTIFACTS_MAX},
    {"artifacts-url", required_argument, NULL, OPT_ARTIFACTS_URL},
    {"no-warm", no_argument, NULL, OPT_NO_WARM},
    {"start-gate", required_argument, NULL, OPT_START_GATE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* TESTFLEET_PYTEST_WARM: unset, empty, 1, on, yes or true keep warm
 * starts; 0, off, no or false turn them off. -1 for anything else. */
static int parse_warm_env(int *off)
{
	static const char *const on[] = {"", "1", "on", "yes", "true", NULL};
	static const char *const no[] = {"0", "off", "no", "false", NULL};
	const char *v = getenv("TESTFLEET_PYTEST_WARM");
	size_t i;

	if (!v)
		return 0;
	for (i = 0; on[i]; i++) {
		if (strcasecmp(v, on[i]) == 0)
			return 0;
	}
	for (i = 0; no[i]; i++) {
		if (strcasecmp(v, no[i]) == 0) {
			*off = 1;
			return 0;
		}
	}
	return -1;
}

static void start_warm(struct worker_opts *o)
{
	char why[512];

	o->runners.warm = warm_new(o->runners.pytest, o->runners.npytest,
				   o->plugin_dir, why, sizeof(why));
	if (o->runners.warm)
		log_info("pytest tasks start warm: forked from %s",
			 warm_describe(o->runners.warm));
	else
		log_info("pytest tasks start cold (exec per task): %s", why);
}

int main(int argc, char **argv)
{
	struct worker_opts o;
	enum log_level level = LOG_INFO;
	const char *redis = NULL, *pytest = NULL, *playwright = NULL, *fault;
	const char *art_url = NULL;
	char err[512], host[256], *uploader = NULL;
	unsigned u;
	int c, rc = 2, bad_env, url_ok = 0, no_warm = 0, gate_set = 0;
	size_t i;

	memset(&o, 0, sizeof(o));
	o.slots = 1;
	o.timeout_s = 3600;
	o.grace_s = WORKER_GRACE_S;
	o.lease_s = WORKER_LEASE_S;
	o.exit_when_idle_s = -1;
	o.artifacts.inline_max = ARTIFACTS_DEFAULT_INLINE;
	o.artifacts.upload_tries = 5;
	o.artifacts.upload_timeout_s = 300;
	log_init(PROG, LOG_INFO);
	opterr = 0;
	for (;;) {
		c = getopt_long(argc, argv, ":h", long_opts, NULL);
		if (c == -1)
			break;
		switch (c) {
		case OPT_REDIS:
			redis = optarg;
			break;
		case OPT_QUEUE:
			split_words(optarg, ",", &o.queues, &o.nqueues);
			break;
		case OPT_SLOTS:
			if (parse_uint(optarg, 1, MAX_SLOTS, &o.slots) < 0) {
				rc = fail_usage("--slots: expected a number "
						"from 1 to %d, got \"%s\"",
						MAX_SLOTS, optarg);
				goto out;
			}
			break;
		case OPT_NAME:
			if (!plain_word(optarg, "/:")) {
				rc = fail_usage("--name: expected a word "
						"without spaces, '/' or ':', "
						"got \"%s\"",
						optarg);
				goto out;
			}
			free(o.name);
			o.name = xstrdup(optarg);
			break;
		case OPT_PREFIX:
			if (!plain_word(optarg, "")) {
				rc = fail_usage("--prefix: expected a word "
						"without spaces, got \"%s\"",
						optarg);
				goto out;
			}
			free(o.prefix);
			o.prefix = xstrdup(optarg);
			break;
		case OPT_TIMEOUT:
			if (parse_uint(optarg, 1, MAX_TIMEOUT_S, &o.timeout_s) <
			    0) {
				rc = fail_usage("--timeout: expected seconds "
						"from 1 to %u, got \"%s\"",
						MAX_TIMEOUT_S, optarg);
				goto out;
			}
			break;
		case OPT_GRACE:
			if (parse_uint(optarg, 0, MAX_GRACE_S, &o.grace_s) <
			    0) {
				rc = fail_usage("--grace: expected seconds "
						"from 0 to %u, got \"%s\"",
						MAX_GRACE_S, optarg);
				goto out;
			}
			break;
		case OPT_LEASE:
			if (parse_uint(optarg, 1, MAX_LEASE_S, &o.lease_s) <
			    0) {
				rc = fail_usage("--lease: expected seconds "
						"from 1 to %u, got \"%s\"",
						MAX_LEASE_S, optarg);
				goto out;
			}
			break;
		case OPT_PYTEST:
			pytest = optarg;
			break;
		case OPT_PLAYWRIGHT:
			playwright = optarg;
			break;
		case OPT_ALLOW_COMMAND:
			o.runners.allow_command = 1;
			break;
		case OPT_NO_WARM:
			no_warm = 1;
			break;
		case OPT_START_GATE:
			if (parse_uint(optarg, 0, 100000, &u) < 0) {
				rc = fail_usage("--start-gate: expected a "
						"number of runners (0 = no "
						"gate), got \"%s\"",
						optarg);
				goto out;
			}
			o.start_gate = u;
			gate_set = 1;
			break;
		case OPT_EXIT_IDLE:
			if (parse_uint(optarg, 0, INT_MAX, &u) < 0) {
				rc = fail_usage("--exit-when-idle: expected "
						"seconds, got \"%s\"",
						optarg);
				goto out;
			}
			o.exit_when_idle_s = (int)u;
			break;
		case OPT_ONCE:
			o.exit_when_idle_s = 0;
			break;
		case OPT_LOG_LEVEL:
			if (log_level_parse(optarg, &level) < 0) {
				rc = fail_usage("--log-level: expected debug, "
						"info, warn, error or quiet, "
						"got \"%s\"",
						optarg);
				goto out;
			}
			break;
		case OPT_ARTIFACTS_MAX:
			if (parse_size(optarg, &o.artifacts.inline_max) < 0) {
				rc = fail_usage("--artifacts-max: expected a "
						"size such as 500K or 8M (at "
						"most 512M), got \"%s\"",
						optarg);
				goto out;
			}
			break;
		case OPT_ARTIFACTS_URL:
			art_url = optarg;
			break;
		case OPT_METRICS:
			rc = fail_usage("--metrics: not implemented yet");
			goto out;
		case 'h':
			usage(stdout);
			rc = 0;
			goto out;
		case ':':
			rc = fail_usage("%s: missing value", argv[optind - 1]);
			goto out;
		default:
			if (optopt)
				rc = fail_usage("unknown option -%c", optopt);
			else
				rc = fail_usage("unknown option %s",
						argv[optind - 1]);
			goto out;
		}
	}
	if (optind < argc) {
		rc = fail_usage("unexpected argument \"%s\" (see --help)",
				argv[optind]);
		goto out;
	}
	log_set_level(level);

	if (!redis)
		redis = getenv("TESTFLEET_REDIS_URL");
	if (!redis || !redis[0]) {
		rc = fail_usage("no Redis address: use --redis URL or set "
				"TESTFLEET_REDIS_URL");
		goto out;
	}
	if (redis_url_parse(redis, &o.url, err, sizeof(err)) < 0) {
		rc = fail_usage("%s", err);
		goto out;
	}
	url_ok = 1;
	if (o.nqueues == 0)
		strv_push(&o.queues, &o.nqueues, xstrdup("default"));
	for (i = 0; i < o.nqueues; i++) {
		if (!plain_word(o.queues[i], "")) {
			rc = fail_usage("--queue: bad queue name \"%s\"",
					o.queues[i]);
			goto out;
		}
	}
	if (!o.prefix)
		o.prefix = xstrdup("tf");
	if (!o.name) {
		if (gethostname(host, sizeof(host)) < 0 || !host[0])
			snprintf(host, sizeof(host), "worker");
		host[sizeof(host) - 1] = '\0';
		for (i = 0; host[i]; i++) {
			if (host[i] == '/' || host[i] == ':' || host[i] <= ' ')
				host[i] = '_';
		}
		o.name = xstrdup(host);
	}
	if (!pytest)
		pytest = getenv("TESTFLEET_PYTEST");
	if (!pytest || !pytest[0])
		pytest = "pytest";
	split_words(pytest, " \t\n", &o.runners.pytest, &o.runners.npytest);
	if (o.runners.npytest == 0) {
		rc = fail_usage("--pytest: empty command");
		goto out;
	}
	if (!playwright)
		playwright = getenv("TESTFLEET_PLAYWRIGHT");
	if (!playwright || !playwright[0])
		playwright = DEFAULT_PLAYWRIGHT;
	split_words(playwright, " \t\n", &o.runners.playwright,
		    &o.runners.nplaywright);
	if (o.runners.nplaywright == 0) {
		rc = fail_usage("--playwright: empty command");
		goto out;
	}
	o.plugin_dir = find_plugin_dir(err, sizeof(err), &bad_env);
	if (!o.plugin_dir) {
		if (bad_env) {
			rc = fail_usage("%s", err);
			goto out;
		}
		log_warn("%s", err);
	} else {
		/* Shipped beside the pytest plugin; without it playwright
		 * tasks fail to start (and say why). */
		char *rep = xasprintf("%s/%s", o.plugin_dir, REPORTER_FILE);

		if (access(rep, R_OK) == 0)
			o.runners.playwright_reporter = rep;
		else
			free(rep);
	}

	if (!art_url)
		art_url = getenv("TESTFLEET_ARTIFACTS_URL");
	if (art_url && art_url[0]) {
		if (urltmpl_check(art_url, err, sizeof(err)) < 0) {
			rc = fail_usage("--artifacts-url: %s", err);
			goto out;
		}
		if (getenv("TESTFLEET_ARTIFACTS_HEADERS")) {
			char *h = xstrdup(getenv("TESTFLEET_ARTIFACTS_HEADERS"));
			char *v[URLTMPL_MAX_HEADERS];
			size_t nh;
			int bad = urltmpl_headers(h, v, &nh, err, sizeof(err));

			free(h);
			if (bad < 0) {
				rc = fail_usage("%s", err);
				goto out;
			}
		}
		o.artifacts.upload_url = art_url;
		o.artifacts.uploader = uploader = find_uploader(err, sizeof(err));
		if (!uploader) {
			rc = fail_usage("--artifacts-url: %s", err);
			goto out;
		}
	}

	if (!gate_set)
		o.start_gate = usable_cpus();
	if (!no_warm && parse_warm_env(&no_warm) < 0) {
		rc = fail_usage("TESTFLEET_PYTEST_WARM: expected 0 or 1, got "
				"\"%s\"",
				getenv("TESTFLEET_PYTEST_WARM"));
		goto out;
	}

	fault = getenv("TESTFLEET_FAULT");
	if (fault && fault[0]) {
		if (strcmp(fault, "exit-before-complete") == 0) {
			o.fault = WORKER_FAULT_EXIT_BEFORE_COMPLETE;
		} else if (strcmp(fault, "exit-after-complete") == 0) {
			o.fault = WORKER_FAULT_EXIT_AFTER_COMPLETE;
		} else {
			rc = fail_usage("TESTFLEET_FAULT: expected "
					"exit-before-complete or "
					"exit-after-complete, got \"%s\"",
					fault);
			goto out;
		}
		log_warn("TESTFLEET_FAULT=%s: this worker will exit with "
			 "status 137 around its first record",
			 fault);
	}

	ensure_std_fds();
	/* Runner processes that daemonize are reparented to us, not init,
	 * so they can be reaped and their groups killed. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		log_warn("cannot become a child subreaper: %s",
			 strerror(errno));
		/* Warm tasks would be reparented to init, out of reach. */
		no_warm = 1;
	}
	if (!no_warm)
		start_warm(&o);
	else
		log_info("pytest tasks start cold (exec per task): warm "
			 "starts turned off");
	signal(SIGPIPE, SIG_IGN);
	rc = worker_run(&o);
out:
	if (url_ok)
		redis_url_release(&o.url);
	strv_free(o.queues, o.nqueues);
	warm_free(o.runners.warm);
	strv_free(o.runners.pytest, o.runners.npytest);
	strv_free(o.runners.playwright, o.runners.nplaywright);
	free(o.runners.playwright_reporter);
	free(o.plugin_dir);
	free(uploader);
	free(o.name);
	free(o.prefix);
	return rc;
}
