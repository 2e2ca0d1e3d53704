"""Shared set-up for the asv suite: the grid, seeded cached data, per-process backend cache."""
import os

# Thread counts change the ranking (see README), so benchmarks pin them unless the asv matrix
# (env_nobuild LINREG_NUM_THREADS) says otherwise; backends apply it when first created.
os.environ.setdefault("LINREG_NUM_THREADS", "1")

import json  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import linreg_kernels as lk  # noqa: E402
from linreg_kernels.problem import flops_per_fit  # noqa: E402

N_SAMPLES = 10_000
N_ITER = 1000
LEARNING_RATE = 0.1
GRID_NAMES = ["backend", "device", "dim", "dtype"]
FULL_GRID = [list(lk.BACKENDS), list(lk.DEVICES), [2, 5, 10, 20, 50, 100], ["float64", "float32"]]


def grid_from_env(environ=os.environ):
    """The full grid, or the part of it named by LINREG_BENCH_{BACKENDS,DEVICES,DIMS,DTYPES}
    (comma-separated): asv's -b selects benchmarks but not parameter values."""
    grid = []
    for name, full in zip(GRID_NAMES, FULL_GRID):
        var = f"LINREG_BENCH_{name.upper()}S"
        raw = environ.get(var, "").strip()
        if not raw:
            grid.append(full)
            continue
        chosen = [int(v) if name == "dim" and v.strip().isdigit() else v.strip() for v in raw.split(",")]
        unknown = [v for v in chosen if v not in full]
        if unknown:
            raise ValueError(f"{var}: unknown {name} {unknown}; expected a subset of {full}")
        grid.append(chosen)
    return grid


GRID_PARAMS = grid_from_env()
BACKENDS, DEVICES, DIMENSIONS, DTYPES = GRID_PARAMS

EVENTS_ENV_VAR = "LINREG_BENCH_EVENTS"

_problems = {}
_prepared = {}


def log_event(kind, **fields):
    """Append one JSON line to $LINREG_BENCH_EVENTS (if set), to count setups and compiles."""
    path = os.environ.get(EVENTS_ENV_VAR)
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"event": kind, "pid": os.getpid(), "t": time.time(), **fields}) + "\n")


def problem(dim, dtype):
    key = (dim, dtype)
    if key not in _problems:
        _problems[key] = lk.make_problem(N_SAMPLES, dim, seed=0, dtype=dtype)
    return _problems[key]


def availability():
    """{"backend-device": reason} for every pair that cannot run here; imports each framework once."""
    return {f"{b}-{d}": reason for b in BACKENDS for d in DEVICES
            if (reason := lk.availability(b, d)) is not None}


def skip_if_unavailable(unavailable, backend, device):
    reason = unavailable.get(f"{backend}-{device}")
    if reason is not None:
        raise NotImplementedError(reason)  # asv shows n/a


def prepared(backend, device, dim, dtype):
    """(backend object, device data), with the kernel compiled; once per process and parameter set,
    because asv_runner 0.3 calls setup before every sample."""
    key = (backend, device, dim, dtype)
    log_event("setup", key=key)
    if key not in _prepared:
        impl = lk.get_backend(backend, device)
        p = problem(dim, dtype)
        data = impl.to_device(p.X, p.y)
        impl.warmup(data, LEARNING_RATE)
        log_event("compile", key=key)
        _prepared[key] = impl, data
    return _prepared[key]


def measure(backend, device, dim, dtype, reference, n_runs=3):
    """First-call seconds, ns per flop and relative error for one grid point, in this process."""
    impl = lk.get_backend(backend, device)
    p = problem(dim, dtype)
    data = impl.to_device(p.X, p.y)
    start = time.perf_counter()
    impl.warmup(data, LEARNING_RATE)
    first_call = time.perf_counter() - start
    log_event("compile", key=(backend, device, dim, dtype))
    times = []
    for _ in range(n_runs):
        start = time.perf_counter()
        result = impl.run(data, LEARNING_RATE, N_ITER)
        times.append(time.perf_counter() - start)
    w, _ = impl.to_host(result)
    w_ref = reference[(dim, dtype)]
    return {
        "first_call_s": first_call,
        "ns_per_flop": statistics.median(times) * 1e9 / flops_per_fit(N_SAMPLES, dim, N_ITER),
        "rel_error": float(np.linalg.norm(w.astype(np.float64) - w_ref) / np.linalg.norm(w_ref)),
    }


def measure_grid():
    """Every available grid point measured in one process: this is setup_cache's job.

    numba gets an empty cache directory here, so its first call is a real compile; the timed
    benchmarks' processes share numba's default cache, as repeated runs of a user's program do.
    """
    numba_cache = tempfile.mkdtemp(prefix="linreg-numba-cache-")
    os.environ["NUMBA_CACHE_DIR"] = numba_cache  # numba reads it when first imported, below
    try:
        return _measure_grid()
    finally:
        shutil.rmtree(numba_cache, ignore_errors=True)


def _measure_grid():
    unavailable = availability()
    reference = {}
    for dim in DIMENSIONS:
        for dtype in DTYPES:
            p = problem(dim, dtype)
            reference[(dim, dtype)] = lk.reference_fit(p.X.astype(np.float64), p.y.astype(np.float64),
                                                       LEARNING_RATE, N_ITER)[0]
    metrics, threads = {}, {}
    for backend in BACKENDS:
        for device in DEVICES:
            if f"{backend}-{device}" in unavailable:
                continue
            threads[backend] = lk.get_backend(backend, device).thread_settings()["threads"]
            # No warm-up: the grid is walked dtype by dtype, dimensions ascending, so each
            # first call costs what it would at that point of a user's program. One-off
            # runtime start-up lands in the first cell (float64, d=2); a framework that
            # compiles per dtype, not per shape (numba), shows its compile at d=2 only.
            for dtype in DTYPES:
                for dim in DIMENSIONS:
                    metrics[(backend, device, dim, dtype)] = measure(backend, device, dim, dtype, reference)
    return {"unavailable": unavailable, "metrics": metrics, "threads": threads}
