"""A thread setting is a measured fact: at one thread every CPU variant uses one core.

Measured as the suite measures it: a worker process (benchmarks/measure.py) driven through the
suite's own protocol (prepare, rounds, finish), CPU time of the whole process over wall time of
its fits. A framework release that stops honouring the setting fails here instead of
mislabelling the published numbers.
"""
import json
import os
import subprocess
import sys

import pytest

from benchmarks.common import LEARNING_RATE, N_ITER, N_SAMPLES, WorkerProcess, worker_environ
from helpers import cpu_params, required
from linreg_kernels.backends.base import THREADS_ENV_VAR

MAX_CORES_AT_ONE_THREAD = 1.15  # one core plus bookkeeping threads (compilers, garbage collection)


@pytest.mark.slow
@pytest.mark.clock
@pytest.mark.parametrize("variant", cpu_params())
def test_one_thread_uses_one_core(variant, tmp_path):
    spec = {"variant": variant, "device": "cpu", "points": [[100, "float64"], [100, "float32"]],
            "n_samples": N_SAMPLES, "n_iter": N_ITER, "learning_rate": LEARNING_RATE, "rounds": 2, "end_to_end": 0}
    result = drive(spec, dict(worker_environ(), **{THREADS_ENV_VAR: "1"}), tmp_path)
    if result["unavailable"]:
        if f"{variant}:cpu" in required():
            pytest.fail(f"{variant} is required but unavailable: {result['unavailable']}")
        pytest.skip(result["unavailable"])
    used = {key: round(point["utilisation"], 2) for key, point in result["points"].items()}
    assert all(u <= MAX_CORES_AT_ONE_THREAD for u in used.values()), used
    assert result["thread_settings"]["threads"] == 1, result["thread_settings"]


def test_jax_confinement_leaves_the_environment_as_it_was():
    """PJRT_NPROC is set only while jax's CPU client starts: a framework measured after jax in the
    same process sees the environment it would have seen without it. (Importing jax sets a few
    variables of its own, so the snapshot is taken after the import.)"""
    code = ("import json, os, jax, linreg_kernels as lk; before = dict(os.environ); "
            "impl = lk.get_backend('jax', 'cpu'); "
            "print(json.dumps([dict(os.environ) == before, impl.thread_settings()['threads']]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, **{THREADS_ENV_VAR: "1"}))
    if "jax is not installed" in out.stderr:
        pytest.skip("jax not installed")
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [True, 1]


def drive(spec, env, tmp):
    """A worker through the suite's protocol: prepare, spec["rounds"] rounds, finish; the reply of
    finish (or of prepare, where the variant cannot run)."""
    worker = WorkerProcess(spec, env, tmp, tag=spec["variant"])
    try:
        reply = worker.ask("prepare")
        if reply["unavailable"] is not None:
            return reply
        for _ in range(spec["rounds"]):
            worker.ask("round")
        return worker.ask("finish")
    finally:
        worker.close()


def test_a_worker_answers_every_point_it_was_given(tmp_path):
    """benchmarks/measure.py runs as a script (so it imports the installed linreg_kernels) and
    answers each step with every point of its spec."""
    spec = {"variant": "numpy", "device": "cpu", "points": [[2, "float64"], [5, "float32"]], "n_samples": 100,
            "n_iter": 3, "learning_rate": LEARNING_RATE, "rounds": 2, "end_to_end": 1}
    out = drive(spec, worker_environ(), tmp_path)
    assert out["unavailable"] is None and sorted(out["points"]) == ["2,float64", "5,float32"]
    point = out["points"]["5,float32"]
    assert len(point["samples"]) == 2 and len(point["end_to_end"]) == 1 and point["first_call"] > 0
    assert len(point["w"]) == 5 and point["utilisation"] > 0
