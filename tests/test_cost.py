"""The exact cost (benchmarks/cost.py): the dump format and the arithmetic, what a machine without
valgrind is told, and, under valgrind, a count of every CPU variant that reads what a step must
read."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import common, cost
from harness import machine as machines
from tests.helpers import cpu_params, required

DUMP = """# callgrind format
version: 1
creator: callgrind-3.19.0
desc: I1 cache: 32768 B, 64 B, 8-way associative
desc: Trigger: Client Request: 100,float64 60
positions: line
events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw
summary: 0

fn=0x1
0 5 1 1
totals: 100 50 20 10 5 5 2 1 1
"""


def test_a_dump_is_read_as_its_label_and_totals(tmp_path):
    path = tmp_path / "cg.out.3"
    path.write_text(DUMP)
    label, events = cost.read_dump(path)
    assert label == "100,float64 60"
    assert events == {"Ir": 100, "Dr": 50, "Dw": 20, "I1mr": 10, "D1mr": 5, "D1mw": 5, "ILmr": 2, "DLmr": 1, "DLmw": 1}


def test_a_file_without_totals_is_an_error(tmp_path):
    path = tmp_path / "cg.out.1"
    path.write_text("events: Ir\n")
    with pytest.raises(ValueError, match="no events or totals"):
        cost.read_dump(path)


def test_estimated_cycles_follow_the_iai_model():
    # 4 RAM accesses (ILmr + DLmr + DLmw), 16 last-level hits (20 L1 misses less those), and
    # 150 L1 hits (170 accesses less both): 150 + 5 * 16 + 35 * 4.
    events = {"Ir": 100, "Dr": 50, "Dw": 20, "I1mr": 10, "D1mr": 5, "D1mw": 5, "ILmr": 2, "DLmr": 1, "DLmw": 1}
    assert cost.estimated_cycles(events) == 150 + 80 + 140


def test_two_step_counts_split_into_per_step_and_fixed():
    fixed, step = 1_000, 37
    count = lambda n: {e: fixed + n * step for e in cost.EVENTS}
    per_step, rest = cost.split(count(cost.STEPS[0]), count(cost.STEPS[1]))
    assert all(v == step for v in per_step.values()) and all(v == fixed for v in rest.values())


@pytest.mark.parametrize("planted, ratio", [(10, 1.10), (50, 1.02)])
def test_a_planted_slowdown_of_whole_steps_shows_exactly_per_step(planted, ratio):
    """The gate's planted slowdowns run n + n // planted steps: with STEPS, exactly that ratio."""
    short, long = cost.STEPS
    slower = ((long + long // planted) - (short + short // planted)) / (long - short)
    assert slower == pytest.approx(ratio, abs=1e-12)


def test_the_worker_environment_takes_nothing_from_the_caller_but_which_package_to_import(tmp_path):
    checkout = Path(__file__).parents[1]
    caller = {"PYTHONPATH": os.pathsep.join(["/somewhere", str(checkout)]),
              "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
              "OMP_NUM_THREADS": "2", "ASV_COMMIT": "abc", "HOME": "/root", "PATH": "/opt/x/bin:/usr/bin"}
    env = cost.environment(caller, tmp_path)
    # The package alone on the path, not the checkout beside it (whose listing changes as it is used).
    assert [p.name for p in Path(env["PYTHONPATH"]).iterdir()] == ["linreg_kernels"]
    assert Path(env["PYTHONPATH"], "linreg_kernels").resolve() == checkout / "linreg_kernels"
    assert "XLA_FLAGS" not in env and "ASV_COMMIT" not in env
    assert env["OMP_NUM_THREADS"] == "1" and env["PATH"] == cost.ENVIRONMENT["PATH"]
    assert Path(env["HOME"]).is_dir() and Path(env["HOME"]).parent == tmp_path
    assert cost.environment({"PATH": "/elsewhere"}, tmp_path) == cost.environment({}, tmp_path)
    assert "PYTHONPATH" not in cost.environment({"PYTHONPATH": "/somewhere"}, tmp_path)


def test_a_machine_without_valgrind_gets_every_point_na_with_the_install_command(monkeypatch):
    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name: None if name == "valgrind" else real(name))
    measurement = cost.measure(["numpy"], [(2, "float64")], {"n_samples": 100, "learning_rate": 0.1})
    assert "apt-get install valgrind" in measurement["unavailable"]
    with pytest.raises(NotImplementedError, match="valgrind not found"):
        common.cost_point(measurement, "numpy", 2, "float64")


def test_the_cost_machine_names_valgrind_and_the_instruction_set_not_the_host():
    info = machines.cost_machine_info("valgrind-3.19.0")
    assert info["machine"] in ("valgrind-3.19.0-avx2", "valgrind-3.19.0-no-avx2")
    assert info["num_cpu"] == "n/a" and "valgrind 3.19.0" in info["cpu"]


def test_machine_names_tell_cpu_generations_and_instruction_sets_apart():
    zen3 = {"model name": "AMD EPYC", "cpu family": "25", "model": "1", "flags": "sse2 avx avx2 fma"}
    zen4 = {**zen3, "model": "17", "flags": zen3["flags"] + " avx512f avx512bw"}
    names = {machines.machine_name(machines.cpu_model(info), 2) for info in (zen3, zen4)}
    assert names == {"cpu-2core-amd-epyc-family-25-model-1-avx2", "cpu-2core-amd-epyc-family-25-model-17-avx-512"}


def arena_layout(shim, junk):
    """Run in a process with the shim preloaded (test_the_arena_places_by_requests_not_history):
    after `junk` allocations of glibc's and as many in an earlier point's generation of the
    arena, the positions within the simulated cache's set period (512 KiB) of a problem's arrays
    and a fit's temporaries made in a new generation, and of a y-sized array of glibc's."""
    import ctypes

    import numpy as np
    import numpy.random  # noqa: F401 (imported inside the arena, its allocations would follow the import's history)

    lib = ctypes.CDLL(shim)
    kept = [bytearray(17 * i + 1) for i in range(junk)]  # history: glibc's heap in another state
    outside = np.empty(common.N_SAMPLES).ctypes.data
    assert lib.cg_arena_reserve() == 0
    lib.cg_arena_renew()
    lib.cg_arena(1)
    earlier = [bytearray(13 * i + 1) for i in range(junk)]  # an earlier point's, partly freed below
    lib.cg_arena(0)
    del earlier[::2]
    lib.cg_arena_renew()
    lib.cg_arena(1)
    X = np.random.default_rng(0).standard_normal((common.N_SAMPLES, 100))
    y = X[:, 0].copy()
    first = [a.ctypes.data for a in (X, y, X @ y[:100], X.T @ y)]  # temporaries, freed at once
    again = [a.ctypes.data for a in (X @ y[:100], X.T @ y)]
    libc = ctypes.CDLL(None)
    libc.calloc.restype = libc.realloc.restype = libc.memalign.restype = ctypes.c_void_p
    libc.realloc.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    dirty = libc.calloc(1, 4096)
    ctypes.memset(dirty, 0xAB, 4096)
    libc.free(dirty)
    clean = libc.calloc(1, 4096)
    assert clean == dirty and ctypes.string_at(clean, 4096) == bytes(4096)  # reused, and zeroed
    ctypes.memmove(clean, b"kept", 4)
    grown = libc.realloc(clean, 1 << 20)
    assert ctypes.string_at(grown, 4) == b"kept"
    assert libc.memalign(4096, 100) % 4096 == 0
    lib.cg_arena(0)
    del kept
    return {"arena": [a % (512 << 10) for a in first], "glibc": outside % (512 << 10), "reused": first[2:] == again}


def test_the_arena_places_by_requests_not_history(tmp_path):
    """The counted fits' allocator (callgrind.c): in two processes whose glibc heaps and earlier
    generations of the arena differ, the same requests land at the same places in the simulated
    cache's sets, a freed block is reused by the next request of its size, and calloc, realloc
    and memalign keep their promises."""
    if cost.missing_tools():
        pytest.skip(cost.missing_tools())
    shim = cost.build_shim(tmp_path)
    # The hash seed fixed as when counted: with 1 seed in 100 (34, 130) the two histories differ
    # in a request made after the new generation starts (128 bytes before X), so the requests differ.
    counted = {key: cost.ENVIRONMENT[key] for key in ("PYTHONMALLOC", "PYTHONHASHSEED")}
    layouts = []
    for junk in (0, 5000):
        code = f"import json; from tests.test_cost import arena_layout; print(json.dumps(arena_layout({str(shim)!r}, {junk})))"
        out = subprocess.run(["setarch", os.uname().machine, "-R", sys.executable, "-c", code],  # ASLR off, as counted
                             env={**os.environ, "LD_PRELOAD": str(shim), **counted},
                             cwd=Path(__file__).parents[1], capture_output=True, text=True, check=True).stdout
        layouts.append(json.loads(out))
    assert layouts[0]["glibc"] != layouts[1]["glibc"]  # the two histories do move glibc's placement
    assert layouts[0]["arena"] == layouts[1]["arena"] and layouts[0]["reused"]


# --- under valgrind ------------------------------------------------------------------------

POINT = (2, "float64")
PROBLEM = {"n_samples": common.N_SAMPLES, "learning_rate": common.LEARNING_RATE}


@pytest.fixture(scope="module")
def counted():
    """Every CPU variant counted at one point as the suite counts it, one worker per variant,
    both cores at once; {variant: count_variant's result}."""
    missing = cost.missing_tools()
    if missing:
        if any(r.endswith(":cpu") for r in required()):
            pytest.fail(f"the CPU variants are required here, and so is their cost: {missing}")
        pytest.skip(missing)
    measurement = cost.measure(common.CPU_VARIANTS, [POINT], PROBLEM, {"PYTHONPATH": str(Path(__file__).parents[1])})
    return measurement["variants"]


@pytest.mark.slow
@pytest.mark.parametrize("variant", cpu_params())
def test_every_variant_is_counted_and_its_step_reads_every_value_of_X(variant, counted):
    """That two runs count the same is test_two_runs_count_the_same_to_the_event's (numpy) and
    the cost gate's (test_asv_history.py); for every variant, the A/A in docs/findings.md."""
    result = counted[variant]
    if result["unavailable"]:
        if f"{variant}:cpu" in required():
            pytest.fail(f"{variant} is required but was not counted: {result['unavailable']}")
        pytest.skip(result["unavailable"])
    point = result["points"][f"{POINT[0]},{POINT[1]}"]
    per_step = point["per_step"]
    # Each step reads all n x d values of X: at least one load per 32 bytes (AVX2), and more
    # instructions than rows.
    assert per_step["Dr"] >= common.N_SAMPLES * POINT[0] * 8 / 32, per_step
    assert per_step["Ir"] >= common.N_SAMPLES, per_step
    # The counted fits: the longer one costs more, by 50 steps of at least that much work.
    short, long = (point["calls"][str(n)]["Ir"] for n in cost.STEPS)
    assert long - short >= (cost.STEPS[1] - cost.STEPS[0]) * common.N_SAMPLES, (short, long)
    shorts = point["short_instructions"]  # the shorter fits' counts are their mean
    assert len(shorts) == cost.SHORT_FITS and short == pytest.approx(sum(shorts) / cost.SHORT_FITS), shorts


@pytest.mark.slow
def test_two_runs_count_the_same_to_the_event(tmp_path, monkeypatch):
    """At the cache's edge (X is 8,000,000 bytes, the simulated LL 8 MiB) estimated cycles swing
    with any change of memory layout; two runs of the same code must still agree exactly, also when
    the directory the package is found in changes between them (a checkout does as it is used) and
    when the environment is reached by another path (each checkout has its own)."""
    if cost.missing_tools():
        pytest.skip(cost.missing_tools())
    point = (100, "float64")
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "linreg_kernels").symlink_to(Path(__file__).parents[1] / "linreg_kernels")
    env = {"PYTHONPATH": str(checkout)}
    first = cost.measure(["numpy"], [point], PROBLEM, env)["variants"]["numpy"]
    for i in range(40):
        (checkout / f"file-{i}").write_text("")
    elsewhere = tmp_path / "an-environment-at-a-longer-path"
    elsewhere.symlink_to(sys.prefix, target_is_directory=True)
    monkeypatch.setattr(sys, "executable", str(elsewhere / Path(sys.executable).relative_to(sys.prefix)))
    monkeypatch.setattr(sys, "prefix", str(elsewhere))
    second = cost.measure(["numpy"], [point], PROBLEM, env)["variants"]["numpy"]
    assert first["points"] == second["points"]
