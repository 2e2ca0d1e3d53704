"""The machine's calibration: the suite's one-pass floor at d = 100, float64, at one thread and at
all cores (median of 5 x 1,000 passes), printed as JSON: {"1": seconds, "all": seconds}.

    python -m harness.calibrate

tasks.py bench runs it before and after every run and compares it with the series' earlier runs.
"""
import json
import statistics
import time

import threadpoolctl

import linreg_kernels as lk
from benchmarks.common import N_ITER, N_SAMPLES
from benchmarks.measure import one_pass


def calibrate(samples=5, dim=100):
    X = lk.make_problem(N_SAMPLES, dim, seed=0).X
    out = {}
    for threads, limit in (("1", 1), ("all", None)):
        with threadpoolctl.threadpool_limits(limits=limit, user_api="blas"):
            one_pass(X, 10)
            times = []
            for _ in range(samples):
                start = time.perf_counter()
                one_pass(X, N_ITER)
                times.append(time.perf_counter() - start)
        out[threads] = statistics.median(times)
    return out


if __name__ == "__main__":
    print(json.dumps(calibrate()))
