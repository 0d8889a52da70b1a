"""Starting from the last collection (docs/scheduling.md): with Redis, a
run whose suites were collected before is queued from that list while
pytest collects again, and the fresh collection decides -- the same list
lets the run go on; another one cancels the run and queues the fresh
tests; a collection that now fails cancels it and says why. Each test's
result arrives exactly once in every case."""
import json
import os

from tfhelpers import check_report_schema, load_json, report_outcomes

# The collection (and only it) waits for the suite's first test to have
# started, and records whether it did: proof that the run was queued
# before its collection ended, without timing anything.
CONFTEST = r'''
import os, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))

if "--collect-only" in sys.argv and os.path.exists(
        os.path.join(HERE, "wait-for-tests")):
    ran = os.path.join(HERE, "out", "first-test")
    deadline = time.monotonic() + 20
    while not os.path.exists(ran) and time.monotonic() < deadline:
        time.sleep(0.02)
    with open(os.path.join(HERE, "out", "collection"), "w") as f:
        f.write("after-test" if os.path.exists(ran) else "waited-in-vain")
'''

TESTS = r'''
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def _mark():
    path = os.path.join(HERE, "out", "first-test")
    if not os.path.exists(path):
        open(path, "w").close()


def test_a():
    _mark()


def test_b():
    _mark()


def test_c():
    _mark()
'''


def make_suite(base):
    suite = base / "reuse"
    (suite / "out").mkdir(parents=True)
    (suite / "pytest.ini").write_text("[pytest]\n")
    (suite / "conftest.py").write_text(CONFTEST)
    (suite / "test_main.py").write_text(TESTS)
    return suite


def run(sandbox, c, suite, tag, extra=(), paths=(".",)):
    jpath = sandbox.path("%s.json" % tag)
    res = sandbox.run(["run", "--redis", c.url, "-v", "--json", jpath,
                       "--shard", "test"] + list(extra) + list(paths),
                      cwd=suite, timeout=120)
    report = load_json(jpath) if os.path.exists(str(jpath)) else None
    if report is not None:
        check_report_schema(report)
    return res, report


def rcmd(c, *args):
    """A Redis command on c's server, bulk strings as str."""
    v = c.redis_cmd(*args)
    if isinstance(v, list):
        return [x.decode() if isinstance(x, bytes) else x for x in v]
    return v.decode() if isinstance(v, bytes) else v


def run_status(c, run_id):
    return rcmd(c, "HGET", "tf:run:" + run_id, "status")


def ids(names, f="test_main.py"):
    return {"%s::%s" % (f, n): "passed" for n in names}


def test_second_run_queued_before_its_collection_ends(sandbox, cluster):
    suite = make_suite(sandbox.base)
    c = cluster(workers=1, slots=2)
    res, report = run(sandbox, c, suite, "first")
    assert res.rc == 0, res.describe(c.logs())
    assert "starting from its last collection" not in res.err
    keys = rcmd(c, "KEYS", "tf:collected:*")
    assert len(keys) == 1, keys
    kept = rcmd(c, "GET", keys[0])
    assert kept.split("\n")[:3] == ["tfc1", str(suite), "3"], kept

    (suite / "wait-for-tests").write_text("")
    os.remove(str(suite / "out" / "first-test"))
    res, report = run(sandbox, c, suite, "second")
    assert res.rc == 0, res.describe(c.logs())
    assert "suite default: starting from its last collection (3 tests)" \
        in res.err, res.err
    # The collection saw a test of this run start before it ended.
    assert (suite / "out" / "collection").read_text() == "after-test"
    assert report_outcomes(report) == ids(["test_a", "test_b", "test_c"])
    assert all(t["attempts"] == 1 for t in report["tests"]), report
    assert "changed since the last collection" not in res.err

    # --fresh-collection: nothing is queued before the collection, which
    # then waits for a test in vain.
    os.remove(str(suite / "out" / "first-test"))
    res, report = run(sandbox, c, suite, "fresh", ["--fresh-collection"])
    assert res.rc == 0, res.describe(c.logs())
    assert "starting from its last collection" not in res.err
    assert (suite / "out" / "collection").read_text() == "waited-in-vain"
    assert report_outcomes(report) == ids(["test_a", "test_b", "test_c"])


def test_changed_tests_are_queued_again(sandbox, cluster):
    suite = make_suite(sandbox.base)
    c = cluster(workers=1, slots=2)
    res, _ = run(sandbox, c, suite, "first")
    assert res.rc == 0, res.describe(c.logs())

    # test_b gone, test_d and a new file in: the kept list is wrong both
    # ways.
    (suite / "test_main.py").write_text(
        TESTS.replace("def test_b():", "def test_d():"))
    (suite / "test_more.py").write_text("def test_e():\n    pass\n")
    res, report = run(sandbox, c, suite, "changed")
    assert res.rc == 0, res.describe(c.logs())
    lines = [l for l in res.err.splitlines()
             if "changed since the last collection" in l]
    assert len(lines) == 1, res.err
    assert "(3 then, 4 now)" in lines[0], lines[0]
    old = lines[0].split("run ")[1].split()[0]
    # Cancelled, unless it ended first (these tests are quick); never
    # reported either way.
    assert run_status(c, old) in ("cancelled", "done")
    want = dict(ids(["test_a", "test_c", "test_d"]),
                **ids(["test_e"], "test_more.py"))
    assert report_outcomes(report) == want
    assert report["run"] != old
    assert all(t["attempts"] == 1 for t in report["tests"]), report

    # The fresh list was kept: the next run starts from it and agrees.
    res, report = run(sandbox, c, suite, "again")
    assert res.rc == 0, res.describe(c.logs())
    assert "starting from its last collection (4 tests)" in res.err
    assert "changed since the last collection" not in res.err
    assert report_outcomes(report) == want


def test_collection_that_now_fails(sandbox, cluster):
    suite = make_suite(sandbox.base)
    c = cluster(workers=1, slots=2)
    res, _ = run(sandbox, c, suite, "first")
    assert res.rc == 0, res.describe(c.logs())
    (suite / "test_broken.py").write_text("def test_x(:\n    pass\n")
    res, report = run(sandbox, c, suite, "broken")
    assert res.rc == 2, res.describe(c.logs())
    assert "SyntaxError" in res.err, res.err
    assert report is None
    runs = rcmd(c, "ZREVRANGE", "tf:runs", "0", "0")
    assert run_status(c, runs[0]) in ("cancelled", "done"), runs


def test_unreadable_kept_collection(sandbox, cluster):
    suite = make_suite(sandbox.base)
    c = cluster(workers=1, slots=2)
    res, _ = run(sandbox, c, suite, "first")
    assert res.rc == 0, res.describe(c.logs())
    key = rcmd(c, "KEYS", "tf:collected:*")[0]
    rcmd(c, "SET", key, "tfc1\n/x\n5\nonly-one\n")
    res, report = run(sandbox, c, suite, "garbled")
    assert res.rc == 0, res.describe(c.logs())
    warn = [l for l in res.err.splitlines() if "last collection not read" in l]
    assert len(warn) == 1, res.err
    assert key in warn[0] and "an id count of 5" in warn[0], warn
    assert "starting from its last collection" not in res.err
    assert report_outcomes(report) == ids(["test_a", "test_b", "test_c"])
    # Collected afresh and kept again.
    assert rcmd(c, "GET", key).split("\n")[2] == "3"


def test_collection_sees_the_suite_env(sandbox, cluster):
    """The suite's env: is the collection's environment too, so ids made
    from it are the ones the tasks find."""
    suite = sandbox.base / "envsuite"
    suite.mkdir()
    (suite / "pytest.ini").write_text("[pytest]\n")
    (suite / "conftest.py").write_text(
        "import os\n\n\n"
        "def pytest_generate_tests(metafunc):\n"
        "    if 'flavour' in metafunc.fixturenames:\n"
        "        metafunc.parametrize(\n"
        "            'flavour', [os.environ.get('FLAVOUR', 'none')])\n")
    (suite / "test_env.py").write_text(
        "import os\n\n\n"
        "def test_flavour(flavour):\n"
        "    assert flavour == os.environ['FLAVOUR']\n")
    (suite / "testfleet.yaml").write_text(
        "suites:\n  default:\n    runner: pytest\n    paths: [.]\n"
        "    env:\n      FLAVOUR: lemon\n")
    c = cluster(workers=1, slots=1)
    res, report = run(sandbox, c, suite, "env", paths=())
    assert res.rc == 0, res.describe(c.logs())
    assert report_outcomes(report) == {
        "test_env.py::test_flavour[lemon]": "passed"}
