#!/usr/bin/python3
"""gen_makespan.py -- writes the benchmark's generated pytest suites
(bench/README.md).

  gen_makespan.py DIR [--tests 600] [--files 30] [--total 90] [--sigma 1.6]
                  [--longest-cap 8] [--seed 7]
      A suite whose tests sleep for known, skewed durations: lognormal
      draws (many of milliseconds, a few of seconds), scaled so they add up
      to --total seconds, none longer than --longest-cap. The tests sleep
      rather than compute, so 8 or 32 slots on a 2-core machine still run
      them in parallel. The same seed gives the same suite.

  gen_makespan.py DIR --trivial 50000 [--files 500]
      A suite of N tests that do nothing (for the producer's footprint).

Either way DIR gets tests/test_*.py, a pytest.ini (so DIR is pytest's
rootdir whatever lies above it) and durations.json ({node id: seconds});
a one-line JSON summary goes to stdout: tests, total_s, longest_s.
"""

import argparse
import json
import math
import os
import random
import sys


def skewed_durations(n, total, sigma, cap, rng):
    """n lognormal durations summing to total, none above cap, each a
    whole number of milliseconds and at least 1 ms."""
    raw = [rng.lognormvariate(0.0, sigma) for _ in range(n)]
    durs = raw
    # Scale to the total, clip at the cap, spread what the clip removed over
    # the rest; a few rounds settle it.
    for _ in range(50):
        scale = total / sum(durs)
        durs = [min(cap, d * scale) for d in durs]
        if abs(sum(durs) - total) < 1e-6:
            break
    durs = [max(0.001, round(d, 3)) for d in durs]
    # Rounding leaves a few milliseconds over or under: give them to the
    # median test so the total is exact and the extremes are untouched.
    median = sorted(range(n), key=lambda i: durs[i])[n // 2]
    durs[median] = max(0.001, round(durs[median] + total - sum(durs), 3))
    return durs


def write_suite(root, files, bodies):
    """bodies: per file, a list of (test name, source lines)."""
    tests = os.path.join(root, "tests")
    os.makedirs(tests, exist_ok=True)
    with open(os.path.join(root, "pytest.ini"), "w") as f:
        f.write("[pytest]\ntestpaths = tests\n")
    for fi, cases in enumerate(bodies):
        path = os.path.join(tests, "test_m%0*d.py" % (len(str(files)), fi))
        with open(path, "w") as f:
            f.write("import time\n\n\n")
            for name, body in cases:
                f.write("def %s():\n    %s\n\n\n" % (name, body))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--tests", type=int, default=600)
    ap.add_argument("--files", type=int, default=None)
    ap.add_argument("--total", type=float, default=90.0)
    ap.add_argument("--sigma", type=float, default=1.6)
    ap.add_argument("--longest-cap", type=float, default=8.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--trivial", type=int, default=0, metavar="N")
    a = ap.parse_args()

    if a.trivial > 0:
        n = a.trivial
        files = a.files or 500
        durs = [0.0] * n
    else:
        n = a.tests
        files = a.files or 30
        if n < 1 or a.total <= 0 or a.longest_cap * n < a.total:
            sys.exit("gen_makespan: --tests, --total and --longest-cap "
                     "leave no valid suite")
        durs = skewed_durations(n, a.total, a.sigma, a.longest_cap,
                                random.Random(a.seed))
    files = max(1, min(files, n))
    per = math.ceil(n / files)
    width = len(str(per))
    bodies, ids = [], {}
    for fi in range(files):
        cases = []
        for k in range(fi * per, min(n, (fi + 1) * per)):
            name = "test_%0*d" % (width, k - fi * per)
            body = ("pass" if a.trivial > 0
                    else "time.sleep(%.3f)" % durs[k])
            cases.append((name, body))
            ids["tests/test_m%0*d.py::%s" % (len(str(files)), fi, name)] = \
                durs[k]
        if cases:
            bodies.append(cases)
    write_suite(a.dir, files, bodies)
    with open(os.path.join(a.dir, "durations.json"), "w") as f:
        json.dump(ids, f, indent=0, sort_keys=True)
    print(json.dumps({"tests": len(ids), "total_s": round(sum(durs), 3),
                      "longest_s": max(durs)}))


if __name__ == "__main__":
    main()
