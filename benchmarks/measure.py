"""A worker process that measures one variant, or the one-pass floor, over grid points.

    python benchmarks/measure.py SPEC.json      # steps "prepare", "round", "finish", one per line on stdin

The suite (benchmarks/common.py) starts one worker per variant and thread setting, so every
framework starts clean: its thread settings (LINREG_NUM_THREADS, set or unset by the parent) apply
before it first runs, and nothing one framework sets leaks into another's numbers. It runs as a
script, so the linreg_kernels it imports is the installed one asv built from the commit.

SPEC: {"variant": "jax" or "floor", "device": "cpu", "points": [[dim, dtype], ...], "n_samples",
"n_iter", "learning_rate", "rounds", "end_to_end": samples of fit() per point (0 for none)}.

prepare: the first call at every point (compile + one fit, in grid order: float64 then float32,
dimensions ascending, so one-off start-up lands in the first point). round: one steady-state
sample per point, with the process's CPU time over it (resource.getrusage counts every thread of
the process: that is the thread setting as measured). finish: fit() from host arrays, the final
weights, the thread settings the framework reports, the peak RSS.
"""
import json
import os
import resource
import sys
import time

import numpy as np

import linreg_kernels as lk
from linreg_kernels.backends.base import import_framework, requested_threads

REPLY = "@@linreg-measure@@ "  # marks the worker's replies among whatever a framework prints


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def sum_of_squares(x):
    total = x[0] - x[0]
    for i in range(x.size):
        total += x[i] * x[i]
    return total


def one_pass(x, n_passes, n_chunks):
    """n_passes streaming reads of x (X's values and y's, Floor.to_device), the least any
    n_passes gradient steps must read, as one compiled loop: no interpreter between passes. Each
    of n_chunks threads reads its own contiguous part n_passes times with no synchronisation
    between passes, so it is a bound a step loop (which must combine every thread's gradient
    before the next step) can approach only where a pass takes much longer than a barrier."""
    totals = np.zeros(n_chunks, dtype=x.dtype)
    for c in prange(n_chunks):
        part = x[c * x.size // n_chunks:(c + 1) * x.size // n_chunks]  # a slice: numba vectorises its loop
        for _ in range(n_passes):
            totals[c] += _sum_of_squares(part)
    return totals.sum()


CHAIN = 16  # dependent multiply-adds per value in multiply_adds: 2 * CHAIN flops


def multiply_adds(x, c, n_repeats, n_chunks):
    """CHAIN dependent multiply-adds per value of x (a Horner chain), n_repeats times over x on each
    of n_chunks threads: LLVM vectorises across values and the core overlaps the chains, so this
    runs at the FMA units' peak (one thread of an AMD EPYC Zen 5: 114 GFLOP/s in float64, twice a
    BLAS matrix product's 55, which the project's numba kernel at d = 2 outran). Returns the sum,
    so that nothing is left out as dead code."""
    totals = np.zeros(n_chunks, dtype=x.dtype)
    for t in prange(n_chunks):
        total = x[0] - x[0]
        for _ in range(n_repeats):
            for i in range(x.size):
                v = x[i]
                p = v * c + c
                for _ in range(CHAIN - 1):
                    p = p * v + c
                total += p
        totals[t] = total
    return totals.sum()


prange = range  # numba.prange once Floor has loaded numba
_sum_of_squares = None
PEAK_VALUES, PEAK_REPEATS = 1024, 20_000  # 8 KiB in float64: x stays in L1; ~0.3 s a dtype
FASTMATH = {"reassoc", "contract"}  # reassociation: several vector accumulators


class Floor:
    """The CPU's floor, under the same thread setting as the variants: run() times one_pass, and
    arithmetic() gives the seconds the step's multiply-adds (2 per element of X: X @ w and
    X.T @ e) take at the peak rate multiply_adds measures. The limit at a point is the larger."""

    def __init__(self):
        global prange, _sum_of_squares
        numba = import_framework("numba", "numba")
        threads = requested_threads()
        if threads is not None:
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        self._numba = numba
        if _sum_of_squares is None:
            prange = numba.prange
            _sum_of_squares = numba.njit(fastmath=FASTMATH, inline="always", cache=True)(sum_of_squares)
        jit = numba.njit(fastmath=FASTMATH, parallel=True, cache=True)
        self._passes, self._multiply_adds = jit(one_pass), jit(multiply_adds)
        self._peak = {}

    def to_device(self, X, y):
        """X's values and y's in one buffer: every step computes X @ w + b - y, so it reads both
        (at d = 2 y is a third of what a step reads)."""
        return np.concatenate([np.ravel(X), np.ravel(y)])  # a contiguous copy of both

    def run(self, x, learning_rate, n_iter):
        self._passes(x, n_iter, self._numba.get_num_threads())

    def peak_flops(self, dtype):
        """The fastest of 5 runs of multiply_adds, in floating-point operations per second."""
        if dtype not in self._peak:
            x = np.full(PEAK_VALUES, 0.5, dtype=dtype)
            c, threads = x.dtype.type(0.25), self._numba.get_num_threads()
            self._multiply_adds(x, c, 1, threads)  # compiles
            seconds = min(timed(self._multiply_adds, x, c, PEAK_REPEATS, threads)[0] for _ in range(5))
            self._peak[dtype] = 2 * CHAIN * x.size * PEAK_REPEATS * threads / seconds
        return self._peak[dtype]

    def arithmetic(self, n_samples, dim, dtype, n_iter):
        return 4 * n_samples * dim * n_iter / self.peak_flops(dtype)

    def thread_settings(self):
        return {"threads": self._numba.get_num_threads()}

    def version(self):
        return self._numba.__version__


class GpuFloor:
    """The floor on a GPU: n_passes dot products of X's buffer with itself (cuBLAS, through
    torch) captured in one CUDA graph and replayed, so no host work runs between the passes: the
    least a loop of n_iter gradient steps must read, launched as cheaply as the GPU launches work.
    One pass per kernel: any gradient step needs a reduction over X before it can update w."""

    def __init__(self):
        self._torch = torch = import_framework("torch", "torch")
        if not torch.cuda.is_available():
            raise lk.BackendUnavailable("the GPU floor uses torch, which found no CUDA GPU")
        self._graphs = {}

    def to_device(self, X, y):
        return self._torch.tensor(np.ascontiguousarray(X).reshape(-1), device="cuda")

    def run(self, x, learning_rate, n_iter):
        torch = self._torch
        key = (x.data_ptr(), n_iter)
        if key not in self._graphs:
            out = x.new_empty(())
            side = torch.cuda.Stream()  # capture must not start on the default stream
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                torch.dot(x, x, out=out)  # cuBLAS sets itself up before the capture
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):  # the worker is its own process: nothing else can interfere
                for _ in range(n_iter):
                    torch.dot(x, x, out=out)
            self._graphs[key] = graph, x, out  # the graph reads x's and out's memory: keep them
        self._graphs[key][0].replay()
        torch.cuda.synchronize()

    def thread_settings(self):
        return {"threads": None}

    def version(self):
        return self._torch.__version__


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


class Worker:
    def __init__(self, spec):
        self.spec = spec
        self.variant, self.device = spec["variant"], spec["device"]
        self.lr, self.n_iter = spec["learning_rate"], spec["n_iter"]
        self.points = {}

    def prepare(self):
        try:
            if self.variant == "floor":
                self.impl = Floor() if self.device == "cpu" else GpuFloor()
            else:
                self.impl = lk.get_backend(self.variant, self.device)
        except lk.BackendUnavailable as exc:
            return {"unavailable": str(exc)}
        for dim, dtype in self.spec["points"]:
            X, y, *_ = lk.make_problem(self.spec["n_samples"], dim, seed=0, dtype=dtype)
            data = self.impl.to_device(X, y)
            first_call, result = timed(self.impl.run, data, self.lr, self.n_iter)
            self.points[f"{dim},{dtype}"] = {"problem": (X, y), "data": data, "result": result,
                                             "first_call": first_call, "samples": [], "cpu": 0.0}
        return {"unavailable": None}

    def round(self):
        for point in self.points.values():
            cpu = cpu_seconds()
            wall, point["result"] = timed(self.impl.run, point["data"], self.lr, self.n_iter)
            point["cpu"] += cpu_seconds() - cpu
            point["samples"].append(wall)
        return {}

    def finish(self):
        out = {}
        for key, point in self.points.items():
            X, y = point["problem"]
            values = {"first_call": point["first_call"], "samples": point["samples"],
                      "utilisation": point["cpu"] / sum(point["samples"]) if point["samples"] else None,
                      "end_to_end": [timed(lk.fit, X, y, backend=self.variant, device=self.device,
                                           learning_rate=self.lr, n_iter=self.n_iter)[0]
                                     for _ in range(self.spec["end_to_end"])]}
            if self.variant != "floor":
                w, b = self.impl.to_host(point["result"])
                values["w"], values["b"] = np.asarray(w, dtype=np.float64).tolist(), float(b)
            elif hasattr(self.impl, "arithmetic"):
                dim, dtype = key.split(",")
                values["arithmetic"] = self.impl.arithmetic(X.shape[0], int(dim), dtype, self.n_iter)
            out[key] = values
        return {"unavailable": None, "points": out, "version": self.impl.version(),
                "thread_settings": self.impl.thread_settings(),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def serve(spec):
    """One step per line on stdin ("prepare", "round", "finish"), one JSON reply line each."""
    worker = Worker(spec)
    for command in sys.stdin:
        reply = getattr(worker, command.strip())()
        sys.stdout.write(REPLY + json.dumps(reply) + "\n")
        sys.stdout.flush()
        if command.strip() == "finish" or reply.get("unavailable"):
            return 0
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with open(sys.argv[1]) as f:
        sys.exit(serve(json.load(f)))
