"""The "everything" fixture suite (every pytest outcome, awkward ids, big
output, XML specials) through testfleet in distributed and local mode and
every shard mode: the JSON report must say what plain pytest says, have the
shape of DESIGN section 3, agree with the JUnit XML, and the exit code must
be 1 (the suite has failures)."""
import pytest

from tfhelpers import (OUTCOMES, check_junit, check_report_schema,
                       diff_outcomes, expected_status, junit_case_text,
                       load_json, parse_junit, report_outcomes)

SUITE = "everything"

XML_TEST = "test_output.py::test_xml_specials_in_message"
MULTILINE_TEST = "test_output.py::test_multiline_message"
SLEEP_TEST = "test_outcomes.py::test_sleep_a_little"


def run_everything(box, cwd, paths, extra_args=(), redis=None, timeout=240):
    jpath = box.path("report.json")
    xpath = box.path("junit.xml")
    args = ["run", "--json", jpath, "--junit", xpath]
    if redis:
        args += ["--redis", redis]
    args += list(extra_args) + list(paths)
    res = box.run(args, cwd=cwd, timeout=timeout)
    return res, jpath, xpath


def check_run(box, res, jpath, xpath, ref, want_rc=1):
    """Everything a user sees of a finished run of a suite, checked against
    the plain pytest reference. Returns the parsed report."""
    logs = box.cluster_logs()
    assert res.rc == want_rc, res.describe(logs)
    assert jpath.exists(), "no JSON report written\n" + res.describe(logs)
    report = load_json(jpath)
    check_report_schema(report)
    diff = diff_outcomes(report_outcomes(report), ref)
    assert not diff, diff + "\n" + res.describe(logs)
    assert report["status"] == expected_status(ref), report["status"]
    assert xpath.exists(), "no JUnit report written\n" + res.describe(logs)
    check_junit(xpath, report)
    for t in report["tests"]:
        # Nothing in these suites is transient: one attempt each.
        assert t["attempts"] == 1 and t["retried_for"] is None, t
    return report


def check_everything_details(report, xpath, suite):
    by_id = {t["id"]: t for t in report["tests"]}

    msg = by_id[XML_TEST]["message"]
    assert "bad xml <tag" in msg and "& ]]> end" in msg, msg
    _, cases = parse_junit(xpath)
    case = [c for c in cases
            if (c.get("name") or "").endswith("test_xml_specials_in_message")]
    assert len(case) == 1, [c.get("name") for c in cases]
    text = junit_case_text(case[0])
    assert "bad xml <tag" in text and "& ]]> end" in text, text

    # file and line attributes (DESIGN section 3: where known; pytest
    # always knows): the file exists in the suite, the line is a number.
    for c in cases:
        f, line = c.get("file"), c.get("line")
        assert f and (suite / f).is_file(), ("file=%r" % f, c.attrib)
        assert line is not None and line.isdigit(), c.attrib

    msg = by_id[MULTILINE_TEST]["message"]
    assert "first line of the failure" in msg and "second line" not in msg, \
        msg
    assert "42 == 41" in by_id["test_outcomes.py::test_fail_assert"][
        "message"]
    assert "fixture setup exploded" in by_id[
        "test_outcomes.py::test_error_in_setup"]["message"]
    assert "fixture teardown exploded" in by_id[
        "test_outcomes.py::test_error_in_teardown"]["message"]
    assert "failed after printing 5 MB" in by_id[
        "test_output.py::test_prints_megabytes_and_fails"]["message"]
    assert by_id[SLEEP_TEST]["duration_s"] >= 0.15, by_id[SLEEP_TEST]
    totals = report["totals"]
    for outcome in ("passed", "failed", "error", "skipped", "xfailed",
                    "xpassed"):
        assert totals[outcome] > 0, (outcome, totals)
    assert totals["flaky"] == 0, totals


# (workers, shard mode or None for the default)
DISTRIBUTED = [
    pytest.param(1, None, id="1worker-default"),
    pytest.param(2, "auto", id="2workers-auto"),
    pytest.param(4, "auto", id="4workers-auto"),
    pytest.param(1, "file", id="1worker-file"),
    pytest.param(2, "count:3", id="2workers-count3"),
    pytest.param(4, "test", id="4workers-test"),
]


@pytest.mark.parametrize("workers,shard", DISTRIBUTED)
def test_everything_distributed(sandbox, cluster, reference, workers, shard):
    suite = sandbox.copy_fixture(SUITE)
    ref = reference(suite, ["."], key=(SUITE, "."))
    c = cluster(workers=workers)
    extra = ["--shard", shard] if shard else []
    res, jpath, xpath = run_everything(sandbox, suite, ["."], extra,
                                       redis=c.url)
    report = check_run(sandbox, res, jpath, xpath, ref)
    check_everything_details(report, xpath, suite)
    names = {t["worker"] for t in report["tests"]}
    if shard == "test":
        # One test per task on 4 single-slot workers: the work is spread.
        assert len(names) >= 2, names
    sandbox.assert_clean("testfleet run (distributed)")


def test_everything_local_mode(sandbox, reference):
    suite = sandbox.copy_fixture(SUITE)
    ref = reference(suite, ["."], key=(SUITE, "."))
    mpath = sandbox.path("report.md")
    res, jpath, xpath = run_everything(sandbox, suite, ["."],
                                       ["-w", "2", "--markdown", mpath])
    report = check_run(sandbox, res, jpath, xpath, ref)
    check_everything_details(report, xpath, suite)
    # The Markdown summary names every failed and errored test.
    md = mpath.read_text(encoding="utf-8")
    for t in report["tests"]:
        if t["outcome"] in ("failed", "error"):
            assert t["id"] in md, "%r not in the Markdown report" % t["id"]
    sandbox.assert_clean("testfleet run (local mode)")


@pytest.mark.parametrize("how", ["subfolder", "absolute"])
def test_paths_from_outside_the_rootdir(sandbox, cluster, reference, how):
    """The suite's pytest.ini is in the folder given on the command line,
    not in the current directory: ids stay rootdir-relative (what pytest
    --collect-only prints from here) and every test still runs."""
    suite = sandbox.copy_fixture(SUITE)
    arg = SUITE if how == "subfolder" else str(suite)
    ref = reference(sandbox.base, [arg])
    c = cluster(workers=2)
    res, jpath, xpath = run_everything(sandbox, sandbox.base, [arg],
                                       redis=c.url)
    check_run(sandbox, res, jpath, xpath, ref)


SELECTIONS = [
    pytest.param(["-m", "slow", "."], id="mark"),
    pytest.param(["-k", "TestOuter and not fail", "."], id="keyword"),
    pytest.param(["-m", "special", "-k", "space or dash or quoted", "."],
                 id="mark-and-keyword"),
    pytest.param(["test_classes.py::TestOuter",
                  "test_params.py::test_stacked[slow path-4]",
                  "pkg/sub"], id="node-ids"),
]


@pytest.mark.parametrize("select", SELECTIONS)
def test_selection(sandbox, cluster, reference, select):
    """-m, -k and node ids select what plain pytest selects."""
    suite = sandbox.copy_fixture(SUITE)
    ref = reference(suite, select, key=(SUITE,) + tuple(select))
    c = cluster(workers=2)
    res, jpath, xpath = run_everything(sandbox, suite, [], select,
                                       redis=c.url)
    want_rc = 1 if expected_status(ref) == "failed" else 0
    check_run(sandbox, res, jpath, xpath, ref, want_rc=want_rc)


def test_second_run_uses_history_and_agrees(sandbox, cluster, reference):
    """Two runs on the same Redis (the second one is scheduled with the
    first one's durations) give the same outcomes, with distinct run ids."""
    suite = sandbox.copy_fixture(SUITE)
    ref = reference(suite, ["."], key=(SUITE, "."))
    c = cluster(workers=2)
    reports = []
    for i in range(2):
        res, jpath, xpath = run_everything(sandbox, suite, ["."],
                                           redis=c.url)
        report = check_run(sandbox, res, jpath, xpath, ref)
        reports.append(report)
        jpath.rename(sandbox.path("report%d.json" % i))
    assert reports[0]["run"] != reports[1]["run"]
    assert reports[0]["totals"] == reports[1]["totals"]
    assert set(OUTCOMES) <= set(reports[1]["totals"])
