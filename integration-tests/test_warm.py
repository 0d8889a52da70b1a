"""Warm pytest (docs/runners.md) and the start gate (docs/scheduling.md):
the worker forks pytest tasks from a
zygote that imported pytest once. What a test sees must be what it sees
under an exec'd pytest -- argv, cwd, environment (the suite's env: and the
per-task variables), TMPDIR and tempfile's folder, its own process group,
the worker as parent, a fresh random state, the same descriptors -- checked
side by side with a worker started with --no-warm. A zygote killed in the
middle of a run loses nothing, and a pytest command that is not a Python
entry point (a shell wrapper) is exec'd as before. Through a start gate of
1, each pytest task starts only once the one before reached its first
test."""
import json
import os
import shutil
import signal
import subprocess
import time

from tfhelpers import (WORKER, check_report_schema, is_warm_zygote,
                       load_json, report_outcomes)

PROBE = r'''
import json, os, random, sys, tempfile

def _record(name):
    info = {
        "argv0": sys.argv[0],
        "cwd": os.getcwd(),
        "task": os.environ.get("TESTFLEET_TASK"),
        "suite_var": os.environ.get("SUITE_VAR"),
        "tmpdir_env": os.environ.get("TMPDIR"),
        "tempfile": tempfile.gettempdir(),
        "ppid": os.getppid(),
        "leader": os.getpgid(0) == os.getpid(),
        "random": random.random(),
        "fds": sorted(int(f) for f in os.listdir("/proc/self/fd")),
        "stdin": os.readlink("/proc/self/fd/0"),
        "path0": sys.path[0],
        "main": getattr(sys.modules["__main__"], "__file__", None),
    }
    out = os.path.join(os.path.dirname(__file__), "..", "out",
                       "%s-%s.json" % (name, os.getpid()))
    with open(out, "w") as f:
        json.dump(info, f)
'''


def make_probe_suite(base, n=6):
    suite = base / "suite"
    (suite / "tests").mkdir(parents=True)
    body = PROBE
    for i in range(n):
        body += "\ndef test_probe_%d():\n    _record('p%d')\n" % (i, i)
    body += "\ndef test_fails():\n    assert 1 == 2\n"
    (suite / "tests" / "test_probe.py").write_text(body)
    (suite / "testfleet.yaml").write_text(
        "suites:\n  probe:\n    runner: pytest\n    paths: [tests]\n"
        "    env:\n      SUITE_VAR: from-config\n")
    return suite


def read_probes(folder):
    out = {}
    for name in sorted(os.listdir(str(folder))):
        with open(str(folder / name)) as f:
            out[name.split("-")[0]] = json.load(f)
    return out


def run_probe(sandbox, c, suite, tag):
    """Runs the probe suite on c; what each probe test recorded."""
    out = suite / "out"
    if out.exists():
        shutil.rmtree(str(out))
    out.mkdir()
    jpath = sandbox.path("%s.json" % tag)
    res = sandbox.run(["run", "--redis", c.url, "--shard", "test", "--json",
                       jpath, "--config", "testfleet.yaml"], cwd=suite,
                      timeout=120)
    assert res.rc == 1, res.describe(c.logs())
    report = load_json(jpath)
    check_report_schema(report)
    got = report_outcomes(report)
    assert got == dict({"tests/test_probe.py::test_probe_%d" % i: "passed"
                        for i in range(6)},
                       **{"tests/test_probe.py::test_fails": "failed"}), got
    return read_probes(out)


def worker_log(c, i=0):
    return c.workers[i][2].read_text(errors="replace")


def test_warm_tasks_see_what_cold_ones_see(sandbox, cluster):
    suite = make_probe_suite(sandbox.base)

    warm = cluster(name="warm")
    wproc = warm.add_workers(1, slots=2)[0]
    got_warm = run_probe(sandbox, warm, suite, "warm")
    assert "pytest tasks start warm: forked from /usr/bin/python3 running " \
        in worker_log(warm), worker_log(warm)
    warm.stop()

    cold = cluster(name="cold")
    cproc = cold.add_workers(1, slots=2, extra_args=["--no-warm"])[0]
    got_cold = run_probe(sandbox, cold, suite, "cold")
    assert "pytest tasks start cold" in worker_log(cold), worker_log(cold)

    assert sorted(got_warm) == sorted(got_cold) == \
        ["p%d" % i for i in range(6)]
    for name in got_warm:
        w, k = got_warm[name], got_cold[name]
        for field in ("argv0", "cwd", "suite_var", "leader", "fds", "stdin",
                      "path0", "main"):
            assert w[field] == k[field], (name, field, w, k)
        assert w["ppid"] == wproc.pid, w
        assert k["ppid"] == cproc.pid, k
        assert w["tempfile"] == w["tmpdir_env"], w
        assert w["suite_var"] == "from-config"
        assert w["leader"] is True
    # One task per test: each its own TESTFLEET_TASK and its own random
    # state (a zygote that forgot to reseed would repeat one value).
    tasks = [p["task"] for p in got_warm.values()]
    assert len(set(tasks)) == len(tasks), tasks
    rnd = [p["random"] for p in got_warm.values()]
    assert len(set(rnd)) == len(rnd), rnd


def test_zygote_killed_mid_run_loses_nothing(sandbox, cluster):
    suite = sandbox.base / "suite"
    (suite / "tests").mkdir(parents=True)
    marks = sandbox.base / "marks"
    marks.mkdir()
    body = "import os, time\n"
    for i in range(8):
        body += ("\ndef test_t%d():\n"
                 "    open(os.path.join(%r, 't%d-%%d' %% os.getpid()), "
                 "'w').close()\n"
                 "    time.sleep(0.4)\n" % (i, str(marks), i))
    (suite / "tests" / "test_slow.py").write_text(body)
    c = cluster(name="kill")
    w = c.add_workers(1, slots=2)[0]
    jpath = sandbox.path("r.json")
    proc = sandbox.popen(["run", "--redis", c.url, "--shard", "test",
                          "--json", jpath, "tests"], suite)
    # Kill the zygote once the first tests are running in its children.
    deadline = time.monotonic() + 60
    zygote = None
    while time.monotonic() < deadline and zygote is None:
        if len(os.listdir(str(marks))) >= 1:
            zygote = find_zygote(w.pid)
        time.sleep(0.02)
    assert zygote, "no zygote under the worker\n" + worker_log(c)
    os.kill(zygote, signal.SIGKILL)
    res = sandbox.wait(proc, 120)
    assert res.rc == 0, res.describe(c.logs())
    report = load_json(jpath)
    got = report_outcomes(report)
    assert got == {"tests/test_slow.py::test_t%d" % i: "passed"
                   for i in range(8)}, got
    # Exactly once each: the task running when the zygote died was the
    # worker's child already and finished; none ran twice.
    ran = sorted(n.split("-")[0] for n in os.listdir(str(marks)))
    assert ran == sorted("t%d" % i for i in range(8)), ran
    log = worker_log(c)
    assert "warm pytest: zygote %d killed by signal 9" % zygote in log, log
    # A new zygote served the rest.
    assert find_zygote(w.pid) not in (None, zygote), log


def find_zygote(worker_pid):
    for name in os.listdir("/proc"):
        if not name.isdigit() or not is_warm_zygote(int(name)):
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == worker_pid:
            return int(name)
    return None


def test_shell_wrapper_runs_cold(sandbox, cluster):
    suite = sandbox.base / "suite"
    (suite / "tests").mkdir(parents=True)
    (suite / "tests" / "test_x.py").write_text(
        "def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    wrapper = sandbox.base / "pytest-wrapper"
    wrapper.write_text("#!/bin/sh\nexec /usr/bin/pytest \"$@\"\n")
    wrapper.chmod(0o755)
    c = cluster(name="wrap")
    c.add_workers(1, slots=1, extra_args=["--pytest", str(wrapper)])
    res = sandbox.run(["run", "--redis", c.url, "--pytest", str(wrapper),
                       "tests"], cwd=suite, timeout=120)
    assert res.rc == 0, res.describe(c.logs())
    log = worker_log(c)
    assert "pytest tasks start cold (exec per task): %s runs /bin/sh, " \
        "not python" % wrapper in log, log
    assert "2 passed" in res.out, res.describe()


def test_warm_env_switch(sandbox, cluster):
    """TESTFLEET_PYTEST_WARM=0 turns warm starts off; a bad value is a
    usage error."""
    c = cluster(name="env")

    def worker(value):
        return subprocess.run(
            [str(WORKER), "--redis", c.url, "--once"], cwd=str(sandbox.base),
            env=sandbox.env({"TESTFLEET_PYTEST_WARM": value}),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, timeout=60)

    p = worker("0")
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode == 0, err
    assert "pytest tasks start cold (exec per task): warm starts turned " \
        "off" in err, err
    p = worker("maybe")
    err = p.stderr.decode("utf-8", "replace").strip().splitlines()
    assert p.returncode == 2, err
    assert err == ['testfleet-worker: TESTFLEET_PYTEST_WARM: expected 0 or '
                   '1, got "maybe"'], err


def gate_suite(base):
    """4 tests, one per task; conftest.py takes 0.3 s to import (a slow
    start-up) and records when; each test records when it started."""
    suite = base / "gsuite"
    (suite / "tests").mkdir(parents=True)
    marks = base / "gmarks"
    marks.mkdir()
    (suite / "tests" / "conftest.py").write_text(
        "import os, time\n"
        "T0 = time.monotonic()\n"
        "time.sleep(0.3)\n")
    body = "import os, time\nfrom conftest import T0\n"
    for i in range(4):
        body += ("\ndef test_g%d():\n"
                 "    with open(os.path.join(%r, 'g%d'), 'w') as f:\n"
                 "        f.write('%%f %%f' %% (T0, time.monotonic()))\n"
                 "    time.sleep(0.5)\n" % (i, str(marks), i))
    (suite / "tests" / "test_gate.py").write_text(body)
    return suite, marks


def gate_times(marks):
    """[(start-up began, test began)] per task, by start-up."""
    out = []
    for name in os.listdir(str(marks)):
        t0, t1 = (float(x) for x in (marks / name).read_text().split())
        out.append((t0, t1))
    return sorted(out)


def test_start_gate(sandbox, cluster):
    """--start-gate 1 on 4 slots: each pytest task starts only once the
    one before it reached its first test; --start-gate 0 starts all four
    at once. The worker publishes its slots and gate for the plan."""
    suite, marks = gate_suite(sandbox.base)
    c = cluster(name="gate")
    c.add_workers(1, slots=4, extra_args=["--start-gate", "1"])
    res = sandbox.run(["run", "--redis", c.url, "--shard", "test", "tests"],
                      cwd=suite, timeout=120)
    assert res.rc == 0, res.describe(c.logs())
    times = gate_times(marks)
    assert len(times) == 4, times
    for (s0, t0), (s1, _) in zip(times, times[1:]):
        assert s1 >= t0 - 0.05, ("started before the previous task "
                                 "reached its test", times)
    caps = c.redis_cmd("HGETALL", "tf:workers:cap")
    vals = [v.decode() if isinstance(v, bytes) else v for v in caps[1::2]]
    assert vals == ["4 1"], caps
    assert "start gate 1" in worker_log(c), worker_log(c)
    c.stop()

    for f in os.listdir(str(marks)):
        os.unlink(str(marks / f))
    c2 = cluster(name="nogate")
    c2.add_workers(1, slots=4, extra_args=["--start-gate", "0"])
    res = sandbox.run(["run", "--redis", c2.url, "--shard", "test",
                       "tests"], cwd=suite, timeout=120)
    assert res.rc == 0, res.describe(c2.logs())
    times = gate_times(marks)
    # All four began their start-up before the first reached its test.
    assert times[-1][0] < times[0][1], times


def test_plan_counts_fleet_slots(sandbox, cluster):
    """Without -w the plan is for the live workers' slots (tf:workers:cap),
    not the producer's CPUs; -w still wins."""
    suite, _ = gate_suite(sandbox.base)
    c = cluster(name="fleet")
    c.add_workers(1, slots=3)
    c.add_workers(1, slots=2)
    time.sleep(0.5)  # both heartbeats written
    res = sandbox.run(["run", "--dry-run", "--redis", c.url, "tests"],
                      cwd=suite, timeout=60)
    assert res.rc == 0, res.describe(c.logs())
    assert " on 5 slots " in res.out.splitlines()[0], res.describe()
    res = sandbox.run(["run", "--dry-run", "--redis", c.url, "-w", "7",
                       "tests"], cwd=suite, timeout=60)
    assert res.rc == 0, res.describe(c.logs())
    assert " on 7 slots " in res.out.splitlines()[0], res.describe()
