"""Artifacts (docs/operations.md, "Artifacts"): what tests leave in
$TESTFLEET_ARTIFACTS comes back to `--artifacts DIR`, with real
redis-server, real workers, real Playwright with Debian's Chromium and real
pytest.

- A failing Playwright test's trace lands in DIR in local mode (kept in
  Redis).
- On a cluster whose worker uploads files over its --artifacts-max to an
  HTTP server run in this process: headers from
  $TESTFLEET_ARTIFACTS_HEADERS, the query string of the template sent but
  kept out of the report, retries through 503, 503 and a 429 with
  Retry-After, the file downloaded back into DIR; a 403 is reported on the
  artifact and changes nothing else.
- pytest: nothing is kept without --artifacts/--keep-artifacts; with
  `submit --keep-artifacts` a later `report --artifacts DIR` from another
  process brings the files; a symbolic link is reported not kept and
  nothing is written outside DIR.
- Two tasks leaving the same path each get DIR/<task>-a<attempt>/<path>.

The page under test and the upload server are threads of this process
(nothing is left running when the test ends)."""
import hashlib
import http.server
import os
import threading
import time
import urllib.parse
import zipfile
from pathlib import Path

import pytest

from test_playwright import copy_suite, playwright_ready, site  # noqa: F401
from tfhelpers import check_report_schema, load_json, report_outcomes

TOKEN_HEADER = "Authorization: Bearer t0ken"

TRACE_SPEC = """\
const { test, expect } = require('@playwright/test');

test('fails with a trace', async ({ page }) => {
\tawait page.goto('/');
\tawait page.click('#greet');
\tawait expect(page.locator('#out')).toHaveText('goodbye', {
\t\ttimeout: 500,
\t});
});

test('passes', async ({ page }) => {
\tawait page.goto('/');
\tawait expect(page).toHaveTitle('testfleet fixture');
});
"""


# ---------------------------------------------------------------------------
# The upload server: PUT stores the body by path (without the query
# string), GET returns it; scripted failures come first.


class Store:
    def __init__(self):
        self.lock = threading.Lock()
        self.bodies = {}     # path -> bytes
        self.requests = []   # one dict per request, in arrival order
        # [(path suffix, status, {header: value})], consumed in order by
        # the PUTs whose path ends with the suffix.
        self.script = []
        self.always = None   # a status every PUT gets

    def puts(self, suffix=""):
        with self.lock:
            return [r for r in self.requests
                    if r["method"] == "PUT" and r["path"].endswith(suffix)]


class _StoreHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection

    def log_message(self, *args):
        pass

    def _body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n",
                                                        b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _reply(self, status, body=b"", headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def do_PUT(self):
        store = self.server.store
        body = self._body()
        split = urllib.parse.urlsplit(self.path)
        rec = {"method": "PUT", "path": split.path, "query": split.query,
               "headers": {k.lower(): v for k, v in self.headers.items()},
               "sha256": hashlib.sha256(body).hexdigest(),
               "at": time.monotonic()}
        headers = {}
        with store.lock:
            if store.always is not None:
                status = store.always
            else:
                status = 201
                for i, (suffix, st, hdr) in enumerate(store.script):
                    if split.path.endswith(suffix):
                        status, headers = st, hdr
                        del store.script[i]
                        break
            rec["status"] = status
            store.requests.append(rec)
            if 200 <= status < 300:
                store.bodies[split.path] = body
        self._reply(status, b"" if status < 300 else b"no\n", headers)

    def do_GET(self):
        store = self.server.store
        split = urllib.parse.urlsplit(self.path)
        with store.lock:
            store.requests.append({
                "method": "GET", "path": split.path, "query": split.query,
                "headers": {k.lower(): v for k, v in self.headers.items()}})
            body = store.bodies.get(split.path)
        if body is None:
            self._reply(404, b"not found\n")
        else:
            self._reply(200, body)


@pytest.fixture
def upload_server():
    """(base URL, Store) of an HTTP server in a thread of this process."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             _StoreHandler)
    server.daemon_threads = True
    server.store = Store()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % server.server_address[1], server.store
    server.shutdown()
    server.server_close()
    thread.join(10)


# ---------------------------------------------------------------------------
# Helpers


def files_below(root):
    """{relative path: bytes} of the regular files below root (symbolic
    links listed with None)."""
    found = {}
    root = Path(root)
    for dirpath, dirnames, filenames in os.walk(str(root)):
        for name in filenames + [d for d in dirnames
                                 if os.path.islink(os.path.join(dirpath, d))]:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            found[rel] = None if p.is_symlink() else p.read_bytes()
    return found


def tree(root, skip=()):
    """Every path below root (files, folders, links), but those below one
    of skip."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(str(root)):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            if not any(p == s or p.startswith(s + "/") for s in skip):
                out.add(p)
    return out


def artifacts_of(report):
    arts = report.get("artifacts")
    assert isinstance(arts, list) and arts, \
        "the JSON report lists no artifacts: %r" % sorted(report)
    for a in arts:
        for key in ("task", "attempt", "path", "size", "stored"):
            assert key in a, "artifact %r lacks %r" % (a, key)
        assert a["stored"] in ("redis", "url", "none"), a
    return arts


def the_trace(arts):
    traces = [a for a in arts if a["path"].endswith("/trace.zip")]
    assert len(traces) == 1, arts
    return traces[0]


def assert_zip(path):
    assert zipfile.is_zipfile(str(path)), "%s is not a zip file" % path
    with zipfile.ZipFile(str(path)) as z:
        assert z.testzip() is None, "%s: a member is corrupt" % path
        names = z.namelist()
    assert any(n.endswith(".trace") for n in names), names


def pw_suite(sandbox):
    suite = copy_suite(sandbox)
    (suite / "tests" / "trace.spec.js").write_text(TRACE_SPEC)
    return suite


def check_trace_outcomes(report):
    outcomes = report_outcomes(report)
    assert sorted(outcomes.values()) == ["failed", "passed"], outcomes
    failed = [i for i, o in outcomes.items() if o == "failed"]
    assert failed[0].endswith("fails with a trace"), outcomes


def start_uploading_worker(c, monkeypatch, url, site_url, max_inline="1K"):
    # The worker's environment: the page's address for the runner, the
    # upload credentials (never on a command line).
    monkeypatch.setenv("TF_PW_BASE_URL", site_url)
    monkeypatch.setenv("TESTFLEET_ARTIFACTS_HEADERS", TOKEN_HEADER + "\n")
    monkeypatch.delenv("TESTFLEET_ARTIFACTS_URL", raising=False)
    c.add_workers(1, extra_args=["--artifacts-max", max_inline,
                                 "--artifacts-url", url])
    monkeypatch.delenv("TESTFLEET_ARTIFACTS_HEADERS")


# ---------------------------------------------------------------------------
# Tests


def test_playwright_trace_lands_in_artifacts_dir(sandbox, playwright_ready,
                                                 site):
    """Acceptance: a Playwright test that fails leaves its trace in the
    --artifacts dir (local mode: the worker keeps it in Redis)."""
    suite = pw_suite(sandbox)
    out = sandbox.path("arts")
    jpath = sandbox.path("r.json")
    res = sandbox.run(["run", "--runner", "playwright", "--no-cache",
                       "--artifacts", out, "--json", jpath,
                       "tests/trace.spec.js"], cwd=suite,
                      env={"TF_PW_BASE_URL": site,
                           "TESTFLEET_ARTIFACTS_URL": None}, timeout=240)
    assert res.rc == 1, res.describe()
    report = load_json(jpath)
    check_report_schema(report)
    check_trace_outcomes(report)
    arts = artifacts_of(report)
    trace = the_trace(arts)
    assert trace["stored"] == "redis", trace
    assert "url" not in trace and "error" not in trace, trace
    assert "fetch_error" not in trace, trace
    path = out / trace["path"]
    # DIR/<the test's output folder>/trace.zip
    assert len(Path(trace["path"]).parts) == 2, trace
    assert path.is_file(), "%s missing\n%s" % (path, res.describe())
    assert trace["file"] == str(path), trace
    assert path.stat().st_size == trace["size"], trace
    assert_zip(path)
    # Playwright's bookkeeping is no artifact.
    assert not any(a["path"].endswith(".last-run.json") for a in arts), arts
    assert not (out / ".last-run.json").exists()
    # Every file kept went to DIR, nothing else is there.
    kept = {a["path"] for a in arts if a["stored"] == "redis"}
    assert set(files_below(out)) == kept, (files_below(out).keys(), arts)
    assert ("testfleet: artifacts: %d file" % len(kept)) in res.err, \
        res.describe()
    assert "0 not kept by the workers, 0 not fetched" in res.err, \
        res.describe()
    # The console report has an artifacts section naming the trace.
    assert "artifacts" in res.out and str(path) in res.out, res.describe()
    # Not in the suite's folder.
    assert not (suite / "test-results").exists()
    sandbox.assert_clean("testfleet run --artifacts (playwright)")


def test_cluster_uploads_large_artifacts(sandbox, cluster, playwright_ready,
                                         site, upload_server, monkeypatch):
    """Files over --artifacts-max go by PUT to --artifacts-url with the
    headers of $TESTFLEET_ARTIFACTS_HEADERS and the template's query string,
    through two 503 and a 429 (Retry-After: 1); the report gives the URL
    without the query string and the producer downloads the file."""
    base, store = upload_server
    store.script = [("/trace.zip", 503, {}), ("/trace.zip", 503, {}),
                    ("/trace.zip", 429, {"Retry-After": "1"})]
    suite = pw_suite(sandbox)
    c = cluster(workers=0)
    start_uploading_worker(c, monkeypatch, base + "/store?sig=secret", site)
    out = sandbox.path("arts")
    jpath = sandbox.path("r.json")
    res = sandbox.run(["run", "--redis", c.url, "--runner", "playwright",
                       "--artifacts", out, "--json", jpath,
                       "tests/trace.spec.js"], cwd=suite, timeout=240)
    assert res.rc == 1, res.describe(sandbox.cluster_logs())
    report = load_json(jpath)
    check_report_schema(report)
    check_trace_outcomes(report)
    arts = artifacts_of(report)
    trace = the_trace(arts)
    assert trace["stored"] == "url", (trace, sandbox.cluster_logs())
    assert trace["size"] > 1024, trace
    run, task = report["run"], trace["task"]
    want = "%s/store/%s/%s/%d/%s" % (base, run, task, trace["attempt"],
                                     urllib.parse.quote(trace["path"]))
    assert trace["url"] == want, trace
    assert "sig=" not in trace["url"] and "?" not in trace["url"], trace
    assert "error" not in trace and "fetch_error" not in trace, trace

    # What the server saw: every try with the token and the signature,
    # the scripted failures, then the stored file.
    puts = store.puts("/trace.zip")
    assert [p["status"] for p in puts] == [503, 503, 429, 201], puts
    for p in puts:
        assert p["headers"].get("authorization") == "Bearer t0ken", p
        assert urllib.parse.parse_qs(p["query"]) == {"sig": ["secret"]}, p
        assert p["path"] == urllib.parse.urlsplit(want).path, p
    assert store.script == []
    # Retry-After: 1 was honoured. A lower bound only (a sleep is never
    # shorter): without it, full jitter would wait anywhere in 0-2 s.
    assert puts[3]["at"] - puts[2]["at"] >= 0.95, puts
    assert puts[3]["sha256"] == hashlib.sha256(
        (out / trace["path"]).read_bytes()).hexdigest()
    # Every upload carried the credentials; none went elsewhere.
    for p in store.puts():
        assert p["headers"].get("authorization") == "Bearer t0ken", p
        assert p["path"].startswith("/store/%s/%s/" % (run, task)), p

    # Downloaded into DIR: the very bytes uploaded.
    path = out / trace["path"]
    assert trace["file"] == str(path), trace
    uploaded = store.bodies[urllib.parse.urlsplit(want).path]
    assert path.read_bytes() == uploaded
    assert len(uploaded) == trace["size"]
    assert_zip(path)
    gets = [r for r in store.requests if r["method"] == "GET"
            and r["path"].endswith("/trace.zip")]
    assert len(gets) == 1 and gets[0]["query"] == "", gets
    # The other files: small ones through Redis, the rest uploaded; all
    # of them here.
    inline = 0
    for a in arts:
        assert a["stored"] in ("redis", "url"), a
        assert (out / a["path"]).is_file(), a
        if a["stored"] == "redis":
            inline += a["size"]
        else:
            assert a["url"] == "%s/store/%s/%s/%d/%s" % (
                base, run, task, a["attempt"],
                urllib.parse.quote(a["path"])), a
            body = store.bodies[urllib.parse.urlsplit(a["url"]).path]
            assert (out / a["path"]).read_bytes() == body, a
    assert inline <= 1024, arts
    assert "0 not kept by the workers, 0 not fetched" in res.err, \
        res.describe()
    # The token is in no report, log or command line.
    assert "t0ken" not in res.out + res.err
    assert "t0ken" not in jpath.read_text()
    assert "secret" not in jpath.read_text()
    assert "t0ken" not in sandbox.cluster_logs()
    sandbox.assert_clean("testfleet run --artifacts on a cluster")


def test_upload_refused_is_reported(sandbox, cluster, playwright_ready, site,
                                    upload_server, monkeypatch):
    """A 403 from the upload server: the artifact says so, the tests'
    outcomes and the exit code are the tests' own."""
    base, store = upload_server
    store.always = 403
    suite = pw_suite(sandbox)
    c = cluster(workers=0)
    start_uploading_worker(c, monkeypatch, base + "/store?sig=secret", site)
    out = sandbox.path("arts")
    jpath = sandbox.path("r.json")
    res = sandbox.run(["run", "--redis", c.url, "--runner", "playwright",
                       "--artifacts", out, "--json", jpath,
                       "tests/trace.spec.js"], cwd=suite, timeout=240)
    assert res.rc == 1, res.describe(sandbox.cluster_logs())
    report = load_json(jpath)
    check_report_schema(report)
    check_trace_outcomes(report)
    assert report["status"] == "failed"
    assert [t["attempts"] for t in report["tests"]] == [1, 1], report
    assert all(t["retried_for"] is None for t in report["tests"]), report
    trace = the_trace(artifacts_of(report))
    assert trace["stored"] == "none", trace
    assert "403" in trace["error"], trace
    assert "after 1 try" in trace["error"], trace
    assert "sig=" not in trace["error"] and "secret" not in trace["error"]
    assert "url" not in trace and "file" not in trace, trace
    assert not (out / trace["path"]).exists()
    # Refused once, never retried.
    assert [p["status"] for p in store.puts("/trace.zip")] == [403]
    assert store.bodies == {}
    assert "403" in res.out, res.describe()  # the console's artifacts
    sandbox.assert_clean("testfleet run with refused uploads")


PYTEST_LEAVES = """\
import os


def test_leaves_files():
    d = os.environ["TESTFLEET_ARTIFACTS"]
    with open(os.path.join(d, "notes.txt"), "w") as f:
        f.write("hello from the test\\n")
    os.makedirs(os.path.join(d, "nested", "deep"))
    with open(os.path.join(d, "nested", "deep", "data.bin"), "wb") as f:
        f.write(bytes(range(256)) * 4)
    os.symlink("/etc/passwd", os.path.join(d, "passwd"))
    os.symlink("..", os.path.join(d, "up"))


def test_plain():
    assert True
"""


def pytest_suite(sandbox, name, files):
    suite = sandbox.path(name)
    suite.mkdir()
    (suite / "pytest.ini").write_text("[pytest]\n")
    for fname, text in files.items():
        (suite / fname).write_text(text)
    return suite


def test_pytest_keep_then_report(sandbox, cluster):
    suite = pytest_suite(sandbox, "suite", {"test_leaves.py": PYTEST_LEAVES})
    c = cluster(workers=1)

    # Without --artifacts or --keep-artifacts nothing is kept.
    jpath = sandbox.path("plain.json")
    res = sandbox.run(["run", "--redis", c.url, "--json", jpath, "."],
                      cwd=suite, timeout=120)
    assert res.rc == 0, res.describe(sandbox.cluster_logs())
    report = load_json(jpath)
    check_report_schema(report)
    assert "artifacts" not in report, report["artifacts"]
    assert c.redis_cmd("KEYS", "*:artifacts") == []
    assert "artifacts" not in res.err, res.describe()

    # submit --keep-artifacts: kept in Redis, nothing fetched yet.
    sub = sandbox.run(["submit", "--redis", c.url, "--keep-artifacts", "."],
                      cwd=suite, timeout=120)
    assert sub.rc == 0, sub.describe()
    run = sub.out.strip()
    w = sandbox.run(["watch", run, "--redis", c.url], cwd=suite,
                    timeout=120)
    assert w.rc == 0, w.describe(sandbox.cluster_logs())
    keys = c.redis_cmd("KEYS", "*:artifacts")
    assert keys == [("tf:run:%s:artifacts" % run).encode()], keys
    assert c.redis_cmd("TTL", keys[0]) > 0
    fields = sorted(f.decode() for f in c.redis_cmd("HKEYS", keys[0]))
    assert len(fields) == 2, fields
    task = fields[0].split("/")[0]
    assert fields == ["%s/1/nested/deep/data.bin" % task,
                      "%s/1/notes.txt" % task], fields

    # report --artifacts from another process, in another folder.
    elsewhere = sandbox.path("elsewhere")
    elsewhere.mkdir()
    out = elsewhere / "arts"
    rjson = elsewhere / "report.json"
    before = tree(sandbox.base, skip=[str(c.dir), str(sandbox.tmpdir)])
    rep = sandbox.run(["report", run, "--redis", c.url, "--artifacts",
                       "arts", "--json", "report.json"], cwd=elsewhere,
                      timeout=120)
    assert rep.rc == 0, rep.describe()
    after = tree(sandbox.base, skip=[str(c.dir), str(sandbox.tmpdir)])
    new = sorted(after - before)
    assert all(p == str(rjson) or p == str(out)
               or p.startswith(str(out) + "/") for p in new), new
    got = files_below(out)
    assert got == {"notes.txt": b"hello from the test\n",
                   "nested/deep/data.bin": bytes(range(256)) * 4}, got
    report = load_json(rjson)
    check_report_schema(report)
    arts = {a["path"]: a for a in artifacts_of(report)}
    assert sorted(arts) == ["nested/deep/data.bin", "notes.txt", "passwd",
                            "up"], arts
    for p in ("notes.txt", "nested/deep/data.bin"):
        assert arts[p]["stored"] == "redis", arts[p]
        assert arts[p]["task"] == task and arts[p]["attempt"] == 1
        assert arts[p]["size"] == len(got[p])
        # The path as given (relative to report's folder).
        assert arts[p]["file"] == "arts/" + p, arts[p]
    for p in ("passwd", "up"):
        assert arts[p]["stored"] == "none", arts[p]
        assert "symbolic link" in arts[p]["error"], arts[p]
        assert "file" not in arts[p], arts[p]
    assert "2 files" in rep.err and "2 not kept by the workers" in rep.err, \
        rep.describe()
    # /etc/passwd was read by nobody.
    passwd = Path("/etc/passwd").read_bytes()
    assert all(v is None or passwd not in v for v in got.values())
    sandbox.assert_clean("testfleet report --artifacts")


SAME_PATH = """\
import os


def test_writes():
    d = os.environ["TESTFLEET_ARTIFACTS"]
    with open(os.path.join(d, "same.txt"), "w") as f:
        f.write("from %s\\n" % __name__)
    with open(os.path.join(d, "only-%s.txt" % __name__), "w") as f:
        f.write("mine\\n")
"""


def test_same_path_from_two_tasks(sandbox):
    suite = pytest_suite(sandbox, "suite", {"test_one.py": SAME_PATH,
                                            "test_two.py": SAME_PATH})
    out = sandbox.path("arts")
    jpath = sandbox.path("r.json")
    res = sandbox.run(["run", "-w", "2", "--shard", "file", "--no-cache",
                       "--artifacts", out, "--json", jpath, "."], cwd=suite,
                      env={"TESTFLEET_ARTIFACTS_URL": None}, timeout=120)
    assert res.rc == 0, res.describe()
    report = load_json(jpath)
    check_report_schema(report)
    arts = artifacts_of(report)
    assert len(arts) == 4, arts
    same = [a for a in arts if a["path"] == "same.txt"]
    assert len(same) == 2 and same[0]["task"] != same[1]["task"], same
    got = files_below(out)
    assert "same.txt" not in got, got
    contents = set()
    for a in same:
        rel = "%s-a%d/same.txt" % (a["task"], a["attempt"])
        assert a["file"] == str(out / rel), a
        assert rel in got, (rel, sorted(got))
        contents.add(got[rel])
    # Neither overwrote the other.
    assert contents == {b"from test_one\n", b"from test_two\n"}, contents
    # Paths that only one task left go to DIR/<path>.
    assert got["only-test_one.txt"] == b"mine\n"
    assert got["only-test_two.txt"] == b"mine\n"
    assert len(got) == 4, sorted(got)
    sandbox.assert_clean("testfleet run --artifacts (same paths)")
