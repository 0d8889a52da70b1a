"""Malformed configuration files (docs/config.md, "Errors"; DESIGN section 2):
each one, given to `testfleet run --config FILE` (some to `submit`), ends
with exit 2 and exactly one line on stderr of the form
`testfleet: FILE:LINE: KEY.PATH: problem` -- the right line and the key --
and nothing reaches Redis: no key under tf:* exists afterwards.

The table is the acceptance list of malformed configs; the exact wording of
every message is pinned by the unit tests (shared/tests/test_config.c)."""
import pytest

from tfhelpers import assert_one_error_line, redis_keys

CFG = "conf/testfleet-bad.yaml"  # as given on the command line

# id: (yaml, line, key path, words the problem must contain). The key path
# is what follows "FILE:LINE: "; YAML syntax errors name the key they are
# in, then "yaml:".
CASES = {
    "unknown-top-level-key": (
        "suites:\n  api: {paths: [tests]}\ncolour: red\n",
        3, "colour", ["unknown key"]),
    "unknown-suite-key": (
        "suites:\n  api:\n    paths: [tests]\n    colour: red\n",
        4, "suites.api.colour", ["unknown key"]),
    "unknown-phase-key": (
        "suites:\n  api: {}\nphases:\n  - name: first\n    suites: [api]\n"
        "    stages: 3\n",
        6, "phases[0].stages", ["unknown key"]),
    "unknown-defaults-key": (
        "defaults:\n  wokers: 4\nsuites:\n  api: {}\n",
        2, "defaults.wokers", ["unknown key"]),
    "timeout-not-seconds": (
        "suites:\n  api:\n    paths: [tests]\n    timeout: ten\n",
        4, "suites.api.timeout", ['expected seconds, got "ten"']),
    "timeout-a-list": (
        "defaults:\n  timeout: [10]\nsuites:\n  api: {}\n",
        2, "defaults.timeout", ["expected seconds, got a list"]),
    "bad-shard-mode": (
        "defaults:\n  shard: random\nsuites:\n  api: {}\n",
        2, "defaults.shard", ['"random"', "count:N"]),
    "bad-shard-count": (
        "suites:\n  api:\n    shard: count:0\n",
        3, "suites.api.shard", ['"count:0"']),
    "negative-retries": (
        "defaults:\n  retries: -1\nsuites:\n  api: {}\n",
        2, "defaults.retries", ['got "-1"']),
    "zero-workers": (
        "defaults:\n  workers: 0\nsuites:\n  api: {}\n",
        2, "defaults.workers", ['got "0"']),
    "phase-names-unknown-suite": (
        "suites:\n  api: {}\n  web: {}\nphases:\n  - name: first\n"
        "    suites:\n      - api\n      - webb\n",
        8, "phases[0].suites[1]", ['unknown suite "webb"']),
    "duplicate-suite": (
        "suites:\n  api: {paths: [a]}\n  web: {}\n  api: {paths: [b]}\n",
        4, "suites.api", ["duplicate key"]),
    "duplicate-phase-name": (
        "suites:\n  api: {}\nphases:\n  - {name: p, suites: api}\n"
        "  - {name: p, suites: api}\n",
        5, "phases[1].name", ['duplicate phase name "p"']),
    "bad-runner": (
        "suites:\n  api:\n    runner: nose\n",
        3, "suites.api.runner", ['"nose"', "pytest, playwright or command"]),
    "command-runner-without-command": (
        "suites:\n  api: {}\n  load:\n    runner: command\n",
        4, "suites.load", ['needs "command"']),
    "markers-on-playwright": (
        "suites:\n  e2e:\n    runner: playwright\n    markers: slow\n",
        4, "suites.e2e.markers", ["only for the pytest runner"]),
    "bad-env-reference": (
        "suites:\n  api:\n    env:\n      TOKEN: \"${1TOKEN}\"\n",
        4, "suites.api.env.TOKEN", ["bad variable reference"]),
    "unterminated-env-reference": (
        "suites:\n  api:\n    cwd: \"${HOME\"\n",
        3, "suites.api.cwd", ['unterminated "${"']),
    "unset-env-variable": (
        "defaults:\n  redis: \"${TFIT_SURELY_UNSET_VARIABLE}\"\n"
        "suites:\n  api: {}\n",
        2, "defaults.redis",
        ["TFIT_SURELY_UNSET_VARIABLE is not set"]),
    "yaml-syntax-error": (
        "suites:\n  api:\n    paths: [tests, other\n  web: {}\n",
        4, "suites.api.paths: yaml", ["did not find expected"]),
    "tab-indentation": (
        "suites:\n  api:\n\tpaths: [tests]\n",
        3, "suites.api: yaml", ["tab character", "spaces"]),
    "bad-preflight-url": (
        "suites:\n  api: {}\npreflight:\n  - name: health\n"
        "    http: ftp://127.0.0.1/health\n",
        5, "preflight[0].http", ["http:// or https://", "ftp://"]),
    "bad-preflight-kind": (
        "suites:\n  api: {}\npreflight:\n  - name: mail\n"
        "    smtp: 127.0.0.1:25\n",
        5, "preflight[0].smtp", ["unknown key"]),
    "preflight-without-check": (
        "suites:\n  api: {}\npreflight:\n  - name: nothing\n",
        4, "preflight[0]", ["one of http, tcp, redis"]),
    "bad-exclude-entry": (
        "defaults:\n  exclude: [slow]\nsuites:\n  api:\n"
        "    exclude:\n      - slow\n      - \"very slow\"\n",
        7, "suites.api.exclude[1]", ['invalid name "very slow"']),
    "exclude-with-at-sign": (
        "defaults:\n  exclude: \"@slow\"\nsuites:\n  api: {}\n",
        2, "defaults.exclude", ['"@slow"']),
    "list-where-a-map-is-expected": (
        "defaults:\n  workers: 2\nsuites:\n  - api\n  - web\n",
        4, "suites", ["expected a mapping, got a list"]),
    "env-as-list": (
        "suites:\n  api:\n    env:\n      - A=1\n",
        4, "suites.api.env", ["expected a mapping, got a list"]),
    "empty-suites": (
        "defaults:\n  workers: 2\nsuites: {}\n",
        3, "suites", ["at least one suite"]),
    "no-suites": (
        "defaults:\n  workers: 2\n",
        1, "suites", ["missing"]),
    "empty-file": (
        "",
        1, "suites", ["the file is empty"]),
    "two-documents": (
        "suites:\n  api: {}\n---\nsuites:\n  web: {}\n",
        4, "yaml", ["only one document"]),
}

# The cases also given to submit (which takes run's options).
SUBMIT_CASES = ["unknown-suite-key", "yaml-syntax-error", "bad-exclude-entry"]


def _params():
    for case in sorted(CASES):
        yield pytest.param("run", case, id="run-" + case)
    for case in SUBMIT_CASES:
        yield pytest.param("submit", case, id="submit-" + case)


def test_table_is_big_enough():
    assert len(CASES) >= 15
    assert set(SUBMIT_CASES) <= set(CASES)


@pytest.mark.parametrize("command,case", list(_params()))
def test_malformed_config(sandbox, cluster, command, case):
    yaml, line, key, words = CASES[case]
    c = cluster(workers=0)
    (sandbox.base / "conf").mkdir()
    (sandbox.base / CFG).write_text(yaml)
    (sandbox.base / "tests").mkdir()
    res = sandbox.run([command, "--config", CFG, "--redis", c.url],
                      cwd=sandbox.base, timeout=60,
                      env={"TFIT_SURELY_UNSET_VARIABLE": None})
    err = assert_one_error_line(res, 2, words)
    where = "testfleet: %s:%d: %s: " % (CFG, line, key)
    assert err.startswith(where), "want %r..., got %r" % (where, err)
    assert res.out == "", res.describe()
    assert redis_keys(c) == [], res.describe()
    sandbox.assert_clean("testfleet %s --config (%s)" % (command, case))
