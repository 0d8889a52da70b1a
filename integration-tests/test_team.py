"""Issue 4's acceptance test: a configuration modelled on a real team's
(fixtures/team/testfleet.yaml) on a fleet with capability queues -- one
worker for the default queue, one for `browser` -- against a real app.

The app (TeamApp below) is an HTTP server in a thread of this process on
127.0.0.1: /ping for the preflight, /health, a JSON API, /metrics and
/version, and an HTML page whose button calls the API. Each case switches
one of its behaviours. Its address reaches the config through ${APP_URL}
in the producer's environment.

The phases: health (required) -> smoke (backend pytest + frontend
Playwright in Debian's Chromium, in parallel) -> flows (parallel: false,
one step per task) -> extras (required: false).

Every test of the fixture's pytest suites stamps "<node id> <start> <end>"
into times.log, and the app logs every request it answers, so what really
ran (and in which order) is checked, not only what the report says. The app
holds the backend's item listing until the browser has loaded the page, so
the smoke phase only passes when its two suites really run side by side.
What never ran is not in the JSON report's tests; the run hash's counters
(docs/protocol.md) are checked for it."""
import json
import os
import signal
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tfhelpers import (FIXTURES, RUN_ID_RE, check_junit, check_report_schema,
                       load_json)

PW_NODE_MODULES = FIXTURES / "playwright" / "node_modules"
CHROMIUM = "/usr/bin/chromium"
SEP = " \u203a "

# Loopback only: no proxy in between (libcurl's preflight, urllib).
NO_PROXY = {k: None for k in ("http_proxy", "https_proxy", "HTTP_PROXY",
                              "HTTPS_PROXY", "all_proxy", "ALL_PROXY")}

HEALTH = ["tests/health/test_health.py::test_health_endpoint_answers_200"]
BACKEND = [
    "tests/backend/test_items_api.py::test_list_items",
    "tests/backend/test_items_api.py::test_create_item",
    "tests/backend/test_items_api.py::test_unknown_item_is_404",
    "tests/backend/test_settings.py::test_database_url_from_suite_env",
    "tests/backend/test_settings.py::test_api_url_from_suite_env",
]
FRONTEND = [
    "tests/home.spec.js:5" + SEP + "home page loads",
    "tests/home.spec.js:12" + SEP + "items" + SEP
    + "button lists the items from the API",
]
FLOWS = ["tests/flows/test_checkout_flow.py::test_%s" % step
         for step in ("1_login", "2_add_to_cart", "3_checkout",
                      "4_order_history")]
EXTRAS = ["tests/extras/test_extras.py::test_metrics_exposed",
          "tests/extras/test_extras.py::test_version_endpoint"]

SUITE_OF = {}
for _suite, _ids in (("health", HEALTH), ("backend", BACKEND),
                     ("frontend", FRONTEND), ("flows", FLOWS),
                     ("extras", EXTRAS)):
    SUITE_OF.update(dict.fromkeys(_ids, _suite))
PHASE_OF_SUITE = {"health": "health", "backend": "smoke",
                  "frontend": "smoke", "flows": "flows", "extras": "extras"}
# Tasks per phase when everything runs: one per file (defaults.shard),
# one per step for flows (shard: test).
ALL_TASKS = [1, 3, 4, 1]

DEFAULT_DB_URL = "sqlite:///tmp/x"
# How long the app holds the backend's GET /api/items for the browser to
# load the page (a bound for a broken product, not a timing expectation).
PAGE_WAIT = 60

PAGE = b"""<!doctype html>
<html>
<head><meta charset="utf-8"><title>Team shop</title></head>
<body>
<h1>Team shop</h1>
<button id="load">show items</button>
<ul id="items"></ul>
<script>
document.getElementById('load').addEventListener('click', async () => {
	const resp = await fetch('/api/items');
	const body = await resp.json();
	const list = document.getElementById('items');
	for (const item of body.items) {
		const li = document.createElement('li');
		li.textContent = item.name;
		list.appendChild(li);
	}
});
</script>
</body>
</html>
"""


# ---------------------------------------------------------------------------
# The app under test


class TeamApp:
    """The team's app, with switches a case can flip:

    - health_status: what /health answers (200 = {"status": "ok"});
    - health_gate: when set to an Event, /health waits for it first;
    - cart_broken: POST /api/cart answers 500 (the flow's 2nd step fails);
    - metrics_broken: /metrics lacks app_requests_total (extras fail);
    - database_url: what /api/config says the tests must be given.

    GET /api/items waits (up to PAGE_WAIT seconds, then answers 500) until
    the page has been served: the backend's test_list_items only passes
    when the frontend's browser runs at the same time -- the smoke phase's
    two suites in parallel, on their two workers.

    hits lists every request answered, as "METHOD /path"."""

    def __init__(self):
        self.health_status = 200
        self.health_gate = None
        self.cart_broken = False
        self.metrics_broken = False
        self.database_url = DEFAULT_DB_URL
        self.page_served = threading.Event()
        self.lock = threading.Lock()
        self.hits = []
        self.items = [{"id": 1, "name": "widget"}]
        self.sessions = set()
        self.carts = {}
        self.orders = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _AppHandler)
        self.server.daemon_threads = True
        self.server.app = self
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def stop(self):
        if self.health_gate is not None:
            self.health_gate.set()
        self.page_served.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def paths(self):
        with self.lock:
            return [h.split(" ", 1)[1].split("?")[0] for h in self.hits]

    # Each handler returns (status, body): a dict is JSON, bytes is HTML,
    # str is text.

    def get(self, path, query):
        if path == "/ping":
            return 200, "pong\n"
        if path == "/health":
            if self.health_gate is not None:
                self.health_gate.wait(120)
            if self.health_status == 200:
                return 200, {"status": "ok"}
            return self.health_status, {"status": "database unreachable"}
        if path == "/":
            self.page_served.set()
            return 200, PAGE
        if path == "/metrics":
            with self.lock:
                n = len(self.hits)
            if self.metrics_broken:
                return 200, "# metrics exporter not configured\n"
            return 200, "app_requests_total %d\n" % n
        if path == "/version":
            return 200, {"version": "1.4.2"}
        if path == "/api/items":
            if not self.page_served.wait(PAGE_WAIT):
                return 500, {"error": "the page was not loaded within %ds "
                             "of the items request: smoke did not run its "
                             "suites in parallel" % PAGE_WAIT}
            with self.lock:
                return 200, {"items": list(self.items)}
        if path.startswith("/api/items/"):
            with self.lock:
                found = [i for i in self.items
                         if str(i["id"]) == path.rsplit("/", 1)[1]]
            if not found:
                return 404, {"error": "no such item"}
            return 200, found[0]
        if path == "/api/config":
            return 200, {"database_url": self.database_url}
        if path == "/api/orders":
            user = query.get("user", [""])[0]
            with self.lock:
                return 200, {"orders": list(self.orders.get(user, []))}
        return 404, {"error": "not found"}

    def post(self, path, body):
        user = body.get("user")
        with self.lock:
            if path == "/api/items":
                item = {"id": len(self.items) + 1, "name": body["name"]}
                self.items.append(item)
                return 201, item
            if path == "/api/login":
                self.sessions.add(user)
                return 200, {"user": user}
            if path == "/api/cart":
                if user not in self.sessions:
                    return 401, {"error": "not logged in"}
                if self.cart_broken:
                    return 500, {"error": "inventory lookup failed"}
                self.carts.setdefault(user, []).append(body["item"])
                return 200, {"cart": list(self.carts[user])}
            if path == "/api/checkout":
                if user not in self.sessions:
                    return 401, {"error": "not logged in"}
                if not self.carts.get(user):
                    return 409, {"error": "cart is empty"}
                order = {"items": self.carts.pop(user)}
                self.orders.setdefault(user, []).append(order)
                return 200, {"order": order}
        return 404, {"error": "not found"}


class _AppHandler(BaseHTTPRequestHandler):
    def _answer(self, method):
        app = self.server.app
        url = urllib.parse.urlsplit(self.path)
        with app.lock:
            app.hits.append("%s %s" % (method, self.path))
        if method == "GET":
            status, body = app.get(url.path, urllib.parse.parse_qs(url.query))
        else:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                data = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                data = None
            if not isinstance(data, dict):
                status, body = 400, {"error": "expected a JSON object"}
            else:
                status, body = app.post(url.path, data)
        if isinstance(body, dict):
            raw, ctype = json.dumps(body).encode(), "application/json"
        elif isinstance(body, bytes):
            raw, ctype = body, "text/html; charset=utf-8"
        else:
            raw, ctype = body.encode(), "text/plain; charset=utf-8"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self):
        self._answer("GET")

    def do_POST(self):
        self._answer("POST")

    def log_message(self, *args):
        pass


@pytest.fixture
def app():
    a = TeamApp()
    yield a
    a.stop()


# ---------------------------------------------------------------------------
# The project, the fleet, a run


@pytest.fixture(scope="module")
def playwright_ready():
    """The Playwright fixture's npm install (scripts/install-deps) and
    Chromium: their absence is a failure, not a skip."""
    missing = []
    if not (PW_NODE_MODULES / "@playwright" / "test"
            / "package.json").is_file():
        missing.append("@playwright/test in %s (npm ci in its folder)"
                       % PW_NODE_MODULES)
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(CHROMIUM + " (Debian package chromium)")
    if missing:
        pytest.fail("not installed: %s; run scripts/install-deps"
                    % "; ".join(missing), pytrace=False)


@pytest.fixture
def team(sandbox, playwright_ready):
    """The team's project in the sandbox; the frontend uses the Playwright
    fixture's node_modules (linked, not installed again)."""
    root = sandbox.copy_fixture("team")
    (root / "frontend" / "node_modules").symlink_to(PW_NODE_MODULES)
    return root


@pytest.fixture
def fleet(cluster):
    """Redis, one worker for the default queue (2 slots), one for
    `browser`, as test_playwright.py starts its browser workers."""
    c = cluster(workers=0)
    c.add_workers(1, slots=2)
    c.add_workers(1, extra_args=["--queue", "browser"])
    return c


def producer_env(app, database_url=None):
    env = dict(NO_PROXY)
    env["APP_URL"] = app.url
    env["TEST_DATABASE_URL"] = database_url
    return env


def run_team(sandbox, team, fleet, app, timeout=300):
    """testfleet run --redis on the fleet with JSON and JUnit reports;
    returns (Result, report), the report checked against DESIGN section 3
    and the JUnit against it."""
    jpath, xpath = sandbox.path("r.json"), sandbox.path("r.xml")
    for p in (jpath, xpath):
        if p.exists():
            p.unlink()
    res = sandbox.run(["run", "--redis", fleet.url, "--json", jpath,
                       "--junit", xpath], cwd=team, timeout=timeout,
                      env=producer_env(app))
    assert jpath.exists(), res.describe(fleet.logs())
    report = load_json(jpath)
    check_report_schema(report)
    check_junit(xpath, report)
    return res, report


def phases_of(report):
    return [(p["name"], p["status"], p["required"]) for p in report["phases"]]


def outcomes(report):
    return {t["id"]: t["outcome"] for t in report["tests"]}


def read_times(root):
    """{node id: (start, end)} of the pytest tests that ran."""
    out = {}
    path = root / "times.log"
    if path.exists():
        for line in path.read_text().splitlines():
            nodeid, start, end = line.rsplit(" ", 2)
            out[nodeid] = (float(start), float(end))
    return out


def run_hash(fleet, run_id, *fields):
    """{field: value} of the run hash (docs/protocol.md, "Keys"), where
    what never ran shows: tests_total against tests_done, a phase's
    planned tasks against those queued."""
    values = fleet.redis_cmd("HMGET", "tf:run:%s" % run_id, *fields)
    return {f: v.decode() if v is not None else None
            for f, v in zip(fields, values)}


def check_placement(report, fleet):
    """Each test in its suite's phase; Playwright on the browser worker
    (w2), everything else on the default one (w1)."""
    for t in report["tests"]:
        suite = SUITE_OF[t["id"]]
        assert (t["suite"], t["phase"]) == (suite, PHASE_OF_SUITE[suite]), t
        want = "w2/" if suite == "frontend" else "w1/"
        assert t["worker"].startswith(want), (t, fleet.logs())


def check_phase_order(times):
    """No pytest test of a phase started before every test of the phases
    before it had ended."""
    order = ["health", "smoke", "flows", "extras"]
    spans = {}
    for nodeid, span in times.items():
        spans.setdefault(PHASE_OF_SUITE[SUITE_OF[nodeid]], []).append(span)
    seen = [p for p in order if p in spans]
    for i, before in enumerate(seen):
        for after in seen[i + 1:]:
            last_end = max(e for _, e in spans[before])
            first_start = min(s for s, _ in spans[after])
            assert first_start >= last_end, (
                "phase %s started %.3fs before phase %s ended"
                % (after, last_end - first_start, before))


def check_one_at_a_time(times, ids):
    """ids ran in this order, each after the one before had ended."""
    spans = [times[i] for i in ids]
    for (a, (_, a_end)), (b, (b_start, _)) in zip(zip(ids, spans),
                                                  zip(ids[1:], spans[1:])):
        assert b_start >= a_end, "%s started before %s ended" % (b, a)


def check_all_phases_ran(report, times, app, extras_outcome):
    assert phases_of(report) == [
        ("health", "passed", True), ("smoke", "passed", True),
        ("flows", "passed", True),
        ("extras", "passed" if extras_outcome == "passed" else "failed",
         False)], report["phases"]
    assert [p["tasks"] for p in report["phases"]] == ALL_TASKS, \
        report["phases"]
    assert [p["planned"] for p in report["phases"]] == ALL_TASKS, \
        report["phases"]
    want = dict.fromkeys(HEALTH + BACKEND + FRONTEND + FLOWS + EXTRAS,
                         "passed")
    if extras_outcome != "passed":
        want[EXTRAS[0]] = extras_outcome
    assert outcomes(report) == want
    # Every pytest test really ran, phase after phase, the flow's steps one
    # at a time; the page was loaded by the browser.
    assert sorted(times) == sorted(HEALTH + BACKEND + FLOWS + EXTRAS), times
    check_phase_order(times)
    check_one_at_a_time(times, FLOWS)
    assert app.paths().count("/") == 2, app.paths()
    assert app.paths().count("/api/checkout") == 1, app.paths()


# ---------------------------------------------------------------------------
# The cases


def test_all_pass(sandbox, team, fleet, app):
    """Everything passes: exit 0, every phase passed, every test passed,
    each on a worker serving its queue."""
    res, report = run_team(sandbox, team, fleet, app)
    assert res.rc == 0, res.describe(fleet.logs())
    assert report["status"] == "passed"
    assert report["totals"]["tests"] == report["totals"]["passed"] == 14, \
        report["totals"]
    check_all_phases_ran(report, read_times(team), app, "passed")
    check_placement(report, fleet)
    # The preflight hit /ping once, before any test ran.
    assert app.paths()[0] == "/ping" and app.paths().count("/ping") == 1, \
        app.paths()
    sandbox.assert_clean("testfleet run of the team config")


def test_required_health_fails(sandbox, team, fleet, app):
    """/health answers 500 (the preflight's /ping still passes): health
    fails, smoke, flows and extras are skipped -- none of their tests runs
    or is reported -- and the run fails."""
    app.health_status = 500
    res, report = run_team(sandbox, team, fleet, app)
    assert res.rc == 1, res.describe(fleet.logs())
    assert report["status"] == "failed"
    assert phases_of(report) == [
        ("health", "failed", True), ("smoke", "skipped", True),
        ("flows", "skipped", True), ("extras", "skipped", False)], \
        report["phases"]
    assert [p["tasks"] for p in report["phases"]] == [1, 0, 0, 0], \
        report["phases"]
    assert [p["planned"] for p in report["phases"]] == ALL_TASKS, \
        report["phases"]
    assert outcomes(report) == {HEALTH[0]: "failed"}
    msg = report["tests"][0]["message"]
    assert "GET /health answered 500" in msg, report["tests"][0]
    assert report["tests"][0]["attempts"] == 1, report["tests"][0]
    check_placement(report, fleet)
    assert sorted(read_times(team)) == HEALTH
    assert app.paths() == ["/ping", "/health"], app.paths()
    # The run state says what never ran: 13 of the 14 tests, every task of
    # the skipped phases.
    fields = ["tests_total", "tests_done", "tasks_planned"]
    for i in range(1, 4):
        fields += ["ph:%d:status" % i, "ph:%d:planned" % i,
                   "ph:%d:tasks" % i]
    assert run_hash(fleet, report["run"], *fields) == {
        "tests_total": "14", "tests_done": "1", "tasks_planned": "9",
        "ph:1:status": "skipped", "ph:1:planned": "3", "ph:1:tasks": "0",
        "ph:2:status": "skipped", "ph:2:planned": "4", "ph:2:tasks": "0",
        "ph:3:status": "skipped", "ph:3:planned": "1", "ph:3:tasks": "0"}
    assert HEALTH[0] in res.out, res.describe()
    sandbox.assert_clean("testfleet run with a failing health phase")


def test_optional_extras_fail(sandbox, team, fleet, app):
    """/metrics lacks its counter: the optional extras phase fails, the
    run passes (exit 0), and the failure is in the JSON report, the JUnit
    and on the console."""
    app.metrics_broken = True
    res, report = run_team(sandbox, team, fleet, app)
    assert res.rc == 0, res.describe(fleet.logs())
    assert report["status"] == "passed"
    assert report["totals"]["failed"] == 1, report["totals"]
    check_all_phases_ran(report, read_times(team), app, "failed")
    check_placement(report, fleet)
    bad = [t for t in report["tests"] if t["outcome"] == "failed"]
    assert [t["id"] for t in bad] == [EXTRAS[0]]
    assert "metrics lack app_requests_total" in bad[0]["message"], bad
    assert EXTRAS[0] in res.out, res.describe()
    assert "metrics lack app_requests_total" in res.out, res.describe()
    sandbox.assert_clean("testfleet run with failing extras")


def test_flow_stops_at_first_failing_step(sandbox, team, fleet, app):
    """Adding to the cart fails (500): the flow's 2nd step fails, steps 3
    and 4 never run and are not reported, the phase fails, and the
    optional extras after it are skipped too (flows is required)."""
    app.cart_broken = True
    res, report = run_team(sandbox, team, fleet, app)
    assert res.rc == 1, res.describe(fleet.logs())
    assert report["status"] == "failed"
    assert phases_of(report) == [
        ("health", "passed", True), ("smoke", "passed", True),
        ("flows", "failed", True), ("extras", "skipped", False)], \
        report["phases"]
    assert [p["tasks"] for p in report["phases"]] == [1, 3, 2, 0], \
        report["phases"]
    # The stopped flow shows what it did not get to.
    assert [p["planned"] for p in report["phases"]] == ALL_TASKS, \
        report["phases"]
    want = dict.fromkeys(HEALTH + BACKEND + FRONTEND, "passed")
    want[FLOWS[0]] = "passed"
    want[FLOWS[1]] = "failed"
    assert outcomes(report) == want
    step2 = [t for t in report["tests"] if t["id"] == FLOWS[1]][0]
    assert "add to cart answered 500" in step2["message"], step2
    check_placement(report, fleet)
    times = read_times(team)
    assert sorted(times) == sorted(HEALTH + BACKEND + FLOWS[:2]), times
    check_phase_order(times)
    check_one_at_a_time(times, FLOWS[:2])
    paths = app.paths()
    for never in ("/api/checkout", "/api/orders", "/metrics", "/version"):
        assert never not in paths, paths
    # The run state says what never ran: steps 3 and 4 (2 of the flow's 4
    # planned tasks were queued), the extras phase.
    assert run_hash(fleet, report["run"], "tests_total", "tests_done",
                    "ph:2:status", "ph:2:planned", "ph:2:tasks",
                    "ph:3:status", "ph:3:tasks") == {
        "tests_total": "14", "tests_done": "10", "ph:2:status": "failed",
        "ph:2:planned": "4", "ph:2:tasks": "2", "ph:3:status": "skipped",
        "ph:3:tasks": "0"}
    assert FLOWS[1] in res.out, res.describe()
    sandbox.assert_clean("testfleet run with a failing flow step")


def wait_run_status(fleet, run_id, want, timeout):
    """Polls the run hash until its status is want; False at the deadline
    (a hang, not a timing expectation)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = fleet.redis_cmd("HGET", "tf:run:%s" % run_id, "status")
        if status is not None and status.decode() == want:
            return True
        time.sleep(0.2)
    return False


def read_run_line(proc, timeout=120):
    """Reads the producer's stderr (in a thread) until the "run ID" line;
    returns (run id or None, stderr lines read so far)."""
    lines = []
    found = threading.Event()

    def reader():
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            lines.append(line)
            if line.startswith("testfleet: run "):
                found.set()
        found.set()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    found.wait(timeout)
    for line in lines:
        for word in line.split():
            word = word.rstrip(":,;.")
            if RUN_ID_RE.match(word):
                return word, lines, t
    return None, lines, t


@pytest.mark.parametrize("command", ["submit", "run"])
def test_producer_killed_run_completes(sandbox, team, fleet, app, command):
    """The submitting process is SIGKILLed right after it printed the run
    id (`submit`, which may have exited by then, and `run --redis`, which
    would follow the run), while the health check is still waiting on the
    app: the workers alone take the run through all four phases (the
    flow's steps one by one), and `watch` from a new process reports it:
    exit 0 with the optional extras' failure. TEST_DATABASE_URL from the
    producer's environment reaches the backend tests through the run."""
    app.health_gate = threading.Event()
    app.metrics_broken = True
    app.database_url = "postgresql://ci@127.0.0.1:5432/team_test"
    proc = sandbox.popen([command, "--redis", fleet.url], team,
                         env=producer_env(app, app.database_url))
    run_id, lines, reader = read_run_line(proc)
    try:
        assert run_id is not None, (
            "no run id on stderr:\n%s\n%s"
            % ("\n".join(lines), fleet.logs()))
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.wait()
        reader.join(10)
        proc.stdout.close()
        proc.stderr.close()
    # run follows the run, which cannot end while /health is held: it
    # was killed; submit returns once the run is queued.
    died = [-signal.SIGKILL] + ([0] if command == "submit" else [])
    assert proc.returncode in died, (proc.returncode, lines)
    # The producer died with health still running (its test waits on the
    # gate) and the other phases not queued.
    state = fleet.redis_cmd("HMGET", "tf:run:%s" % run_id, "status",
                            "ph:0:status", "ph:1:status", "ph:2:status",
                            "ph:3:status")
    assert state == [b"running", b"running", b"pending", b"pending",
                     b"pending"], state
    app.health_gate.set()
    assert wait_run_status(fleet, run_id, "done", 240), \
        "run %s did not finish\n%s" % (run_id, fleet.logs())
    jpath, xpath = sandbox.path("watch.json"), sandbox.path("watch.xml")
    w = sandbox.run(["watch", run_id, "--redis", fleet.url, "--json", jpath,
                     "--junit", xpath], timeout=60)
    assert w.rc == 0, w.describe(fleet.logs())
    report = load_json(jpath)
    check_report_schema(report)
    check_junit(xpath, report)
    assert report["run"] == run_id
    assert report["status"] == "passed"
    check_all_phases_ran(report, read_times(team), app, "failed")
    check_placement(report, fleet)
    assert EXTRAS[0] in w.out, w.describe()
    sandbox.assert_clean("testfleet %s killed, then watch" % command)
