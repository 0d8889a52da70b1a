"""preflight checks (docs/config.md, "preflight"): run after the config is
loaded and before anything is collected or queued; the first failing check
is one error line naming it and exit 3 (DESIGN section 2)."""
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

# Loopback only: no proxy in between.
NO_PROXY = {k: None for k in ("http_proxy", "https_proxy", "HTTP_PROXY",
                              "HTTPS_PROXY", "all_proxy", "ALL_PROXY")}

CONFIG = """\
suites:
  ok:
    paths: [tests/test_ok.py]
preflight:
%s
"""


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        code = self.server.status
        self.server.hits.append(self.path)
        body = b"status %d\n" % code
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    """http_server(status) -> (url, server); stopped on teardown."""
    servers = []

    def make(status=200):
        srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        srv.daemon_threads = True
        srv.status = status
        srv.hits = []
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        servers.append((srv, t))
        return "http://127.0.0.1:%d/health" % srv.server_address[1], srv

    yield make
    for srv, t in servers:
        srv.shutdown()
        srv.server_close()
        t.join(5)


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def write_config(suite, checks):
    (suite / "testfleet.yaml").write_text(CONFIG % checks)


def run(sandbox, suite, args=(), timeout=60):
    t0 = time.monotonic()
    res = sandbox.run(["run", "-w", "1"] + list(args), cwd=suite,
                      timeout=timeout, env=NO_PROXY)
    return res, time.monotonic() - t0


def assert_preflight_failed(res, name, problem):
    assert res.rc == 3, res.describe()
    want = 'testfleet: preflight "%s" failed: ' % name
    lines = [l for l in res.err.splitlines() if l.startswith(want)]
    assert len(lines) == 1, res.describe()
    assert problem in lines[0], res.describe()
    # Nothing ran: no report, no test output.
    assert "passed" not in res.out, res.describe()


def test_http_check_passes(sandbox, http_server):
    suite = sandbox.copy_fixture("small")
    url, srv = http_server(200)
    write_config(suite, "  - name: api-health\n    http: %s\n" % url)
    res, _ = run(sandbox, suite)
    assert res.rc == 0, res.describe()
    assert srv.hits == ["/health"]
    assert "preflight" not in res.err, res.describe()
    sandbox.assert_clean("testfleet run with a passing preflight")


def test_http_check_listed_statuses(sandbox, http_server):
    suite = sandbox.copy_fixture("small")
    url, _ = http_server(418)
    write_config(suite, "  - name: teapot\n    http: %s\n"
                 "    status: [200, 418]\n" % url)
    res, _ = run(sandbox, suite, ["-v"])
    assert res.rc == 0, res.describe()
    assert 'preflight "teapot": ok' in res.err, res.describe()


def test_http_server_down_fails_fast(sandbox, http_server):
    suite = sandbox.copy_fixture("small")
    url, srv = http_server(200)
    srv.shutdown()
    srv.server_close()
    write_config(suite, "  - name: api-health\n    http: %s\n"
                 "    timeout: 20s\n" % url)
    res, took = run(sandbox, suite)
    assert_preflight_failed(res, "api-health",
                            "GET %s: connection refused after " % url)
    assert took < 5, "took %.1fs, the check's timeout is 20s" % took
    sandbox.assert_clean("testfleet run with a refused preflight")


def test_http_503_fails(sandbox, http_server):
    suite = sandbox.copy_fixture("small")
    url, srv = http_server(503)
    write_config(suite, "  - name: up\n    tcp: 127.0.0.1:%d\n"
                 "  - name: api-health\n    http: %s\n"
                 "  - name: never\n    tcp: 127.0.0.1:%d\n"
                 % (srv.server_address[1], url, closed_port()))
    res, _ = run(sandbox, suite)
    assert_preflight_failed(res, "api-health",
                            "GET %s: got 503, expected 2xx" % url)
    # The first failure stops: later checks are not reported.
    assert "never" not in res.err, res.describe()
    sandbox.assert_clean("testfleet run with a 503 preflight")


def test_http_timeout(sandbox):
    suite = sandbox.copy_fixture("small")
    # A listener that never answers: accepted by the kernel, never read.
    lsn = socket.socket()
    lsn.bind(("127.0.0.1", 0))
    lsn.listen(8)
    try:
        url = "http://127.0.0.1:%d/" % lsn.getsockname()[1]
        write_config(suite, "  - name: slow\n    http: %s\n"
                     "    timeout: 700ms\n" % url)
        res, took = run(sandbox, suite)
    finally:
        lsn.close()
    assert_preflight_failed(res, "slow", "GET %s: timed out after 700ms"
                            % url)
    assert 0.6 < took < 10, took


def test_tcp_closed_port_fails(sandbox):
    suite = sandbox.copy_fixture("small")
    port = closed_port()
    write_config(suite, "  - name: db\n    tcp: 127.0.0.1:%d\n" % port)
    res, took = run(sandbox, suite)
    assert_preflight_failed(res, "db", "TCP connect 127.0.0.1:%d: "
                            "connection refused after " % port)
    assert took < 5, took
    sandbox.assert_clean("testfleet run with a refused tcp preflight")


def test_skip_preflight(sandbox):
    suite = sandbox.copy_fixture("small")
    write_config(suite, "  - name: db\n    tcp: 127.0.0.1:%d\n"
                 % closed_port())
    res, _ = run(sandbox, suite, ["--skip-preflight"])
    assert res.rc == 0, res.describe()
    assert "preflight" not in res.err, res.describe()


def test_bad_preflight_config_is_usage_error(sandbox):
    suite = sandbox.copy_fixture("small")
    write_config(suite, "  - name: db\n    tcp: 127.0.0.1\n")
    res, _ = run(sandbox, suite)
    assert res.rc == 2, res.describe()
    assert "testfleet.yaml:6: preflight[0].tcp: expected HOST:PORT" \
        in res.err, res.describe()


@pytest.mark.parametrize("command", ["run", "submit"])
def test_distributed_nothing_queued(sandbox, cluster, http_server, command):
    c = cluster(workers=0)
    suite = sandbox.copy_fixture("small")
    ok_url, _ = http_server(200)
    bad_url, _ = http_server(503)
    write_config(suite, "  - name: ping\n    redis: %s\n"
                 "  - name: ok\n    http: %s\n"
                 "  - name: api-health\n    http: %s\n"
                 % (c.url, ok_url, bad_url))
    res = sandbox.run([command, "--redis", c.url], cwd=suite, timeout=60,
                      env=NO_PROXY)
    assert_preflight_failed(res, "api-health", "got 503, expected 2xx")
    assert res.out.strip() == "", res.describe()  # submit: no run id
    assert c.redis_cmd("XLEN", "tf:q:default") == 0
    assert c.redis_cmd("KEYS", "tf:*") == [], c.redis_cmd("KEYS", "*")
    sandbox.assert_clean("testfleet %s with a failing preflight" % command)


def test_redis_check_fails(sandbox):
    suite = sandbox.copy_fixture("small")
    port = closed_port()
    write_config(suite, "  - name: cache\n    redis: redis://127.0.0.1:%d\n"
                 % port)
    res, _ = run(sandbox, suite)
    assert_preflight_failed(res, "cache", "Redis PING redis://127.0.0.1:%d"
                            % port)
