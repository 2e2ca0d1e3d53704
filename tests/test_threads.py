"""A thread setting is a measured fact: at LINREG_NUM_THREADS=1 every CPU variant uses one core.

Measured as the suite measures it (benchmarks/measure.py in a process of its own): CPU time of
the whole process over wall time of its fits. A framework release that stops honouring the
setting fails here instead of mislabelling the published numbers.
"""
import json
import os
import subprocess
import sys

import pytest

from benchmarks.common import LEARNING_RATE, MEASURE, N_ITER, N_SAMPLES, run_measure
from helpers import cpu_params, required

MAX_CORES_AT_ONE_THREAD = 1.15  # one core plus bookkeeping threads (compilers, garbage collection)


@pytest.mark.slow
@pytest.mark.clock
@pytest.mark.parametrize("variant", cpu_params())
def test_one_thread_uses_one_core(variant):
    spec = {"variant": variant, "device": "cpu", "points": [[100, "float64"], [100, "float32"]],
            "n_samples": N_SAMPLES, "n_iter": N_ITER, "learning_rate": LEARNING_RATE, "rounds": 2, "end_to_end": 0}
    result = run_measure(spec, dict(os.environ, LINREG_NUM_THREADS="1"))
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
                         env=dict(os.environ, LINREG_NUM_THREADS="1"))
    if "jax is not installed" in out.stderr:
        pytest.skip("jax not installed")
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [True, 1]


def test_measure_script_runs_standalone(tmp_path):
    """benchmarks/measure.py runs as a script (so it imports the installed linreg_kernels) and
    reports every point it was given."""
    spec = {"variant": "numpy", "device": "cpu", "points": [[2, "float64"]], "n_samples": 100, "n_iter": 3,
            "learning_rate": LEARNING_RATE, "rounds": 2, "end_to_end": 1}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    subprocess.run([sys.executable, str(MEASURE), str(tmp_path / "spec.json"), str(tmp_path / "out.json")],
                   check=True, cwd=tmp_path)
    out = json.loads((tmp_path / "out.json").read_text())
    point = out["points"]["2,float64"]
    assert len(point["samples"]) == 2 and len(point["end_to_end"]) == 1 and point["first_call"] > 0
    assert out["unavailable"] is None and len(point["w"]) == 2
