"""Tests excluded by default (docs/config.md, "Excluded by default"): the
config's `exclude:` leaves out pytest markers / Playwright tags, and
`--include NAME` (repeatable, comma-separated, or `all`) brings them back.

The pytest suite is fixtures/markers: plain tests, and tests marked slow,
destructive, both, or combined with smoke; its testfleet.yaml excludes slow
and destructive. Every marked test appends its name to ran.log beside the
suite when it runs, so a run proves what the workers really ran -- not only
what the report lists. Runs go through the real CLI, a real redis-server
and real workers (conftest's cluster)."""
import pytest

from test_playwright import copy_suite, playwright_ready  # noqa: F401
from tfhelpers import (assert_one_error_line, check_junit,
                       check_report_schema, load_json, redis_keys)

PLAIN = {
    "tests/test_plain.py::test_plain_one",
    "tests/test_plain.py::test_plain_smoke",
    "tests/test_plain.py::test_plain_param[1]",
    "tests/test_plain.py::test_plain_param[2]",
    "tests/test_marked.py::TestMixed::test_plain_in_class",
}
SLOW_ONLY = {
    "tests/test_marked.py::test_slow_only",
    "tests/test_marked.py::test_slow_smoke",
}
DESTRUCTIVE_ONLY = {
    "tests/test_marked.py::test_destructive_only",
    "tests/test_marked.py::TestMixed::test_destructive_in_class",
}
BOTH = {"tests/test_marked.py::test_slow_and_destructive"}
ALL = PLAIN | SLOW_ONLY | DESTRUCTIVE_ONLY | BOTH


def _name(test_id):
    return test_id.split("::")[-1]


def run_report(sandbox, suite, c, args, timeout=120):
    """`testfleet run --redis URL --json ... ARGS` in suite; returns
    (Result, report, names the tests wrote to ran.log)."""
    jpath, xpath = sandbox.path("r.json"), sandbox.path("r.xml")
    for p in (jpath, xpath, suite / "ran.log"):
        if p.exists():
            p.unlink()
    res = sandbox.run(["run", "--redis", c.url, "--json", jpath, "--junit",
                       xpath] + list(args), cwd=suite, timeout=timeout)
    assert res.rc == 0, res.describe() + c.logs()
    report = load_json(jpath)
    check_report_schema(report)
    check_junit(xpath, report)
    ran = set()
    if (suite / "ran.log").exists():
        ran = set((suite / "ran.log").read_text().split())
    return res, report, ran


@pytest.mark.parametrize("args,want", [
    pytest.param([], PLAIN, id="default"),
    pytest.param(["--include", "slow"], PLAIN | SLOW_ONLY, id="slow"),
    pytest.param(["--include", "destructive"], PLAIN | DESTRUCTIVE_ONLY,
                 id="destructive"),
    pytest.param(["--include", "slow,destructive"], ALL, id="both-comma"),
    pytest.param(["--include", "slow", "--include=destructive"], ALL,
                 id="both-repeated"),
    pytest.param(["--include", "all"], ALL, id="all"),
    pytest.param(["-m", "smoke"], {"tests/test_plain.py::test_plain_smoke"},
                 id="m-smoke"),
    pytest.param(["-m", "smoke", "--include", "slow"],
                 {"tests/test_plain.py::test_plain_smoke",
                  "tests/test_marked.py::test_slow_smoke"},
                 id="m-smoke-include-slow"),
    pytest.param(["-m", "not smoke", "--include", "all"],
                 ALL - {"tests/test_plain.py::test_plain_smoke",
                        "tests/test_marked.py::test_slow_smoke"},
                 id="m-not-smoke-include-all"),
])
def test_exclusions_and_include(sandbox, cluster, args, want):
    suite = sandbox.copy_fixture("markers")
    c = cluster(workers=1, slots=2)
    res, report, ran = run_report(sandbox, suite, c, args)
    got = {t["id"] for t in report["tests"]}
    assert got == want, ("report lists %s, expected %s\n%s"
                         % (sorted(got), sorted(want), res.describe()))
    assert all(t["outcome"] == "passed" for t in report["tests"]), report
    assert report["totals"]["tests"] == len(want)
    # Nothing excluded ran on the worker, everything included did.
    marked = {_name(i) for i in want - PLAIN}
    assert ran == marked, "ran.log says %s ran, expected %s" % (
        sorted(ran), sorted(marked))
    assert " %d test" % len(want) in res.err, res.describe()
    sandbox.assert_clean("testfleet run %s" % " ".join(args))


def test_suite_exclude_replaces_defaults(sandbox, cluster):
    """A suite's own exclude: replaces defaults.exclude (here: only
    destructive); --include slow then names nothing the selected suite
    excludes and is refused."""
    suite = sandbox.copy_fixture("markers")
    (suite / "testfleet.yaml").write_text(
        "defaults:\n  exclude: [slow, destructive]\n"
        "suites:\n  unit:\n    paths: [tests]\n"
        "  nightly:\n    paths: [tests]\n    exclude: [destructive]\n"
        "phases:\n  - {name: day, suites: [unit]}\n")
    c = cluster(workers=1, slots=2)
    res, report, ran = run_report(sandbox, suite, c, ["nightly"])
    got = {t["id"] for t in report["tests"]}
    assert got == PLAIN | SLOW_ONLY, sorted(got)
    assert {t["suite"] for t in report["tests"]} == {"nightly"}
    assert ran == {_name(i) for i in SLOW_ONLY}, sorted(ran)
    bad = sandbox.run(["run", "--redis", c.url, "--include", "slow",
                       "nightly"], cwd=suite, timeout=60)
    assert_one_error_line(bad, 2, ['"slow"', "not excluded"])
    sandbox.assert_clean("testfleet run nightly")


@pytest.mark.parametrize("args,words", [
    pytest.param(["--include", "nope"],
                 ['--include: "nope" is not excluded by any selected suite',
                  "exclude:"], id="not-excluded"),
    pytest.param(["--include", "slow,nope"], ['"nope"'], id="one-unknown"),
    pytest.param(["--include", "very slow"], ['bad name "very slow"'],
                 id="bad-name"),
    pytest.param(["--include", "slow,"], ['bad name ""'], id="empty-name"),
])
def test_bad_include_is_a_usage_error(sandbox, cluster, args, words):
    suite = sandbox.copy_fixture("markers")
    c = cluster(workers=0)
    for command in ("run", "submit"):
        res = sandbox.run([command, "--redis", c.url] + args, cwd=suite,
                          timeout=60)
        assert_one_error_line(res, 2, words)
        assert redis_keys(c) == [], res.describe()
    assert not (suite / "ran.log").exists()
    sandbox.assert_clean("testfleet run %s" % " ".join(args))


def test_include_without_a_config(sandbox, cluster):
    """Without a config nothing is excluded: --include NAME is refused,
    --include all changes nothing."""
    suite = sandbox.copy_fixture("markers")
    (suite / "testfleet.yaml").unlink()
    c = cluster(workers=1, slots=2)
    bad = sandbox.run(["run", "--redis", c.url, "--include", "slow",
                       "tests"], cwd=suite, timeout=60)
    assert_one_error_line(bad, 2, ['"slow" is not excluded'])
    res, report, ran = run_report(sandbox, suite, c,
                                  ["--include", "all", "tests"])
    assert {t["id"] for t in report["tests"]} == ALL
    sandbox.assert_clean("testfleet run --include all without a config")


# ---------------------------------------------------------------------------
# Playwright: tags in the title and in { tag }

TAGS_SPEC = r"""// Tagged tests for testfleet's exclude:/--include (test_selection.py).
const fs = require('fs');
const path = require('path');
const { test } = require('@playwright/test');

function stamp(name) {
	fs.appendFileSync(path.join(__dirname, '..', 'ran.log'), name + '\n');
}

test('plain', () => {});
test('slow in the title @slow', () => stamp('title'));
test('slow as a tag', { tag: '@slow' }, () => stamp('tag'));
test('a longer tag @slower', () => stamp('slower'));
for (const n of [1, 2]) test(`loop ${n}`, n === 2 ? { tag: '@slow' } : {}, () => stamp(`loop${n}`));
"""


def test_playwright_tags(sandbox, cluster, playwright_ready):
    """exclude: [slow] leaves out @slow in the title and { tag: '@slow' },
    not @slower; on the worker too, where the two loop tests share one
    file:line selector. --include slow brings them back."""
    suite = copy_suite(sandbox)
    (suite / "tests" / "tags.spec.js").write_text(TAGS_SPEC)
    (suite / "testfleet.yaml").write_text(
        "defaults:\n  exclude: [slow]\n"
        "suites:\n  e2e:\n    runner: playwright\n"
        "    paths: [tests/tags.spec.js]\n")
    c = cluster(workers=1, slots=2)
    res, report, ran = run_report(sandbox, suite, c, [], timeout=240)
    titles = {t["id"].split(" \u203a ")[-1] for t in report["tests"]}
    assert titles == {"plain", "a longer tag @slower", "loop 1"}, (
        sorted(titles), res.describe())
    assert ran == {"slower", "loop1"}, sorted(ran)

    res, report, ran = run_report(sandbox, suite, c, ["--include", "slow"],
                                  timeout=240)
    titles = {t["id"].split(" \u203a ")[-1] for t in report["tests"]}
    assert titles == {"plain", "slow in the title @slow", "slow as a tag",
                      "a longer tag @slower", "loop 1", "loop 2"}, (
        sorted(titles), res.describe())
    assert ran == {"title", "tag", "slower", "loop1", "loop2"}, sorted(ran)
    sandbox.assert_clean("testfleet run of tagged Playwright tests")
