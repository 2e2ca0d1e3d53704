"""Measure one variant, or the one-pass floor, over grid points, in a process of its own.

    python benchmarks/measure.py SPEC.json OUT.json

The suite (benchmarks/common.py) starts one such process per variant and thread setting, so every
framework starts clean: its thread settings (LINREG_NUM_THREADS, set or unset by the parent) apply
before it first runs, and nothing one framework sets leaks into another's numbers. It runs as a
script, so the linreg_kernels it imports is the installed one asv built from the commit.

SPEC: {"variant": "jax" or "floor", "device": "cpu", "points": [[dim, dtype], ...], "n_samples",
"n_iter", "learning_rate", "rounds", "end_to_end": samples of fit() per point (0 for none)}.

Per point, OUT holds the first call (compile + one fit, in grid order: float64 then float32,
dimensions ascending, so one-off start-up lands in the first point), `rounds` steady-state samples
taken round-robin over the points (a slow drift of the machine spreads over every point instead of
landing on a few), and the process CPU time over wall time of those samples (resource.getrusage
counts every thread of the process), which is the thread setting as measured.
"""
import json
import os
import resource
import sys
import time

import numpy as np

import linreg_kernels as lk
from linreg_kernels.backends.base import requested_threads


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def one_pass(X, n_passes):
    """The physical floor: n_passes streaming reads of X, the least any gradient step must read.
    A BLAS dot product of X's buffer with itself reads each value once and writes nothing."""
    x = X.reshape(-1)
    for _ in range(n_passes):
        np.dot(x, x)


class Floor:
    """one_pass() dressed as a backend, under the same thread setting as the variants."""

    def __init__(self):
        threads = requested_threads()
        if threads is not None:
            import threadpoolctl

            self._limits = threadpoolctl.threadpool_limits(limits=threads, user_api="blas")

    def to_device(self, X, y):
        return np.ascontiguousarray(X)

    def run(self, X, learning_rate, n_iter):
        one_pass(X, n_iter)

    def thread_settings(self):
        import threadpoolctl

        pools = [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
        return {"threads": max(pools, default=1)}

    def version(self):
        return np.__version__


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def measure(spec):
    variant, device = spec["variant"], spec["device"]
    try:
        impl = Floor() if variant == "floor" else lk.get_backend(variant, device)
    except lk.BackendUnavailable as exc:
        return {"unavailable": str(exc)}
    lr, n_iter = spec["learning_rate"], spec["n_iter"]
    points = {}
    for dim, dtype in spec["points"]:
        X, y, *_ = lk.make_problem(spec["n_samples"], dim, seed=0, dtype=dtype)
        data = impl.to_device(X, y)
        first_call, _ = timed(impl.run, data, lr, n_iter)
        points[f"{dim},{dtype}"] = {"first_call": first_call, "samples": [], "cpu": 0.0, "problem": (X, y),
                                    "data": data}
    for _ in range(spec["rounds"]):
        for point in points.values():
            cpu = cpu_seconds()
            wall, result = timed(impl.run, point["data"], lr, n_iter)
            point["cpu"] += cpu_seconds() - cpu
            point["samples"].append(wall)
            point["result"] = result
    for point in points.values():
        X, y = point.pop("problem")
        data, result = point.pop("data"), point.pop("result")
        point["utilisation"] = point.pop("cpu") / sum(point["samples"])
        point["end_to_end"] = [timed(lk.fit, X, y, backend=variant, device=device, learning_rate=lr,
                                     n_iter=n_iter)[0] for _ in range(spec["end_to_end"])]
        if variant != "floor":
            w, b = impl.to_host(result)
            point["w"], point["b"] = np.asarray(w, dtype=np.float64).tolist(), float(b)
        del data
    return {"unavailable": None, "points": points, "version": impl.version(),
            "thread_settings": impl.thread_settings(),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv):
    spec_path, out_path = argv
    with open(spec_path) as f:
        spec = json.load(f)
    out = measure(spec)
    with open(out_path, "w") as f:
        json.dump(out, f)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main(sys.argv[1:]))
