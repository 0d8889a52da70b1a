"""The command runner (docs/runners.md): a config suite with `runner:
command` runs its argv without a shell, as one task or as `shard: count:N`
tasks with TESTFLEET_SHARD=i/N; its results come from the JUnit file it
writes to $TESTFLEET_JUNIT, else one result per task from its exit status.
Workers run such tasks only with --allow-command (local mode passes it when
the run has command suites). Also capability queues: a queue no live worker
serves gets a warning at submit, and one while the run is followed."""
import time

from tfhelpers import (SYS_PYTHON, check_junit, check_report_schema,
                       load_json, report_outcomes)

WRITES_JUNIT = """\
import os
import sys

with open(os.environ["TESTFLEET_JUNIT"], "w") as f:
    f.write('<?xml version="1.0"?>'
            '<testsuite name="load" tests="2" failures="1">'
            '<testcase classname="load.checkout" name="p95_under_200ms" '
            'time="1.5"/>'
            '<testcase classname="load.search" name="p95_under_100ms" '
            'time="2.0"><failure message="p95 was 140ms">slow</failure>'
            '</testcase></testsuite>')
sys.exit(1)
"""

CONFIG = """\
suites:
  load:
    runner: command
    command: [%s, writes_junit.py]
  shards:
    runner: command
    command: [sh, -c, 'echo "$TESTFLEET_SHARD" >> shards.txt; test "$TESTFLEET_SHARD" != 2/3']
    shard: count:3
    env: {TESTFLEET_SHARD: ignored}
"""


def make_suite(sandbox):
    suite = sandbox.base / "cmd"
    suite.mkdir()
    (suite / "writes_junit.py").write_text(WRITES_JUNIT)
    (suite / "testfleet.yaml").write_text(CONFIG % SYS_PYTHON)
    return suite


def test_command_suites_local_mode(sandbox):
    suite = make_suite(sandbox)
    jpath, xpath = sandbox.path("r.json"), sandbox.path("r.xml")
    res = sandbox.run(["run", "--no-cache", "-w", "2", "--json", jpath,
                       "--junit", xpath], cwd=suite, timeout=120)
    assert res.rc == 1, res.describe()
    report = load_json(jpath)
    check_report_schema(report)
    check_junit(xpath, report)
    assert report_outcomes(report) == {
        # From the JUnit file the command wrote.
        "load.checkout::p95_under_200ms": "passed",
        "load.search::p95_under_100ms": "failed",
        # From the exit status: one result per shard.
        "shards[1/3]": "passed",
        "shards[2/3]": "failed",
        "shards[3/3]": "passed",
    }
    byid = {t["id"]: t for t in report["tests"]}
    assert byid["load.search::p95_under_100ms"]["message"] == "p95 was 140ms"
    assert byid["shards[2/3]"]["message"] == "command exited with status 1"
    assert byid["shards[1/3]"]["suite"] == "shards"
    # Each shard saw its own TESTFLEET_SHARD (the suite's own is replaced).
    seen = sorted((suite / "shards.txt").read_text().split())
    assert seen == ["1/3", "2/3", "3/3"], seen
    sandbox.assert_clean("testfleet run with command suites")


def test_worker_needs_allow_command(sandbox, cluster):
    suite = make_suite(sandbox)
    c = cluster(workers=1)
    jpath = sandbox.path("r.json")
    res = sandbox.run(["run", "--redis", c.url, "--json", jpath, "load"],
                      cwd=suite, timeout=120)
    assert res.rc == 1, res.describe() + c.logs()
    report = load_json(jpath)
    assert report_outcomes(report) == {"load": "error"}, report["tests"]
    assert "--allow-command" in report["tests"][0]["message"], report
    c2 = cluster()
    c2.add_workers(1, extra_args=["--allow-command"])
    res = sandbox.run(["run", "--redis", c2.url, "--json", jpath, "load"],
                      cwd=suite, timeout=120)
    assert res.rc == 1, res.describe() + c2.logs()
    assert report_outcomes(load_json(jpath)) == {
        "load.checkout::p95_under_200ms": "passed",
        "load.search::p95_under_100ms": "failed"}
    sandbox.assert_clean("testfleet run --redis with command suites")


def test_queue_without_a_worker(sandbox, cluster):
    """Tasks of queue "gpu" while no worker serves it: submit warns at once;
    watch warns (once) after they waited 30 s; a worker with --queue gpu
    then runs them."""
    suite = sandbox.base / "q"
    suite.mkdir()
    (suite / "testfleet.yaml").write_text(
        "suites:\n"
        "  gpu:\n"
        "    runner: command\n"
        "    command: [sh, -c, 'exit 0']\n"
        "    queue: gpu\n")
    c = cluster(workers=1)  # a live worker, on "default"
    sub = sandbox.run(["submit", "--redis", c.url], cwd=suite, timeout=60)
    assert sub.rc == 0, sub.describe()
    run = sub.out.strip()
    assert sub.err_lines()[-1] == (
        "testfleet: warn: no live worker serves queue gpu; its tasks wait "
        "until one does (testfleet-worker --queue gpu)"), sub.describe()
    t0 = time.monotonic()
    watch = sandbox.popen(["watch", run, "--redis", c.url], cwd=suite)
    time.sleep(40)
    assert watch.poll() is None, "watch ended with nobody serving the queue"
    c.add_workers(1, extra_args=["--queue", "gpu", "--allow-command"])
    res = sandbox.wait(watch, 60)
    assert res.rc == 0, res.describe() + c.logs()
    stuck = [l for l in res.err_lines() if "no live worker serves it" in l]
    assert len(stuck) == 1, res.describe()
    assert "in queue gpu" in stuck[0], res.describe()
    assert time.monotonic() - t0 >= 30
    sandbox.assert_clean("testfleet watch of a queue without workers")
