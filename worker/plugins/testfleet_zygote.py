"""testfleet_zygote -- a warm pytest for testfleet-worker.

A fresh ``pytest`` spends most of a short task starting Python and importing
pytest (about 0.17 CPU-seconds here). The worker starts this program once,
with the interpreter of its pytest command, and asks it for each pytest task
instead of exec'ing pytest: it imports pytest and its built-in plugins once,
then forks a process per task that runs pytest's console entry point as the
command would have (0.04 CPU-seconds).

    python3 testfleet_zygote.py WORKER_PID ARGV0 (script|module)

The worker's end of an AF_UNIX stream socket is on fd 3 (docs/protocol.md,
"Worker <-> warm pytest"). A request is a 4-byte big-endian length and that
many bytes of NUL-terminated fields:

    cwd, argc, argv[1..argc], envc, env[1..envc]   (decimal counts)

sent with three descriptors (SCM_RIGHTS): the read end of a "go" pipe, the
task's output and its events (left out when the task has none). The
answer is one line, ``ok PID`` or ``error MESSAGE``; the task process
starts pytest only once the worker, holding the pid, writes "g" to the go
pipe. The task process is a grandchild: the
middle process exits at once, so the task is reparented to the worker (a
child subreaper), which then waits for it, times it and kills its process
group like any runner it exec'd. Before running pytest the task process
waits for that, sets its parent-death signal, becomes a process group
leader, takes its descriptors (stdin /dev/null, stdout and stderr the
output, fd 3 the events), closes the rest, and takes the task's
environment, cwd and argv.

What differs from a fresh pytest: pytest and its built-in plugins are
imported before the task's environment is set (the worker starts one
zygote per environment, so PYTHONPATH and the like are the task's), and
the hash seed is the zygote's; the task process ends without the
interpreter's teardown (leave()). Plugins, conftest files and tests are
imported by the task, as usual. Standard library only.
"""

import ctypes
import gc
import importlib
import os
import socket
import struct
import sys
import time

CTL_FD = 3
EVENTS_FD = 3
REQUEST_MAX = 64 << 20
FIELDS_MAX = 1 << 20
REPARENT_WAIT_S = 10.0
PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
SIGKILL = 9


class BadRequest(Exception):
    pass


# What every pytest run imports late (pytest 7: its debugging and
# faulthandler plugins, argument completion; hashlib and queue for
# pytest-xdist's execnet), what the testfleet plugin and pytest's JUnit
# writer use. Standard library and pytest's own modules only: a plugin
# imported here would miss pytest's assertion rewriting ("Module already
# imported so cannot be rewritten").
PRELOAD = ("pdb", "faulthandler", "hashlib", "queue", "json",
           "xml.etree.ElementTree", "_pytest._argcomplete",
           "_pytest.config.compat")


def preload():
    """Imports what every pytest run imports."""
    import pytest  # noqa: F401
    import _pytest.config

    for name in _pytest.config.default_plugins:
        importlib.import_module("_pytest." + name)
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # another pytest version; the task imports what it uses


def recv_exact(sock, n):
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:])
        if k == 0:
            raise EOFError
        got += k
    return bytes(buf)


def recv_request(sock):
    """(cwd, argv, env, fds), or raises EOFError when the worker is gone."""
    head, fds, _, _ = socket.recv_fds(sock, 4, 3)
    if not head:
        for fd in fds:
            os.close(fd)
        raise EOFError
    try:
        head += recv_exact(sock, 4 - len(head))
        (size,) = struct.unpack(">I", head)
        if size > REQUEST_MAX:
            raise BadRequest("request of %d bytes" % size)
        body = recv_exact(sock, size)
        return parse_request(body) + (fds,)
    except BadRequest:
        for fd in fds:
            os.close(fd)
        raise


def parse_request(body):
    if not body.endswith(b"\0"):
        raise BadRequest("request does not end with a NUL")
    fields = body[:-1].split(b"\0")
    if len(fields) > FIELDS_MAX:
        raise BadRequest("too many fields")
    it = iter(fields)

    def take():
        try:
            return next(it)
        except StopIteration:
            raise BadRequest("request ends early") from None

    def count():
        field = take()
        if not field.isdigit() or len(field) > 9:
            raise BadRequest("bad count %r" % field[:20])
        return int(field)

    cwd = os.fsdecode(take())
    argv = [os.fsdecode(take()) for _ in range(count())]
    env = {}
    for _ in range(count()):
        name, eq, value = take().partition(b"=")
        if not name or not eq:
            raise BadRequest("bad environment entry")
        env[os.fsdecode(name)] = os.fsdecode(value)
    if next(it, None) is not None:
        raise BadRequest("trailing fields")
    return cwd, argv, env


def reply(sock, line):
    sock.sendall((line.replace("\n", " ") + "\n").encode("utf-8", "replace"))


def spawn(fds):
    """Forks the task process. In the zygote: its pid. In the task
    process: 0."""
    r, w = os.pipe()
    middle = os.fork()
    if middle == 0:
        # The middle process: fork, report, exit; the task is then
        # reparented to the worker.
        os.close(r)
        try:
            pid = os.fork()
        except OSError as e:
            os.write(w, ("-%d" % e.errno).encode())
            os._exit(1)
        if pid == 0:
            os.close(w)
            return 0
        try:
            # Both sides set the group, so the worker can signal it as
            # soon as it has the pid.
            os.setpgid(pid, pid)
        except OSError:
            pass
        os.write(w, str(pid).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 32)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(middle, 0)
    for fd in fds:
        os.close(fd)
    if not data:
        raise OSError("fork: the middle process died")
    n = int(data)
    if n < 0:
        raise OSError(-n, os.strerror(-n))
    return n


def become_task(worker, libc, ctl, cwd, env, fds):
    """The task process's set-up; exits on failure."""
    os.setpgid(0, 0)
    deadline = time.monotonic() + REPARENT_WAIT_S
    while os.getppid() != worker:
        if time.monotonic() > deadline:
            os._exit(1)
        time.sleep(0.0001)
    if libc.prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0:
        os._exit(1)
    if os.getppid() != worker:
        os._exit(1)
    # What ps and top show as its name (its command line stays the
    # zygote's).
    libc.prctl(PR_SET_NAME, b"pytest", 0, 0, 0)
    # Nothing runs until the worker, holding the pid, says go: a worker
    # that gave up on this answer closes the pipe instead, and the
    # process leaves without a trace.
    go, out = fds[0], fds[1]
    events = fds[2] if len(fds) > 2 else -1
    try:
        word = os.read(go, 1)
    except OSError:
        word = b""
    if word != b"g":
        os._exit(0)
    os.close(go)
    # The zygote's socket is fd 3; detach so that closing the object
    # does not close whatever fd 3 becomes.
    ctl.detach()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    if events >= 0:
        os.dup2(events, EVENTS_FD)
    else:
        os.close(EVENTS_FD)
    os.closerange(EVENTS_FD + 1, os.sysconf("SC_OPEN_MAX"))
    try:
        if cwd:
            os.chdir(cwd)
    except OSError as e:
        os.write(2, ("testfleet: cannot start pytest: cwd %s: %s\n"
                     % (cwd, e.strerror)).encode("utf-8", "replace"))
        os._exit(127)
    os.environ.clear()
    os.environ.update(env)
    time.tzset()
    if "tempfile" in sys.modules:
        sys.modules["tempfile"].tempdir = None


def serve(worker, argv0, mode):
    """Answers requests until the worker goes away (then exits). Returns,
    in a task process, the task's argv."""
    ctl = socket.socket(fileno=CTL_FD)
    libc = ctypes.CDLL(None, use_errno=True)
    preload()
    gc.collect()
    gc.freeze()
    while True:
        try:
            cwd, argv, env, fds = recv_request(ctl)
        except EOFError:
            os._exit(0)
        except BadRequest as e:
            # The stream cannot be trusted any more.
            reply(ctl, "error bad request: %s" % e)
            os._exit(2)
        if len(fds) < 2:
            for fd in fds:
                os.close(fd)
            reply(ctl, "error a go and an output descriptor are needed")
            continue
        try:
            pid = spawn(fds)
        except OSError as e:
            reply(ctl, "error cannot start pytest: %s" % e)
            continue
        if pid == 0:
            become_task(worker, libc, ctl, cwd, env, fds)
            return argv
        reply(ctl, "ok %d" % pid)


def run_pytest(argv0, mode, args):
    import pytest

    if mode == "script":
        sys.path[0] = os.path.dirname(os.path.realpath(argv0))
    else:
        # As "python -m pytest" has them.
        argv0 = os.path.join(os.path.dirname(pytest.__file__), "__main__.py")
        sys.path[0] = os.getcwd()
    sys.argv = [argv0] + args
    sys.modules["__main__"].__file__ = argv0
    entry = getattr(pytest, "console_main", None) or pytest.main
    try:
        status = entry()
    except SystemExit as e:
        status = e.code
    leave(status)


def leave(status):
    """Ends the task process as multiprocessing ends a forked child, not
    with the interpreter's full teardown: that would touch every object
    inherited from the zygote (a copy-on-write fault per page, about 10 ms
    a task). Non-daemon threads are joined, atexit handlers run (pytest-cov
    and logging save there), stdout and stderr are flushed; objects still
    alive are not finalized. The status as sys.exit takes it."""
    import atexit
    import threading

    if status is None:
        code = 0
    elif isinstance(status, int):
        code = status & 0xFF
    else:
        sys.stderr.write("%s\n" % (status,))
        code = 1
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None:
        shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            if code == 0:
                code = 120  # what Python exits with when this fails
    os._exit(code)


def main():
    if len(sys.argv) != 4 or sys.argv[3] not in ("script", "module") or \
            not sys.argv[1].isdigit():
        sys.stderr.write("usage: testfleet_zygote.py WORKER_PID ARGV0 "
                         "script|module\n")
        sys.exit(2)
    worker, argv0, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    args = serve(worker, argv0, mode)
    run_pytest(argv0, mode, args)


if __name__ == "__main__":
    main()
