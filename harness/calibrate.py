"""The machine's calibration: the suite's one-pass floor at d = 100, float64, at one thread and at
all cores (the fastest of 10 x 1,000 passes, alternating settings), printed as JSON:
{"1": seconds, "all": seconds}. The fastest, because these VMs slow down for seconds at a time
when another guest is busy; a slower machine has a slower fastest pass, a slow spell does not.

    python -m harness.calibrate

tasks.py bench runs it before and after every run and compares it with the series' earlier runs.
"""
import json
import time

import threadpoolctl

import linreg_kernels as lk
from benchmarks.common import N_ITER, N_SAMPLES
from benchmarks.measure import one_pass


def calibrate(samples=10, dim=100):
    X = lk.make_problem(N_SAMPLES, dim, seed=0).X
    one_pass(X, 10)
    times = {"1": [], "all": []}
    for _ in range(samples):
        for threads, limit in (("1", 1), ("all", None)):
            with threadpoolctl.threadpool_limits(limits=limit, user_api="blas"):
                start = time.perf_counter()
                one_pass(X, N_ITER)
                times[threads].append(time.perf_counter() - start)
    return {threads: min(values) for threads, values in times.items()}


if __name__ == "__main__":
    print(json.dumps(calibrate()))
