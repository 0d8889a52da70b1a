"""Errors a user can cause: one clear line on stderr naming the file, field
or value, and the documented exit code (2 usage/configuration, 3
infrastructure), with no process and no temporary folder left behind."""
import subprocess

import pytest

from tfhelpers import WORKER, assert_one_error_line

BAD_YAML = "suites: [unclosed\n  - {oops\n"
BAD_VALUE_YAML = """\
defaults:
  timeout: ten
suites:
  unit:
    paths: [tests]
"""

NEEDS_REDIS = "needs-redis"  # placeholder replaced by the cluster's URL

# id: (args, env, exit code, words the one stderr line must contain)
CASES = {
    "malformed-config": (["run", "-c", "bad.yaml"], None, 2, ["bad.yaml"]),
    "bad-config-value": (["run", "-c", "badvalue.yaml"], None, 2,
                         ["badvalue.yaml", "timeout"]),
    "missing-config": (["run", "-c", "nonexistent.yaml"], None, 2,
                       ["nonexistent.yaml"]),
    "unknown-option": (["run", "--no-such-option", "tests"], None, 2,
                       ["--no-such-option"]),
    "unknown-command": (["frobnicate"], None, 2, ["frobnicate"]),
    "unreachable-redis": (["run", "--redis", "redis://127.0.0.1:1", "tests"],
                          None, 3, []),
    "unreachable-redis-env": (["run", "tests"],
                              {"TESTFLEET_REDIS_URL": "redis://127.0.0.1:1"},
                              3, []),
    "unreachable-redis-submit": (["submit", "--redis", "redis://127.0.0.1:1",
                                  "tests"], None, 3, []),
    "missing-path": (["run", "no/such/path"], None, 2, ["no/such/path"]),
    "missing-path-distributed": (["run", "--redis", NEEDS_REDIS,
                                  "no/such/path"], None, 2,
                                 ["no/such/path"]),
    "empty-selection": (["run", "-k", "nothing_matches", "tests"], None, 2,
                        ["no tests"]),
    "empty-selection-distributed": (["run", "--redis", NEEDS_REDIS, "-k",
                                     "nothing_matches", "tests"], None, 2,
                                    ["no tests"]),
    "bad-redis-url": (["run", "--redis", "redis://h:notaport", "tests"],
                      None, 2, ["notaport"]),
    "bad-redis-scheme": (["run", "--redis", "http://127.0.0.1:6379",
                          "tests"], None, 2, ["http://127.0.0.1:6379"]),
    "bad-shard": (["run", "--shard", "bogus", "tests"], None, 2, ["bogus"]),
    "bad-shard-count": (["run", "--shard", "count:0", "tests"], None, 2,
                        ["count:0"]),
    "bad-workers": (["run", "-w", "zero", "tests"], None, 2, ["zero"]),
    "bad-timeout": (["run", "--timeout", "ten", "tests"], None, 2, ["ten"]),
    "submit-without-redis": (["submit", "tests"], None, 2, []),
    "unknown-run": (["report", "20200101-0000-zzzz", "--redis", NEEDS_REDIS],
                    None, 2, ["20200101-0000-zzzz"]),
    "unknown-run-watch": (["watch", "20200101-0000-zzzz", "--redis",
                           NEEDS_REDIS], None, 2, ["20200101-0000-zzzz"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input(sandbox, cluster, case):
    args, env, want_rc, words = CASES[case]
    suite = sandbox.copy_fixture("small")
    (suite / "bad.yaml").write_text(BAD_YAML)
    (suite / "badvalue.yaml").write_text(BAD_VALUE_YAML)
    if NEEDS_REDIS in args:
        c = cluster(workers=0)
        args = [c.url if a == NEEDS_REDIS else a for a in args]
    res = sandbox.run(args, cwd=suite, env=env, timeout=60)
    assert_one_error_line(res, want_rc, words)
    sandbox.assert_clean("testfleet %s" % case)


WORKER_CASES = {
    "worker-bad-redis-url": (["--redis", "redis://h:notaport", "--slots",
                              "1"], ["notaport"]),
    "worker-bad-slots": (["--redis", "redis://127.0.0.1:1", "--slots",
                          "many"], ["many"]),
    "worker-unknown-option": (["--no-such-option"], ["--no-such-option"]),
}


@pytest.mark.parametrize("case", sorted(WORKER_CASES))
def test_worker_bad_input(sandbox, case):
    args, words = WORKER_CASES[case]
    cmd = [str(WORKER)] + args
    proc = subprocess.run(cmd, cwd=str(sandbox.base), env=sandbox.env(),
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=30)
    err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
    desc = "command: %s\nexit %s\nstderr: %r" % (" ".join(cmd),
                                                 proc.returncode, err)
    assert proc.returncode == 2, desc
    assert len(err) == 1, desc
    assert err[0].startswith("testfleet-worker: "), desc
    for w in words:
        assert w in err[0], desc
    sandbox.assert_clean("testfleet-worker %s" % case)
