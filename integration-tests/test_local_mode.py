"""Local mode: no --redis, no TESTFLEET_REDIS_URL. testfleet run starts its
own redis-server and workers, and stops them again on every exit path,
including Ctrl-C."""
import os
import shutil
import signal
import time

import pytest

from tfhelpers import (ROOT, check_junit, check_report_schema,
                       diff_outcomes, load_json, report_outcomes)


def test_local_mode_passes(sandbox, reference):
    suite = sandbox.copy_fixture("small")
    ref = reference(suite, ["tests/test_ok.py"], key=("small", "ok"))
    jpath, xpath = sandbox.path("r.json"), sandbox.path("r.xml")
    res = sandbox.run(["run", "-w", "2", "--json", jpath, "--junit", xpath,
                       "tests/test_ok.py"], cwd=suite, timeout=120)
    assert res.rc == 0, res.describe()
    report = load_json(jpath)
    check_report_schema(report)
    assert report["status"] == "passed"
    diff = diff_outcomes(report_outcomes(report), ref)
    assert not diff, diff
    assert report["totals"]["passed"] == 5 and report["totals"]["skipped"] == 1
    check_junit(xpath, report)
    sandbox.assert_clean("testfleet run (local mode)")


def test_local_mode_fails_and_names_failures(sandbox, reference):
    suite = sandbox.copy_fixture("small")
    ref = reference(suite, ["tests"], key=("small", "tests"))
    jpath = sandbox.path("r.json")
    res = sandbox.run(["run", "-w", "2", "--json", jpath, "tests"],
                      cwd=suite, timeout=120)
    assert res.rc == 1, res.describe()
    report = load_json(jpath)
    check_report_schema(report)
    assert report["status"] == "failed"
    diff = diff_outcomes(report_outcomes(report), ref)
    assert not diff, diff
    # The console summary names each failed test and its message.
    console = res.out + res.err
    for tid in ("tests/test_bad.py::test_fails",
                "tests/test_bad.py::test_errors"):
        assert tid in console, "%s not in the console output\n%s" % (
            tid, res.describe())
    assert "arithmetic is broken" in console, res.describe()
    sandbox.assert_clean("testfleet run (local mode)")


def test_local_mode_runs_in_parallel(sandbox):
    """-w 4 really runs tests at the same time: 8 tests of 1 s each, one per
    task, record when they ran; some of those intervals overlap. (No bound
    on the wall time: the machine may be busy.)"""
    suite = sandbox.base / "par"
    (suite / "tests").mkdir(parents=True)
    (suite / "pytest.ini").write_text("[pytest]\n")
    (suite / "tests" / "test_par.py").write_text(
        "import os\nimport time\nfrom pathlib import Path\n\n"
        "import pytest\n\n"
        "LOG = Path(__file__).resolve().parent.parent / 'intervals'\n\n\n"
        "@pytest.mark.parametrize('n', range(8))\n"
        "def test_sleep(n):\n"
        "    t0 = time.time()\n"
        "    time.sleep(1)\n"
        "    LOG.mkdir(exist_ok=True)\n"
        "    (LOG / str(n)).write_text('%r %r' % (t0, time.time()))\n")
    jpath = sandbox.path("r.json")
    res = sandbox.run(["run", "-w", "4", "--shard", "test", "--json", jpath,
                       "tests"], cwd=suite, timeout=120)
    assert res.rc == 0, res.describe()
    report = load_json(jpath)
    assert report["totals"]["passed"] == 8, report["totals"]
    intervals = [tuple(map(float, f.read_text().split()))
                 for f in (suite / "intervals").iterdir()]
    assert len(intervals) == 8
    most = max(sum(1 for a, b in intervals if a <= t < b)
               for t, _ in intervals)
    assert most >= 2, "tests never ran at the same time: %r" % intervals
    assert len({t["worker"] for t in report["tests"]}) >= 2
    sandbox.assert_clean("testfleet run (local mode)")


@pytest.mark.parametrize("target", ["producer", "process-group"])
def test_local_mode_sigint(sandbox, target):
    """Ctrl-C during a run: testfleet exits with 4 (cancelled) and leaves no
    redis-server, worker or pytest process and no temporary folder. The
    terminal sends SIGINT to the whole foreground process group; kill -INT
    reaches the producer alone: both must work."""
    suite = sandbox.copy_fixture("sleepy")
    jpath = sandbox.path("r.json")
    proc = sandbox.popen(["run", "-w", "2", "--json", jpath, "."], suite)
    started = suite / "started"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if started.is_dir() and any(started.iterdir()):
            break
        time.sleep(0.1)
    if proc.poll() is not None:
        res = sandbox.wait(proc, 5)
        pytest.fail("testfleet ended before the tests started\n"
                    + res.describe())
    assert started.is_dir() and any(started.iterdir()), \
        "no test started within 60 s"
    time.sleep(0.5)
    t0 = time.monotonic()
    if target == "producer":
        os.kill(proc.pid, signal.SIGINT)
    else:
        os.killpg(proc.pid, signal.SIGINT)
    res = sandbox.wait(proc, 30)
    elapsed = time.monotonic() - t0
    assert res.rc == 4, res.describe()
    assert elapsed < 10, "took %.1f s to stop after SIGINT" % elapsed
    if jpath.exists():
        report = load_json(jpath)
        assert report["status"] == "cancelled", report["status"]
    sandbox.assert_clean("testfleet run interrupted by SIGINT", settle=10)


def test_example_suite_demo(sandbox, reference):
    """The README demo: the example suite in local mode exits 0."""
    suite = sandbox.base / "pytest-suite"
    shutil.copytree(str(ROOT / "examples" / "pytest-suite"), str(suite),
                    ignore=shutil.ignore_patterns("__pycache__",
                                                  ".pytest_cache",
                                                  ".testfleet"))
    ref = reference(suite, ["tests"], key=("example", "tests"))
    jpath, xpath = sandbox.path("demo.json"), sandbox.path("demo.xml")
    res = sandbox.run(["run", "-w", "4", "--junit", xpath, "--json", jpath,
                       "tests"], cwd=suite, timeout=120)
    assert res.rc == 0, res.describe()
    report = load_json(jpath)
    check_report_schema(report)
    diff = diff_outcomes(report_outcomes(report), ref)
    assert not diff, diff
    assert report["status"] == "passed"
    assert report["totals"]["skipped"] == 1 and report["totals"]["xfailed"] == 1
    assert report["totals"]["tests"] >= 35
    check_junit(xpath, report)
    sandbox.assert_clean("testfleet run (demo)")
