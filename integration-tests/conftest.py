"""Fixtures of the testfleet integration tests.

- ``sandbox``: a private folder /tmp/tfit-XXXX for one test (fixture copies,
  reports, logs, TMPDIR of the binaries), a tag in the environment of every
  process the test starts, and on teardown the check that no such process
  and no testfleet-* temporary folder is left. A live cluster worker keeps
  one folder per slot (worker/slotdir.h) until it exits: those are allowed
  while it runs, at most one per slot, and none once it has exited.
- ``cluster``: a factory for a throwaway redis-server on a unix socket plus
  N ``bin/testfleet-worker`` processes, stopped (SIGTERM, then SIGKILL) on
  teardown.
- ``reference``: plain pytest on the same files with refplugin.py, the
  outcomes every testfleet run must reproduce (cached per suite and args).

Runs under /usr/bin/python3 with pytest only; the binaries are always
called by absolute path.
"""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections import namedtuple
from pathlib import Path

import pytest

from tfhelpers import (FIXTURES, HERE, REDIS_SERVER, SYS_PYTHON, TAG_VAR,
                       TESTFLEET, WORKER, file_tail, find_processes,
                       foreign_holders, kill_processes, load_json,
                       redis_command, stop_process, tail, testfleet_tmp_dirs,
                       wait_redis)

collect_ignore = ["fixtures"]

# How long a worker may take to exit after SIGTERM when idle (DESIGN 5:
# drain within the orchestrator's 30 s; an idle worker has nothing to drain).
WORKER_STOP_GRACE = 15.0

# A slot's folder, testfleet-<name>-<pid>-s<slot>-XXXXXX (worker/slotdir.h):
# made by the slot's first task, reused by the next ones, removed when the
# worker exits.
SLOT_DIR_RE = re.compile(r"^testfleet-.+-(\d+)-s(\d+)-[A-Za-z0-9]{6}$")


def running_worker_slots(pid):
    """The --slots of pid if it is a running (not zombie) testfleet-worker,
    else None."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat = f.read()
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = f.read().decode("utf-8", "replace").split("\0")
    except OSError:
        return None
    if stat[stat.rfind(b")") + 2:][:1] in (b"Z", b"X", b""):
        return None
    if not argv or os.path.basename(argv[0]) != WORKER.name:
        return None
    slots = 1
    for i, a in enumerate(argv):
        if a == "--slots" and i + 1 < len(argv) and argv[i + 1].isdigit():
            slots = int(argv[i + 1])
        elif a.startswith("--slots=") and a[8:].isdigit():
            slots = int(a[8:])
    return slots


def foreign_slot_dir(path, own_tags):
    """Whether path is the slot folder of a running process (a worker, or a
    unit test running one) that is none of ours: an idle worker's folder is
    held by no process's environment, so foreign_holders cannot tell."""
    m = SLOT_DIR_RE.match(os.path.basename(path))
    if not m:
        return False
    pid = int(m.group(1))
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat = f.read()
        with open("/proc/%d/environ" % pid, "rb") as f:
            env = f.read()
    except OSError:
        return False
    if stat[stat.rfind(b")") + 2:][:1] in (b"Z", b"X", b""):
        return False
    needles = {("%s=%s" % (TAG_VAR, t)).encode() for t in own_tags}
    return not set(env.split(b"\0")) & needles


class Result(namedtuple("Result", "cmd rc out err")):
    """What a user sees of one command: exit code, stdout, stderr."""

    def describe(self, extra=""):
        return ("command: %s\nexit code: %s\n--- stderr ---\n%s\n"
                "--- stdout ---\n%s%s"
                % (" ".join(self.cmd), self.rc, tail(self.err),
                   tail(self.out), extra))

    def err_lines(self):
        return self.err.strip().splitlines()


@pytest.fixture(scope="session", autouse=True)
def binaries_built():
    missing = [str(p) for p in (TESTFLEET, WORKER)
               if not os.access(str(p), os.X_OK)]
    if missing:
        pytest.fail("not built: %s (run make first)" % ", ".join(missing),
                    pytrace=False)


def base_env():
    env = dict(os.environ)
    # Local mode unless a test asks for Redis explicitly.
    env.pop("TESTFLEET_REDIS_URL", None)
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_CURRENT_TEST", None)
    env["LC_ALL"] = env.get("LC_ALL") or "C.UTF-8"
    env.pop("NO_COLOR", None)
    return env


class Sandbox:
    def __init__(self, name):
        self.base = Path(tempfile.mkdtemp(prefix="tfit-", dir="/tmp"))
        self.name = name
        self.tag = "p-" + uuid.uuid4().hex[:12]       # producer and helpers
        self.cluster_tag = "c-" + uuid.uuid4().hex[:12]  # redis + workers
        self.tmpdir = self.base / "tmp"
        self.tmpdir.mkdir()
        self.tmp_before = testfleet_tmp_dirs(["/tmp"])
        self.clusters = []
        self.started = []  # testfleet processes started by popen/run

    # -- files

    def path(self, *parts):
        return self.base.joinpath(*parts)

    def copy_fixture(self, name, dest=None):
        dest = self.base / (dest or name)
        shutil.copytree(str(FIXTURES / name), str(dest),
                        ignore=shutil.ignore_patterns("__pycache__",
                                                      ".pytest_cache"))
        return dest

    # -- processes

    def env(self, extra=None, tag=None):
        env = base_env()
        env[TAG_VAR] = tag or self.tag
        env["TMPDIR"] = str(self.tmpdir)
        if extra:
            for k, v in extra.items():
                if v is None:
                    env.pop(k, None)
                else:
                    env[k] = v
        return env

    def popen(self, args, cwd, env=None, **kw):
        cmd = [str(TESTFLEET)] + [str(a) for a in args]
        proc = subprocess.Popen(cmd, cwd=str(cwd), env=self.env(env),
                                stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE,
                                start_new_session=True, **kw)
        self.started.append(proc)
        return proc

    def run(self, args, cwd=None, timeout=180, env=None):
        """Runs bin/testfleet with args; returns Result. A run that does not
        finish within timeout fails the test (after killing it)."""
        cwd = cwd or self.base
        proc = self.popen(args, cwd, env)
        return self.wait(proc, timeout)

    def wait(self, proc, timeout):
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            kill_processes(find_processes(tags=[self.tag]))
            out, err = proc.communicate()
            res = Result(proc.args, None, out.decode("utf-8", "replace"),
                         err.decode("utf-8", "replace"))
            pytest.fail("testfleet did not finish within %ss\n%s%s"
                        % (timeout, res.describe(), self.cluster_logs()))
        return Result(proc.args, proc.returncode,
                      out.decode("utf-8", "replace"),
                      err.decode("utf-8", "replace"))

    def cluster_logs(self):
        return "".join(c.logs() for c in self.clusters)

    def leftovers(self, include_cluster=False):
        """Processes started by this test (or their descendants) that are
        still alive: the producer's tag, anything running in or naming the
        sandbox folder; the cluster's own redis and workers only when
        include_cluster."""
        tags = [self.tag]
        exclude = set()
        if include_cluster:
            tags.append(self.cluster_tag)
        else:
            for c in self.clusters:
                exclude.update(c.pids())
        procs = find_processes(tags=tags, paths=[str(self.base)],
                               exclude=exclude)
        if not include_cluster:
            # Runner processes of live workers carry the cluster tag; they
            # are the cluster's business until it is stopped.
            cluster = {pid for pid, _ in
                       find_processes(tags=[self.cluster_tag])}
            procs = [p for p in procs if p[0] not in cluster]
        return procs

    def new_tmp_dirs(self):
        """testfleet-* folders in our TMPDIR, and new ones in /tmp (in case
        TMPDIR is not honoured) unless a process of somebody else's holds
        them (other people may run testfleet on this machine)."""
        own = [self.tag, self.cluster_tag]

        def candidates():
            return {d for d in testfleet_tmp_dirs(["/tmp"]) - self.tmp_before
                    if not foreign_holders(d, own)
                    and not foreign_slot_dir(d, own)}

        now = candidates()
        if now:
            # Somebody else's run may be between creating its folder and
            # starting its processes (or between stopping and removing):
            # a leak of ours stays, theirs moves on.
            time.sleep(2)
            now &= candidates()
        now |= testfleet_tmp_dirs([str(self.tmpdir)])
        return sorted(now - self.live_slot_dirs(now))

    def live_slot_dirs(self, dirs):
        """Those of dirs that are the slot folders of a cluster worker that
        is still running: at most one per slot it has (two for one slot is a
        leak, and both are reported)."""
        pids = set()
        for c in self.clusters:
            pids.update(c.pids())
        by_slot = {}
        for d in dirs:
            m = SLOT_DIR_RE.match(os.path.basename(d))
            if not m or int(m.group(1)) not in pids:
                continue
            pid, slot = int(m.group(1)), int(m.group(2))
            slots = running_worker_slots(pid)
            if slots is None or not 1 <= slot <= slots:
                continue
            by_slot.setdefault((pid, slot), []).append(d)
        return {ds[0] for ds in by_slot.values() if len(ds) == 1}

    def assert_clean(self, what="testfleet", settle=5.0):
        """No process the test started (other than a live cluster) and no
        testfleet-* temporary folder remains. Allows settle seconds for
        processes that are already on their way out."""
        deadline = time.monotonic() + settle
        procs = self.leftovers()
        while procs and time.monotonic() < deadline:
            time.sleep(0.1)
            procs = self.leftovers()
        dirs = self.new_tmp_dirs()
        msg = []
        if procs:
            msg.append("processes left behind by %s:\n  %s" % (
                what, "\n  ".join("%d %s" % p for p in procs)))
            kill_processes(procs)
        if dirs:
            msg.append("temporary folders left behind by %s:\n  %s"
                       % (what, "\n  ".join(dirs)))
        if msg:
            raise AssertionError("\n".join(msg))

    def close(self):
        errors = []
        for proc in self.started:
            if proc.poll() is None:
                # Only when the test stopped half-way: it waits otherwise.
                errors.append("testfleet still running at the end of the "
                              "test: %s" % " ".join(proc.args))
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                proc.communicate()
        for c in reversed(self.clusters):
            errors += c.stop()
        procs = self.leftovers(include_cluster=True)
        deadline = time.monotonic() + 5
        while procs and time.monotonic() < deadline:
            time.sleep(0.1)
            procs = self.leftovers(include_cluster=True)
        if procs:
            kill_processes(procs)
            errors.append("processes left behind:\n  " + "\n  ".join(
                "%d %s" % p for p in procs))
        dirs = self.new_tmp_dirs()
        if dirs:
            errors.append("temporary folders left behind:\n  "
                          + "\n  ".join(dirs))
            for d in dirs:
                shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(str(self.base), ignore_errors=True)
        return errors


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def sandbox(request):
    box = Sandbox(request.node.name)
    yield box
    errors = box.close()
    call = getattr(request.node, "rep_call", None)
    if call is not None and call.failed:
        # The test failed already (and said why); what it left running
        # when it stopped half-way has been killed above.
        return
    if errors:
        pytest.fail("cleanup of %s:\n%s" % (request.node.nodeid,
                                            "\n".join(errors)),
                    pytrace=False)


class Cluster:
    """A throwaway redis-server on a unix socket in the sandbox, and
    testfleet-worker processes connected to it."""

    def __init__(self, box, name):
        self.box = box
        self.dir = box.base / name
        self.dir.mkdir()
        self.sock = self.dir / "r.sock"
        self.url = "unix://%s" % self.sock
        self.redis = None
        self.workers = []  # (name, Popen, log path)
        self.stopped = False
        log = open(str(self.dir / "redis.log"), "wb")
        self.redis = subprocess.Popen(
            [REDIS_SERVER, "--port", "0", "--unixsocket", str(self.sock),
             "--unixsocketperm", "700", "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--dir", str(self.dir),
             "--maxmemory-policy", "noeviction"],
            cwd=str(self.dir), env=box.env(tag=box.cluster_tag),
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()
        try:
            wait_redis(self.sock, self.redis)
        except RuntimeError as e:
            pytest.fail("%s\n%s" % (e, file_tail(self.dir / "redis.log")))

    def add_workers(self, n, slots=1, extra_args=()):
        started = []
        for _ in range(n):
            name = "w%d" % (len(self.workers) + 1)
            logpath = self.dir / ("%s.log" % name)
            log = open(str(logpath), "wb")
            proc = subprocess.Popen(
                [str(WORKER), "--redis", self.url, "--slots", str(slots),
                 "--name", name] + list(extra_args),
                cwd=str(self.dir), env=self.box.env(tag=self.box.cluster_tag),
                stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)
            log.close()
            self.workers.append((name, proc, logpath))
            started.append((name, proc, logpath))
        time.sleep(0.3)
        for name, proc, logpath in started:
            if proc.poll() is not None:
                pytest.fail("worker %s exited at start with %s:\n%s"
                            % (name, proc.returncode, file_tail(logpath)),
                            pytrace=False)
        return [s[1] for s in started]

    def pids(self):
        pids = set()
        if self.redis is not None:
            pids.add(self.redis.pid)
        pids.update(p.pid for _, p, _ in self.workers)
        return pids

    def redis_cmd(self, *args):
        return redis_command(self.sock, *args)

    def logs(self):
        parts = []
        for name, proc, logpath in self.workers:
            parts.append("\n--- worker %s (%s) log ---\n%s" % (
                name, "running" if proc.poll() is None
                else "exited %s" % proc.returncode, file_tail(logpath, 2000)))
        return "".join(parts)

    def stop_workers(self):
        """SIGTERM every worker at once, then wait; returns problems."""
        errors = []
        for name, proc, logpath in self.workers:
            if proc.poll() is None:
                try:
                    proc.send_signal(signal.SIGTERM)
                except OSError:
                    pass
        deadline = time.monotonic() + WORKER_STOP_GRACE
        for name, proc, logpath in self.workers:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                errors.append("worker %s did not exit within %ss of SIGTERM"
                              "\n%s" % (name, WORKER_STOP_GRACE,
                                        file_tail(logpath, 1500)))
        return errors

    def stop(self):
        if self.stopped:
            return []
        self.stopped = True
        errors = self.stop_workers()
        if self.redis is not None:
            stop_process(self.redis, 5)
        return errors


@pytest.fixture
def cluster(sandbox):
    """cluster(workers=N, slots=1) -> Cluster, stopped on teardown."""

    def make(workers=0, slots=1, name=None):
        c = Cluster(sandbox, name or "cluster%d" % (len(sandbox.clusters) + 1))
        sandbox.clusters.append(c)
        if workers:
            c.add_workers(workers, slots=slots)
        return c

    return make


# ---------------------------------------------------------------------------
# Reference outcomes from plain pytest

_REFERENCE_CACHE = {}


def run_reference(suite_dir, args, key=None):
    """{node id: outcome} of plain pytest on suite_dir with args (run in
    suite_dir), folded by refplugin.py. Cached per key."""
    if key is not None and key in _REFERENCE_CACHE:
        return _REFERENCE_CACHE[key]
    fd, out = tempfile.mkstemp(prefix="tfit-ref-", suffix=".json")
    os.close(fd)
    env = base_env()
    env["PYTHONPATH"] = str(HERE)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    try:
        proc = subprocess.run(
            [SYS_PYTHON, "-m", "pytest", "-p", "no:cacheprovider",
             "-p", "refplugin", "--ref-out", out, "-q", "-o",
             "console_output_style=classic"] + [str(a) for a in args],
            cwd=str(suite_dir), env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
        if proc.returncode not in (0, 1):
            raise AssertionError(
                "reference pytest run failed (exit %d):\n%s\n%s"
                % (proc.returncode, tail(proc.stdout), tail(proc.stderr)))
        result = load_json(out)
    finally:
        os.unlink(out)
    if not result:
        raise AssertionError("reference pytest run found no tests in %s %s"
                             % (suite_dir, args))
    if key is not None:
        _REFERENCE_CACHE[key] = result
    return result


@pytest.fixture(scope="session")
def reference():
    return run_reference
