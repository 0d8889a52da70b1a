"""With a config file (-c FILE, or testfleet.yaml in the current folder)
positional arguments select suites or phases (DESIGN section 2); phases run
in order and the report lists them (section 3)."""
from tfhelpers import (check_junit, check_report_schema, diff_outcomes,
                       load_json, report_outcomes)

TWO_PHASES = """\
suites:
  ok:
    paths: [tests/test_ok.py]
  bad:
    paths: [tests/test_bad.py]
phases:
  - name: first
    suites: [%s]
  - name: second
    suites: [%s]
"""


def run_config(sandbox, suite, args):
    jpath, xpath = sandbox.path("r.json"), sandbox.path("r.xml")
    res = sandbox.run(["run", "-w", "2", "--json", jpath, "--junit", xpath]
                      + args, cwd=suite, timeout=120)
    report = load_json(jpath) if jpath.exists() else None
    if report is not None:
        check_report_schema(report)
        check_junit(xpath, report)
    return res, report


def test_phases_in_order(sandbox, reference):
    suite = sandbox.copy_fixture("small")
    (suite / "testfleet.yaml").write_text(TWO_PHASES % ("ok", "bad"))
    ref = dict(reference(suite, ["tests/test_ok.py"], key=("small", "ok")))
    ref_bad = reference(suite, ["tests/test_bad.py"], key=("small", "bad"))
    ref.update(ref_bad)
    res, report = run_config(sandbox, suite, [])
    assert res.rc == 1, res.describe()
    assert [p["name"] for p in report["phases"]] == ["first", "second"]
    assert [p["status"] for p in report["phases"]] == ["passed", "failed"]
    diff = diff_outcomes(report_outcomes(report), ref)
    assert not diff, diff
    for t in report["tests"]:
        want = ("ok", "first") if "test_ok" in t["id"] else ("bad", "second")
        assert (t["suite"], t["phase"]) == want, t
    sandbox.assert_clean("testfleet run with testfleet.yaml")


def test_positional_argument_selects_a_suite(sandbox, reference):
    suite = sandbox.copy_fixture("small")
    (suite / "other.yaml").write_text(TWO_PHASES % ("ok", "bad"))
    ref = reference(suite, ["tests/test_ok.py"], key=("small", "ok"))
    res, report = run_config(sandbox, suite, ["-c", "other.yaml", "ok"])
    assert res.rc == 0, res.describe()
    assert not diff_outcomes(report_outcomes(report), ref)
    assert {t["suite"] for t in report["tests"]} == {"ok"}
    sandbox.assert_clean("testfleet run -c other.yaml ok")


def test_unknown_suite_is_a_usage_error(sandbox):
    suite = sandbox.copy_fixture("small")
    (suite / "testfleet.yaml").write_text(TWO_PHASES % ("ok", "bad"))
    res = sandbox.run(["run", "nosuchsuite"], cwd=suite, timeout=60)
    assert res.rc == 2, res.describe()
    lines = res.err_lines()
    assert len(lines) == 1 and "nosuchsuite" in lines[0], res.describe()
    sandbox.assert_clean("testfleet run nosuchsuite")


def test_failed_required_phase_skips_the_rest(sandbox):
    """DESIGN section 6: a required phase (the default) that fails skips the
    phases after it; the run fails."""
    suite = sandbox.copy_fixture("small")
    (suite / "testfleet.yaml").write_text(TWO_PHASES % ("bad", "ok"))
    res, report = run_config(sandbox, suite, [])
    assert res.rc == 1, res.describe()
    phases = {p["name"]: p for p in report["phases"]}
    assert phases["first"]["status"] == "failed", report["phases"]
    assert phases["second"]["status"] == "skipped", report["phases"]
    ran = [t for t in report["tests"]
           if t["phase"] == "second" and t["outcome"] == "passed"]
    assert not ran, "tests of the skipped phase ran: %r" % ran
    sandbox.assert_clean("testfleet run with a failing required phase")
