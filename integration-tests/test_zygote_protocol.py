"""The warm pytest zygote's protocol (docs/protocol.md, "Worker <-> warm
pytest"), spoken directly: this test process plays the worker (a child
subreaper holding the other end of the socket). A task runs only after
"g" on its go pipe -- an answer the worker gave up on leaves no test run;
the task process is our child, a process group leader with our
environment for it; and malformed requests (bad length, counts, fields,
random bytes) get one "error bad request" line and end the zygote
without running anything."""
import ctypes
import os
import random
import socket
import struct
import time

import pytest

from tfhelpers import ROOT, SYS_PYTHON

ZYGOTE = ROOT / "worker" / "plugins" / "testfleet_zygote.py"
PR_SET_CHILD_SUBREAPER = 36


@pytest.fixture(scope="module", autouse=True)
def subreaper():
    """This process is the worker here: a subreaper, for this module only
    (other tests' strays must not become our zombies)."""
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    yield
    libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


class Zygote:
    """The zygote as the worker starts it: the other end of a socket on
    fd 3, stdout and stderr on a pipe (read at close), our pid given."""

    def __init__(self, cwd):
        self.sock, theirs = socket.socketpair(socket.AF_UNIX,
                                              socket.SOCK_STREAM)
        out_r, out_w = os.pipe()
        argv = [SYS_PYTHON, str(ZYGOTE), str(os.getpid()), "/usr/bin/pytest",
                "script"]
        pid = os.fork()
        if pid == 0:
            try:
                os.chdir(str(cwd))
                null = os.open(os.devnull, os.O_RDONLY)
                os.dup2(null, 0)
                os.dup2(out_w, 1)
                os.dup2(out_w, 2)
                os.dup2(theirs.fileno(), 3)
                os.closerange(4, 4096)
                os.execv(SYS_PYTHON, argv)
            finally:
                os._exit(127)
        theirs.close()
        os.close(out_w)
        self.pid, self.out = pid, out_r
        self.returncode = None
        self.sock.settimeout(60)

    def poll(self):
        if self.returncode is None:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(st)
        return self.returncode

    def send(self, body, fds):
        socket.send_fds(self.sock, [struct.pack(">I", len(body)) + body],
                        fds)

    def send_raw(self, data, fds):
        socket.send_fds(self.sock, [data], fds)

    def answer(self):
        data = b""
        while not data.endswith(b"\n"):
            chunk = self.sock.recv(512)
            if not chunk:
                break
            data += chunk
        return data.decode()

    def close(self):
        """Closes the socket, waits for the zygote; its output."""
        self.sock.close()
        deadline = time.monotonic() + 10
        while self.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if self.poll() is None:
            os.kill(self.pid, 9)
            _, st = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(st)
        out = b""
        while True:
            chunk = os.read(self.out, 65536)
            if not chunk:
                break
            out += chunk
        os.close(self.out)
        return out.decode(errors="replace")


def request(cwd, args, env):
    fields = [cwd.encode(), str(len(args)).encode()]
    fields += [a.encode() for a in args]
    fields.append(str(len(env)).encode())
    fields += [("%s=%s" % kv).encode() for kv in env.items()]
    return b"\0".join(fields) + b"\0"


def suite(tmp_path):
    d = tmp_path / "suite"
    d.mkdir()
    (d / "test_m.py").write_text(
        "import os\n"
        "def test_mark():\n"
        "    with open(os.environ['MARK'], 'w') as f:\n"
        "        f.write('%d %d %d' % (os.getpid(), os.getppid(),\n"
        "                              os.getpgid(0)))\n")
    return d


def spawn(z, d, mark, go_word, args=("test_m.py",)):
    """One request; returns (pid, wait status, output)."""
    go_r, go_w = os.pipe()
    out_r, out_w = os.pipe()
    env = {"PATH": "/usr/bin:/bin", "MARK": str(mark),
           "PYTHONDONTWRITEBYTECODE": "1"}
    z.send(request(str(d), ["-q", "-p", "no:cacheprovider"] + list(args),
                   env), [go_r, out_w])
    os.close(go_r)
    os.close(out_w)
    ans = z.answer()
    assert ans.startswith("ok "), ans
    pid = int(ans.split()[1])
    if go_word:
        os.write(go_w, go_word)
    os.close(go_w)
    _, st = os.waitpid(pid, 0)  # ours: reparented to this subreaper
    out = b""
    while True:
        chunk = os.read(out_r, 65536)
        if not chunk:
            break
        out += chunk
    os.close(out_r)
    return pid, st, out.decode(errors="replace")


def test_go_pipe_and_task_process(tmp_path):
    d = suite(tmp_path)
    z = Zygote(d)
    try:
        mark = tmp_path / "mark"
        # Given up on: closed without "g" -- nothing runs.
        pid, st, out = spawn(z, d, mark, None)
        assert os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0, st
        assert not mark.exists()
        assert out == "", out
        # Told to go: pytest runs the test, as our child and its own
        # process group's leader.
        pid, st, out = spawn(z, d, mark, b"g")
        assert os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0, (st, out)
        assert "1 passed" in out, out
        got_pid, ppid, pgid = (int(x) for x in mark.read_text().split())
        assert (got_pid, ppid, pgid) == (pid, os.getpid(), pid)
        # Only "g" means go.
        mark.unlink()
        pid, st, out = spawn(z, d, mark, b"x")
        assert os.WEXITSTATUS(st) == 0 and not mark.exists()
    finally:
        rest = z.close()
    assert z.returncode == 0, rest


EXIT_TESTS = r'''
import atexit, os, sys, threading, time

def _late():
    time.sleep(0.3)
    with open(os.environ["MARK"] + ".thread", "w") as f:
        f.write("done")

def _bye():
    with open(os.environ["MARK"] + ".atexit", "w") as f:
        f.write("ran")
    sys.stdout.write("atexit wrote this")  # no newline: the exit flushes

def test_leaves_work_for_the_exit():
    atexit.register(_bye)
    threading.Thread(target=_late).start()

def test_fails():
    assert False
'''


def test_task_exit(tmp_path):
    """The task process ends without the interpreter's teardown
    (docs/runners.md), but as a fresh pytest would for what a test can
    see: a non-daemon thread finishes, atexit handlers run, unflushed
    output arrives, and the status is pytest's."""
    d = suite(tmp_path)
    (d / "test_exit.py").write_text(EXIT_TESTS)
    z = Zygote(d)
    try:
        mark = tmp_path / "mark"
        pid, st, out = spawn(z, d, mark, b"g", ["test_exit.py"])
        assert os.WIFEXITED(st) and os.WEXITSTATUS(st) == 1, (st, out)
        assert "1 failed, 1 passed" in out, out
        assert out.rstrip().endswith("atexit wrote this"), out
        assert (tmp_path / "mark.atexit").read_text() == "ran"
        assert (tmp_path / "mark.thread").read_text() == "done"
        # Nothing collected: 5; a usage error: 4 -- as pytest exits.
        _, st, out = spawn(z, d, mark, b"g", ["-k", "no_such_test",
                                               "test_exit.py"])
        assert os.WEXITSTATUS(st) == 5, (st, out)
        _, st, out = spawn(z, d, mark, b"g", ["--no-such-option"])
        assert os.WEXITSTATUS(st) == 4, (st, out)
        assert "unrecognized arguments" in out, out
    finally:
        rest = z.close()
    assert z.returncode == 0, rest


BAD = {
    "huge length": (struct.pack(">I", (64 << 20) + 1), True),
    "no final NUL": (b"\0\0" + b"0", False),
    "count not a number": (b"/\0x\0", False),
    "count too long": (b"/\0" + b"9" * 12 + b"\0", False),
    "ends early": (b"/\x002\0-q\0", False),
    "env without =": (b"/\x000\x001\0NOEQUALS\0", False),
    "env empty name": (b"/\x000\x001\0=x\0", False),
    "trailing fields": (b"/\x000\x000\0extra\0", False),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_requests(tmp_path, case):
    data, raw = BAD[case]
    z = Zygote(tmp_path)
    go_r, go_w = os.pipe()
    out_r, out_w = os.pipe()
    try:
        if raw:
            z.send_raw(data, [go_r, out_w])
        else:
            z.send(data, [go_r, out_w])
        ans = z.answer()
    finally:
        for fd in (go_r, go_w, out_r, out_w):
            os.close(fd)
        rest = z.close()
    assert ans.startswith("error bad request: "), (ans, rest)
    assert ans.count("\n") == 1, ans
    assert z.returncode == 2, rest


def test_missing_descriptors(tmp_path):
    """A request with only one descriptor is refused; the zygote goes on
    serving."""
    z = Zygote(tmp_path)
    r, w = os.pipe()
    try:
        z.send(request("/", [], {}), [r])
        assert z.answer().startswith("error ")
        z.send(request("/", [], {}), [])
        assert z.answer().startswith("error ")
        assert z.poll() is None
    finally:
        os.close(r)
        os.close(w)
        z.close()


def test_random_bytes(tmp_path):
    """Random request bodies: each answered with one error line (or, when
    the random fields happen to parse, with a task that never gets "g");
    the zygote never hangs and nothing is left running."""
    rng = random.Random(5)
    for i in range(12):
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
        z = Zygote(tmp_path)
        go_r, go_w = os.pipe()
        out_r, out_w = os.pipe()
        try:
            z.send(body, [go_r, out_w])
            os.close(go_r)
            os.close(out_w)
            ans = z.answer()
            if ans.startswith("ok "):
                os.close(go_w)
                os.waitpid(int(ans.split()[1]), 0)
            else:
                os.close(go_w)
                assert ans.startswith("error bad request: "), (i, ans)
        finally:
            os.close(out_r)
            z.close()
