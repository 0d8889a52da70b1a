"""Fault injection (DESIGN section 5, docs/delivery.md): real redis-server
with AOF (appendonly yes, appendfsync always), real workers with a short
lease (--lease 3), real pytest, and faults injected from outside: workers
killed with SIGKILL, stopped past their lease, drained by SIGTERM, the
TESTFLEET_FAULT hooks, redis-server restarted under a run, runners that hit
a quota, crash the interpreter or hang, a cancel, and a chaos run.

Every suite is generated here with outcomes known by construction (the
chaos test also checks them against a fault-free run). Each test asserts
that the final JSON report has every test exactly once with that outcome,
and that no process of a worker outlives it. A conftest.py in each suite
appends one JSON line per test start to $TFIT_MARKS/starts.log (outside
the suite; $TFIT_MARKS is set only in the workers' environment), which
tells the tests what ran where, how often and when.
"""
import json
import os
import random
import signal
import struct
import subprocess
import time

import pytest

from tfhelpers import (REDIS_SERVER, ROOT, WORKER, check_report_schema,
                       diff_outcomes, expected_status, file_tail,
                       find_processes, is_warm_zygote, load_json,
                       redis_command, report_outcomes, tail, wait_redis)

LEASE = 3
# How long a reaper may take to notice a lost worker: the lease, plus a
# reaper period (lease/2 +- 20 %), plus a follow-up's backoff and a pytest
# start-up, with room for a slow machine.
RECLAIM_WITHIN = 60


# ---------------------------------------------------------------------------
# msgpack (the records of the results stream); stdlib only


def _unpack(b, i):
    c = b[i]
    i += 1
    if c <= 0x7f:
        return c, i
    if c >= 0xe0:
        return c - 0x100, i
    if 0x80 <= c <= 0x8f:
        return _unpack_map(b, i, c & 0x0f)
    if 0x90 <= c <= 0x9f:
        return _unpack_array(b, i, c & 0x0f)
    if 0xa0 <= c <= 0xbf:
        n = c & 0x1f
        return b[i:i + n].decode("utf-8", "replace"), i + n
    if c == 0xc0:
        return None, i
    if c == 0xc2:
        return False, i
    if c == 0xc3:
        return True, i
    fixed = {0xca: ">f", 0xcb: ">d", 0xcc: ">B", 0xcd: ">H", 0xce: ">I",
             0xcf: ">Q", 0xd0: ">b", 0xd1: ">h", 0xd2: ">i", 0xd3: ">q"}
    if c in fixed:
        fmt = fixed[c]
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, b[i:i + size])[0], i + size
    lens = {0xc4: ">B", 0xc5: ">H", 0xc6: ">I", 0xd9: ">B", 0xda: ">H",
            0xdb: ">I"}
    if c in lens:
        fmt = lens[c]
        size = struct.calcsize(fmt)
        n = struct.unpack(fmt, b[i:i + size])[0]
        i += size
        raw = b[i:i + n]
        if len(raw) != n:
            raise ValueError("msgpack: truncated")
        return (raw if c in (0xc4, 0xc5, 0xc6)
                else raw.decode("utf-8", "replace")), i + n
    counts = {0xdc: (">H", _unpack_array), 0xdd: (">I", _unpack_array),
              0xde: (">H", _unpack_map), 0xdf: (">I", _unpack_map)}
    if c in counts:
        fmt, fn = counts[c]
        size = struct.calcsize(fmt)
        n = struct.unpack(fmt, b[i:i + size])[0]
        return fn(b, i + size, n)
    raise ValueError("msgpack: unsupported type byte 0x%02x" % c)


def _unpack_array(b, i, n):
    out = []
    for _ in range(n):
        v, i = _unpack(b, i)
        out.append(v)
    return out, i


def _unpack_map(b, i, n):
    out = {}
    for _ in range(n):
        k, i = _unpack(b, i)
        v, i = _unpack(b, i)
        out[k] = v
    return out, i


def unpackb(data):
    val, end = _unpack(data, 0)
    if end != len(data):
        raise ValueError("msgpack: %d trailing bytes" % (len(data) - end))
    return val


# ---------------------------------------------------------------------------
# Processes


def _ppid_map():
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, "rb") as f:
                stat = f.read()
        except OSError:
            continue
        end = stat.rfind(b")")
        fields = stat[end + 2:].split()
        if len(fields) < 2 or fields[0] in (b"Z", b"X"):
            continue
        parents[int(entry)] = int(fields[1])
    return parents


def descendants(pid, zygotes=False):
    """Live (non-zombie) descendants of pid that run tests: {pid: cmdline}.
    A worker's warm pytest zygote (docs/runners.md) is machinery that
    outlives tasks and is left out unless zygotes is set; the pytest
    processes it forked are the worker's own children, named "pytest"."""
    parents = _ppid_map()
    children = {}
    for p, pp in parents.items():
        children.setdefault(pp, []).append(p)
    out, todo = {}, list(children.get(pid, ()))
    while todo:
        p = todo.pop()
        if p in out:
            continue
        if not zygotes and is_warm_zygote(p):
            continue
        out[p] = _cmdline(p)
        todo.extend(children.get(p, ()))
    return out


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8",
                                                       "replace").strip()
    except OSError:
        return ""


def alive(pid):
    """True while pid is a live process (a zombie counts as gone)."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat = f.read()
    except OSError:
        return False
    end = stat.rfind(b")")
    return stat[end + 2:end + 3] not in (b"Z", b"X")


def wait_for(cond, timeout, what, on_fail=None, proc=None, step=0.05):
    """Polls cond() until it returns something true; returns it. Fails the
    test after timeout seconds (or when proc, the producer, exits first),
    with on_fail() appended to the message."""
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline or (proc is not None
                                           and proc.poll() is not None):
            extra = on_fail() if on_fail else ""
            why = ("the producer exited (%s)" % proc.returncode
                   if proc is not None and proc.poll() is not None
                   else "%ss passed" % timeout)
            pytest.fail("waited for %s, but %s\n%s" % (what, why, extra),
                        pytrace=False)
        time.sleep(step)


# ---------------------------------------------------------------------------
# The cluster: redis-server with AOF, restartable; workers with a short lease


class Worker:
    def __init__(self, name, proc, log):
        self.name, self.proc, self.log = name, proc, log

    @property
    def pid(self):
        return self.proc.pid

    def log_text(self):
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


class FaultCluster:
    """A redis-server (AOF, appendfsync always) on a unix socket in the
    sandbox, which can be restarted on the same socket and folder, and
    testfleet-worker processes (--lease 3) that can be killed and replaced.
    Registered with the sandbox, which stops it (and checks for leftovers)
    on teardown like the conftest clusters."""

    def __init__(self, box, marks, name="faults"):
        self.box = box
        self.marks = marks
        self.dir = box.base / name
        self.dir.mkdir()
        self.sock = self.dir / "r.sock"
        self.url = "unix://%s" % self.sock
        self.redis = None
        self.redis_pids = []
        self.workers = []
        self.stopped = False
        box.clusters.append(self)
        self.start_redis()

    # -- redis

    def start_redis(self):
        log = open(str(self.dir / "redis.log"), "ab")
        self.redis = subprocess.Popen(
            [REDIS_SERVER, "--port", "0", "--unixsocket", str(self.sock),
             "--unixsocketperm", "700", "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--daemonize", "no",
             "--dir", str(self.dir), "--maxmemory-policy", "noeviction"],
            cwd=str(self.dir), env=self.box.env(tag=self.box.cluster_tag),
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()
        self.redis_pids.append(self.redis.pid)
        try:
            wait_redis(self.sock, self.redis, timeout=20)
        except RuntimeError as e:
            pytest.fail("%s\n%s" % (e, file_tail(self.dir / "redis.log")))

    def restart_redis(self, sig=signal.SIGKILL, down=0.5):
        """Stops redis-server with sig, keeps it down for `down` seconds,
        and starts it again on the same socket and folder (its AOF)."""
        self.redis.send_signal(sig)
        try:
            self.redis.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.redis.kill()
            self.redis.wait()
            pytest.fail("redis-server did not exit on signal %d" % sig)
        time.sleep(down)
        self.start_redis()

    def cmd(self, *args):
        return redis_command(self.sock, *args)

    # -- workers

    def add_worker(self, env=None, args=(), name=None):
        name = name or "w%d" % (len(self.workers) + 1)
        logpath = self.dir / ("%s.log" % name)
        extra = {"TFIT_MARKS": str(self.marks)}
        extra.update(env or {})
        log = open(str(logpath), "ab")
        proc = subprocess.Popen(
            [str(WORKER), "--redis", self.url, "--slots", "1", "--name",
             name, "--lease", str(LEASE)] + [str(a) for a in args],
            cwd=str(self.dir),
            env=self.box.env(extra, tag=self.box.cluster_tag),
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()
        w = Worker(name, proc, logpath)
        self.workers.append(w)
        return w

    def add_workers(self, n, env=None, args=()):
        ws = [self.add_worker(env, args) for _ in range(n)]
        time.sleep(0.2)
        for w in ws:
            if w.proc.poll() is not None:
                pytest.fail("worker %s exited at start with %s:\n%s"
                            % (w.name, w.proc.returncode,
                               file_tail(w.log)), pytrace=False)
        return ws

    def worker(self, name):
        for w in self.workers:
            if w.name == name:
                return w
        raise KeyError(name)

    def live_workers(self):
        return [w for w in self.workers if w.proc.poll() is None]

    def kill_worker(self, w, settle=10.0):
        """SIGKILL a worker; checks that every process it had started
        (runners, and what they started) is gone within settle seconds
        (settle 0: no check). Returns the descendants it had."""
        kids = descendants(w.pid)
        w.proc.send_signal(signal.SIGKILL)
        w.proc.wait(timeout=10)
        if not settle:
            return kids
        deadline = time.monotonic() + settle
        left = [p for p in kids if alive(p)]
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = [p for p in left if alive(p)]
        assert not left, (
            "worker %s was killed, but processes it started are still "
            "running %.0fs later:\n  %s"
            % (w.name, settle, "\n  ".join("%d %s" % (p, kids[p])
                                          for p in left)))
        return kids

    # -- what the sandbox expects of a cluster

    def pids(self):
        pids = set(self.redis_pids)
        pids.update(w.pid for w in self.workers)
        return pids

    def logs(self):
        parts = []
        for w in self.workers:
            state = ("running" if w.proc.poll() is None
                     else "exited %s" % w.proc.returncode)
            parts.append("\n--- worker %s (%s) log ---\n%s"
                         % (w.name, state, file_tail(w.log, 2000)))
        parts.append("\n--- redis log ---\n%s"
                     % file_tail(self.dir / "redis.log", 800))
        return "".join(parts)

    def stop(self):
        if self.stopped:
            return []
        self.stopped = True
        errors = []
        live = self.live_workers()
        for w in live:
            w.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for w in live:
            try:
                w.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait()
                errors.append("worker %s did not exit within 15s of "
                              "SIGTERM\n%s" % (w.name, file_tail(w.log)))
        if self.redis is not None and self.redis.poll() is None:
            self.redis.terminate()
            try:
                self.redis.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.redis.kill()
                self.redis.wait()
        return errors

    # -- looking at a run

    def records(self, run_id):
        """The results stream of run_id, decoded: task results only (no
        progress events, no end entry), in stream order."""
        out = []
        for entry_id, fields in self.cmd("XRANGE", "tf:run:%s:results"
                                         % run_id, "-", "+"):
            kv = dict(zip(fields[::2], fields[1::2]))
            if b"m" not in kv:
                continue
            msg = unpackb(kv[b"m"])
            if msg.get("k") == "result":
                msg["_entry"] = entry_id.decode()
                out.append(msg)
        return out

    def orphans(self):
        """Processes of this cluster (by tag) that are neither its redis nor
        a live worker nor something a live worker runs: what killed or
        exited workers left behind."""
        keep = {self.redis.pid} if self.redis is not None else set()
        for w in self.live_workers():
            keep.add(w.pid)
            keep.update(descendants(w.pid, zygotes=True))
        return [p for p in find_processes(tags=[self.box.cluster_tag])
                if p[0] not in keep]

    def assert_no_orphans(self, settle=10.0):
        deadline = time.monotonic() + settle
        left = self.orphans()
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = self.orphans()
        assert not left, ("processes left behind by the workers:\n  "
                          + "\n  ".join("%d %s" % p for p in left)
                          + self.logs())


# ---------------------------------------------------------------------------
# Generated suites


CONFTEST = '''\
import json
import os
import time

import pytest

MARKS = os.environ.get("TFIT_MARKS")


def note(kind, **extra):
    """Appends one JSON line to $TFIT_MARKS/<kind>.log (one write)."""
    if not MARKS:
        return
    rec = {"pid": os.getpid(), "t": time.time(),
           "worker": os.environ.get("TESTFLEET_WORKER", ""),
           "run": os.environ.get("TESTFLEET_RUN", ""),
           "task": os.environ.get("TESTFLEET_TASK", ""),
           "att": os.environ.get("TESTFLEET_ATTEMPT", "")}
    rec.update(extra)
    fd = os.open(os.path.join(MARKS, kind + ".log"),
                 os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(rec) + "\\n").encode())
    finally:
        os.close(fd)


@pytest.fixture(autouse=True)
def _tfit_started(request):
    note("starts", id=request.node.nodeid)
    yield


@pytest.fixture
def broken():
    raise RuntimeError("fixture broken on purpose")
'''

# kind -> (outcome, code template); {name} is the test name, {arg} the
# kind's argument.
KINDS = {
    "pass": ("passed", "def {name}():\n    assert True\n"),
    "fail": ("failed", "def {name}():\n    assert 1 == 2, 'wrong sum'\n"),
    "skip": ("skipped", "def {name}():\n    pytest.skip('not today')\n"),
    "xfail": ("xfailed", "@pytest.mark.xfail(reason='known bug')\n"
                         "def {name}():\n    assert False\n"),
    "xpass": ("xpassed", "@pytest.mark.xfail(reason='maybe fixed')\n"
                         "def {name}():\n    assert True\n"),
    "error": ("error", "def {name}(broken):\n    pass\n"),
    "sleep": ("passed", "def {name}():\n    time.sleep({arg})\n"),
    "sleepfail": ("failed", "def {name}():\n    time.sleep({arg})\n"
                            "    assert 0, 'slow and wrong'\n"),
    # Sleeps {arg} seconds the first time it runs in the sandbox, then is
    # quick (a hang that does not come back on the retry).
    "hang_once": ("passed",
                  "def {name}():\n"
                  "    flag = os.path.join(os.environ['TFIT_MARKS'],\n"
                  "                        __name__ + '.{name}.ran')\n"
                  "    if not os.path.exists(flag):\n"
                  "        open(flag, 'w').close()\n"
                  "        time.sleep({arg})\n"),
}


def write_suite(root, files, header=""):
    """files: {file name: [(test name, kind[, arg])]}, kind a key of KINDS
    or "code" with (test name, "code", outcome, source). Writes a pytest
    suite (pytest.ini, conftest.py, test files) under root and returns
    {node id: expected outcome}."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "conftest.py").write_text(CONFTEST)
    expected = {}
    for fname, tests in files.items():
        parts = ["import os\nimport signal\nimport subprocess\n"
                 "import time\n\nimport pytest\n\nfrom conftest import "
                 "note\n", header]
        for spec in tests:
            name, kind = spec[0], spec[1]
            if kind == "code":  # (name, "code", outcome, source)
                outcome, code = spec[2], spec[3]
            else:
                arg = spec[2] if len(spec) > 2 else ""
                outcome, code = KINDS[kind]
                code = code.format(name=name, arg=arg)
            parts.append("\n\n" + code)
            expected["%s::%s" % (fname, name)] = outcome
        (root / fname).write_text("".join(parts))
    return expected


def read_log(marks, kind="starts"):
    """The JSON lines of $TFIT_MARKS/<kind>.log written so far (a line
    still being written, without its newline, is left for the next read)."""
    try:
        text = (marks / (kind + ".log")).read_text()
    except OSError:
        return []
    return [json.loads(line) for line in text.split("\n")[:-1] if line]


def start_counts(marks):
    counts = {}
    for rec in read_log(marks):
        counts[rec["id"]] = counts.get(rec["id"], 0) + 1
    return counts


def started(marks, test_id):
    return [r for r in read_log(marks) if r["id"] == test_id]


def make_suite(sandbox, files, header=""):
    marks = sandbox.path("marks")
    marks.mkdir()
    suite = sandbox.path("suite")
    expected = write_suite(suite, files, header)
    return suite, marks, expected


def start_run(sandbox, c, suite, args, jname="r.json"):
    jpath = sandbox.path(jname)
    proc = sandbox.popen(["run", "--redis", c.url, "--json", jpath] + args,
                         suite)
    return proc, jpath


def finish_run(sandbox, c, proc, jpath, timeout=120):
    res = sandbox.wait(proc, timeout)
    assert jpath.exists(), "no JSON report\n" + res.describe(c.logs())
    report = load_json(jpath)
    check_report_schema(report)
    return res, report, {t["id"]: t for t in report["tests"]}


def assert_report(res, report, expected, c):
    """Every expected test exactly once with its outcome (the schema check
    already refused duplicate ids), the status and exit code of a
    fault-free run."""
    ids = [t["id"] for t in report["tests"]]
    assert len(ids) == len(set(ids)), "duplicate ids in the report"
    diff = diff_outcomes(report_outcomes(report), expected)
    assert not diff, diff + "\n" + res.describe(c.logs())
    status = expected_status(expected)
    assert report["status"] == status, res.describe(c.logs())
    assert res.rc == (1 if status == "failed" else 0), res.describe(
        c.logs())


def assert_records_unique(c, run_id):
    """One record per task id in the results stream (the complete script
    dedupes; a second one would be a duplicate the aggregator had to
    drop), and every test id final in exactly one record."""
    recs = c.records(run_id)
    seen, dups = {}, []
    for r in recs:
        key = r["task"]
        if key in seen:
            dups.append(key)
        seen[key] = r
    assert not dups, "task ids recorded twice in the results stream: %s" % (
        dups,)
    final = {}
    for r in recs:
        if r.get("rerun"):
            continue
        ids = [t["id"] for t in r.get("tests") or []]
        ids += list(r.get("unfinished") or [])
        for i in ids:
            final.setdefault(i, []).append(r["task"])
    twice = {i: t for i, t in final.items() if len(t) > 1}
    assert not twice, "tests final in more than one record: %s" % twice
    return recs


def fail_info(c, marks):
    def info():
        return "%s\n--- starts ---\n%s" % (
            c.logs(), tail("\n".join(json.dumps(r)
                                     for r in read_log(marks)), 2000))
    return info


@pytest.fixture
def fleet(sandbox):
    """fleet(marks) -> FaultCluster, stopped by the sandbox on teardown."""
    def make(marks, name="faults"):
        return FaultCluster(sandbox, marks, name)
    return make


# ---------------------------------------------------------------------------
# 1. kill -9 a worker in the middle of its task


def test_worker_killed_mid_task(sandbox, fleet):
    """SIGKILL one of three workers while its task runs: after the lease a
    live worker's reaper closes the attempt with a `lost` record that keeps
    the tests that had finished (from the partial hash); the running test is
    retried alone, the rest together; the report equals the fault-free one,
    nothing but the interrupted test ran twice, and the killed worker's
    runner is gone with it."""
    slow = [("test_quick_a", "pass"), ("test_quick_b", "fail"),
            ("test_slow", "hang_once", 30), ("test_after_a", "pass"),
            ("test_after_b", "skip")]
    files = {"test_victim.py": slow}
    for n in range(2):
        files["test_other%d.py" % n] = [
            ("test_p", "pass"), ("test_s", "sleep", 1.0),
            ("test_x", "xfail"), ("test_e", "error")]
    suite, marks, expected = make_suite(sandbox, files)
    c = fleet(marks)
    c.add_workers(3)
    info = fail_info(c, marks)
    proc, jpath = start_run(sandbox, c, suite,
                            ["-w", "3", "--shard", "file", "."])

    hang = "test_victim.py::test_slow"
    rec = wait_for(lambda: started(marks, hang), 60,
                   "test_slow to start", info, proc)[0]
    victim = c.worker(rec["worker"].split("/")[0])
    # The partial hash names the running test (the reaper will need it).
    run_id = rec["run"]
    key = "tf:run:%s:partial:%s" % (run_id, rec["task"])
    wait_for(lambda: c.cmd("HGET", key, "running") == hang.encode(), 10,
             "the partial hash to show test_slow running", info)
    kids = c.kill_worker(victim)
    assert kids, "the victim ran no runner process"

    res, report, t = finish_run(sandbox, c, proc, jpath)
    assert_report(res, report, expected, c)
    # Finished before the kill: kept from the partial hash (the lost
    # record, whose worker is "<reaper>/reaper"), not run again.
    for name in ("test_quick_a", "test_quick_b"):
        tr = t["test_victim.py::" + name]
        assert tr["attempts"] == 1, tr
        assert tr["worker"].startswith(victim.name + "/") or \
            tr["worker"].endswith("/reaper"), tr
    tr = t[hang]
    assert tr["attempts"] == 2 and tr["retried_for"], tr
    assert not tr["worker"].startswith(victim.name + "/"), tr
    counts = start_counts(marks)
    twice = {i: n for i, n in counts.items() if n != 1 and i != hang}
    assert not twice and counts[hang] == 2, counts
    recs = assert_records_unique(c, run_id)
    lost = [r for r in recs if r["status"] == "lost"]
    assert len(lost) == 1, lost
    assert lost[0]["worker"].endswith("/reaper"), lost[0]
    assert lost[0].get("running") == hang or hang in lost[0].get(
        "retrying", []), lost[0]
    c.assert_no_orphans()


def test_killed_worker_leaves_no_grandchild(sandbox, fleet):
    """A worker killed (-9) while its test runs a subprocess: the runner
    dies with the worker (PR_SET_PDEATHSIG) and the subprocess the test
    started must not outlive it either ("a killed worker leaves no test
    running", docs/delivery.md); the test then runs again elsewhere."""
    code = ("def test_spawns():\n"
            "    flag = os.path.join(os.environ['TFIT_MARKS'], 'ran')\n"
            "    if not os.path.exists(flag):\n"
            "        open(flag, 'w').close()\n"
            "        child = subprocess.Popen(['sleep', '300'])\n"
            "        note('grandchild', child=child.pid)\n"
            "        time.sleep(30)\n")
    files = {"test_spawn.py": [("test_before", "pass"),
                               ("test_spawns", "code", "passed", code)]}
    suite, marks, expected = make_suite(sandbox, files)
    c = fleet(marks)
    c.add_workers(2)
    info = fail_info(c, marks)
    proc, jpath = start_run(sandbox, c, suite,
                            ["-w", "2", "--shard", "file", "."])
    gc = wait_for(lambda: read_log(marks, "grandchild"), 60,
                  "the test to start its subprocess", info, proc)[0]
    victim = c.worker(gc["worker"].split("/")[0])
    assert gc["child"] in descendants(victim.pid)
    c.kill_worker(victim, settle=0)
    deadline = time.monotonic() + 5
    while alive(gc["child"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    survived = alive(gc["child"])
    if survived:
        # Ours to clean up while the bug stands (it carries the cluster's
        # tag: the sandbox would report it again).
        os.kill(gc["child"], signal.SIGKILL)
    res, report, t = finish_run(sandbox, c, proc, jpath)
    assert_report(res, report, expected, c)
    assert not survived, (
        "the test's subprocess %d (sleep 300) outlived its killed worker %s"
        % (gc["child"], victim.name))
    c.assert_no_orphans()


# ---------------------------------------------------------------------------
# 2. a worker dies around its record (TESTFLEET_FAULT)


@pytest.mark.parametrize("fault", ["exit-after-complete",
                                   "exit-before-complete"])
def test_worker_dies_around_its_record(sandbox, fleet, fault):
    """exit-after-complete: the record is in the results stream exactly
    once and acked; nothing is reclaimed or run twice. exit-before-complete:
    the entry stays pending until a reaper closes it with a `lost` record
    that keeps every test that had finished; nothing runs twice either."""
    files = {"test_first.py": [("test_a", "sleep", 0.5), ("test_b", "fail"),
                               ("test_c", "xpass"), ("test_d", "pass")]}
    for n in range(3):
        files["test_more%d.py" % n] = [("test_p", "sleep", 0.3),
                                       ("test_q", "skip")]
    suite, marks, expected = make_suite(sandbox, files)
    c = fleet(marks)
    info = fail_info(c, marks)
    faulty = c.add_workers(1, env={"TESTFLEET_FAULT": fault})[0]
    proc, jpath = start_run(sandbox, c, suite,
                            ["-w", "2", "--shard", "file", "."])
    # The faulty worker takes the first task (longest first: test_first),
    # then the others join.
    rec = wait_for(lambda: [r for r in read_log(marks)
                            if r["worker"].startswith(faulty.name + "/")],
                   60, "the faulty worker to start a test", info, proc)[0]
    run_id, task = rec["run"], rec["task"]
    kids = descendants(faulty.pid)
    c.add_workers(2)
    try:
        faulty.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the %s worker did not die\n%s" % (fault, info()))
    assert faulty.proc.returncode == 137, info()
    assert "TESTFLEET_FAULT" in faulty.log_text(), info()
    # Its runner finished before the record; nothing of it is left.
    left = [p for p in kids if alive(p)]
    assert not left, [(p, kids[p]) for p in left]

    res, report, t = finish_run(sandbox, c, proc, jpath)
    assert_report(res, report, expected, c)
    counts = start_counts(marks)
    assert set(counts) == set(expected), counts
    assert all(n == 1 for n in counts.values()), (
        "a test ran twice: %s\n%s" % (counts, info()))
    mine = [i for i in expected if
            any(r["task"] == task and r["id"] == i for r in read_log(marks))]
    assert mine, "no test of the faulty worker's task"
    for i in mine:
        # Ran once, on the faulty worker; a reaper's record names itself.
        assert t[i]["attempts"] == 1, t[i]
        if fault == "exit-after-complete":
            assert t[i]["worker"].startswith(faulty.name + "/"), t[i]
        else:
            assert t[i]["worker"].endswith("/reaper"), t[i]
    recs = assert_records_unique(c, run_id)
    of_task = [r for r in recs if r["task"] == task]
    assert len(of_task) == 1, of_task
    lost = [r for r in recs if r["status"] == "lost"]
    if fault == "exit-after-complete":
        assert of_task[0]["status"] == "completed", of_task[0]
        assert of_task[0]["worker"].startswith(faulty.name + "/")
        assert not lost, lost
    else:
        assert of_task[0]["status"] == "lost", of_task[0]
        assert of_task[0]["worker"].endswith("/reaper"), of_task[0]
        assert not of_task[0].get("retrying"), of_task[0]
        assert sorted(x["id"] for x in of_task[0]["tests"]) == sorted(mine)
    pending = c.cmd("XPENDING", "tf:q:default", "workers")
    assert pending[0] == 0, "entries still pending: %r" % (pending,)
    c.assert_no_orphans()


# ---------------------------------------------------------------------------
# 3. a worker stopped past its lease comes back: its result is fenced


def test_stopped_worker_is_fenced(sandbox, fleet):
    """SIGSTOP a worker while it runs a test; another worker's reaper takes
    the task over after the lease and runs the interrupted test again;
    SIGCONT: the stale worker's late result is rejected (fencing), the
    report has each test once, with the reclaiming worker's result, and the
    stale worker says it lost the lease and goes on working."""
    files = {"test_paused.py": [("test_before", "pass"),
                                ("test_held", "sleep", 1.5),
                                ("test_after", "fail")]}
    files["test_later.py"] = [("test_one", "pass"), ("test_two", "xfail")]
    suite, marks, expected = make_suite(sandbox, files)
    c = fleet(marks)
    info = fail_info(c, marks)
    stale = c.add_workers(1)[0]
    proc, jpath = start_run(sandbox, c, suite,
                            ["-w", "2", "--shard", "file",
                             "test_paused.py"])
    held = "test_paused.py::test_held"
    rec = wait_for(lambda: started(marks, held), 60, "test_held to start",
                   info, proc)[0]
    assert rec["worker"].startswith(stale.name + "/"), rec
    stale.proc.send_signal(signal.SIGSTOP)
    try:
        other = c.add_workers(1)[0]
        # Paused until the other worker has run test_held again and its
        # result is recorded: well past the lease and a reaper period.
        wait_for(lambda: [r for r in started(marks, held)
                          if r["worker"].startswith(other.name + "/")],
                 RECLAIM_WITHIN, "the reaper to hand test_held to %s"
                 % other.name, info, proc)
        wait_for(lambda: any(
            held in [x["id"] for x in r.get("tests") or []]
            for r in c.records(rec["run"])), 30,
            "test_held's result from the reclaiming worker", info, proc)
    finally:
        stale.proc.send_signal(signal.SIGCONT)
    res, report, t = finish_run(sandbox, c, proc, jpath)
    expected = {i: o for i, o in expected.items()
                if i.startswith("test_paused.py")}
    assert_report(res, report, expected, c)
    assert t[held]["worker"].startswith(other.name + "/"), t[held]
    assert t[held]["attempts"] == 2, t[held]
    # Finished before the pause: kept by the reaper's lost record.
    before = t["test_paused.py::test_before"]
    assert before["attempts"] == 1 and before["worker"] == \
        other.name + "/reaper", before
    # The stale worker notices, drops its record, and stays usable.
    wait_for(lambda: "lease lost" in stale.log_text(), 20,
             "the stale worker to log that it lost the lease", info)
    recs = assert_records_unique(c, rec["run"])
    assert not [r for r in recs if r["worker"].startswith(stale.name + "/")
                and r["task"] == rec["task"]], recs
    assert stale.proc.poll() is None, info()
    # Alone now, the stale worker runs the next run by itself.
    other.proc.send_signal(signal.SIGTERM)
    assert other.proc.wait(timeout=15) == 0, info()
    proc2, jpath2 = start_run(sandbox, c, suite,
                              ["-w", "1", "--shard", "file",
                               "test_later.py"], "r2.json")
    res2, report2, t2 = finish_run(sandbox, c, proc2, jpath2)
    assert_report(res2, report2, {"test_later.py::test_one": "passed",
                                  "test_later.py::test_two": "xfailed"}, c)
    assert all(x["worker"].startswith(stale.name + "/")
               for x in t2.values()), t2
    c.assert_no_orphans()


# ---------------------------------------------------------------------------
# 4. SIGTERM while a task runs: the drain finishes it or hands it back


@pytest.mark.parametrize("mode", ["hand-back", "finish"])
def test_drain_on_sigterm(sandbox, fleet, mode):
    """SIGTERM a worker while its task runs. hand-back (--grace 1, the
    running test hangs): the runner is killed after the grace, the
    unfinished tests are handed back at once (not charged to max_attempts:
    --max-attempts 1 still runs them) and another worker runs them; the
    test that had finished keeps its result. finish (--grace 20, the test
    needs 2 s): the task runs to its end on the draining worker. Either
    way the worker exits 0, well before a 30 s SIGKILL, and leaves no
    process behind."""
    hang = "test_drain.py::test_hangs"
    slow = ("test_hangs", "hang_once", 30) if mode == "hand-back" else \
        ("test_hangs", "sleep", 2.0)
    files = {"test_drain.py": [("test_done", "fail"), slow,
                               ("test_todo", "pass"),
                               ("test_todo_skip", "skip")]}
    suite, marks, expected = make_suite(sandbox, files)
    c = fleet(marks)
    info = fail_info(c, marks)
    grace = "1" if mode == "hand-back" else "20"
    w1 = c.add_workers(1, args=["--grace", grace])[0]
    proc, jpath = start_run(sandbox, c, suite,
                            ["-w", "1", "--shard", "file",
                             "--max-attempts", "1", "."])
    wait_for(lambda: started(marks, hang), 60, "test_hangs to start", info,
             proc)
    kids = descendants(w1.pid)
    t0 = time.monotonic()
    w1.proc.send_signal(signal.SIGTERM)
    try:
        w1.proc.wait(timeout=25)
    except subprocess.TimeoutExpired:
        pytest.fail("the worker did not exit within 25s of SIGTERM with "
                    "--grace %s\n%s" % (grace, info()))
    took = time.monotonic() - t0
    assert w1.proc.returncode == 0, "exit %s\n%s" % (w1.proc.returncode,
                                                     info())
    assert not [p for p in kids if alive(p)], kids
    c.add_workers(1)
    res, report, t = finish_run(sandbox, c, proc, jpath)
    assert_report(res, report, expected, c)
    counts = start_counts(marks)
    recs = assert_records_unique(c, report["run"])
    mine = [r for r in recs if r["worker"].startswith(w1.name + "/")]
    assert len(mine) == 1, mine
    if mode == "finish":
        assert all(x["worker"].startswith(w1.name + "/")
                   and x["attempts"] == 1 for x in t.values()), t
        assert all(n == 1 for n in counts.values()), counts
        assert mine[0]["status"] == "completed", mine[0]
        assert len(recs) == 1, recs
        c.assert_no_orphans()
        return

    done = t["test_drain.py::test_done"]
    assert done["worker"].startswith(w1.name + "/") and \
        done["attempts"] == 1, done
    # Handed back: run elsewhere, the attempt not charged (same att, so
    # attempts 1 even with --max-attempts 1).
    for i in (hang, "test_drain.py::test_todo",
              "test_drain.py::test_todo_skip"):
        assert not t[i]["worker"].startswith(w1.name + "/"), t[i]
        assert t[i]["attempts"] == 1, t[i]
    assert counts == {"test_drain.py::test_done": 1, hang: 2,
                      "test_drain.py::test_todo": 1,
                      "test_drain.py::test_todo_skip": 1}, counts
    assert mine[0]["status"] == "lost", mine[0]
    assert sorted(mine[0].get("retrying") or []) == sorted(
        [hang, "test_drain.py::test_todo",
         "test_drain.py::test_todo_skip"]), mine[0]
    follow = [r for r in recs if r["task"].startswith(mine[0]["task"] + ".")]
    assert len(follow) == 1 and "drain" in (
        follow[0].get("retried_for") or ""), follow
    assert took < 12, "drain took %.1fs with --grace 1" % took
    c.assert_no_orphans()


# ---------------------------------------------------------------------------
# 5. redis-server restarted under a run


@pytest.mark.parametrize("sig,down", [
    (signal.SIGKILL, 1.0), (signal.SIGTERM, 1.0),
    (signal.SIGKILL, LEASE + 2.0)], ids=["SIGKILL", "SIGTERM",
                                         "down-past-lease"])
def test_redis_restart_mid_run(sandbox, fleet, sig, down):
    """redis-server (AOF, appendfsync always) killed and started again on
    the same socket and folder while tasks run: the workers keep their
    records and publish them after reconnecting, the producer's follow loop
    resumes, and the run completes with the full report. Also with Redis
    down for longer than the lease while tests run through the outage (a
    reaper may then take a live worker's task over -- its entry looks idle
    for the whole outage -- and run its test again: still one result per
    test)."""
    long_outage = down > LEASE
    files = {}
    for n in range(6):
        # With the long outage, the two workers each run a test through it.
        slow = long_outage and n in (2, 3)
        files["test_r%d.py" % n] = [
            ("test_a", "sleep", 0.4), ("test_b", "fail" if n == 2 else "pass"),
            ("test_c", "hang_once", down + 2.0) if slow
            else ("test_c", "sleep", 0.4)]
    suite, marks, expected = make_suite(sandbox, files)
    c = fleet(marks)
    info = fail_info(c, marks)
    c.add_workers(2)
    proc, jpath = start_run(sandbox, c, suite,
                            ["-w", "2", "--shard", "file", "."])
    if long_outage:
        wait_for(lambda: started(marks, "test_r2.py::test_c") and started(
            marks, "test_r3.py::test_c"), 60, "the slow tests to start",
            info, proc)
    else:
        # Some tasks recorded, some not: the middle of the run.
        wait_for(lambda: len(read_log(marks)) >= 7, 60,
                 "a third of the tests to start", info, proc)
    run_id = read_log(marks)[0]["run"]
    before = [r["_entry"] for r in c.records(run_id)]
    c.restart_redis(sig, down=down)
    res, report, t = finish_run(sandbox, c, proc, jpath)
    assert_report(res, report, expected, c)
    recs = assert_records_unique(c, run_id)
    after = [r["_entry"] for r in recs]
    # The AOF kept every record written before the restart; more came
    # after it.
    assert after[:len(before)] == before, (before, after)
    assert len(before) < len(after), (before, after)
    assert len(c.redis_pids) == 2
    assert all(w.proc.poll() is None for w in c.workers), info()
    c.assert_no_orphans()


# ---------------------------------------------------------------------------
# 6. a quota error is transient: retried with backoff, then passes


QUOTA_HEADER = '''

def attempt_times(name):
    """Appends this attempt's start time to a file outside the suite and
    returns all of them."""
    path = os.path.join(os.environ["TFIT_MARKS"], name + ".times")
    with open(path, "a") as f:
        f.write("%r\\n" % time.time())
    with open(path) as f:
        return [float(x) for x in f.read().split()]
'''


def test_quota_error_retried_with_backoff(sandbox, fleet):
    """A test failing with "exceeded quota" on its first attempt passes on
    the second: passed, attempts 2, retried_for set; one failing twice with
    "503 Service Unavailable" passes on the third. The delay between
    attempts follows the run's backoff (retry.backoff_base 1s,
    backoff_cap 2s: at most min(cap, base * 2^(n-1)) plus the time to
    start pytest). A plain failure beside them is not retried."""
    quota_once = (
        "def test_quota_once():\n"
        "    times = attempt_times('once')\n"
        "    if len(times) == 1:\n"
        "        raise RuntimeError('API call failed: exceeded quota "
        "for project p-1')\n")
    quota_twice = (
        "def test_quota_twice():\n"
        "    times = attempt_times('twice')\n"
        "    if len(times) < 3:\n"
        "        raise RuntimeError('upstream said 503 Service "
        "Unavailable')\n")
    files = {"test_quota.py": [("test_plain_pass", "pass"),
                               ("test_quota_once", "code", "passed",
                                quota_once),
                               ("test_plain_fail", "fail"),
                               ("test_quota_twice", "code", "passed",
                                quota_twice)]}
    suite, marks, expected = make_suite(sandbox, files, QUOTA_HEADER)
    (suite / "testfleet.yaml").write_text(
        "suites:\n  quota: {}\n"
        "retry:\n  max_attempts: 3\n  backoff_base: 1s\n"
        "  backoff_cap: 2s\n")
    c = fleet(marks)
    info = fail_info(c, marks)
    c.add_workers(2)
    proc, jpath = start_run(sandbox, c, suite,
                            ["-w", "2", "--shard", "file", "quota"])
    res, report, t = finish_run(sandbox, c, proc, jpath)
    assert_report(res, report, expected, c)
    run_id = report["run"]
    policy = c.cmd("HMGET", "tf:run:" + run_id, "backoff_base_ms",
                   "backoff_cap_ms", "max_attempts")
    assert policy == [b"1000", b"2000", b"3"], policy
    once = t["test_quota.py::test_quota_once"]
    assert once["attempts"] == 2, once
    assert once["retried_for"] and "exceeded quota" in once["retried_for"], \
        once
    twice = t["test_quota.py::test_quota_twice"]
    assert twice["attempts"] == 3, twice
    assert twice["retried_for"] and "503" in twice["retried_for"], twice
    for name in ("test_plain_pass", "test_plain_fail"):
        assert t["test_quota.py::" + name]["attempts"] == 1
    counts = start_counts(marks)
    assert counts["test_quota.py::test_plain_pass"] == 1, counts
    assert counts["test_quota.py::test_plain_fail"] == 1, counts

    # Delays between attempt starts: the backoff (full jitter, so anything
    # from 0) plus the rest of the failed attempt's pytest run, the record,
    # the promote tick (250 ms) and a pytest start-up (about 0.3 s in all
    # on a quiet machine). Generous slack: this checks the order of
    # magnitude (e.g. not the default cap of 60 s), not the jitter.
    slack = 5.0
    cap, base = 2.0, 1.0
    for name, n in (("once", 2), ("twice", 3)):
        times = [float(x) for x in
                 (marks / (name + ".times")).read_text().split()]
        assert len(times) == n, (name, times)
        for k in range(1, n):
            delay = times[k] - times[k - 1]
            bound = min(cap, base * 2 ** (k - 1)) + slack
            assert 0 <= delay <= bound, (
                "%s: attempt %d started %.2fs after attempt %d (bound "
                "%.1fs)\n%s" % (name, k + 1, delay, k, bound, info()))
    recs = assert_records_unique(c, run_id)
    assert any(r.get("retry_reason") and "exceeded quota"
               in r["retry_reason"] for r in recs), recs
    c.assert_no_orphans()


# ---------------------------------------------------------------------------
# 7. a test that crashes the interpreter every time: dead-lettered


def test_segfault_every_time_is_dead_lettered(sandbox, fleet):
    """A test that kills its interpreter with SIGSEGV on every attempt is
    retried alone and dead-lettered after max_attempts deliveries, reported
    `error` with the reason; the rest of its shard keeps its true outcomes;
    tf:dead holds the task."""
    segv = ("def test_segv():\n"
            "    os.kill(os.getpid(), signal.SIGSEGV)\n")
    files = {"test_crashy.py": [("test_ok", "pass"), ("test_bad", "fail"),
                                ("test_segv", "code", "error", segv),
                                ("test_skip", "skip"),
                                ("test_xf", "xfail"),
                                ("test_last", "pass")]}
    suite, marks, expected = make_suite(sandbox, files)
    c = fleet(marks)
    info = fail_info(c, marks)
    c.add_workers(2)
    proc, jpath = start_run(sandbox, c, suite,
                            ["-w", "2", "--shard", "file",
                             "--max-attempts", "3", "."])
    res, report, t = finish_run(sandbox, c, proc, jpath)
    assert_report(res, report, expected, c)
    bad = t["test_crashy.py::test_segv"]
    assert bad["attempts"] == 3, bad
    # The reason: the crash, and that it was dead-lettered.
    msg = bad["message"] or ""
    assert "SIGSEGV" in msg and "dead-letter" in msg, bad
    counts = start_counts(marks)
    assert counts["test_crashy.py::test_segv"] == 3, (counts, info())
    assert all(n == 1 for i, n in counts.items()
               if i != "test_crashy.py::test_segv"), (counts, info())
    for name in ("test_ok", "test_bad"):
        assert t["test_crashy.py::" + name]["attempts"] == 1
    dead = c.cmd("XRANGE", "tf:dead", "-", "+")
    assert len(dead) == 1, dead
    fields = dict(zip(dead[0][1][::2], dead[0][1][1::2]))
    task = unpackb(fields[b"m"])
    assert task["tests"] == ["test_crashy.py::test_segv"], task
    assert task["run"] == report["run"], task
    assert_records_unique(c, report["run"])
    c.assert_no_orphans()


# ---------------------------------------------------------------------------
# 8. a shard over its timeout: killed with its process group


def test_timeout_kills_process_group(sandbox, fleet):
    """--timeout 3, one test sleeping 60 s (with a grandchild `sleep`
    started by subprocess) among quick ones: the shard's process group is
    killed, grandchild included; the finished tests keep their results,
    the hanging one is an error (timeout), the rest are retried and
    reported."""
    hang = ("def test_hangs():\n"
            "    child = subprocess.Popen(['sleep', '300'])\n"
            "    note('grandchild', child=child.pid)\n"
            "    time.sleep(60)\n")
    files = {"test_slow.py": [("test_first", "pass"),
                              ("test_second", "fail"),
                              ("test_hangs", "code", "error", hang),
                              ("test_then", "pass"),
                              ("test_then_xpass", "xpass")]}
    suite, marks, expected = make_suite(sandbox, files)
    c = fleet(marks)
    info = fail_info(c, marks)
    c.add_workers(2)
    proc, jpath = start_run(sandbox, c, suite,
                            ["-w", "2", "--shard", "file", "--timeout", "3",
                             "."])
    gc = wait_for(lambda: read_log(marks, "grandchild"), 60,
                  "the grandchild to start", info, proc)[0]
    runner = gc["pid"]
    assert alive(gc["child"]) and alive(runner)
    res, report, t = finish_run(sandbox, c, proc, jpath, timeout=90)
    assert_report(res, report, expected, c)
    wait_for(lambda: not alive(gc["child"]) and not alive(runner), 10,
             "the timed-out runner %d and its grandchild %d to be gone"
             % (runner, gc["child"]), info)
    h = t["test_slow.py::test_hangs"]
    assert "time" in (h["message"] or "").lower(), h
    assert h["attempts"] == 1, h
    for name in ("test_first", "test_second"):
        assert t["test_slow.py::" + name]["attempts"] == 1
    for name in ("test_then", "test_then_xpass"):
        assert t["test_slow.py::" + name]["attempts"] == 2, t
    counts = start_counts(marks)
    assert all(n == 1 for n in counts.values()), counts
    recs = assert_records_unique(c, report["run"])
    assert [r["status"] for r in recs].count("timeout") == 1, recs
    c.assert_no_orphans()


# ---------------------------------------------------------------------------
# 9. testfleet cancel during a run


def test_cancel_stops_everything(sandbox, fleet):
    """testfleet cancel RUN while tasks run, more are queued and a retry
    waits in tf:delayed: running ones are killed, queued ones and the
    delayed retry never start (no test starts later than a second after
    the cancel returned), the producer exits 4 with a report marked
    cancelled, the queue is emptied, and the workers go on serving."""
    quota = ("def test_quota():\n"
             "    flag = os.path.join(os.environ['TFIT_MARKS'], 'quota')\n"
             "    if not os.path.exists(flag):\n"
             "        open(flag, 'w').close()\n"
             "        raise RuntimeError('exceeded quota')\n")
    files = {"test_c00.py": [("test_quota", "code", "passed", quota),
                             ("test_b", "pass"), ("test_c", "pass")]}
    for n in range(1, 12):
        files["test_c%02d.py" % n] = [("test_a", "sleep", 0.6),
                                      ("test_b", "pass"),
                                      ("test_c", "sleep", 0.6)]
    suite, marks, expected = make_suite(sandbox, files)
    # A retry waits up to 4 s (random(0, min(cap, base))).
    backoff = 4.0
    (suite / "testfleet.yaml").write_text(
        "suites:\n  c: {}\nretry:\n  backoff_base: 4s\n"
        "  backoff_cap: 4s\n")
    c = fleet(marks)
    info = fail_info(c, marks)
    workers = c.add_workers(2)
    proc, jpath = start_run(sandbox, c, suite,
                            ["-w", "2", "--shard", "file", "c"])
    # The quota test's first attempt is recorded and its retry scheduled
    # (unless the jitter made the delay so short it ran already).
    quota_id = "test_c00.py::test_quota"
    wait_for(lambda: c.cmd("ZCARD", "tf:delayed") > 0
             or len(started(marks, quota_id)) > 1, 60,
             "the quota test's retry to be scheduled", info, proc)
    run_id = read_log(marks)[0]["run"]
    kids = {}
    for w in workers:
        kids.update(descendants(w.pid))
    cres = sandbox.run(["cancel", run_id, "--redis", c.url], timeout=30)
    t_cancel = time.time()
    assert cres.rc == 0, cres.describe()
    res = sandbox.wait(proc, 60)
    assert res.rc == 4, res.describe(c.logs())
    assert "cancel" in res.err, res.describe()
    # Runners killed within a second (plus a little for a busy machine).
    wait_for(lambda: not [p for p in kids if alive(p)], 5,
             "the running tests' processes to die", info)
    # Watch past the retry's due time: nothing may start.
    time.sleep(max(0.0, t_cancel + backoff + 1.5 - time.time()))
    late = [r for r in read_log(marks) if r["t"] > t_cancel + 1.0]
    assert not late, "tests started after the cancel:\n%s" % late
    report = load_json(jpath)
    check_report_schema(report)
    assert report["status"] == "cancelled", report["status"]
    got = report_outcomes(report)
    assert len(got) < len(expected), "everything ran: nothing to cancel"
    wrong = {i: o for i, o in got.items()
             if o != expected.get(i) and o != "error"}
    assert not wrong, wrong
    assert c.cmd("HGET", "tf:run:" + run_id, "status") == b"cancelled"
    assert all(w.proc.poll() is None for w in workers), info()
    # The cancelled run's entries -- queued, delayed, running -- are acked
    # and deleted: nothing pending, nothing left in the queue.
    wait_for(lambda: c.cmd("ZCARD", "tf:delayed") == 0
             and c.cmd("XPENDING", "tf:q:default", "workers")[0] == 0
             and c.cmd("XLEN", "tf:q:default") == 0, 10,
             "the cancelled run's entries to leave the queue", info)
    c.assert_no_orphans()


# ---------------------------------------------------------------------------
# 10. chaos


CHAOS_FILES = 50
CHAOS_PER_FILE = 10
CHAOS_KILL_EVERY = 2.0
CHAOS_MAX_KILLS = 10


def chaos_suite():
    rng = random.Random(20261121)
    files = {}
    for f in range(CHAOS_FILES):
        tests = []
        for n in range(CHAOS_PER_FILE):
            dur = round(rng.uniform(0.02, 0.08), 3)
            kind = "sleep"
            if (f * CHAOS_PER_FILE + n) % 37 == 5:
                kind = "sleepfail"
            tests.append(("test_%02d_%d" % (f, n), kind, dur))
        if f % 10 == 3:
            tests.append(("test_%02d_skip" % f, "skip"))
            tests.append(("test_%02d_xfail" % f, "xfail"))
        files["test_chaos_%02d.py" % f] = tests
    return files


def test_chaos(sandbox, fleet):
    """500 short tests in 50 files on 4 workers (--slots 1, --lease 3): a
    fault-free run first (the reference and the baseline time), then the
    same suite with a busy worker killed (-9) every few seconds and
    replaced, and redis-server killed and restarted once. Every test is
    reported exactly once with its true outcome; the figures go to
    build/chaos-figures.txt."""
    suite, marks, expected = make_suite(sandbox, chaos_suite())
    c = fleet(marks)
    info = fail_info(c, marks)
    c.add_workers(4)
    # --max-attempts 10: a task can be hit by several kills in a row; the
    # default 3 would (rightly) turn such a test into an error, which is
    # not what this run measures.
    args = ["-w", "4", "--shard", "file", "--max-attempts", "10", "."]

    t0 = time.monotonic()
    proc, jpath = start_run(sandbox, c, suite, args, "clean.json")
    res, clean, _ = finish_run(sandbox, c, proc, jpath, timeout=120)
    clean_wall = time.monotonic() - t0
    assert_report(res, clean, expected, c)
    clean_recs = assert_records_unique(c, clean["run"])
    assert not [r for r in clean_recs if r["status"] != "completed"]
    (marks / "starts.log").rename(marks / "clean-starts.log")

    rng = random.Random(7)
    kills, restarts = 0, 0
    t0 = time.monotonic()
    proc, jpath = start_run(sandbox, c, suite, args, "chaos.json")
    next_fault = time.monotonic() + CHAOS_KILL_EVERY
    while proc.poll() is None and time.monotonic() - t0 < 150:
        time.sleep(0.05)
        if time.monotonic() < next_fault:
            continue
        next_fault = time.monotonic() + CHAOS_KILL_EVERY * rng.uniform(
            0.75, 1.25)
        if kills == 1 and not restarts:
            c.restart_redis(signal.SIGKILL, down=0.5)
            restarts += 1
            continue
        if kills >= CHAOS_MAX_KILLS:
            continue
        busy = [w for w in c.live_workers() if descendants(w.pid)]
        if not busy:
            continue
        c.kill_worker(rng.choice(busy))
        kills += 1
        c.add_worker()
    res, report, t = finish_run(sandbox, c, proc, jpath, timeout=60)
    chaos_wall = time.monotonic() - t0

    # The figures first (written even when a check below fails).
    recs = c.records(report["run"])
    dup_ids = len(recs) - len({r["task"] for r in recs})
    lost = [r for r in recs if r["status"] == "lost"]
    followups = [r for r in recs if "." in r["task"]]
    retried_tests = [x for x in report["tests"] if x["attempts"] > 1]
    starts = read_log(marks)
    executions = len(starts)
    # Suppressed duplicates: records a worker sent that the complete
    # script refused, as the workers logged them -- a resend after a lost
    # reply (0, "duplicate") or a late record of a reclaimed attempt (-1,
    # "lease lost" / "no longer ours"). Killed workers' logs count too.
    dup_dropped = fenced = 0
    for w in c.workers:
        text = w.log_text()
        dup_dropped += text.count("dropped as a duplicate")
        fenced += text.count("no longer ours") + text.count(
            "lease lost before its record went out")
    lost_tests = sorted(set(expected) - set(report_outcomes(report)))
    figures = [
        "chaos run %s: %d tests in %d files, 4 workers (--slots 1, "
        "--lease %d)" % (report["run"], len(expected), CHAOS_FILES, LEASE),
        "tasks (records in the results stream): %d (fault-free run: %d)"
        % (len(recs), len(clean_recs)),
        "faults injected: %d worker kills (SIGKILL, each replaced), %d "
        "redis-server restart (SIGKILL, AOF appendfsync always)"
        % (kills, restarts),
        "redeliveries: %d lost records (reaped attempts), %d follow-up "
        "tasks, %d tests with attempts > 1"
        % (len(lost), len(followups), len(retried_tests)),
        "test executions: %d for %d tests (%d re-executions)"
        % (executions, len(expected), executions - len(expected)),
        "duplicates suppressed: %d records dropped as duplicates and %d "
        "fenced (worker logs); %d duplicate task ids in the results "
        "stream" % (dup_dropped, fenced, dup_ids),
        "tests lost: %d" % len(lost_tests),
        "wall time: %.1fs fault-free, %.1fs with faults (+%.1fs)"
        % (clean_wall, chaos_wall, chaos_wall - clean_wall),
    ]
    text = "\n".join(figures) + "\n"
    print("\n" + text)
    out = ROOT / "build" / "chaos-figures.txt"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)

    assert_report(res, report, expected, c)
    assert report_outcomes(report) == report_outcomes(clean)
    assert not lost_tests
    assert_records_unique(c, report["run"])
    assert kills >= 3 and restarts == 1, (
        "the run ended before the faults: %d kills, %d restarts\n%s"
        % (kills, restarts, text))
    assert lost, "no worker kill hit a running task\n" + text + info()
    c.assert_no_orphans()
