"""Reference outcomes for the integration tests.

A tiny pytest plugin, loaded into a plain pytest run with
``-p refplugin --ref-out FILE``: it folds each test's report phases into one
outcome and writes {node id: outcome} as JSON to FILE. The category of each
phase is pytest's own (the pytest_report_teststatus hook, the same answer the
terminal reporter prints), so this is an independent reference for the
worker's plugin:

  failed call -> failed; else failed setup/teardown -> error; else xfailed;
  else xpassed; else skipped; else passed.
"""
import json

import pytest

ORDER = ("xfailed", "xpassed", "skipped")


def pytest_addoption(parser):
    parser.addoption("--ref-out", default=None,
                     help="write {node id: outcome} JSON here")


class RefRecorder:
    def __init__(self, config):
        self.config = config
        self.phases = {}  # nodeid -> {when: category}
        self.order = []

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report):
        res = self.config.hook.pytest_report_teststatus(
            report=report, config=self.config)
        category = res[0] if isinstance(res, tuple) else res
        if report.nodeid not in self.phases:
            self.phases[report.nodeid] = {}
            self.order.append(report.nodeid)
        self.phases[report.nodeid][report.when] = category or ""

    def fold(self, phases):
        cats = phases
        if cats.get("call") == "failed":
            return "failed"
        for when in ("setup", "teardown"):
            if cats.get(when) in ("error", "failed"):
                return "error"
        values = set(cats.values())
        for outcome in ORDER:
            if outcome in values:
                return outcome
        return "passed"

    def pytest_sessionfinish(self, session):
        out = self.config.getoption("--ref-out")
        if not out:
            return
        result = {nodeid: self.fold(self.phases[nodeid])
                  for nodeid in self.order}
        with open(out, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1, sort_keys=True)


def pytest_configure(config):
    config.pluginmanager.register(RefRecorder(config), "refrecorder")
