"""The machine's calibration, printed as JSON: {"floor": {"1": s, "all": s}, "noise": ratio}.

floor: the suite's one-pass floor at d = 100, float64, at one thread and at all cores, the fastest
of 10 x 1,000 passes (alternating settings). The fastest, because these VMs slow down for seconds
at a time when another guest is busy; a slower machine has a slower fastest pass, a slow spell
does not. noise: the median over the fastest of 20 identical compute-bound passes (the floor at
d = 2, which lives in L2, one thread): 1.0 on a quiet machine. Another guest busy on the same
physical core shows here, though it leaves no trace in load or steal.

    python -m harness.calibrate

tasks.py bench runs it before and after every run and compares it with the series' earlier runs.
"""
import json
import time

import threadpoolctl

import linreg_kernels as lk
from benchmarks.common import N_ITER, N_SAMPLES
from benchmarks.measure import one_pass
from harness.machine import spread


def passes(X, n_passes, samples, limit):
    times = []
    with threadpoolctl.threadpool_limits(limits=limit, user_api="blas"):
        for _ in range(samples):
            start = time.perf_counter()
            one_pass(X, n_passes)
            times.append(time.perf_counter() - start)
    return times


def calibrate(samples=10):
    X = lk.make_problem(N_SAMPLES, 100, seed=0).X
    one_pass(X, 10)
    floor = {"1": [], "all": []}
    for _ in range(samples):
        floor["1"] += passes(X, N_ITER, 1, 1)
        floor["all"] += passes(X, N_ITER, 1, None)
    small = passes(lk.make_problem(N_SAMPLES, 2, seed=0).X, 10 * N_ITER, 20, 1)
    return {"floor": {threads: min(times) for threads, times in floor.items()},
            "noise": spread(small)}


if __name__ == "__main__":
    print(json.dumps(calibrate()))
