"""The Playwright runner (docs/runners.md) against real Playwright
(@playwright/test from fixtures/playwright/node_modules, installed by
scripts/install-deps) and Debian's Chromium: discovery with `playwright test
--list --reporter=json`, ids "file:line › titles" ("[project] › " first with
several projects), per-test outcomes equal to a direct `playwright test
--reporter=json` run, in local mode and on a cluster, artifacts in
$TESTFLEET_ARTIFACTS, and the user errors of discovery.

The page under test (fixtures/playwright/site) is served by an HTTP server
inside this pytest process, on a free port of 127.0.0.1."""
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from tfhelpers import (FIXTURES, check_junit, check_report_schema,
                       diff_outcomes, load_json, report_outcomes, tail)

PW_FIXTURE = FIXTURES / "playwright"
CHROMIUM = "/usr/bin/chromium"
SEP = " \u203a "
# The command testfleet uses by default, spelled out for the reference run.
NPX = ["npx", "--no-install", "playwright"]


@pytest.fixture(scope="module")
def playwright_ready():
    """@playwright/test installed in the fixture and Chromium present: both
    come with scripts/install-deps (make test); their absence is a failure,
    not a skip."""
    missing = []
    if not (PW_FIXTURE / "node_modules" / "@playwright" / "test"
            / "package.json").is_file():
        missing.append("@playwright/test in %s/node_modules (npm ci there)"
                       % PW_FIXTURE)
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(CHROMIUM + " (Debian package chromium)")
    if missing:
        pytest.fail("not installed: %s; run scripts/install-deps"
                    % "; ".join(missing), pytrace=False)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site():
    """Base URL of the fixture page, served from a thread of this process
    (so nothing is left running: the server goes with the module)."""
    handler = functools.partial(_Quiet, directory=str(PW_FIXTURE / "site"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
    server.server_close()


def copy_suite(sandbox, name="pw"):
    """The fixture suite in the sandbox, node_modules linked, not copied."""
    dest = sandbox.base / name
    dest.mkdir()
    for entry in ("playwright.config.js", "package.json", "tests", "site"):
        src = PW_FIXTURE / entry
        if src.is_dir():
            shutil.copytree(str(src), str(dest / entry))
        else:
            (dest / entry).write_bytes(src.read_bytes())
    (dest / "node_modules").symlink_to(PW_FIXTURE / "node_modules")
    return dest


def _outcome(test):
    """The outcome testfleet's reporter gives a test of Playwright's JSON
    report (docs/runners.md)."""
    results = test.get("results") or []
    status = results[-1]["status"] if results else "skipped"
    if status == "skipped":
        return "skipped"
    if status in ("timedOut", "interrupted"):
        return "error"
    if test["expectedStatus"] == "failed":
        return "xfailed" if status == "failed" else "failed"
    return "passed" if status == "passed" else "failed"


def reference(sandbox, suite, env, args=()):
    """{id: outcome} of a direct `playwright test --reporter=json` run in
    suite, ids built as docs/runners.md says."""
    out = sandbox.path("ref-%d.json" % len(list(sandbox.base.glob("ref-*"))))
    full = dict(sandbox.env(env))
    full["PLAYWRIGHT_JSON_OUTPUT_NAME"] = str(out)
    proc = subprocess.run(
        NPX + ["test", "--reporter=json", "--retries=0",
               "--output=%s" % sandbox.path("ref-results")] + list(args),
        cwd=str(suite), env=full, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    if proc.returncode not in (0, 1) or not out.exists():
        raise AssertionError("reference playwright run failed (exit %d):\n%s"
                             % (proc.returncode,
                                tail(proc.stderr.decode("utf-8", "replace"))))
    data = load_json(out)
    root = data["config"]["rootDir"]
    multi = len(data["config"]["projects"]) > 1
    found = {}

    def walk(s, titles):
        for spec in s.get("specs", []):
            rel = os.path.relpath(os.path.join(root, spec["file"]),
                                  str(suite))
            names = [t for t in titles + [spec["title"]] if t]
            for t in spec["tests"]:
                tid = "%s:%d" % (rel, spec["line"]) + "".join(
                    SEP + n for n in names)
                if multi:
                    tid = "[%s]%s%s" % (t["projectName"], SEP, tid)
                found[tid] = _outcome(t)
        for sub in s.get("suites", []):
            walk(sub, titles + [sub["title"]])

    for f in data["suites"]:
        walk(f, [])
    assert found, "the reference run found no tests"
    return found


def run_ok(sandbox, suite, args, env, rc=1, timeout=240):
    jpath, xpath = sandbox.path("r.json"), sandbox.path("r.xml")
    for p in (jpath, xpath):
        if p.exists():
            p.unlink()
    res = sandbox.run(["run", "--json", jpath, "--junit", xpath] + args,
                      cwd=suite, env=env, timeout=timeout)
    assert res.rc == rc, res.describe()
    report = load_json(jpath)
    check_report_schema(report)
    check_junit(xpath, report)
    return res, report


def test_local_mode_matches_playwright(sandbox, playwright_ready, site):
    suite = copy_suite(sandbox)
    env = {"TF_PW_BASE_URL": site}
    ref = reference(sandbox, suite, env)
    assert ref["tests/logic.spec.js:14" + SEP
               + "expected to fail and fails"] == "xfailed"
    res, report = run_ok(sandbox, suite,
                         ["--runner", "playwright", "-w", "3", "--no-cache"],
                         env)
    diff = diff_outcomes(report_outcomes(report), ref)
    assert not diff, diff + "\n" + res.describe()
    assert report["status"] == "failed"
    byid = {t["id"]: t for t in report["tests"]}
    bad = byid["tests/page.spec.js:16" + SEP + "greeting" + SEP
               + "wrong text fails"]
    assert "toHaveText" in bad["message"], bad
    assert "\x1b" not in bad["message"], bad
    assert byid["tests/logic.spec.js:18" + SEP + "expected to fail but "
                "passes"]["message"] == "expected to fail, but passed"
    assert byid["tests/logic.spec.js:8" + SEP + "skipped at run time"][
        "message"] == "not on this platform"
    # Three tests share line 31: each is reported once.
    loops = [i for i in byid if i.startswith("tests/logic.spec.js:31")]
    assert len(loops) == 3, loops
    # Playwright's own artifacts never land in the suite's folder.
    assert not (suite / "test-results").exists()
    sandbox.assert_clean("testfleet run --runner playwright")


def test_cluster_with_a_browser_queue(sandbox, cluster, playwright_ready,
                                      site):
    """A config suite on queue "browser": submit warns while no worker
    serves it, a worker with --queue browser runs it; the suite's env
    reaches the runner; one task per test."""
    suite = copy_suite(sandbox)
    (suite / "testfleet.yaml").write_text(
        "suites:\n"
        "  e2e:\n"
        "    runner: playwright\n"
        "    queue: browser\n"
        "    shard: test\n"
        "    env: {TF_PW_BASE_URL: '%s'}\n" % site)
    ref = reference(sandbox, suite, {"TF_PW_BASE_URL": site})
    c = cluster(workers=1)  # serves "default" only
    sub = sandbox.run(["submit", "--redis", c.url], cwd=suite, timeout=120)
    assert sub.rc == 0, sub.describe()
    run = sub.out.strip()
    assert ("no live worker serves queue browser" in sub.err), sub.describe()
    assert "queue default" not in sub.err, sub.describe()
    c.add_workers(2, extra_args=["--queue", "browser"])
    jpath = sandbox.path("r.json")
    res = sandbox.run(["watch", run, "--redis", c.url, "--json", jpath],
                      cwd=suite, timeout=240)
    assert res.rc == 1, res.describe() + c.logs()
    report = load_json(jpath)
    check_report_schema(report)
    diff = diff_outcomes(report_outcomes(report), ref)
    assert not diff, diff + c.logs()
    assert {t["suite"] for t in report["tests"]} == {"e2e"}
    # The default-queue worker ran none of it.
    assert {t["worker"].split("/")[0] for t in report["tests"]} <= {"w2",
                                                                   "w3"}
    status = sandbox.run(["status", "--redis", c.url, run], cwd=suite)
    assert status.rc == 0, status.describe()
    assert "queues browser" in status.out, status.describe()
    sandbox.assert_clean("testfleet submit/watch of a playwright suite")


def test_projects_and_file_shards(sandbox, playwright_ready, site):
    """Two projects: ids carry "[project] › ", each project's tests run
    (with --project) and are reported once."""
    suite = copy_suite(sandbox)
    env = {"TF_PW_BASE_URL": site, "TF_PW_PROJECTS": "2"}
    ref = reference(sandbox, suite, env, ["tests/logic.spec.js"])
    assert any(i.startswith("[second]" + SEP) for i in ref), ref
    res, report = run_ok(sandbox, suite,
                         ["--runner", "playwright", "-w", "2", "--shard",
                          "file", "--no-cache", "tests/logic.spec.js"], env)
    diff = diff_outcomes(report_outcomes(report), ref)
    assert not diff, diff + "\n" + res.describe()
    assert len(report["tests"]) == 2 * 9
    sandbox.assert_clean("testfleet run with two Playwright projects")


def test_artifacts_land_in_testfleet_artifacts(sandbox, playwright_ready,
                                              site):
    """A failing test's trace is written to $TESTFLEET_ARTIFACTS (Playwright's
    --output), seen by a later test of the same task; the folder goes with
    the task."""
    suite = copy_suite(sandbox)
    probe = sandbox.path("artifacts.txt")
    (suite / "tests" / "probe.spec.js").write_text(
        "const fs = require('fs');\n"
        "const path = require('path');\n"
        "const { test, expect } = require('@playwright/test');\n"
        "test('fails with a trace', async ({ page }) => {\n"
        "\tawait page.goto('/');\n"
        "\texpect(1).toBe(2);\n"
        "});\n"
        "test('lists the artifacts', () => {\n"
        "\tconst root = process.env.TESTFLEET_ARTIFACTS;\n"
        "\tconst found = [root];\n"
        "\tconst walk = (d) => { for (const e of fs.readdirSync(d)) {\n"
        "\t\tconst p = path.join(d, e); found.push(p);\n"
        "\t\tif (fs.statSync(p).isDirectory()) walk(p); } };\n"
        "\twalk(root);\n"
        "\tfs.writeFileSync(process.env.TF_PROBE, found.join('\\n'));\n"
        "});\n")
    env = {"TF_PW_BASE_URL": site, "TF_PROBE": str(probe)}
    res, report = run_ok(sandbox, suite,
                         ["--runner", "playwright", "--shard", "file",
                          "--no-cache", "tests/probe.spec.js"], env)
    outcomes = report_outcomes(report)
    assert sorted(outcomes.values()) == ["failed", "passed"], outcomes
    listing = probe.read_text().splitlines()
    root = listing[0]
    # The task's own folder (in /tmp here: the sandbox's TMPDIR is too long
    # for Chromium's sockets below it, docs/runners.md).
    assert re.match(r"^/tmp/(.+/)?testfleet-local-\d+-s\d+-\w{6}/artifacts$",
                    root), listing
    assert any(p.endswith("/trace.zip") for p in listing), listing
    assert not Path(root).exists(), "the task's folder outlived the task"
    sandbox.assert_clean("testfleet run (artifacts)")


def test_listing_and_its_errors(sandbox, playwright_ready):
    suite = copy_suite(sandbox)
    # --grep selects (in the listing, so in the plan).
    res = sandbox.run(["run", "--runner", "playwright", "--dry-run",
                       "--no-cache", "--grep", "button greets"], cwd=suite,
                      timeout=120)
    assert res.rc == 0, res.describe()
    assert res.out.startswith("plan: 1 test in 1 task"), res.describe()
    assert ("tests/page.spec.js:10" + SEP + "greeting" + SEP
            + "button greets") in res.out, res.describe()
    # pytest's selections are not Playwright's.
    res = sandbox.run(["run", "--runner", "playwright", "-k", "x"],
                      cwd=suite, timeout=60)
    assert res.rc == 2, res.describe()
    assert res.err_lines() == ["testfleet: -m and -k select pytest tests; "
                               "for Playwright use --grep EXPR"], \
        res.describe()
    # No test matches the filter: nothing selected.
    res = sandbox.run(["run", "--runner", "playwright", "nomatch"],
                      cwd=suite, timeout=120)
    assert res.rc == 2, res.describe()
    assert res.err_lines()[-1] == ("testfleet: no tests selected "
                                   "(playwright: No tests found)"), \
        res.describe()
    # A syntax error in a test file: the error line, then Playwright's.
    (suite / "tests" / "broken.spec.js").write_text(
        "const { test } = require('@playwright/test');\n"
        "test('x', () => { this is not javascript\n")
    res = sandbox.run(["run", "--runner", "playwright"], cwd=suite,
                      timeout=120)
    assert res.rc == 2, res.describe()
    lines = res.err_lines()
    assert lines[0] == ("testfleet: test listing failed (playwright "
                        "reported 1 error):"), res.describe()
    assert "broken.spec.js" in lines[1] and lines[1].startswith("  "), \
        res.describe()
    # No Playwright installed where the suite is.
    bare = sandbox.base / "bare"
    (bare / "tests").mkdir(parents=True)
    res = sandbox.run(["run", "--runner", "playwright"], cwd=bare,
                      timeout=120)
    assert res.rc == 2, res.describe()
    assert res.err_lines() == [
        "testfleet: playwright not found: npx --no-install playwright "
        "found no Playwright in %s (npm install -D @playwright/test "
        "there, or set --playwright CMD or TESTFLEET_PLAYWRIGHT)" % bare], \
        res.describe()
    # A command that does not exist at all.
    res = sandbox.run(["run", "--runner", "playwright", "--playwright",
                       "/nonexistent/pw"], cwd=suite, timeout=60)
    assert res.rc == 2, res.describe()
    assert res.err_lines() == [
        "testfleet: playwright not found: /nonexistent/pw is not installed "
        "(install Node.js and @playwright/test, or set --playwright CMD or "
        "TESTFLEET_PLAYWRIGHT)"], res.describe()
    # A filter that looks like an option.
    res = sandbox.run(["run", "--runner", "playwright", "--", "-x"],
                      cwd=suite, timeout=60)
    assert res.rc == 2, res.describe()
    assert res.err_lines() == [
        'testfleet: bad playwright test filter "-x"'], res.describe()
    sandbox.assert_clean("testfleet run (playwright listing errors)")
