"""History-aware scheduling (docs/scheduling.md): a run followed to its end
folds every test's duration into <prefix>:durations:<suite>:<fingerprint>;
the next run's plan is built from those estimates (a slow test alone in the
first task, longest first) and states its ETA; local mode keeps the history
in <project>/.testfleet/cache.rdb. The plan is observed with --dry-run."""
import hashlib
import os
import re
import time

from tfhelpers import RUN_ID_RE, load_json

SLOW_S = 1.5
MID_S = 0.3
N_FAST = 12
SLOW_ID = "tests/test_slow.py::test_slow"


def make_suite(base):
    """15 tests with known, skewed durations: one of 1.5 s, two of 0.3 s,
    twelve instant ones. Collection order: fast, mid, slow."""
    suite = base / "skewed"
    (suite / "tests").mkdir(parents=True)
    (suite / "pytest.ini").write_text("[pytest]\n")
    (suite / "tests" / "test_fast.py").write_text(
        "import pytest\n\n\n"
        "@pytest.mark.parametrize('n', range(%d))\n"
        "def test_fast(n):\n"
        "    assert n >= 0\n" % N_FAST)
    (suite / "tests" / "test_mid.py").write_text(
        "import time\n\n\n"
        "def test_mid_a():\n    time.sleep(%r)\n\n\n"
        "def test_mid_b():\n    time.sleep(%r)\n" % (MID_S, MID_S))
    (suite / "tests" / "test_slow.py").write_text(
        "import time\n\n\n"
        "def test_slow():\n    time.sleep(%r)\n" % SLOW_S)
    ids = (["tests/test_fast.py::test_fast[%d]" % n for n in range(N_FAST)]
           + ["tests/test_mid.py::test_mid_a", "tests/test_mid.py::test_mid_b",
              SLOW_ID])
    return suite, ids


def fingerprint(rootdir, suite="default", runner="pytest"):
    """What docs/scheduling.md says the history key is named by."""
    data = b"\0".join([runner.encode(), os.fsencode(rootdir), suite.encode()])
    return hashlib.sha1(data).hexdigest()[:12]


TASK_RE = re.compile(r"^(t\d{5}) (\d+\.\d{3})s (\d+) tests?$")
TEST_RE = re.compile(r"^  (~?)(\d+\.\d{3})s (.+)$")
PLAN_RE = re.compile(r"^plan: (\d+) tests? in (\d+) tasks?, estimated (\S+) "
                     r"on (\d+) slots? \(history: (\d+)/(\d+) tests\)$")


def parse_plan(out):
    """The --dry-run output: (summary match, [task]), a task being
    {"id", "est", "tests": [(id, est, known)]} in queue order."""
    lines = out.splitlines()
    summary = PLAN_RE.match(lines[0]) if lines else None
    assert summary, "no plan line in:\n%s" % out
    tasks = []
    for line in lines[1:]:
        m = TASK_RE.match(line)
        if m:
            tasks.append({"id": m.group(1), "est": float(m.group(2)),
                          "n": int(m.group(3)), "tests": []})
            continue
        m = TEST_RE.match(line)
        if m:
            assert tasks, "test line before any task: %r" % line
            tasks[-1]["tests"].append((m.group(3), float(m.group(2)),
                                       m.group(1) == ""))
            continue
        assert line.startswith("suite "), "unexpected line %r" % line
    for t in tasks:
        assert len(t["tests"]) == t["n"], t
        assert abs(sum(e for _, e, _ in t["tests"]) - t["est"]) < 0.01, t
    return summary, tasks


def dry_run(sandbox, suite, args):
    res = sandbox.run(["run", "--dry-run", "-w", "2"] + args + ["tests"],
                      cwd=suite, timeout=120)
    assert res.rc == 0, res.describe()
    summary, tasks = parse_plan(res.out)
    return res, summary, tasks


def task_of(tasks, test_id):
    return next(t for t in tasks if any(i == test_id for i, _, _ in
                                        t["tests"]))


def stored_durations(c, key):
    """{test id: (seconds, last seen)} of a history hash."""
    flat = c.redis_cmd("HGETALL", key)
    out = {}
    for k, v in zip(flat[0::2], flat[1::2]):
        d, seen = v.decode().split(":")
        out[k.decode()] = (float(d), int(seen))
    return out


def check_history_plan(tasks, ids):
    """The plan of a run with history: the slow test alone in the first
    task, with about its duration; tasks longest first; every test known
    and in exactly one task."""
    first = tasks[0]
    assert [i for i, _, _ in first["tests"]] == [SLOW_ID], tasks
    assert SLOW_S * 0.9 <= first["est"] <= SLOW_S * 4, first
    ests = [t["est"] for t in tasks]
    assert ests == sorted(ests, reverse=True), ests
    planned = [i for t in tasks for i, _, _ in t["tests"]]
    assert sorted(planned) == sorted(ids), planned
    assert all(known for t in tasks for _, _, known in t["tests"]), tasks


def test_history_recorded_and_used(sandbox, cluster):
    """A distributed run records the durations; the next plan uses them."""
    suite, ids = make_suite(sandbox.base)
    c = cluster(workers=2)
    key = "tf:durations:default:%s" % fingerprint(os.path.realpath(suite))

    # No history yet: every test counts the default, and the slow test
    # shares a task with others.
    res, summary, before = dry_run(sandbox, suite, ["--redis", c.url])
    assert summary.group(5) == "0", res.out
    assert all(not known and est == 0.05
               for t in before for _, est, known in t["tests"]), res.out
    assert task_of(before, SLOW_ID)["n"] > 1, res.out
    # A dry run queues nothing and creates no run.
    assert c.redis_cmd("ZCARD", "tf:runs") == 0
    assert c.redis_cmd("EXISTS", key) == 0

    t0 = time.time()
    jpath = sandbox.path("r1.json")
    res = sandbox.run(["run", "--redis", c.url, "-w", "2", "--json", jpath,
                       "tests"], cwd=suite, timeout=120)
    assert res.rc == 0, res.describe()
    assert re.search(r"run \S+: 15 tests in \d+ tasks queued, estimated "
                     r"\S+ on 2 slots \(history: 0/15 tests\)", res.err), \
        res.describe()
    run1 = load_json(jpath)["run"]

    # The history hash: this suite's ids, plausible durations, now.
    hist = stored_durations(c, key)
    assert sorted(hist) == sorted(ids), hist
    assert SLOW_S * 0.9 <= hist[SLOW_ID][0] <= SLOW_S * 4, hist
    for mid in ("tests/test_mid.py::test_mid_a",
                "tests/test_mid.py::test_mid_b"):
        assert MID_S * 0.9 <= hist[mid][0] <= MID_S * 5, hist
    for i in ids[:N_FAST]:
        assert hist[i][0] < 0.25, hist
    assert all(t0 - 5 <= seen <= time.time() + 5
               for _, seen in hist.values()), hist
    assert 0 < c.redis_cmd("TTL", key) <= 30 * 86400
    # One suite, one history: nothing else under tf:durations: but the
    # suite's start-up and the sweep's cursor.
    keys = sorted(k.decode() for k in c.redis_cmd("KEYS", "tf:durations:*"))
    assert keys == [key, key + ":startup", key + ":sweep"], keys
    # The start-up: what the tasks took besides their tests (a pytest
    # start at least), how many started together, a floor; this run's.
    overhead, conc, floor, seen = (
        float(x) for x in c.redis_cmd("GET", key + ":startup").decode()
        .split(":"))
    assert 0.01 < overhead < 60 and 1 <= conc <= 8, (overhead, conc)
    assert 0 <= floor <= overhead and t0 - 5 <= seen <= time.time() + 5
    assert 0 < c.redis_cmd("TTL", key + ":startup") <= 30 * 86400
    # The finished run was folded in once, and its keys expire in 7 days.
    assert c.redis_cmd("HEXISTS", "tf:run:%s" % run1, "history_saved") == 1
    for k in ("tf:run:%s" % run1, "tf:run:%s:results" % run1):
        assert 6 * 86400 < c.redis_cmd("TTL", k) <= 7 * 86400, k

    # The next plan is built from the history.
    res, summary, after = dry_run(sandbox, suite, ["--redis", c.url])
    assert summary.group(5) == "15" and summary.group(6) == "15", res.out
    check_history_plan(after, ids)
    assert [t["tests"] for t in after] != [t["tests"] for t in before]

    # The second run says so, and its hash carries the plan's numbers.
    res = sandbox.run(["run", "--redis", c.url, "-w", "2", "--json",
                       sandbox.path("r2.json"), "tests"], cwd=suite,
                      timeout=120)
    assert res.rc == 0, res.describe()
    m = re.search(r"run (\S+): 15 tests in (\d+) tasks queued, estimated "
                  r"(\S+) on 2 slots \(history: 15/15 tests\)", res.err)
    assert m, res.describe()
    run2 = m.group(1)
    assert RUN_ID_RE.match(run2)
    st = sandbox.run(["status", run2, "--redis", c.url], timeout=30)
    assert st.rc == 0, st.describe()
    eta = float(re.search(r"^eta_s: ([\d.]+)$", st.out, re.M).group(1))
    # max(total / slots, longest task) <= ETA; the slow task dominates.
    assert SLOW_S * 0.9 <= eta <= SLOW_S * 4 + 1, st.out
    assert re.search(r"^slots: 2$", st.out, re.M), st.out
    # EWMA: the slow test's new value lies between the two samples.
    hist2 = stored_durations(c, key)
    new = load_json(sandbox.path("r2.json"))
    slow2 = next(t["duration_s"] for t in new["tests"] if t["id"] == SLOW_ID)
    want = 0.3 * slow2 + 0.7 * hist[SLOW_ID][0]
    assert abs(hist2[SLOW_ID][0] - want) < 0.01, (hist2[SLOW_ID], want)

    # report on a finished run does not fold it in a second time.
    rep = sandbox.run(["report", run2, "--redis", c.url], timeout=60)
    assert rep.rc == 0, rep.describe()
    assert stored_durations(c, key) == hist2
    sandbox.assert_clean("testfleet run with history")


def test_local_mode_cache(sandbox):
    """Two local runs in the same project: the first leaves
    .testfleet/cache.rdb, the second is scheduled from it."""
    suite, ids = make_suite(sandbox.base)
    cache = suite / ".testfleet"

    res = sandbox.run(["run", "-w", "2", "tests"], cwd=suite, timeout=120)
    assert res.rc == 0, res.describe()
    assert "(history: 0/15 tests)" in res.err, res.describe()
    assert sorted(os.listdir(str(cache))) == [".gitignore", "CACHEDIR.TAG",
                                             "cache.rdb"]
    assert "*" in (cache / ".gitignore").read_text().splitlines()
    sandbox.assert_clean("testfleet run (local mode, first)")

    # A dry run reads the cache (and leaves it as it was).
    mtime = (cache / "cache.rdb").stat().st_mtime_ns
    res, summary, tasks = dry_run(sandbox, suite, [])
    assert summary.group(5) == "15", res.out
    check_history_plan(tasks, ids)
    assert (cache / "cache.rdb").stat().st_mtime_ns == mtime
    sandbox.assert_clean("testfleet run --dry-run (local mode)")

    # The second run says where its estimates come from.
    res = sandbox.run(["run", "-w", "2", "-v", "tests"], cwd=suite,
                      timeout=120)
    assert res.rc == 0, res.describe()
    assert "knows 15 of 15 tests" in res.err, res.describe()
    assert re.search(r"\(local mode, 2 slots\), estimated \S+ \(history: "
                     r"15/15 tests\)", res.err), res.describe()
    assert sorted(os.listdir(str(cache))) == [".gitignore", "CACHEDIR.TAG",
                                             "cache.rdb"]
    sandbox.assert_clean("testfleet run (local mode, second)")

    # --no-cache: temporary only, the cache untouched.
    mtime = (cache / "cache.rdb").stat().st_mtime_ns
    res, summary, tasks = dry_run(sandbox, suite, ["--no-cache"])
    assert summary.group(5) == "0", res.out
    res = sandbox.run(["run", "-w", "2", "--no-cache", "tests"], cwd=suite,
                      timeout=120)
    assert res.rc == 0, res.describe()
    assert "(history: 0/15 tests)" in res.err, res.describe()
    assert (cache / "cache.rdb").stat().st_mtime_ns == mtime
    sandbox.assert_clean("testfleet run --no-cache")


def test_local_mode_unreadable_cache(sandbox):
    """A cache file redis-server cannot load is moved aside with a
    warning; the run goes on and writes a fresh cache."""
    suite, ids = make_suite(sandbox.base)
    cache = suite / ".testfleet"
    cache.mkdir()
    (cache / "cache.rdb").write_bytes(b"REDIS0009 this is not an rdb file")
    res = sandbox.run(["run", "-w", "2", "tests"], cwd=suite, timeout=120)
    assert res.rc == 0, res.describe()
    assert "moved the local cache aside" in res.err, res.describe()
    assert (cache / "cache.rdb.bad").is_file()
    assert (cache / "cache.rdb").is_file()
    sandbox.assert_clean("testfleet run (unreadable cache)")
    res, summary, tasks = dry_run(sandbox, suite, [])
    assert summary.group(5) == "15", res.out


def test_old_runs_swept(sandbox, cluster):
    """Each new run sweeps <prefix>:runs: runs created more than 7 days ago
    that are finished (or whose hash is gone) lose their keys and their
    entry; a still-running one stays until it is 30 days old."""
    suite, ids = make_suite(sandbox.base)
    c = cluster(workers=0)
    now = time.time()
    day = 86400
    old = {"done-8d": ("done", now - 8 * day),
           "gone-9d": (None, now - 9 * day),
           "running-8d": ("running", now - 8 * day),
           "running-31d": ("running", now - 31 * day),
           "done-6d": ("done", now - 6 * day)}
    for rid, (status, created) in old.items():
        c.redis_cmd("ZADD", "tf:runs", "%.3f" % created, rid)
        if status is not None:
            c.redis_cmd("HSET", "tf:run:%s" % rid, "status", status)
            c.redis_cmd("XADD", "tf:run:%s:results" % rid, "*", "end", "1")
            c.redis_cmd("SADD", "tf:run:%s:done" % rid, "t00001")
    res = sandbox.run(["submit", "--redis", c.url, "-w", "2", "tests"],
                      cwd=suite, timeout=120)
    assert res.rc == 0, res.describe()
    new = res.out.strip()
    assert RUN_ID_RE.match(new), res.describe()
    # submit states the plan on stderr, the id alone on stdout
    assert "15 tests in" in res.err and "estimated" in res.err, res.describe()
    left = sorted(x.decode() for x in c.redis_cmd("ZRANGE", "tf:runs", 0, -1))
    assert left == sorted(["running-8d", "done-6d", new]), left
    for rid in ("done-8d", "running-31d"):
        for suffix in ("", ":results", ":done"):
            assert c.redis_cmd("EXISTS", "tf:run:%s%s" % (rid, suffix)) == 0
    assert c.redis_cmd("EXISTS", "tf:run:running-8d") == 1
    assert c.redis_cmd("EXISTS", "tf:run:done-6d:results") == 1
    # The new run's plan is in Redis: a task estimate per task.
    est = c.redis_cmd("HGETALL", "tf:run:%s:est" % new)
    assert est and len(est) % 2 == 0, est
    tests = sum(int(v.split()[1]) for v in est[1::2])
    assert tests == len(ids), est
    sandbox.assert_clean("testfleet submit")
