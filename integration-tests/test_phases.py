"""Phases and gating (DESIGN section 6, docs/delivery.md "Phases"): phases
run in order, a failing required phase skips the rest, a phase with
`parallel: false` runs one task at a time and stops at its first failing
task, optional phases never fail the run, a phase's `timeout` ends it.
Gating happens in Redis (the complete and promote scripts), so a run goes
on from phase to phase after the process that submitted it is gone.

Every suite here writes, for each test, "<node id> <start> <end>" (unix
seconds) to times.log beside it, so the order in which tests really ran
can be checked."""
import os
import signal
import time

from tfhelpers import (RUN_ID_RE, check_junit, check_report_schema,
                       load_json)

PYTEST_INI = "[pytest]\n"

# Stamps every test's start and end (written at teardown, one short line
# appended at once, so parallel runners do not interleave).
CONFTEST = """\
import os
import time

import pytest

LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "times.log")


@pytest.fixture(autouse=True)
def _stamp(request):
    start = time.time()
    yield
    with open(LOG, "a") as f:
        f.write("%s %.6f %.6f\\n" % (request.node.nodeid, start, time.time()))
"""

OK_TESTS = """\
import time


def test_{name}_one():
    time.sleep({sleep})


def test_{name}_two():
    time.sleep({sleep})
"""

BAD_TESTS = """\
def test_{name}_fails():
    assert 2 * 2 == 5, "arithmetic is broken"


def test_{name}_passes():
    pass
"""

SLOW_TEST = """\
import time


def test_{name}_sleeps():
    time.sleep(60)
"""


def make_suite(sandbox, files, config, name="suite"):
    """A folder with pytest.ini, the stamping conftest.py, the test files
    ({file name: source}) and testfleet.yaml."""
    root = sandbox.path(name)
    tests = root / "tests"
    tests.mkdir(parents=True)
    (root / "pytest.ini").write_text(PYTEST_INI)
    (root / "conftest.py").write_text(CONFTEST)
    for fname, src in files.items():
        (tests / fname).write_text(src)
    (root / "testfleet.yaml").write_text(config)
    return root


def read_times(root):
    """{node id: (start, end)} from times.log."""
    out = {}
    path = root / "times.log"
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        nodeid, start, end = line.rsplit(" ", 2)
        out[nodeid] = (float(start), float(end))
    return out


def run_json(sandbox, root, args, timeout=120):
    jpath, xpath = sandbox.path("r.json"), sandbox.path("r.xml")
    for p in (jpath, xpath):
        if p.exists():
            p.unlink()
    res = sandbox.run(["run", "--json", jpath, "--junit", xpath] + args,
                      cwd=root, timeout=timeout)
    report = load_json(jpath) if jpath.exists() else None
    if report is not None:
        check_report_schema(report)
        check_junit(xpath, report)
    return res, report


def phases_of(report):
    return [(p["name"], p["status"], p["required"]) for p in report["phases"]]


def outcomes_by_phase(report):
    out = {}
    for t in report["tests"]:
        out.setdefault(t["phase"], {})[t["id"].split("::")[-1]] = \
            t["outcome"]
    return out


def test_phases_run_in_order(sandbox):
    """All passing: exit 0, phases reported in order, and no test of a
    phase starts before every test of the phase before it has ended,
    although there are slots to spare."""
    config = """\
suites:
  a: {paths: [tests/test_a.py]}
  b: {paths: [tests/test_b.py, tests/test_b2.py]}
  c: {paths: [tests/test_c.py]}
phases:
  - {name: first, suites: [a]}
  - {name: second, suites: [b]}
  - {name: third, suites: [c]}
"""
    root = make_suite(sandbox, {
        "test_a.py": OK_TESTS.format(name="a", sleep=0.5),
        "test_b.py": OK_TESTS.format(name="b", sleep=0.3),
        "test_b2.py": OK_TESTS.format(name="b2", sleep=0.3),
        "test_c.py": OK_TESTS.format(name="c", sleep=0.1),
    }, config)
    res, report = run_json(sandbox, root, ["-w", "4", "--shard", "test"])
    assert res.rc == 0, res.describe()
    assert report["status"] == "passed"
    assert phases_of(report) == [("first", "passed", True),
                                 ("second", "passed", True),
                                 ("third", "passed", True)], report["phases"]
    assert [p["tasks"] for p in report["phases"]] == [2, 4, 2]
    assert report["totals"]["passed"] == 8
    times = read_times(root)
    assert len(times) == 8, times
    spans = {}
    for nodeid, (start, end) in times.items():
        phase = {"test_a.py": "first", "test_b.py": "second",
                 "test_b2.py": "second", "test_c.py": "third"}[
                     nodeid.split("::")[0].split("/")[-1]]
        spans.setdefault(phase, []).append((start, end))
    # The slots were used: the tests of a phase overlapped.
    first = sorted(spans["first"])
    assert first[1][0] < first[0][1], "phase first ran one test at a time"
    for before, after in (("first", "second"), ("second", "third")):
        last_end = max(e for _, e in spans[before])
        first_start = min(s for s, _ in spans[after])
        assert first_start >= last_end, (
            "phase %s started %.3fs before phase %s ended"
            % (after, last_end - first_start, before))
    sandbox.assert_clean("testfleet run with three phases")


def test_optional_phase_failure_exits_0(sandbox):
    """required: false -- its failures are reported (tests, totals, phase
    status) but the run passes: exit 0."""
    config = """\
suites:
  lintish: {paths: [tests/test_bad.py]}
  unit: {paths: [tests/test_ok.py]}
phases:
  - {name: lint, suites: [lintish], required: false}
  - {name: unit, suites: [unit]}
"""
    root = make_suite(sandbox, {
        "test_bad.py": BAD_TESTS.format(name="lint"),
        "test_ok.py": OK_TESTS.format(name="unit", sleep=0),
    }, config)
    res, report = run_json(sandbox, root, ["-w", "2"])
    assert res.rc == 0, res.describe()
    assert report["status"] == "passed"
    assert phases_of(report) == [("lint", "failed", False),
                                 ("unit", "passed", True)], report["phases"]
    assert report["totals"]["failed"] == 1, report["totals"]
    assert outcomes_by_phase(report) == {
        "lint": {"test_lint_fails": "failed", "test_lint_passes": "passed"},
        "unit": {"test_unit_one": "passed", "test_unit_two": "passed"},
    }
    # The console still shows the failure.
    assert "test_lint_fails" in res.out, res.describe()
    sandbox.assert_clean("testfleet run with a failing optional phase")


def test_sequential_phase_stops_at_first_failing_task(sandbox):
    """parallel: false -- one task at a time, in collection order, and the
    first failing task ends the phase: the tasks after it never run; the
    phase is required, so the next phase is skipped."""
    config = """\
suites:
  db: {paths: [tests]}
  after: {paths: [after]}
phases:
  - {name: db, suites: [db], parallel: false}
  - {name: after, suites: [after]}
"""
    root = make_suite(sandbox, {
        "test_1_first.py": OK_TESTS.format(name="first", sleep=0.3),
        "test_2_second.py": OK_TESTS.format(name="second", sleep=0.3),
        "test_3_broken.py": BAD_TESTS.format(name="broken"),
        "test_4_never.py": OK_TESTS.format(name="never", sleep=0),
        "test_5_never.py": OK_TESTS.format(name="never2", sleep=0),
    }, config)
    (root / "after").mkdir()
    (root / "after" / "test_after.py").write_text(
        OK_TESTS.format(name="after", sleep=0))
    res, report = run_json(sandbox, root, ["-w", "4", "--shard", "file"])
    assert res.rc == 1, res.describe()
    assert report["status"] == "failed"
    assert phases_of(report) == [("db", "failed", True),
                                 ("after", "skipped", True)], report["phases"]
    assert report["phases"][0]["tasks"] == 3, report
    got = outcomes_by_phase(report)
    assert got == {"db": {"test_first_one": "passed",
                          "test_first_two": "passed",
                          "test_second_one": "passed",
                          "test_second_two": "passed",
                          "test_broken_fails": "failed",
                          "test_broken_passes": "passed"}}, got
    times = read_times(root)
    assert not [n for n in times if "never" in n or "after" in n], times
    # One task (file) at a time, in file order, though 4 slots were free.
    by_file = {}
    for nodeid, span in times.items():
        by_file.setdefault(nodeid.split("::")[0], []).append(span)
    order = sorted(by_file)
    assert len(order) == 3, order
    for a, b in zip(order, order[1:]):
        assert min(s for s, _ in by_file[b]) >= max(e for _, e in by_file[a]), \
            "%s started before %s ended" % (b, a)
    sandbox.assert_clean("testfleet run with a sequential phase")


def test_phase_timeout(sandbox):
    """A phase that runs past its timeout ends as failed ("timeout" in the
    report's issues): an optional one lets the run go on (exit 0), a
    required one skips the rest and fails the run at once (its running
    test is stopped, not waited for)."""
    config = """\
suites:
  slow: {paths: [tests/test_slow.py]}
  quick: {paths: [tests/test_quick.py]}
phases:
  - {name: slow, suites: [slow], timeout: 2, required: %s}
  - {name: quick, suites: [quick]}
"""
    root = make_suite(sandbox, {
        "test_slow.py": SLOW_TEST.format(name="slow"),
        "test_quick.py": OK_TESTS.format(name="quick", sleep=0),
    }, config % "false")
    t0 = time.monotonic()
    res, report = run_json(sandbox, root, ["-w", "2"])
    took = time.monotonic() - t0
    assert res.rc == 0, res.describe()
    assert took < 30, "the run waited for the slow test (%.1fs)" % took
    assert phases_of(report) == [("slow", "failed", False),
                                 ("quick", "passed", True)], report["phases"]
    assert outcomes_by_phase(report) == {
        "quick": {"test_quick_one": "passed", "test_quick_two": "passed"}}
    assert "phase slow timeout" in res.out, res.describe()
    sandbox.assert_clean("testfleet run with an optional phase timeout")

    (root / "testfleet.yaml").write_text(config % "true")
    t0 = time.monotonic()
    res, report = run_json(sandbox, root, ["-w", "2"])
    took = time.monotonic() - t0
    assert res.rc == 1, res.describe()
    assert took < 30, "the run waited for the slow test (%.1fs)" % took
    assert report["status"] == "failed"
    assert phases_of(report) == [("slow", "failed", True),
                                 ("quick", "skipped", True)], report["phases"]
    assert report["tests"] == [], report["tests"]
    sandbox.assert_clean("testfleet run with a required phase timeout")


THREE_PHASES = """\
suites:
  first: {paths: [tests/test_first.py]}
  flaky: {paths: [tests/test_bad.py]}
  last: {paths: [tests/test_last.py]}
phases:
  - {name: first, suites: [first]}
  - {name: optional, suites: [flaky], required: false}
  - {name: last, suites: [last]}
"""


def three_phase_suite(sandbox, first_sleep):
    return make_suite(sandbox, {
        "test_first.py": OK_TESTS.format(name="first", sleep=first_sleep),
        "test_bad.py": BAD_TESTS.format(name="opt"),
        "test_last.py": OK_TESTS.format(name="last", sleep=0),
    }, THREE_PHASES)


def wait_run_status(c, run_id, want, timeout):
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        status = c.redis_cmd("HGET", "tf:run:%s" % run_id, "status")
        if status is not None and status.decode() == want:
            return True
        time.sleep(0.2)
    return False


def watch_json(sandbox, c, run_id):
    jpath = sandbox.path("watch-%s.json" % run_id)
    res = sandbox.run(["watch", run_id, "--redis", c.url, "--json", jpath],
                      timeout=60)
    report = load_json(jpath) if jpath.exists() else None
    if report is not None:
        check_report_schema(report)
    return res, report


def check_three_phases(report):
    assert phases_of(report) == [("first", "passed", True),
                                 ("optional", "failed", False),
                                 ("last", "passed", True)], report["phases"]
    assert outcomes_by_phase(report) == {
        "first": {"test_first_one": "passed", "test_first_two": "passed"},
        "optional": {"test_opt_fails": "failed", "test_opt_passes": "passed"},
        "last": {"test_last_one": "passed", "test_last_two": "passed"},
    }
    assert report["status"] == "passed"


def test_submit_with_phases_advances_without_producer(sandbox, cluster):
    """submit returns at once; with nobody following, the workers alone
    take the run through its phases; watch from a new process reports
    them all."""
    c = cluster(workers=0)
    root = three_phase_suite(sandbox, first_sleep=0)
    t0 = time.monotonic()
    res = sandbox.run(["submit", "--redis", c.url, "--shard", "file"],
                      cwd=root, timeout=60)
    assert res.rc == 0, res.describe()
    run_id = res.out.strip()
    assert RUN_ID_RE.match(run_id), res.describe()
    assert time.monotonic() - t0 < 20
    sandbox.assert_clean("testfleet submit")
    # Only the first phase is queued so far (one task per file).
    fields = c.redis_cmd("HMGET", "tf:run:%s" % run_id, "tasks_total",
                         "tasks_planned", "phase_cur", "ph:1:status")
    assert fields == [b"1", b"3", b"0", b"pending"], fields
    assert c.redis_cmd("XLEN", "tf:q:default") == 1
    c.add_workers(1, slots=2)
    assert wait_run_status(c, run_id, "done", 90), \
        "run %s did not finish\n%s" % (run_id, sandbox.cluster_logs())
    wres, report = watch_json(sandbox, c, run_id)
    assert wres.rc == 0, wres.describe(sandbox.cluster_logs())
    assert report["run"] == run_id
    check_three_phases(report)


def test_run_killed_midway_phases_go_on(sandbox, cluster):
    """The machine that ran `testfleet run --redis` goes away (SIGKILL)
    while phase 1 runs: the run still passes through every phase, and
    watch from another process reports them all, with exit 0."""
    c = cluster(workers=1, slots=2)
    root = three_phase_suite(sandbox, first_sleep=2)
    proc = sandbox.popen(["run", "--redis", c.url, "--shard", "test"], root)
    deadline = time.monotonic() + 60
    run_id = None
    while time.monotonic() < deadline and run_id is None:
        runs = c.redis_cmd("ZRANGE", "tf:runs", 0, -1) or []
        if runs:
            run_id = runs[0].decode()
            break
        assert proc.poll() is None, sandbox.wait(proc, 5).describe()
        time.sleep(0.1)
    assert run_id is not None, "no run was created"
    # Phase 1's tests take 2 s: the producer dies while they run.
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    state = c.redis_cmd("HMGET", "tf:run:%s" % run_id, "status",
                        "ph:0:status", "ph:1:status", "ph:2:status")
    assert state == [b"running", b"running", b"pending", b"pending"], state
    assert wait_run_status(c, run_id, "done", 90), \
        "run %s did not finish\n%s" % (run_id, sandbox.cluster_logs())
    wres, report = watch_json(sandbox, c, run_id)
    assert wres.rc == 0, wres.describe(sandbox.cluster_logs())
    check_three_phases(report)
    # The phases ran in order.
    times = read_times(root)
    first_end = max(e for n, (_, e) in times.items() if "test_first" in n)
    assert min(s for n, (s, _) in times.items()
               if "test_first" not in n) >= first_end
