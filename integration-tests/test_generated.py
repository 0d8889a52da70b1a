"""A generated suite of about 2,000 tests in 120 files (gensuite.py) on four
workers, in every shard mode: every test id gets the outcome plain pytest
gives it, and the reports agree."""
import shutil
import tempfile
from pathlib import Path

import pytest

import gensuite
from tfhelpers import (check_junit, check_report_schema, diff_outcomes,
                       load_json, report_outcomes)

WORKERS = 4

# Shard mode "test" starts one pytest per test (about 0.2 s of CPU each on
# this 2-core machine): the whole suite would take minutes, so that mode
# runs on two subpackages (one with __init__.py files, one without), about
# 200 tests.
TEST_MODE_SUBSET = ["pkg00/sub0", "pkg01/sub1"]


@pytest.fixture(scope="module")
def generated():
    base = Path(tempfile.mkdtemp(prefix="tfit-gen-", dir="/tmp"))
    src = base / "suite"
    files = gensuite.generate(src)
    assert files >= 100
    yield src
    shutil.rmtree(str(base), ignore_errors=True)


def run_generated(sandbox, cluster, reference, generated, shard, paths,
                  extra=()):
    suite = sandbox.base / "suite"
    shutil.copytree(str(generated), str(suite))
    args = list(extra) + list(paths)
    ref = reference(generated, args, key=("generated",) + tuple(args))
    c = cluster(workers=WORKERS)
    jpath = sandbox.path("report.json")
    xpath = sandbox.path("junit.xml")
    res = sandbox.run(["run", "--redis", c.url, "--shard", shard,
                       "--json", jpath, "--junit", xpath] + args,
                      cwd=suite, timeout=400)
    logs = sandbox.cluster_logs()
    assert res.rc == 1, res.describe(logs)
    report = load_json(jpath)
    check_report_schema(report)
    diff = diff_outcomes(report_outcomes(report), ref)
    assert not diff, diff + "\n" + res.describe(logs)
    assert report["status"] == "failed"
    check_junit(xpath, report)
    sandbox.assert_clean("testfleet run")
    return ref, report


@pytest.mark.parametrize("shard", ["auto", "file", "count:7"])
def test_generated_full_suite(sandbox, cluster, reference, generated, shard):
    ref, report = run_generated(sandbox, cluster, reference, generated,
                                shard, ["."])
    assert len(ref) >= 2000
    if shard == "count:7":
        assert report["phases"][0]["tasks"] <= 7, report["phases"]
    if shard == "file":
        files = {tid.split("::")[0] for tid in ref}
        assert report["phases"][0]["tasks"] >= len(files), report["phases"]
    # Four single-slot workers and many tasks: more than one did work.
    assert len({t["worker"] for t in report["tests"]}) >= 2


def test_generated_one_test_per_task(sandbox, cluster, reference, generated):
    ref, report = run_generated(sandbox, cluster, reference, generated,
                                "test", TEST_MODE_SUBSET)
    assert len(ref) >= 200
    assert report["phases"][0]["tasks"] == len(ref), report["phases"]


def test_generated_keyword_selection(sandbox, cluster, reference,
                                     generated):
    ref, report = run_generated(sandbox, cluster, reference, generated,
                                "count:7", ["."],
                                extra=["-k", "param and not 3"])
    assert 500 <= len(ref) < 2000
