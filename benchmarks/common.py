"""The grid, and the measurement every benchmark of the suite reads its values from.

asv starts a process per benchmark and grid point, and importing TensorFlow or PyTorch costs
seconds, so the points are not timed in asv's processes: once per run (asv's setup_cache), one
worker process per variant and thread setting (benchmarks/measure.py) measures that variant's
part of the grid, and asv's per-point processes only hand the results over. Steady-state times go to
asv as samples, so asv computes their median and 99% confidence interval as for its own timings.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

import linreg_kernels as lk
from linreg_kernels.backends.base import THREADS_ENV_VAR

from . import cost
from .measure import REPLY
from .settings import DIMS, DTYPES, SKIPPED_ENV_VAR, THREADS, rounds, side_by_side, subset

N_SAMPLES = 10_000
N_ITER = 1000
LEARNING_RATE = 0.1
CPU_VARIANTS = lk.backends_on("cpu")
GPU_VARIANTS = lk.backends_on("gpu")
END_TO_END_SAMPLES = 3
# Pause after each worker's round at all cores: thread pools spin for a while after their last
# task (OpenBLAS up to ~0.1 s), and must not steal cores from the next worker.
SETTLE_SECONDS = {"1": 0.0, "all": 0.2}

MEASURE = Path(__file__).with_name("measure.py")


def record_skipped(device, name, reason, environ=os.environ):
    """Add why a worker could not run to the run's SKIPPED_ENV_VAR file (tasks.py bench records
    it beside the run, so the report can say why a row is n/a)."""
    if not environ.get(SKIPPED_ENV_VAR):
        return
    path = Path(environ[SKIPPED_ENV_VAR])
    skipped = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**skipped, f"{name}:{device}": reason}, indent=1))


class WorkerProcess:
    """A measure.py process: one step per ask() ("prepare", "round", "finish")."""

    def __init__(self, spec, env, tmp, tag):
        self.name = spec["variant"]
        spec_path = Path(tmp, f"{tag}.json")
        spec_path.write_text(json.dumps(spec))
        self.log = open(Path(tmp, f"{tag}.log"), "w+")
        self.proc = subprocess.Popen([sys.executable, str(MEASURE), str(spec_path)], env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log)

    def ask(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        for line in self.proc.stdout:
            if line.startswith(REPLY):
                return json.loads(line[len(REPLY):])
            self.log.write(line)
        self.log.seek(0)
        raise RuntimeError(f"measuring {self.name} failed at {command!r} (exit {self.proc.wait()}):\n"
                           f"{self.log.read()[-4000:]}")

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.log.close()


def worker_environ():
    """This process's environment, with the linreg_kernels it imported first on PYTHONPATH: the
    workers import that one (a checkout measured with `tasks.py bench --existing` is on no
    Python's path but this one's)."""
    package_root = str(Path(lk.__file__).resolve().parent.parent)
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))


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
    """{"runs": {"variant|threads": result}, "floor": {threads: result}} for one device.

    Per thread setting, one worker per variant and one for the floor (measure.Floor on a CPU,
    measure.GpuFloor on a GPU) start and compile in turn;
    then they take turns, a round of one sample per point each, `rounds` times. A machine whose
    speed changes for a while (another guest on the host) then slows a round of every variant a
    little, instead of all the samples of one, and each variant's floor multiple compares samples
    taken over the same minutes. First calls are cold: the first setting starts with empty numba
    and torch.compile caches (the next finds them warm, and its first calls are not reported).
    With LINREG_BENCH_CONCURRENT=1 the settings run side by side instead (settings.side_by_side).
    """
    variants = subset("variants", CPU_VARIANTS if device == "cpu" else GPU_VARIANTS)
    points = [(dim, dtype) for dtype in subset("dtypes", DTYPES) for dim in subset("dims", DIMS)]
    spec = {"device": device, "points": points, "n_samples": N_SAMPLES, "n_iter": N_ITER,
            "learning_rate": LEARNING_RATE, "rounds": rounds()}
    reference = references(points)
    out = {"runs": {}, "floor": {}}
    with tempfile.TemporaryDirectory(prefix="linreg-measure-") as tmp:
        env = dict(worker_environ(), NUMBA_CACHE_DIR=os.path.join(tmp, "numba"),
                   TORCHINDUCTOR_CACHE_DIR=os.path.join(tmp, "inductor"), TRITON_CACHE_DIR=os.path.join(tmp, "triton"))
        env.pop(THREADS_ENV_VAR, None)

        def measure(threads, order=variants):
            run_env = env if threads == "all" else dict(env, **{THREADS_ENV_VAR: threads})
            e2e = min(END_TO_END_SAMPLES, spec["rounds"]) if threads == threads_settings[0] else 0
            return measure_setting(spec, order, threads, e2e, reference, run_env, tmp)

        if side_by_side():
            # The later settings start their variants from the other end, so that the two
            # settings compile different frameworks at a time.
            orders = [variants] + [variants[::-1]] * (len(threads_settings) - 1)
            with ThreadPoolExecutor(len(threads_settings)) as pool:
                settings = list(pool.map(measure, threads_settings, orders))
        else:
            settings = [measure(threads) for threads in threads_settings]
        for threads, (floor, runs, skipped) in zip(threads_settings, settings):
            out["floor"][threads] = floor
            out["runs"] |= runs
            for name, reason in skipped.items():
                record_skipped(device, name, reason)
    return out


def measure_setting(spec, variants, threads, e2e, reference, env, tmp):
    """One thread setting: the floor's result, {"variant|threads": result}, {name: why n/a}."""
    floor, runs, skipped, workers = None, {}, {}, {}
    try:
        for name in ["floor"] + variants:
            worker = WorkerProcess({**spec, "variant": name, "end_to_end": 0 if name == "floor" else e2e}, env, tmp,
                                   tag=f"{name}-{threads}")
            reply = worker.ask("prepare")
            if reply["unavailable"] is not None:
                skipped[name] = reply["unavailable"]
                if name == "floor":
                    floor = reply
                else:
                    runs[f"{name}|{threads}"] = reply
                worker.close()
                continue
            workers[name] = worker
        for r in range(spec["rounds"]):
            for name in (list(workers) if r % 2 == 0 else list(reversed(workers))):
                workers[name].ask("round")
                time.sleep(SETTLE_SECONDS[threads])
        for name, worker in workers.items():
            result = worker.ask("finish")
            if name == "floor":
                floor = result
            else:
                relative_errors(result, reference)
                runs[f"{name}|{threads}"] = result
    finally:
        for worker in workers.values():
            worker.close()
    return floor, runs, skipped


def measure_cpu(self):
    return measure_device("cpu", subset("threads", THREADS))


def measure_gpu(self):
    # A GPU's host threads hardly matter: frameworks run at their defaults.
    return measure_device("gpu", ["all"])


def measure_cost(self):
    """The exact cost of every CPU variant at every point (benchmarks/cost.py), counted under
    valgrind at one thread: no thread axis."""
    points = [(dim, dtype) for dtype in subset("dtypes", DTYPES) for dim in subset("dims", DIMS)]
    counted = cost.measure(subset("variants", CPU_VARIANTS), points,
                           {"n_samples": N_SAMPLES, "learning_rate": LEARNING_RATE}, worker_environ())
    for name, run in counted.get("variants", {}).items():
        if run["unavailable"] is not None:
            record_skipped("cost", name, run["unavailable"])
    return counted


measure_cpu.timeout = measure_gpu.timeout = measure_cost.timeout = 3600  # asv's limit for a setup_cache


def cost_point(measurement, variant, dim, dtype):
    """One point's counts ({"per_step", "fixed"}), or NotImplementedError (asv's n/a) with why."""
    if measurement["unavailable"] is not None:
        raise NotImplementedError(measurement["unavailable"])
    run = measurement["variants"].get(variant)
    if run is None:
        raise NotImplementedError(f"{variant}: not in this run's grid subset")
    if run["unavailable"] is not None:
        raise NotImplementedError(run["unavailable"])
    values = run["points"].get(f"{dim},{dtype}")
    if values is None:
        raise NotImplementedError(f"d={dim} {dtype}: not in this run's grid subset")
    return values


def floor_samples(measurement, threads, dim, dtype):
    """The floor's samples at this point and thread setting ([] if this run did not measure it)."""
    return measurement["floor"].get(threads, {}).get("points", {}).get(f"{dim},{dtype}", {}).get("samples", [])


def floor_missing(measurement, threads, dim, dtype):
    """Why this run has no floor at this point (None if it has one)."""
    if floor_samples(measurement, threads, dim, dtype):
        return None
    unavailable = measurement["floor"].get(threads, {}).get("unavailable")
    return unavailable or f"floor at threads={threads}, d={dim} {dtype}: not in this run's grid subset"


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
