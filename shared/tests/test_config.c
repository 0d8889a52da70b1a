/* test_config.c -- unit tests for shared/config.c: the schema, defaults,
 * environment expansion and the exact "FILE:LINE: KEY: problem" of every
 * error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "config.h"
#include "xmalloc.h"

static int load(const char *yaml, struct config *c, char *err, size_t errlen)
{
	return config_load_buffer("t.yaml", yaml, strlen(yaml), c, err, errlen);
}

/* ---- malformed configs ------------------------------------------------- */

struct bad_case {
	const char *yaml;
	const char *prefix;  /* exact start of the message */
	const char *problem; /* somewhere after the prefix */
};

static const struct bad_case bad_cases[] = {
    {"", "t.yaml:1: suites: ", "empty"},
    {"# nothing here\n", "t.yaml:1: suites: ", "empty"},
    {"- a\n- b\n", "t.yaml:1: (top level): ", "got a list"},
    {"defaults: {}\n", "t.yaml:1: suites: ", "missing"},
    {"suites: {}\n", "t.yaml:1: suites: ", "at least one suite"},
    {"suites: [a, b]\n", "t.yaml:1: suites: ", "expected a mapping"},
    {"suites:\n  api:\n    timeout: ten\n",
     "t.yaml:3: suites.api.timeout: ", "expected seconds, got \"ten\""},
    {"suites:\n  api:\n    colour: red\n",
     "t.yaml:3: suites.api.colour: ", "unknown key"},
    {"suites:\n  api: {}\nphases:\n  - name: a\n    suites: [api]\n"
     "  - name: b\n    suites: [api, webb]\n",
     "t.yaml:7: phases[1].suites[1]: ", "unknown suite \"webb\""},
    {"suites:\n  api:\n    paths: [a\n",
     "t.yaml:4: suites.api.paths: yaml: ", "did not find expected"},
    {"suites:\n  api: x: y\n",
     "t.yaml:2: suites: yaml: ",
     "mapping values are not allowed in this context"},
    {"suites: [unclosed\n  - {oops\n", "t.yaml:2: suites: yaml: ",
     "did not find expected"},
    {"suites:\n  api:\n\tpaths: [tests]\n", "t.yaml:3: suites.api: yaml: ",
     "a tab character where YAML allows only spaces"},
    {"suites:\n  api:\n    paths:\n    \t- tests\n",
     "t.yaml:4: suites.api.paths: yaml: ", "a tab character"},
    {"suites:\n  api:\n    env: {A: b\n  web: {}\n",
     "t.yaml:4: suites.api.env: yaml: ", "did not find expected"},
    {"suites:\n  api:\n    exclude: [slow, \"a b\"]\n",
     "t.yaml:3: suites.api.exclude[1]: ", "invalid name \"a b\""},
    {"suites:\n  api:\n    exclude: \"@slow\"\n",
     "t.yaml:3: suites.api.exclude: ", "invalid name \"@slow\""},
    {"defaults:\n  exclude: [not]\nsuites:\n  api: {}\n",
     "t.yaml:2: defaults.exclude[0]: ", "cannot be a marker name"},
    {"suites:\n  api:\n    exclude:\n      - slow\n      - slow\n",
     "t.yaml:5: suites.api.exclude[1]: ", "\"slow\" listed twice"},
    {"suites:\n  api:\n    exclude:\n", "t.yaml:3: suites.api.exclude: ",
     "expected a list of strings or a string, got nothing"},
    {"suites:\n  api:\n    exclude: {slow: 1}\n",
     "t.yaml:3: suites.api.exclude: ", "got a mapping"},
    {"defaults:\n  exclude: [slow, [x]]\nsuites:\n  api: {}\n",
     "t.yaml:2: defaults.exclude[1]: ", "expected a string, got a list"},
    {"defaults:\n  wokers: 3\nsuites:\n  api: {}\n",
     "t.yaml:2: defaults.wokers: ", "unknown key (did you mean workers?)"},
    {"suite:\n  api: {}\n", "t.yaml:1: suite: ",
     "unknown key (did you mean suites?)"},
    {"colour: red\nsuites:\n  api: {}\n", "t.yaml:1: colour: ",
     "unknown key (the top level has defaults, suites, phases"},
    {"suites:\n  api:\n    exlude: [slow]\n", "t.yaml:3: suites.api.exlude: ",
     "unknown key (did you mean exclude?)"},
    {"suites:\n  api:\n    ab: x\n", "t.yaml:3: suites.api.ab: ",
     "unknown key"},
    {"suites:\n  api: {}\nphases:\n  - name: x\n    suite: api\n",
     "t.yaml:5: phases[0].suite: ", "unknown key (did you mean suites?)"},
    {"retry:\n  max_attempt: 3\nsuites:\n  a: {}\n",
     "t.yaml:2: retry.max_attempt: ",
     "unknown key (did you mean max_attempts?)"},
    {"suites:\n  a: {}\npreflight:\n  - name: x\n    smtp: h:25\n",
     "t.yaml:5: preflight[0].smtp: ",
     "unknown key (a check is one of http, tcp, redis)"},
    {"suites:\n  api: {}\n  api: {}\n",
     "t.yaml:3: suites.api: ", "duplicate key"},
    {"suites:\n  api:\n    queue: a\n    queue: b\n",
     "t.yaml:4: suites.api.queue: ", "duplicate key"},
    {"colour: red\nsuites:\n  api: {}\n", "t.yaml:1: colour: ", "unknown key"},
    {"defaults:\n  wokers: 3\nsuites:\n  api: {}\n",
     "t.yaml:2: defaults.wokers: ", "unknown key"},
    {"suites:\n  \"b@d\": {}\n",
     "t.yaml:2: suites.b@d: ", "invalid suite name"},
    {"suites:\n  api:\n    env: {X: \"${TF_TEST_SURELY_UNSET}\"}\n",
     "t.yaml:3: suites.api.env.X: ",
     "environment variable TF_TEST_SURELY_UNSET is not set"},
    {"suites:\n  api:\n    cwd: \"${HOME\"\n",
     "t.yaml:3: suites.api.cwd: ", "unterminated"},
    {"suites:\n  api:\n    cwd: \"${1x}\"\n",
     "t.yaml:3: suites.api.cwd: ", "bad variable reference"},
    {"suites:\n  api:\n    env:\n      \"A B\": x\n",
     "t.yaml:4: suites.api.env.\"A B\": ", "invalid environment variable"},
    {"suites:\n  api:\n    env: [a]\n",
     "t.yaml:3: suites.api.env: ", "expected a mapping, got a list"},
    {"suites:\n  load:\n    runner: command\n",
     "t.yaml:3: suites.load: ", "needs \"command\""},
    {"suites:\n  api:\n    command: [a]\n",
     "t.yaml:3: suites.api.command: ", "only for the command runner"},
    {"suites:\n  load:\n    runner: command\n    command: \"./x --y\"\n",
     "t.yaml:4: suites.load.command: ", "no shell"},
    {"suites:\n  load:\n    runner: command\n    command: [x]\n"
     "    paths: [a]\n",
     "t.yaml:5: suites.load.paths: ", "not used by the command runner"},
    {"suites:\n  api:\n    grep: x\n",
     "t.yaml:3: suites.api.grep: ", "only for the playwright runner"},
    {"suites:\n  web:\n    runner: playwright\n    markers: x\n",
     "t.yaml:4: suites.web.markers: ", "only for the pytest runner"},
    {"suites:\n  web:\n    runner: playwright\n    keyword: x\n",
     "t.yaml:4: suites.web.keyword: ", "only for the pytest runner"},
    {"suites:\n  api:\n    runner: nose\n", "t.yaml:3: suites.api.runner: ",
     "expected pytest, playwright or command, got \"nose\""},
    {"suites:\n  api:\n    paths: [tests, -k]\n",
     "t.yaml:3: suites.api.paths[1]: ", "looks like an option"},
    {"suites:\n  api:\n    paths: [tests, \"\"]\n",
     "t.yaml:3: suites.api.paths[1]: ", "must not be empty"},
    {"suites:\n  api:\n    paths: []\n",
     "t.yaml:3: suites.api.paths: ", "must not be empty"},
    {"suites:\n  api:\n    paths: {a: b}\n", "t.yaml:3: suites.api.paths: ",
     "expected a list of strings or a string, got a mapping"},
    {"defaults:\n  workers: 0\nsuites:\n  api: {}\n",
     "t.yaml:2: defaults.workers: ", "got \"0\""},
    {"defaults:\n  workers: four\nsuites:\n  api: {}\n",
     "t.yaml:2: defaults.workers: ", "expected an integer"},
    {"defaults:\n  workers: 99999999999999999999999\nsuites:\n  api: {}\n",
     "t.yaml:2: defaults.workers: ", "expected an integer"},
    {"defaults:\n  retries: -1\nsuites:\n  api: {}\n",
     "t.yaml:2: defaults.retries: ", "got \"-1\""},
    {"defaults:\n  shard: count:0\nsuites:\n  api: {}\n",
     "t.yaml:2: defaults.shard: ", "got \"count:0\""},
    {"defaults:\n  shard: random\nsuites:\n  api: {}\n",
     "t.yaml:2: defaults.shard: ", "got \"random\""},
    {"defaults:\n  timeout: 10x\nsuites:\n  api: {}\n",
     "t.yaml:2: defaults.timeout: ", "expected seconds"},
    {"defaults:\n  timeout: 100000d\nsuites:\n  api: {}\n",
     "t.yaml:2: defaults.timeout: ", "expected seconds"},
    {"defaults:\n  prefix: \"tf key\"\nsuites:\n  api: {}\n",
     "t.yaml:2: defaults.prefix: ", "invalid name"},
    {"defaults:\n  queue: \"a/b\"\nsuites:\n  api: {}\n",
     "t.yaml:2: defaults.queue: ", "invalid name"},
    {"defaults: [1]\nsuites:\n  api: {}\n",
     "t.yaml:1: defaults: ", "expected a mapping"},
    {"suites:\n  api:\n    markers:\n",
     "t.yaml:3: suites.api.markers: ", "expected a string, got nothing"},
    {"suites:\n  api:\n    cwd: [a]\n",
     "t.yaml:3: suites.api.cwd: ", "expected a string, got a list"},
    {"suites:\n  api:\n    cwd: \"a\\0b\"\n",
     "t.yaml:3: suites.api.cwd: ", "NUL"},
    {"suites:\n  api:\n    max_concurrency: lots\n",
     "t.yaml:3: suites.api.max_concurrency: ", "expected an integer"},
    {"suites:\n  ? [a]\n  : b\n", "t.yaml:2: suites: ", "keys must be strings"},
    {"suites:\n  api: {}\nphases: []\n",
     "t.yaml:3: phases: ", "must not be empty"},
    {"suites:\n  api: {}\nphases: {a: b}\n",
     "t.yaml:3: phases: ", "expected a list of phases"},
    {"suites:\n  api: {}\nphases:\n  - suites: [api]\n",
     "t.yaml:4: phases[0]: ", "missing \"name\""},
    {"suites:\n  api: {}\nphases:\n  - name: p\n",
     "t.yaml:4: phases[0]: ", "missing \"suites\""},
    {"suites:\n  api: {}\nphases:\n  - name: a\n    suites: [api]\n"
     "  - name: a\n    suites: [api]\n",
     "t.yaml:6: phases[1].name: ", "duplicate phase name \"a\""},
    {"suites:\n  api: {}\nphases:\n  - name: a\n    suites: [api, api]\n",
     "t.yaml:5: phases[0].suites[1]: ", "listed twice"},
    {"suites:\n  api: {}\nphases:\n  - name: a\n    suites: api\n"
     "    required: maybe\n",
     "t.yaml:6: phases[0].required: ", "expected true or false"},
    {"suites:\n  api: {}\nphases:\n  - name: a\n    suites: api\n"
     "    stages: 3\n",
     "t.yaml:6: phases[0].stages: ", "unknown key"},
    {"suites:\n  api: {}\nphases:\n  - name: \"x y\"\n    suites: api\n",
     "t.yaml:4: phases[0].name: ", "invalid name"},
    {"suites:\n  api: {}\nphases:\n  - name: a\n    suites: nope\n",
     "t.yaml:5: phases[0].suites: ", "unknown suite \"nope\""},
    {"suites:\n  api: {}\n---\nsuites:\n  b: {}\n",
     "t.yaml:4: yaml: ", "only one document"},
    {"suites:\n  api: {}\n\x01\n", "t.yaml:3: yaml: ", "control characters"},
    {"suites: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
     "[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
     "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
     "t.yaml:1: yaml: ", "nested deeper than"},
    {"retry: 3\nsuites:\n  a: {}\n", "t.yaml:1: retry: ",
     "expected a mapping"},
    {"retry:\n  attempts: 3\nsuites:\n  a: {}\n",
     "t.yaml:2: retry.attempts: ", "unknown key"},
    {"retry:\n  max_attempts: 0\nsuites:\n  a: {}\n",
     "t.yaml:2: retry.max_attempts: ",
     "expected an integer from 1 to 100, got \"0\""},
    {"retry:\n  max_attempts: 101\nsuites:\n  a: {}\n",
     "t.yaml:2: retry.max_attempts: ", "got \"101\""},
    {"retry:\n  transient: [ok, \"\"]\nsuites:\n  a: {}\n",
     "t.yaml:2: retry.transient[1]: ", "must not be empty"},
    {"retry:\n  transient:\n    - ok\n    - \"two\\nlines\"\n"
     "suites:\n  a: {}\n",
     "t.yaml:4: retry.transient[1]: ", "must not contain a newline"},
    {"retry:\n  transient_extra: {a: b}\nsuites:\n  a: {}\n",
     "t.yaml:2: retry.transient_extra: ", "expected a list of strings"},
    {"retry:\n  transient_extra: [[x]]\nsuites:\n  a: {}\n",
     "t.yaml:2: retry.transient_extra[0]: ", "expected a string"},
    {"retry:\n  backoff_base: fast\nsuites:\n  a: {}\n",
     "t.yaml:2: retry.backoff_base: ", "expected a duration"},
    {"retry:\n  backoff_base: 1.5s\nsuites:\n  a: {}\n",
     "t.yaml:2: retry.backoff_base: ", "got \"1.5s\""},
    {"retry:\n  backoff_cap: 25h\nsuites:\n  a: {}\n",
     "t.yaml:2: retry.backoff_cap: ", "at most 24h"},
    {"retry:\n  backoff_cap: 500ms\n  backoff_base: 2s\nsuites:\n"
     "  a: {}\n",
     "t.yaml:2: retry.backoff_cap: ",
     "500ms is less than retry.backoff_base (2000ms)"},
    {"suites:\n  a: {}\npreflight:\n  a: 1\n", "t.yaml:4: preflight: ", "expected a list"},
    {"suites:\n  a: {}\npreflight:\n  - http: http://h/\n", "t.yaml:4: preflight[0].name: ",
     "missing"},
    {"suites:\n  a: {}\npreflight:\n  - name: a b\n    tcp: h:1\n",
     "t.yaml:4: preflight[0].name: ", "invalid name \"a b\""},
    {"suites:\n  a: {}\npreflight:\n  - name: x\n", "t.yaml:4: preflight[0]: ",
     "one of http, tcp, redis"},
    {"suites:\n  a: {}\npreflight:\n  - name: x\n    http: http://h/\n    tcp: h:1\n",
     "t.yaml:6: preflight[0].tcp: ", "only one of http, tcp, redis"},
    {"suites:\n  a: {}\npreflight:\n  - name: x\n    http: ftp://h/\n",
     "t.yaml:5: preflight[0].http: ", "expected an http:// or https://"},
    {"suites:\n  a: {}\npreflight:\n  - name: x\n    tcp: h\n", "t.yaml:5: preflight[0].tcp: ",
     "expected HOST:PORT"},
    {"suites:\n  a: {}\npreflight:\n  - name: x\n    tcp: h:0\n", "t.yaml:5: preflight[0].tcp: ",
     "expected HOST:PORT"},
    {"suites:\n  a: {}\npreflight:\n  - name: x\n    tcp: ::1:80\n",
     "t.yaml:5: preflight[0].tcp: ", "IPv6 in brackets"},
    {"suites:\n  a: {}\npreflight:\n  - name: x\n    redis: http://h\n",
     "t.yaml:5: preflight[0].redis: ", "redis"},
    {"suites:\n  a: {}\npreflight:\n  - name: x\n    http: http://h/\n    status: 99\n",
     "t.yaml:6: preflight[0].status: ", "from 100 to 599"},
    {"suites:\n  a: {}\npreflight:\n  - name: x\n    http: http://h/\n    status: [200, ok]\n",
     "t.yaml:6: preflight[0].status[1]: ", "got \"ok\""},
    {"suites:\n  a: {}\npreflight:\n  - name: x\n    http: http://h/\n    status: []\n",
     "t.yaml:6: preflight[0].status: ", "must not be empty"},
    {"suites:\n  a: {}\npreflight:\n  - name: x\n    tcp: h:1\n    status: 200\n",
     "t.yaml:6: preflight[0].status: ", "only for http"},
    {"suites:\n  a: {}\npreflight:\n  - name: x\n    tcp: h:1\n    timeout: 0\n",
     "t.yaml:6: preflight[0].timeout: ", "more than 0"},
    {"suites:\n  a: {}\npreflight:\n  - name: x\n    tcp: h:1\n    timeout: soon\n",
     "t.yaml:6: preflight[0].timeout: ", "expected a duration"},
    {"suites:\n  a: {}\npreflight:\n  - name: x\n    tcp: h:1\n    colour: red\n",
     "t.yaml:6: preflight[0].colour: ", "unknown key"},
    {"suites:\n  a: {}\npreflight:\n  - name: x\n    tcp: h:1\n  - name: x\n    tcp: h:2\n",
     "t.yaml:6: preflight[1].name: ", "duplicate check name \"x\""},
};

static void test_bad_configs(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *bc = &bad_cases[i];
		struct config c;
		char err[512];
		int rc;

		memset(err, 'X', sizeof(err));
		rc = load(bc->yaml, &c, err, sizeof(err));
		if (rc != -1 ||
		    strncmp(err, bc->prefix, strlen(bc->prefix)) != 0 ||
		    strstr(err + strlen(bc->prefix), bc->problem) == NULL ||
		    strchr(err, '\n') != NULL)
			fail_msg(
			    "case %zu: rc %d, got \"%s\", want \"%s...%s\"", i,
			    rc, rc == 0 ? "(none)" : err, bc->prefix,
			    bc->problem);
		/* out is left empty on error */
		assert_null(c.suites);
		assert_null(c.path);
	}
}

/* ---- good configs ------------------------------------------------------ */

static const char full_yaml[] =
    "defaults:\n"
    "  redis: redis://host:6379/0\n"
    "  prefix: tf-ci\n"
    "  workers: 4\n"
    "  shard: count:8\n"
    "  timeout: 10m\n"
    "  queue: fast\n"
    "  retries: 2\n"
    "suites:\n"
    "  api:\n"
    "    runner: pytest\n"
    "    paths: [tests/api, tests/common]\n"
    "    cwd: services/api\n"
    "    env:\n"
    "      TEST_DATABASE_URL: "
    "\"${TF_TEST_DB_URL:-postgres://localhost/test}\"\n"
    "      FROM_ENV: \"${TF_TEST_SET}\"\n"
    "      EMPTY_DEFAULT: \"${TF_TEST_EMPTY:-fallback}\"\n"
    "      EMPTY: \"${TF_TEST_EMPTY}\"\n"
    "      LITERAL: \"cost: $$5 and $HOME and $\"\n"
    "      BLANK: \"\"\n"
    "    markers: \"not slow\"\n"
    "    keyword: \"login\"\n"
    "    timeout: 300\n"
    "    queue: default\n"
    "    shard: file\n"
    "    retries: 1\n"
    "    max_concurrency: 1\n"
    "  load:\n"
    "    runner: command\n"
    "    command: [./load.sh, --users, \"10\", \"\"]\n"
    "    timeout: 1h30m\n"
    "  web:\n"
    "    runner: playwright\n"
    "    paths: e2e\n"
    "    grep: \"@smoke\"\n"
    "    timeout: \"90s\"\n"
    "phases:\n"
    "  - name: health\n"
    "    suites: [api]\n"
    "    required: true\n"
    "    parallel: false\n"
    "    timeout: 120\n"
    "  - name: rest\n"
    "    suites: [web, load]\n"
    "    required: false\n";

static void test_full_config(void **state)
{
	struct config c;
	const struct suite_conf *s;
	const struct phase_conf *p;
	char err[512];

	(void)state;
	assert_int_equal(setenv("TF_TEST_SET", "from-env", 1), 0);
	assert_int_equal(setenv("TF_TEST_EMPTY", "", 1), 0);
	assert_int_equal(unsetenv("TF_TEST_DB_URL"), 0);
	if (load(full_yaml, &c, err, sizeof(err)) != 0)
		fail_msg("%s", err);

	assert_string_equal(c.path, "t.yaml");
	assert_string_equal(c.redis, "redis://host:6379/0");
	assert_string_equal(c.prefix, "tf-ci");
	assert_int_equal(c.workers, 4);
	assert_string_equal(c.shard, "count:8");
	assert_int_equal(c.timeout_s, 600);
	assert_string_equal(c.queue, "fast");
	assert_int_equal(c.retries, 2);
	assert_int_equal(c.nsuites, 3);

	s = &c.suites[0];
	assert_string_equal(s->name, "api");
	assert_string_equal(s->runner, "pytest");
	assert_int_equal(s->npaths, 2);
	assert_string_equal(s->paths[0], "tests/api");
	assert_string_equal(s->paths[1], "tests/common");
	assert_null(s->command);
	assert_int_equal(s->ncommand, 0);
	assert_string_equal(s->cwd, "services/api");
	assert_int_equal(s->nenv, 6);
	assert_string_equal(s->env[0].key, "TEST_DATABASE_URL");
	assert_string_equal(s->env[0].value, "postgres://localhost/test");
	assert_string_equal(s->env[1].key, "FROM_ENV");
	assert_string_equal(s->env[1].value, "from-env");
	assert_string_equal(s->env[2].value, "fallback");
	assert_string_equal(s->env[3].value, "");
	assert_string_equal(s->env[4].value, "cost: $5 and $HOME and $");
	assert_string_equal(s->env[5].key, "BLANK");
	assert_string_equal(s->env[5].value, "");
	assert_string_equal(s->mark, "not slow");
	assert_string_equal(s->kexpr, "login");
	assert_null(s->grep);
	assert_int_equal(s->timeout_s, 300);
	assert_string_equal(s->queue, "default");
	assert_string_equal(s->shard, "file");
	assert_int_equal(s->retries, 1);
	assert_int_equal(s->max_concurrency, 1);

	s = &c.suites[1];
	assert_string_equal(s->name, "load");
	assert_string_equal(s->runner, "command");
	assert_int_equal(s->ncommand, 4);
	assert_string_equal(s->command[0], "./load.sh");
	assert_string_equal(s->command[1], "--users");
	assert_string_equal(s->command[2], "10");
	assert_string_equal(s->command[3], "");
	assert_null(s->paths);
	assert_int_equal(s->timeout_s, 5400);
	assert_null(s->queue);
	assert_null(s->shard);
	assert_int_equal(s->retries, -1);

	s = &c.suites[2];
	assert_string_equal(s->name, "web");
	assert_string_equal(s->runner, "playwright");
	assert_int_equal(s->npaths, 1);
	assert_string_equal(s->paths[0], "e2e");
	assert_string_equal(s->grep, "@smoke");
	assert_int_equal(s->timeout_s, 90);

	assert_int_equal(c.nphases, 2);
	p = &c.phases[0];
	assert_string_equal(p->name, "health");
	assert_int_equal(p->nsuites, 1);
	assert_string_equal(p->suites[0], "api");
	assert_int_equal(p->required, 1);
	assert_int_equal(p->parallel, 0);
	assert_int_equal(p->timeout_s, 120);
	p = &c.phases[1];
	assert_string_equal(p->name, "rest");
	assert_int_equal(p->nsuites, 2);
	assert_string_equal(p->suites[0], "web");
	assert_string_equal(p->suites[1], "load");
	assert_int_equal(p->required, 0);
	assert_int_equal(p->parallel, 1);
	assert_int_equal(p->timeout_s, 0);

	assert_ptr_equal(config_suite(&c, "web"), &c.suites[2]);
	assert_null(config_suite(&c, "nope"));
	assert_ptr_equal(config_phase(&c, "rest"), &c.phases[1]);
	assert_null(config_phase(&c, "default"));

	config_release(&c);
	assert_null(c.suites);
	assert_int_equal(c.nsuites, 0);
	unsetenv("TF_TEST_SET");
	unsetenv("TF_TEST_EMPTY");
}

static void test_env_default_overridden(void **state)
{
	struct config c;
	char err[512];

	(void)state;
	assert_int_equal(setenv("TF_TEST_DB_URL", "postgres://db/x", 1), 0);
	assert_int_equal(setenv("TF_TEST_WORKERS", "7", 1), 0);
	if (load("defaults:\n  workers: ${TF_TEST_WORKERS:-2}\n"
		 "  redis: ${TF_TEST_DB_URL}\n"
		 "suites:\n  api:\n    env: {U: \"<${TF_TEST_DB_URL:-x}>\"}\n",
		 &c, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(c.workers, 7);
	assert_string_equal(c.redis, "postgres://db/x");
	assert_string_equal(c.suites[0].env[0].value, "<postgres://db/x>");
	config_release(&c);

	/* Expansion applies to values only, never to keys. */
	if (load("suites:\n  api:\n    env: {\"$$X\": y}\n", &c, err,
		 sizeof(err)) == 0)
		fail_msg("a key was expanded");
	assert_non_null(strstr(err, "invalid environment variable name"));
	unsetenv("TF_TEST_DB_URL");
	unsetenv("TF_TEST_WORKERS");
}

static void test_defaults(void **state)
{
	struct config c;
	const struct suite_conf *s;
	char err[512];

	(void)state;
	if (load("suites:\n  unit:\n  api: {}\n  e2e:\n    paths: x\n", &c, err,
		 sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_null(c.redis);
	assert_string_equal(c.prefix, "tf");
	assert_int_equal(c.workers, 0);
	assert_string_equal(c.shard, "auto");
	assert_int_equal(c.timeout_s, 0);
	assert_string_equal(c.queue, "default");
	assert_int_equal(c.retries, 0);
	assert_int_equal(c.nsuites, 3);
	s = &c.suites[0];
	assert_string_equal(s->name, "unit");
	assert_string_equal(s->runner, "pytest");
	assert_null(s->paths);
	assert_int_equal(s->npaths, 0);
	assert_null(s->cwd);
	assert_null(s->env);
	assert_null(s->mark);
	assert_null(s->kexpr);
	assert_null(s->grep);
	assert_int_equal(s->timeout_s, 0);
	assert_null(s->queue);
	assert_null(s->shard);
	assert_int_equal(s->retries, -1);
	assert_int_equal(s->max_concurrency, 0);

	/* One synthesized phase with every suite, in file order. */
	assert_int_equal(c.nphases, 1);
	assert_string_equal(c.phases[0].name, "default");
	assert_int_equal(c.phases[0].required, 1);
	assert_int_equal(c.phases[0].parallel, 1);
	assert_int_equal(c.phases[0].timeout_s, 0);
	assert_int_equal(c.phases[0].nsuites, 3);
	assert_string_equal(c.phases[0].suites[0], "unit");
	assert_string_equal(c.phases[0].suites[1], "api");
	assert_string_equal(c.phases[0].suites[2], "e2e");
	assert_non_null(config_phase(&c, "default"));
	config_release(&c);
}

/* exclude: under defaults and per suite; a suite's list replaces the
 * defaults' (an empty one too); one name stands for a list of one. */
static void test_exclude(void **state)
{
	struct config c;
	char *const *v;
	size_t n;
	char err[512];

	(void)state;
	if (load("defaults:\n  exclude: [slow, destructive]\n"
		 "suites:\n"
		 "  unit: {}\n"
		 "  nightly:\n    exclude: []\n"
		 "  e2e:\n    runner: playwright\n    exclude: flaky.net\n"
		 "  load:\n    runner: command\n    command: [x]\n",
		 &c, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(c.nexclude, 2);
	assert_string_equal(c.exclude[0], "slow");
	assert_string_equal(c.exclude[1], "destructive");
	assert_int_equal(c.suites[0].has_exclude, 0);
	v = config_suite_exclude(&c, config_suite(&c, "unit"), &n);
	assert_int_equal(n, 2);
	assert_string_equal(v[1], "destructive");
	assert_int_equal(c.suites[1].has_exclude, 1);
	config_suite_exclude(&c, config_suite(&c, "nightly"), &n);
	assert_int_equal(n, 0);
	v = config_suite_exclude(&c, config_suite(&c, "e2e"), &n);
	assert_int_equal(n, 1);
	assert_string_equal(v[0], "flaky.net");
	/* The command runner ignores them, but inherits them all the same. */
	config_suite_exclude(&c, config_suite(&c, "load"), &n);
	assert_int_equal(n, 2);
	config_release(&c);

	/* Without exclude: anywhere nothing is excluded. */
	if (load("suites:\n  unit: {}\n", &c, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_null(c.exclude);
	config_suite_exclude(&c, &c.suites[0], &n);
	assert_int_equal(n, 0);
	config_release(&c);
}

static void test_durations(void **state)
{
	static const struct {
		const char *text;
		unsigned seconds;
	} ok[] = {
	    {"0", 0},	    {"600", 600},   {"90s", 90},
	    {"10m", 600},   {"1h", 3600},   {"1h30m", 5400},
	    {"2d", 172800}, {"\"45\"", 45}, {"1m1s", 61},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct config c;
		char yaml[128], err[512];

		snprintf(yaml, sizeof(yaml),
			 "defaults:\n  timeout: %s\nsuites:\n  a: {}\n",
			 ok[i].text);
		if (load(yaml, &c, err, sizeof(err)) != 0)
			fail_msg("%s: %s", ok[i].text, err);
		assert_int_equal(c.timeout_s, ok[i].seconds);
		config_release(&c);
	}
}

static void test_retry_section(void **state)
{
	static const struct {
		const char *text;
		long ms;
	} ok[] = {
	    {"0", 0},		{"2", 2000},	    {"500ms", 500},
	    {"1s", 1000},	{"1m30s", 90000},   {"1s250ms", 1250},
	    {"24h", 86400000},	{"\"750ms\"", 750}, {"1h", 3600000},
	};
	struct config c;
	char yaml[256], err[512];
	size_t i;

	(void)state;
	/* Absent: everything unset, the policy's defaults apply. */
	if (load("suites:\n  a: {}\n", &c, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(c.retry.max_attempts, -1);
	assert_int_equal(c.retry.has_transient, 0);
	assert_null(c.retry.transient);
	assert_int_equal(c.retry.ntransient_extra, 0);
	assert_int_equal(c.retry.backoff_base_ms, -1);
	assert_int_equal(c.retry.backoff_cap_ms, -1);
	config_release(&c);

	if (load("retry:\n"
		 "  max_attempts: 5\n"
		 "  transient: [\"503 Service Unavailable\", \"quota $$\"]\n"
		 "  transient_extra: Broken pipe\n"
		 "  backoff_base: 250ms\n"
		 "  backoff_cap: 10s\n"
		 "suites:\n  a: {}\n",
		 &c, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(c.retry.max_attempts, 5);
	assert_int_equal(c.retry.has_transient, 1);
	assert_int_equal(c.retry.ntransient, 2);
	assert_string_equal(c.retry.transient[0], "503 Service Unavailable");
	assert_string_equal(c.retry.transient[1], "quota $");
	assert_int_equal(c.retry.ntransient_extra, 1);
	assert_string_equal(c.retry.transient_extra[0], "Broken pipe");
	assert_int_equal(c.retry.backoff_base_ms, 250);
	assert_int_equal(c.retry.backoff_cap_ms, 10000);
	config_release(&c);

	/* An empty list turns the default patterns off. */
	if (load("retry:\n  transient: []\nsuites:\n  a: {}\n", &c, err,
		 sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(c.retry.has_transient, 1);
	assert_int_equal(c.retry.ntransient, 0);
	config_release(&c);

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		snprintf(yaml, sizeof(yaml),
			 "retry:\n  backoff_cap: %s\nsuites:\n  a: {}\n",
			 ok[i].text);
		if (load(yaml, &c, err, sizeof(err)) != 0)
			fail_msg("%s: %s", ok[i].text, err);
		assert_int_equal(c.retry.backoff_cap_ms, ok[i].ms);
		config_release(&c);
	}
}

static void test_check_shard(void **state)
{
	static const char *const good[] = {
	    "auto", "file", "test", "count:1", "count:100000", "count:007"};
	static const char *const bad[] = {
	    "",
	    "AUTO",
	    "count:",
	    "count:0",
	    "count:-1",
	    "count:1x",
	    "count:100001",
	    "count: 2",
	    "count:+2",
	    "files",
	    "count:99999999999999999999",
	    "count",
	};
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (config_check_shard(good[i], err, sizeof(err)) != 0)
			fail_msg("%s rejected: %s", good[i], err);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char want[64];

		if (config_check_shard(bad[i], err, sizeof(err)) != -1)
			fail_msg("\"%s\" accepted", bad[i]);
		snprintf(want, sizeof(want), "\"%s\"", bad[i]);
		if (strstr(err, want) == NULL)
			fail_msg("message does not name \"%s\": %s", bad[i],
				 err);
	}
}

static void test_aliases(void **state)
{
	struct config c;
	char err[512];
	struct buf b;
	size_t i;

	(void)state;
	/* Plain anchors work. */
	if (load("suites:\n  a: &s {paths: [x], retries: 2}\n  b: *s\n", &c,
		 err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(c.nsuites, 2);
	assert_int_equal(c.suites[1].retries, 2);
	assert_string_equal(c.suites[1].paths[0], "x");
	config_release(&c);

	/* An alias bomb runs out of budget quickly instead of looping:
	 * 500 suites each walking the same 20000-entry env mapping. */
	buf_init(&b, 0);
	buf_appendstr(&b, "suites:\n  s: {env: &e {");
	for (i = 0; i < 20000; i++)
		buf_printf(&b, "%sV%zu: v", i ? ", " : "", i);
	buf_appendstr(&b, "}}\n");
	for (i = 0; i < 500; i++)
		buf_printf(&b, "  s%zu: {env: *e}\n", i);
	assert_int_equal(load(b.data, &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "aliases"));
	assert_null(c.suites);

	/* libyaml searches anchors linearly: more than 100 are refused. */
	buf_reset(&b);
	buf_appendstr(&b, "suites:\n  a:\n    paths: [");
	for (i = 0; i < 101; i++)
		buf_printf(&b, "%s&a%zu x", i ? ", " : "", i);
	buf_appendstr(&b, "]\n");
	assert_int_equal(load(b.data, &c, err, sizeof(err)), -1);
	assert_string_equal(err, "t.yaml:3: yaml: more than 100 anchors");
	buf_release(&b);
}

static void test_limits(void **state)
{
	struct config c;
	char err[512], *big;
	size_t n = (1u << 20) + 1;

	(void)state;
	big = xmalloc(n);
	memset(big, '#', n);
	assert_int_equal(
	    config_load_buffer("big.yaml", big, n, &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "big.yaml: "));
	assert_non_null(strstr(err, "larger"));
	free(big);

	/* Names longer than 128 are refused. */
	{
		char yaml[512];

		snprintf(yaml, sizeof(yaml), "suites:\n  %0129d: {}\n", 0);
		assert_int_equal(load(yaml, &c, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "t.yaml:2: "));
	}
	/* A tiny error buffer is never overrun. */
	{
		char small[8];

		memset(small, 'X', sizeof(small));
		assert_int_equal(load("suites: {}\n", &c, small, 5), -1);
		assert_int_equal(small[4], '\0');
		assert_int_equal(small[5], 'X');
	}
}

static void test_load_file(void **state)
{
	char dir[] = "/tmp/tf-test-config-XXXXXX";
	char path[128], err[512];
	struct config c;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/testfleet.yaml", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("suites:\n  api:\n    timeout: 5m\n", f);
	fclose(f);
	if (config_load_file(path, &c, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_string_equal(c.path, path);
	assert_int_equal(c.suites[0].timeout_s, 300);
	config_release(&c);

	f = fopen(path, "w");
	assert_non_null(f);
	fputs("suites:\n  api:\n    colour: red\n", f);
	fclose(f);
	assert_int_equal(config_load_file(path, &c, err, sizeof(err)), -1);
	{
		char want[256];

		snprintf(want, sizeof(want), "%s:3: suites.api.colour: ", path);
		assert_memory_equal(err, want, strlen(want));
	}
	unlink(path);

	assert_int_equal(config_load_file(path, &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot open"));
	rmdir(dir);
}

static void test_preflight(void **state)
{
	static const char yaml[] =
	    "suites:\n  a: {}\n"
	    "preflight:\n"
	    "  - name: api-health\n"
	    "    http: http://127.0.0.1:8000/health\n"
	    "  - name: api.v2\n"
	    "    http: https://h/x\n"
	    "    status: [200, 204]\n"
	    "    timeout: 1500ms\n"
	    "  - name: one_status\n"
	    "    http: http://h/\n"
	    "    status: 301\n"
	    "  - name: db\n"
	    "    tcp: \"[::1]:5432\"\n"
	    "    timeout: 2\n"
	    "  - name: cache\n"
	    "    redis: redis://127.0.0.1:6379/1\n";
	struct config c;
	char err[512];

	(void)state;
	assert_int_equal(load(yaml, &c, err, sizeof(err)), 0);
	assert_int_equal(c.npreflight, 5);
	assert_string_equal(c.preflight[0].name, "api-health");
	assert_int_equal(c.preflight[0].kind, PREFLIGHT_HTTP);
	assert_string_equal(c.preflight[0].target,
			    "http://127.0.0.1:8000/health");
	assert_int_equal(c.preflight[0].nstatus, 0);
	assert_int_equal(c.preflight[0].timeout_ms, 5000);
	assert_int_equal(c.preflight[1].nstatus, 2);
	assert_int_equal(c.preflight[1].status[0], 200);
	assert_int_equal(c.preflight[1].status[1], 204);
	assert_int_equal(c.preflight[1].timeout_ms, 1500);
	assert_int_equal(c.preflight[2].nstatus, 1);
	assert_int_equal(c.preflight[2].status[0], 301);
	assert_int_equal(c.preflight[3].kind, PREFLIGHT_TCP);
	assert_string_equal(c.preflight[3].target, "[::1]:5432");
	assert_int_equal(c.preflight[3].timeout_ms, 2000);
	assert_int_equal(c.preflight[4].kind, PREFLIGHT_REDIS);
	assert_string_equal(c.preflight[4].target, "redis://127.0.0.1:6379/1");
	config_release(&c);

	/* Absent: no checks. An empty list is allowed too. */
	assert_int_equal(load("suites:\n  a: {}\n", &c, err, sizeof(err)), 0);
	assert_int_equal(c.npreflight, 0);
	assert_null(c.preflight);
	config_release(&c);
	assert_int_equal(
	    load("suites:\n  a: {}\npreflight: []\n", &c, err, sizeof(err)),
	    0);
	assert_int_equal(c.npreflight, 0);
	config_release(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bad_configs),
	    cmocka_unit_test(test_full_config),
	    cmocka_unit_test(test_env_default_overridden),
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_exclude),
	    cmocka_unit_test(test_durations),
	    cmocka_unit_test(test_retry_section),
	    cmocka_unit_test(test_check_shard),
	    cmocka_unit_test(test_aliases),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_load_file),
	    cmocka_unit_test(test_preflight),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
