"""DESIGN section 5 (CONTRACT): runners that hang, crash or are killed,
--retries for flaky tests, and a worker draining on SIGTERM. Outcomes here
are not plain pytest's (a runner that dies takes pytest down with it), so
each test states what the contract promises."""
import signal
import subprocess
import time

import pytest

from tfhelpers import check_report_schema, load_json


def run_json(sandbox, suite, args, timeout=180):
    jpath = sandbox.path("r.json")
    res = sandbox.run(["run", "--json", jpath] + args, cwd=suite,
                      timeout=timeout)
    assert jpath.exists(), "no JSON report\n" + res.describe(
        sandbox.cluster_logs())
    report = load_json(jpath)
    check_report_schema(report)
    return res, report, {t["id"]: t for t in report["tests"]}


def test_timeout_keeps_finished_and_retries_the_rest(sandbox):
    """A shard over its --timeout: the process group is killed, the test
    that finished keeps its result, the running one is an error (timeout),
    the ones after it are retried as transient and pass."""
    suite = sandbox.copy_fixture("resilience")
    res, report, t = run_json(sandbox, suite, [
        "-w", "2", "--timeout", "4", "--shard", "file", "test_timeout.py"])
    assert res.rc == 1, res.describe()
    before = t["test_timeout.py::test_before_hang"]
    hang = t["test_timeout.py::test_hangs"]
    after = t["test_timeout.py::test_after_hang"]
    assert before["outcome"] == "passed" and before["attempts"] == 1, before
    assert hang["outcome"] == "error", hang
    assert "time" in (hang["message"] or "").lower(), hang
    assert after["outcome"] == "passed", after
    assert after["attempts"] >= 2 and after["retried_for"], after
    sandbox.assert_clean("testfleet run with a timed-out shard")


def test_runner_crash_keeps_finished_and_retries_the_rest(sandbox):
    """pytest dies in the middle of a task (os._exit): the test that was
    running is an error naming the crash; tests that finished keep their
    result; the unfinished ones are retried and pass."""
    suite = sandbox.copy_fixture("resilience")
    res, report, t = run_json(sandbox, suite, [
        "-w", "2", "--shard", "file", "test_crash.py"])
    assert res.rc == 1, res.describe()
    before = t["test_crash.py::test_before_crash"]
    crash = t["test_crash.py::test_crashes"]
    after = t["test_crash.py::test_after_crash"]
    assert before["outcome"] == "passed" and before["attempts"] == 1, before
    assert crash["outcome"] == "error" and crash["message"], crash
    assert after["outcome"] == "passed", after
    assert after["attempts"] >= 2, after
    sandbox.assert_clean("testfleet run with a crashing runner")


def test_runner_sigkill_is_transient(sandbox):
    """A runner killed by SIGKILL (what the OOM killer does) is transient:
    the test is retried (up to max_attempts, default 3), then reported as an
    error, never looped; tests that finished before keep their result, and
    the unfinished one after it is retried until it runs."""
    suite = sandbox.copy_fixture("resilience")
    res, report, t = run_json(sandbox, suite, [
        "-w", "2", "--shard", "file", "test_killed.py"])
    assert res.rc == 1, res.describe()
    before = t["test_killed.py::test_before_kill"]
    killed = t["test_killed.py::test_killed"]
    assert before["outcome"] == "passed" and before["attempts"] == 1, before
    assert killed["outcome"] == "error", killed
    assert 2 <= killed["attempts"] <= 3, killed
    # The test after the killer never finished: it is retried, and must get
    # to run (as after a crash) rather than be blamed for its neighbour.
    after = t["test_killed.py::test_after_kill"]
    assert after["outcome"] == "passed", (
        "test_after_kill never ran, reported %s: %r" % (after["outcome"],
                                                         after))
    sandbox.assert_clean("testfleet run with a SIGKILLed runner")


def test_retries_detect_flaky_tests(sandbox):
    """--retries 1: a test that fails, then passes on the rerun, is flaky;
    one that fails twice stays failed with 2 attempts; the run fails."""
    suite = sandbox.copy_fixture("flaky")
    res, report, t = run_json(sandbox, suite, ["-w", "2", "--retries", "1",
                                               "."])
    assert res.rc == 1, res.describe()
    assert t["test_flaky.py::test_stable"]["outcome"] == "passed"
    assert t["test_flaky.py::test_stable"]["attempts"] == 1
    flaky = t["test_flaky.py::test_flaky"]
    assert flaky["outcome"] == "flaky" and flaky["attempts"] == 2, flaky
    always = t["test_flaky.py::test_always_fails"]
    assert always["outcome"] == "failed" and always["attempts"] == 2, always
    assert report["totals"]["flaky"] == 1, report["totals"]
    sandbox.assert_clean("testfleet run --retries")


def test_worker_drains_on_sigterm(sandbox, cluster):
    """SIGTERM to a busy worker: it takes no new task, lets the running one
    finish, exits well before a 30 s SIGKILL; a new worker takes the rest
    and the run passes."""
    suite = sandbox.base / "drain"
    (suite / "tests").mkdir(parents=True)
    (suite / "pytest.ini").write_text("[pytest]\n")
    (suite / "tests" / "test_drain.py").write_text(
        "import os\nimport time\nfrom pathlib import Path\n\n"
        "import pytest\n\n"
        "STARTED = Path(__file__).resolve().parent.parent / 'started'\n\n\n"
        "@pytest.mark.parametrize('n', range(4))\n"
        "def test_slow(n):\n"
        "    STARTED.mkdir(exist_ok=True)\n"
        "    (STARTED / str(n)).write_text(str(os.getpid()))\n"
        "    time.sleep(2)\n")
    c = cluster(workers=1)
    jpath = sandbox.path("r.json")
    proc = sandbox.popen(["run", "--redis", c.url, "--shard", "test",
                          "--json", jpath, "tests"], suite)
    started = suite / "started"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if started.is_dir() and any(started.iterdir()):
            break
        time.sleep(0.05)
    assert started.is_dir() and any(started.iterdir()), \
        "no test started\n" + sandbox.wait(proc, 5).describe(c.logs())
    name, w1, log1 = c.workers[0]
    t0 = time.monotonic()
    w1.send_signal(signal.SIGTERM)
    try:
        w1.wait(timeout=25)
    except subprocess.TimeoutExpired:
        pytest.fail("worker did not exit within 25 s of SIGTERM\n"
                    + c.logs())
    drained_in = time.monotonic() - t0
    first = sorted(p.name for p in started.iterdir())
    c.add_workers(1)
    res = sandbox.wait(proc, 120)
    assert res.rc == 0, res.describe(c.logs())
    report = load_json(jpath)
    check_report_schema(report)
    by_id = {t["id"]: t for t in report["tests"]}
    assert len(by_id) == 4 and all(
        t["outcome"] == "passed" for t in by_id.values()), by_id
    workers = {t["worker"].split("/")[0] for t in report["tests"]}
    assert workers == {"w1", "w2"}, (workers, drained_in, first)
    # The test w1 was running when told to stop finished there, in one try.
    for n in first:
        t = by_id["tests/test_drain.py::test_slow[%s]" % n]
        assert t["worker"].startswith("w1/") and t["attempts"] == 1, t
    sandbox.assert_clean("testfleet run with a draining worker")
