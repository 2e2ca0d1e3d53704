"""The grid, and the measurement every benchmark of the suite reads its values from.

asv starts a process per benchmark and grid point, and importing TensorFlow or PyTorch costs
seconds, so the points are not timed in asv's processes: once per run (asv's setup_cache), one
fresh process per variant and thread setting (benchmarks/measure.py) walks that variant's part of
the grid, and asv's per-point processes only hand the results over. Steady-state times go to
asv as samples, so asv computes their median and 99% confidence interval as for its own timings.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import linreg_kernels as lk

N_SAMPLES = 10_000
N_ITER = 1000
LEARNING_RATE = 0.1
THREADS = ["1", "all"]  # one thread, and every framework at its own default with all cores
DIMS = [2, 5, 10, 20, 50, 100]
DTYPES = ["float64", "float32"]
CPU_VARIANTS = lk.backends_on("cpu")
GPU_VARIANTS = lk.backends_on("gpu")
END_TO_END_SAMPLES = 3

MEASURE = Path(__file__).with_name("measure.py")
ROUNDS_ENV_VAR = "LINREG_BENCH_ROUNDS"
# Grid subsets: what a run measures. The benchmarks' params never change (asv publishes every
# result with the params of the last run), so the points left out are n/a in this run; select
# the same points with asv's -b regex (tasks.py bench --variants ... does both) and asv keeps
# the earlier values of the others.
SUBSET_ENV_VARS = {"variant": "LINREG_BENCH_VARIANTS", "threads": "LINREG_BENCH_THREADS",
                   "dim": "LINREG_BENCH_DIMS", "dtype": "LINREG_BENCH_DTYPES"}


def rounds(environ=os.environ):
    raw = environ.get(ROUNDS_ENV_VAR, "8").strip()
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{ROUNDS_ENV_VAR} must be a positive integer, got {raw!r}")
    return int(raw)


def subset(name, full, environ=os.environ):
    """The values of one grid axis that this run measures."""
    var = SUBSET_ENV_VARS[name]
    raw = environ.get(var, "").strip()
    if not raw:
        return list(full)
    chosen = [int(v) if name == "dim" and v.strip().isdigit() else v.strip() for v in raw.split(",")]
    unknown = [v for v in chosen if v not in full]
    if unknown:
        raise ValueError(f"{var}: unknown {name} {unknown}; expected a subset of {full}")
    return chosen


def run_measure(spec, env):
    """One measuring process; its JSON result."""
    with tempfile.TemporaryDirectory(prefix="linreg-measure-") as tmp:
        spec_path, out_path = Path(tmp, "spec.json"), Path(tmp, "out.json")
        spec_path.write_text(json.dumps(spec))
        proc = subprocess.run([sys.executable, str(MEASURE), str(spec_path), str(out_path)], env=env,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"measuring {spec['variant']} on {spec['device']} failed "
                               f"(exit {proc.returncode}):\n{proc.stderr[-4000:]}")
        return json.loads(out_path.read_text())


def references(points):
    """The float64 reference weights of every (dim, dtype) point."""
    out = {}
    for dim, dtype in points:
        X, y, *_ = lk.make_problem(N_SAMPLES, dim, seed=0, dtype=dtype)
        w, b = lk.reference_fit(X.astype(np.float64), y.astype(np.float64), LEARNING_RATE, N_ITER)
        out[f"{dim},{dtype}"] = np.append(w, b)
    return out


def relative_errors(measured, reference):
    """||(w, b) - reference|| / ||reference|| per point, the bias counted as one more weight."""
    for key, point in measured["points"].items():
        v = np.append(point.pop("w"), point.pop("b"))
        point["relative_error"] = float(np.linalg.norm(v - reference[key]) / np.linalg.norm(reference[key]))


def measure_device(device, threads_settings):
    """{"runs": {"variant|threads": result}, "floor": {threads: [start, end] results}} for one device.

    Each thread setting is measured as: the floor, every variant, the floor again; the two floors
    bracket the variants, so a machine that changed speed during the run shows in their ratio.
    First calls are cold: the one-thread pass starts with empty numba and torch.compile caches
    (the all-cores pass then finds them warm, and its first calls are not reported).
    """
    variants = subset("variant", CPU_VARIANTS if device == "cpu" else GPU_VARIANTS)
    points = [(dim, dtype) for dtype in subset("dtype", DTYPES) for dim in subset("dim", DIMS)]
    reference = references(points)
    spec = {"device": device, "points": points, "n_samples": N_SAMPLES, "n_iter": N_ITER,
            "learning_rate": LEARNING_RATE, "rounds": rounds()}
    caches = tempfile.mkdtemp(prefix="linreg-compile-cache-")
    env = dict(os.environ, NUMBA_CACHE_DIR=os.path.join(caches, "numba"),
               TORCHINDUCTOR_CACHE_DIR=os.path.join(caches, "inductor"),
               TRITON_CACHE_DIR=os.path.join(caches, "triton"))
    env.pop("LINREG_NUM_THREADS", None)
    out = {"runs": {}, "floor": {}}
    try:
        for threads in threads_settings:
            run_env = env if threads == "all" else dict(env, LINREG_NUM_THREADS=threads)
            floor = {**spec, "variant": "floor", "end_to_end": 0}
            bracket = [run_measure(floor, run_env)] if device == "cpu" else []
            for variant in variants:
                e2e = min(END_TO_END_SAMPLES, spec["rounds"]) if threads == threads_settings[0] else 0
                result = run_measure({**spec, "variant": variant, "end_to_end": e2e}, run_env)
                if result["unavailable"] is None:
                    relative_errors(result, reference)
                out["runs"][f"{variant}|{threads}"] = result
            if device == "cpu":
                bracket.append(run_measure(floor, run_env))
                out["floor"][threads] = bracket
    finally:
        shutil.rmtree(caches, ignore_errors=True)
    return out


def measure_cpu(self):
    return measure_device("cpu", subset("threads", THREADS))


def measure_gpu(self):
    # A GPU's host threads hardly matter: frameworks run at their defaults.
    return measure_device("gpu", ["all"])


measure_cpu.timeout = measure_gpu.timeout = 3600  # asv's limit for a setup_cache is its own attribute


def floor_samples(measurement, threads, dim, dtype):
    """Every floor sample of the run at this point: the bracketing passes pooled."""
    return [s for run in measurement["floor"].get(threads, [])
            for s in run["points"].get(f"{dim},{dtype}", {}).get("samples", [])]


def variant_run(measurement, variant, threads):
    """A variant's measuring process at one thread setting; NotImplementedError (asv's n/a) with the
    reason when the variant cannot run here or this run did not measure it."""
    run = measurement["runs"].get(f"{variant}|{threads}")
    if run is None:
        raise NotImplementedError(f"{variant} at threads={threads}: not in this run's grid subset")
    if run["unavailable"] is not None:
        raise NotImplementedError(run["unavailable"])
    return run


def point(measurement, variant, threads, dim, dtype):
    """A variant's measured values at one grid point, or NotImplementedError as variant_run()."""
    values = variant_run(measurement, variant, threads)["points"].get(f"{dim},{dtype}")
    if values is None:
        raise NotImplementedError(f"d={dim} {dtype}: not in this run's grid subset")
    return values


def timing(samples):
    """asv's result format for timings: asv computes median, quartiles and the 99% CI from it."""
    return {"samples": samples, "number": 1}
