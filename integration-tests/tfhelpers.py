"""Helpers for the testfleet integration tests: paths, process bookkeeping,
a minimal Redis client, and the checks every run's outputs must pass (the
JSON report of DESIGN section 3 and the merged JUnit XML).

Stdlib only; imported by conftest.py and by the test modules.
"""
import datetime
import json
import os
import re
import signal
import socket
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# TFIT_BIN_DIR points the suite at other builds of the two binaries.
BIN_DIR = Path(os.environ.get("TFIT_BIN_DIR") or ROOT / "bin").resolve()
TESTFLEET = BIN_DIR / "testfleet"
WORKER = BIN_DIR / "testfleet-worker"
FIXTURES = HERE / "fixtures"
SYS_PYTHON = "/usr/bin/python3"
REDIS_SERVER = "/usr/bin/redis-server"

OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed",
            "flaky")
RUN_ID_RE = re.compile(r"^\d{8}-\d{4}-[a-z0-9]{4}$")
REPORT_STATUSES = ("passed", "failed", "error", "cancelled")
PHASE_STATUSES = ("passed", "failed", "error", "skipped", "cancelled")

# Environment variable that marks every process a test starts (inherited by
# their children), so leftovers can be found even after they were reparented.
TAG_VAR = "TFIT_TAG"


# ---------------------------------------------------------------------------
# Processes


def _read_proc(pid, name):
    try:
        with open("/proc/%d/%s" % (pid, name), "rb") as f:
            return f.read()
    except OSError:
        return b""


def _proc_state(pid):
    stat = _read_proc(pid, "stat")
    if not stat:
        return None
    end = stat.rfind(b")")
    return stat[end + 2:end + 3].decode("ascii", "replace")


def proc_cmdline(pid):
    return _read_proc(pid, "cmdline").replace(b"\0", b" ").decode(
        "utf-8", "replace").strip()


def is_warm_zygote(pid):
    """Whether pid is a worker's warm pytest zygote (docs/runners.md, "Warm
    pytest"): machinery that outlives tasks, in the suite's folder. The
    pytest processes it forks have its command line too, but are named
    "pytest"."""
    return b"testfleet_zygote.py" in _read_proc(pid, "cmdline") and \
        _read_proc(pid, "comm").strip() != b"pytest"


def find_processes(tags=(), paths=(), exclude=()):
    """Live processes (zombies excluded) whose environment carries
    TFIT_TAG=<one of tags>, or whose command line or working directory
    mentions one of paths. Returns [(pid, cmdline)]."""
    me = os.getpid()
    needles = {("%s=%s" % (TAG_VAR, t)).encode() for t in tags}
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        if pid == me or pid in exclude:
            continue
        state = _proc_state(pid)
        if state is None or state in ("Z", "X"):
            continue
        hit = False
        if needles:
            env = set(_read_proc(pid, "environ").split(b"\0"))
            hit = bool(env & needles)
        if not hit and paths:
            cmd = proc_cmdline(pid)
            try:
                cwd = os.readlink("/proc/%d/cwd" % pid)
            except OSError:
                cwd = ""
            hit = any(p in cmd or cwd == p or cwd.startswith(p + "/")
                      for p in paths)
        if hit:
            found.append((pid, proc_cmdline(pid)))
    return found


def kill_processes(procs):
    for pid, _ in procs:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def testfleet_tmp_dirs(tmpdirs):
    """Entries named testfleet-* directly in the given directories."""
    found = set()
    for d in tmpdirs:
        try:
            names = os.listdir(d)
        except OSError:
            continue
        found.update(os.path.join(d, n) for n in names
                     if n.startswith("testfleet"))
    return found


def foreign_holders(path, own_tags):
    """Processes not carrying one of own_tags whose command line,
    environment or working directory mentions path: a testfleet-* folder
    they hold belongs to somebody else running testfleet on this machine
    at the same time, not to the test looking at it."""
    needles = {("%s=%s" % (TAG_VAR, t)).encode() for t in own_tags}
    p = path.encode()
    holders = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        pid = int(entry)
        env = _read_proc(pid, "environ")
        if set(env.split(b"\0")) & needles:
            continue
        cmd = _read_proc(pid, "cmdline")
        try:
            cwd = os.readlink("/proc/%d/cwd" % pid).encode()
        except OSError:
            cwd = b""
        if p in cmd or p in env or cwd == p or cwd.startswith(p + b"/"):
            holders.append(pid)
    return holders


def stop_process(proc, grace):
    """SIGTERM, wait up to grace seconds, then SIGKILL. Returns True when
    the process exited on SIGTERM (or had exited already)."""
    if proc.poll() is not None:
        return True
    try:
        proc.send_signal(signal.SIGTERM)
    except OSError:
        pass
    try:
        proc.wait(timeout=grace)
        return True
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return False


def tail(text, limit=3000):
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if len(text) <= limit:
        return text
    return "[... %d chars cut ...]\n%s" % (len(text) - limit, text[-limit:])


def file_tail(path, limit=3000):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            return tail(f.read(), limit)
    except OSError as e:
        return "(cannot read %s: %s)" % (path, e)


# ---------------------------------------------------------------------------
# A minimal RESP client (for readiness checks and looking at run state)


class RedisError(Exception):
    pass


def _resp_encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if not isinstance(a, bytes):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class _Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise RedisError("connection closed")
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        line = self.line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RedisError("bad reply %r" % line)


def redis_command(sock_path, *args, timeout=5.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(str(sock_path))
        s.sendall(_resp_encode(args))
        return _Reader(s).reply()
    finally:
        s.close()


def wait_redis(sock_path, proc, timeout=10.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("redis-server exited with %s" % proc.returncode)
        try:
            if redis_command(sock_path, "PING", timeout=1.0) == "PONG":
                return
        except (OSError, RedisError) as e:
            last = e
        time.sleep(0.05)
    raise RuntimeError("redis-server did not answer PING within %ss: %s"
                       % (timeout, last))


# ---------------------------------------------------------------------------
# Reports


def load_json(path):
    with open(path, "rb") as f:
        return json.loads(f.read().decode("utf-8"))


def report_outcomes(report):
    """{test id: outcome} of a JSON report."""
    return {t["id"]: t["outcome"] for t in report["tests"]}


def diff_outcomes(got, want):
    """A readable difference of two {id: outcome} maps ('' when equal)."""
    lines = []
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    changed = sorted(i for i in set(got) & set(want) if got[i] != want[i])
    if missing:
        lines.append("%d test(s) missing from the report:" % len(missing))
        lines += ["  %r (expected %s)" % (i, want[i]) for i in missing[:40]]
    if extra:
        lines.append("%d test(s) in the report but not in plain pytest:"
                     % len(extra))
        lines += ["  %r (%s)" % (i, got[i]) for i in extra[:40]]
    if changed:
        lines.append("%d test(s) with another outcome than plain pytest:"
                     % len(changed))
        lines += ["  %r: got %s, pytest says %s" % (i, got[i], want[i])
                  for i in changed[:40]]
    return "\n".join(lines)


def _is_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _parse_iso(s):
    if not isinstance(s, str):
        raise AssertionError("timestamp %r is not a string" % (s,))
    txt = s[:-1] + "+00:00" if s.endswith("Z") else s
    try:
        return datetime.datetime.fromisoformat(txt)
    except ValueError:
        raise AssertionError("timestamp %r is not ISO-8601" % (s,))


def check_report_schema(report):
    """Asserts that report (parsed JSON) has the shape of DESIGN section 3:
    every documented field with the documented type, totals consistent with
    the test list, one entry per test id. Extra fields are allowed outside
    totals (which must hold exactly the seven outcomes and "tests")."""
    problems = []

    def need(cond, msg):
        if not cond:
            problems.append(msg)

    need(isinstance(report, dict), "report is not a JSON object")
    if not isinstance(report, dict):
        raise AssertionError("; ".join(problems))
    for key in ("schema", "run", "status", "started_at", "finished_at",
                "duration_s", "totals", "phases", "tests"):
        need(key in report, "top-level field %r missing" % key)
    if problems:
        raise AssertionError("JSON report: " + "; ".join(problems))

    need(report["schema"] == "testfleet.report/1",
         "schema is %r" % (report["schema"],))
    need(isinstance(report["run"], str) and RUN_ID_RE.match(report["run"]),
         "run id %r does not look like 20261121-0542-k3f9" % (report["run"],))
    need(report["status"] in REPORT_STATUSES,
         "status %r not one of %s" % (report["status"], REPORT_STATUSES))
    try:
        start = _parse_iso(report["started_at"])
        end = _parse_iso(report["finished_at"])
        need(start.tzinfo is not None and end.tzinfo is not None,
             "timestamps %r, %r carry no time zone"
             % (report["started_at"], report["finished_at"]))
        if start.tzinfo is not None and end.tzinfo is not None:
            span = (end - start).total_seconds()
            need(span >= 0, "finished_at before started_at")
            if _is_number(report["duration_s"]):
                need(abs(span - report["duration_s"]) <= 1.5,
                     "duration_s %r but finished_at - started_at = %.3f"
                     % (report["duration_s"], span))
    except AssertionError as e:
        problems.append(str(e))
    need(_is_number(report["duration_s"]) and report["duration_s"] >= 0,
         "duration_s %r is not a non-negative number"
         % (report["duration_s"],))

    totals = report["totals"]
    need(isinstance(totals, dict), "totals is not an object")
    if isinstance(totals, dict):
        need(set(totals) == set(OUTCOMES) | {"tests"},
             "totals keys are %s, expected tests + %s"
             % (sorted(totals), list(OUTCOMES)))
        need(all(_is_int(v) and v >= 0 for v in totals.values()),
             "totals values are not non-negative integers: %r" % totals)
        if all(_is_int(totals.get(k)) for k in OUTCOMES + ("tests",)):
            need(totals["tests"] == sum(totals[k] for k in OUTCOMES),
                 "totals.tests %d != sum of outcomes %d"
                 % (totals["tests"], sum(totals[k] for k in OUTCOMES)))

    phases = report["phases"]
    need(isinstance(phases, list) and phases, "phases is not a non-empty list")
    phase_names = set()
    for ph in phases if isinstance(phases, list) else []:
        if not isinstance(ph, dict):
            problems.append("phase %r is not an object" % (ph,))
            continue
        for key in ("name", "status", "required", "duration_s", "tasks"):
            need(key in ph, "phase field %r missing in %r" % (key, ph))
        need(isinstance(ph.get("name"), str), "phase name %r" % ph.get("name"))
        need(ph.get("status") in PHASE_STATUSES,
             "phase status %r" % (ph.get("status"),))
        need(isinstance(ph.get("required"), bool),
             "phase required %r is not a boolean" % (ph.get("required"),))
        need(_is_number(ph.get("duration_s")) and ph["duration_s"] >= 0,
             "phase duration_s %r" % (ph.get("duration_s"),))
        need(_is_int(ph.get("tasks")) and ph["tasks"] >= 0,
             "phase tasks %r" % (ph.get("tasks"),))
        # Optional (runs made before it existed): the plan's task count.
        need("planned" not in ph or (_is_int(ph["planned"])
                                     and ph["planned"] >= 0),
             "phase planned %r" % (ph.get("planned"),))
        phase_names.add(ph.get("name"))

    tests = report["tests"]
    need(isinstance(tests, list), "tests is not a list")
    counts = dict.fromkeys(OUTCOMES, 0)
    seen = set()
    for t in tests if isinstance(tests, list) else []:
        if not isinstance(t, dict):
            problems.append("test entry %r is not an object" % (t,))
            continue
        missing = [k for k in ("id", "suite", "phase", "outcome", "attempts",
                               "duration_s", "message", "retried_for",
                               "worker") if k not in t]
        if missing:
            problems.append("test %r lacks %s" % (t.get("id"), missing))
            continue
        tid = t["id"]
        need(isinstance(tid, str) and tid, "test id %r" % (tid,))
        need(tid not in seen, "test id %r appears twice" % (tid,))
        seen.add(tid)
        need(isinstance(t["suite"], str) and t["suite"],
             "%r: suite %r" % (tid, t["suite"]))
        need(t["phase"] in phase_names,
             "%r: phase %r not among phases %s"
             % (tid, t["phase"], sorted(phase_names)))
        need(t["outcome"] in OUTCOMES, "%r: outcome %r" % (tid, t["outcome"]))
        if t["outcome"] in counts:
            counts[t["outcome"]] += 1
        need(_is_int(t["attempts"]) and t["attempts"] >= 1,
             "%r: attempts %r" % (tid, t["attempts"]))
        need(_is_number(t["duration_s"]) and t["duration_s"] >= 0,
             "%r: duration_s %r" % (tid, t["duration_s"]))
        need(t["message"] is None or isinstance(t["message"], str),
             "%r: message %r" % (tid, t["message"]))
        if isinstance(t["message"], str):
            need("\n" not in t["message"],
                 "%r: message is not one line: %r" % (tid, t["message"]))
        if t["outcome"] in ("failed", "error"):
            need(isinstance(t["message"], str) and t["message"].strip(),
                 "%r: %s without a message" % (tid, t["outcome"]))
        need(t["retried_for"] is None or isinstance(t["retried_for"], str),
             "%r: retried_for %r" % (tid, t["retried_for"]))
        need(isinstance(t["worker"], str) and t["worker"],
             "%r: worker %r" % (tid, t["worker"]))
    if isinstance(totals, dict) and isinstance(tests, list):
        for k in OUTCOMES:
            need(totals.get(k) == counts[k],
                 "totals.%s = %r but %d tests have that outcome"
                 % (k, totals.get(k), counts[k]))
        need(totals.get("tests") == len(tests),
             "totals.tests = %r but %d test entries"
             % (totals.get("tests"), len(tests)))
    if problems:
        raise AssertionError("JSON report does not match DESIGN section 3:\n  "
                             + "\n  ".join(problems[:60]))


def expected_status(outcomes):
    bad = any(o in ("failed", "error") for o in outcomes.values())
    return "failed" if bad else "passed"


def parse_junit(path):
    """Parses a JUnit file with xml.etree (which rejects anything that is not
    well-formed XML 1.0). Returns (root, [testcase elements])."""
    tree = ET.parse(str(path))
    root = tree.getroot()
    if root.tag not in ("testsuites", "testsuite"):
        raise AssertionError("JUnit root element is <%s>" % root.tag)
    return root, list(root.iter("testcase"))


def check_junit(path, report):
    """The merged JUnit carries the same tests and counts as the JSON
    report: one testcase per test; <failure> = failed (+ flaky reruns are
    passed), <error> = error, <skipped> = skipped + xfailed. Returns the
    testcase elements."""
    root, cases = parse_junit(path)
    totals = report["totals"]
    n_fail = sum(1 for c in cases if c.find("failure") is not None)
    n_err = sum(1 for c in cases if c.find("error") is not None)
    n_skip = sum(1 for c in cases if c.find("skipped") is not None)
    problems = []
    if len(cases) != totals["tests"]:
        problems.append("%d testcases, JSON has %d tests"
                        % (len(cases), totals["tests"]))
    if n_fail != totals["failed"]:
        problems.append("%d testcases with <failure>, JSON has %d failed"
                        % (n_fail, totals["failed"]))
    if n_err != totals["error"]:
        problems.append("%d testcases with <error>, JSON has %d error"
                        % (n_err, totals["error"]))
    if n_skip != totals["skipped"] + totals["xfailed"]:
        problems.append("%d testcases with <skipped>, JSON has %d skipped + "
                        "%d xfailed" % (n_skip, totals["skipped"],
                                        totals["xfailed"]))
    # Suite-level counters, when present, must agree with the testcases in
    # that suite (Jenkins and GitLab read these).
    for suite in root.iter("testsuite"):
        own = list(suite.iter("testcase"))
        for attr, val in (("tests", len(own)),
                          ("failures", sum(c.find("failure") is not None
                                           for c in own)),
                          ("errors", sum(c.find("error") is not None
                                         for c in own)),
                          ("skipped", sum(c.find("skipped") is not None
                                          for c in own))):
            if suite.get(attr) is not None and int(suite.get(attr)) != val:
                problems.append("<testsuite name=%r> %s=%s but it holds %d"
                                % (suite.get("name"), attr, suite.get(attr),
                                   val))
    # Every JSON test has a testcase whose name ends its id.
    names = [c.get("name") or "" for c in cases]
    for t in report["tests"]:
        if not any(n and t["id"].endswith(n) for n in names):
            problems.append("no testcase name matches the end of %r"
                            % t["id"])
            if len(problems) > 30:
                break
    if problems:
        raise AssertionError("JUnit %s disagrees with the JSON report:\n  %s"
                             % (path, "\n  ".join(problems)))
    return cases


def junit_case_text(case):
    """All text of a testcase's failure/error children (message attribute
    and body)."""
    parts = []
    for child in case:
        if child.tag in ("failure", "error"):
            parts.append(child.get("message") or "")
            parts.append(child.text or "")
    return "\n".join(parts)


# ---------------------------------------------------------------------------
# Errors a user causes (DESIGN section 2)


def assert_one_error_line(res, rc=2, words=(), prefix="testfleet: "):
    """res (a conftest Result) is the contract's answer to a user's
    mistake: exit code rc and exactly one line on stderr, starting with
    prefix and containing every one of words. Returns that line."""
    assert res.rc == rc, res.describe()
    lines = res.err_lines()
    assert len(lines) == 1, ("expected exactly one line on stderr, got %d\n%s"
                             % (len(lines), res.describe()))
    assert lines[0].startswith(prefix), lines[0]  # docs/cli.md
    for w in words:
        assert w in lines[0], "%r not named in %r" % (w, lines[0])
    return lines[0]


def redis_keys(cluster, prefix="tf"):
    """The keys under prefix in a conftest Cluster's Redis, sorted."""
    return sorted(k.decode("utf-8", "replace")
                  for k in cluster.redis_cmd("KEYS", prefix + ":*"))
