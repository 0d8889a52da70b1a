"""testfleet_pytest -- live per-test events for testfleet-worker.

The worker starts pytest with ``-p testfleet_pytest`` and an open pipe whose
number is in ``TESTFLEET_EVENTS_FD``. This plugin writes one JSON object per
line to it (see docs/protocol.md, "Worker <-> runner"):

    {"e": "start", "id": "tests/test_a.py::test_x"}
    {"e": "finish", "id": "...", "outcome": "failed", "dur": 0.01,
     "msg": "assert 1 == 2", "details": "...", "file": "tests/test_a.py",
     "line": 12}

Setup, call and teardown reports are folded into one outcome per test. A
module that fails to collect is reported as an "error" finish for its node
id. Without TESTFLEET_EVENTS_FD the plugin does nothing. Standard library
only; works with pytest 7.
"""

import json
import os

MSG_MAX_CHARS = 1000
DETAILS_MAX_BYTES = 64 * 1024

_fd = None  # events pipe, or None when disabled
_reports = {}  # nodeid -> {"setup": report, "call": report, ...}


def _open_fd():
    value = os.environ.get("TESTFLEET_EVENTS_FD", "")
    if not value.isdigit():
        return None
    fd = int(value)
    try:
        os.fstat(fd)
    except OSError:
        return None
    return fd


def _clean(text):
    """A str that encodes to valid UTF-8 without NUL characters."""
    if not isinstance(text, str):
        text = str(text)
    text = text.replace("\x00", "\ufffd")
    return text.encode("utf-8", "replace").decode("utf-8")


def _one_line(text):
    text = _clean(text).strip()
    first = text.split("\n", 1)[0].rstrip("\r")
    if len(first) > MSG_MAX_CHARS:
        first = first[:MSG_MAX_CHARS]
    return first


def _cap_details(text):
    text = _clean(text)
    data = text.encode("utf-8")
    if len(data) <= DETAILS_MAX_BYTES:
        return text
    marker = "\n[... truncated ...]"
    keep = DETAILS_MAX_BYTES - len(marker)
    return data[:keep].decode("utf-8", "ignore") + marker


def _emit(obj):
    global _fd
    if _fd is None:
        return
    data = (json.dumps(obj, ensure_ascii=True) + "\n").encode("ascii")
    try:
        while data:
            n = os.write(_fd, data)
            data = data[n:]
    except OSError:
        # The worker went away; stop writing rather than fail the tests.
        _fd = None


def _failure_message(report):
    """The first line that says why a report failed or was skipped."""
    longrepr = report.longrepr
    crash = getattr(longrepr, "reprcrash", None)
    message = getattr(crash, "message", None)
    if message:
        return _one_line(message)
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = str(longrepr[2])
        if reason.startswith("Skipped: "):
            reason = reason[len("Skipped: "):]
        return _one_line(reason)
    text = _clean(report.longreprtext or "")
    lines = text.splitlines()
    for line in lines:
        if line.startswith("E   "):
            return _one_line(line[4:])
    for line in lines:
        if line.strip():
            return _one_line(line)
    return None


def _fold(reports):
    """Returns (outcome, deciding report or None) for one test's phases."""
    setup = reports.get("setup")
    call = reports.get("call")
    teardown = reports.get("teardown")
    if call is not None and call.failed:
        return "failed", call
    for rep in (setup, teardown):
        if rep is not None and rep.failed:
            return "error", rep
    for rep in (setup, call, teardown):
        if rep is not None and rep.skipped:
            if hasattr(rep, "wasxfail"):
                return "xfailed", rep
            return "skipped", rep
    if call is not None and hasattr(call, "wasxfail"):
        return "xpassed", call
    return "passed", None


def _finish_event(nodeid, reports):
    outcome, decisive = _fold(reports)
    event = {"e": "finish", "id": _clean(nodeid), "outcome": outcome}
    dur = 0.0
    location = None
    for rep in reports.values():
        dur += float(getattr(rep, "duration", 0.0) or 0.0)
        if location is None:
            location = getattr(rep, "location", None)
    event["dur"] = dur
    if decisive is not None:
        if outcome in ("xfailed", "xpassed"):
            reason = getattr(decisive, "wasxfail", "")
            message = _one_line(reason) if reason else None
        else:
            message = _failure_message(decisive)
        if message:
            event["msg"] = message
        if outcome in ("failed", "error"):
            details = decisive.longreprtext
            if details:
                event["details"] = _cap_details(details)
    if location:
        path, lineno = location[0], location[1]
        if path:
            event["file"] = _clean(path)
        if isinstance(lineno, int) and lineno >= 0:
            event["line"] = lineno + 1
    return event


def pytest_configure(config):
    global _fd
    _fd = _open_fd()
    _reports.clear()


def pytest_unconfigure(config):
    global _fd
    _fd = None


def pytest_runtest_logstart(nodeid, location):
    _reports[nodeid] = {}
    _emit({"e": "start", "id": _clean(nodeid)})


def pytest_runtest_logreport(report):
    _reports.setdefault(report.nodeid, {})[report.when] = report


def pytest_runtest_logfinish(nodeid, location):
    reports = _reports.pop(nodeid, {})
    _emit(_finish_event(nodeid, reports))


def pytest_collectreport(report):
    if not report.failed or not report.nodeid:
        return
    event = {"e": "finish", "id": _clean(report.nodeid), "outcome": "error",
             "dur": 0.0}
    message = _failure_message(report)
    if message:
        event["msg"] = message
    details = report.longreprtext
    if details:
        event["details"] = _cap_details(details)
    path = report.fspath if hasattr(report, "fspath") else None
    if path:
        event["file"] = _clean(path)
    _emit(event)
