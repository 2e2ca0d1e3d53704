"""The grid's axes, each benchmark class's parameters, and every environment variable the harness
reads: declared here once, read by tasks.py, the asv suite, the harness and the tests.

Standard library only: tasks.py reads it before any virtual environment exists. The variants come
from linreg_kernels' registry (the suite fills them in); LINREG_NUM_THREADS belongs to the kernel
library (linreg_kernels.backends.base.THREADS_ENV_VAR), which the harness never imports from.
"""
import os
import re

THREADS = ("1", "all")  # one thread, and every framework at its own default with all cores
DIMS = (2, 5, 10, 20, 50, 100)
DTYPES = ("float64", "float32")
MEASURES = ("time", "cost")  # timings on this machine; the exact cost, counted under valgrind
DEVICES = ("cpu", "gpu")

# asv's parameters of each benchmark class in their order, what the class measures and where.
CLASSES = {
    "CpuFit": ("time", "cpu", ("variant", "threads", "dim", "dtype")),
    "CpuFirstCall": ("time", "cpu", ("variant", "dim", "dtype")),
    "CpuProcess": ("time", "cpu", ("variant", "threads")),
    "CpuFloor": ("time", "cpu", ("threads", "dim", "dtype")),
    "GpuFit": ("time", "gpu", ("variant", "dim", "dtype")),
    "GpuFloor": ("time", "gpu", ("dim", "dtype")),
    "CpuCost": ("cost", "cpu", ("variant", "dim", "dtype")),
}

# A run measures a subset of the grid: `tasks.py bench --variants jax,numpy --dims 100` sets these,
# one per axis, and selects the same points with asv's -b (selection_regex); asv keeps the
# earlier values of the others. The benchmarks' params never change (asv publishes every result
# with the params of the last run).
SUBSET_OPTIONS = {"variants": "variant", "threads": "threads", "dims": "dim", "dtypes": "dtype"}  # option: axis
SUBSET_ENV_VARS = {"variants": "LINREG_BENCH_VARIANTS", "threads": "LINREG_BENCH_THREADS",
                   "dims": "LINREG_BENCH_DIMS", "dtypes": "LINREG_BENCH_DTYPES"}
ROUNDS_ENV_VAR = "LINREG_BENCH_ROUNDS"  # samples per point (default 8)
# A JSON file the suite writes {"variant:device": reason} to for every worker that could not run.
SKIPPED_ENV_VAR = "LINREG_BENCH_SKIPPED"
CONCURRENT_ENV_VAR = "LINREG_BENCH_CONCURRENT"  # 1: thread settings side by side (checks only, never results)
MACHINE_ENV_VAR = "LINREG_ASV_MACHINE"  # a machine name of one's own instead of the CPU's
# Tests: "cpu", "gpu" or "variant:device" entries that must not be skipped as unavailable.
REQUIRE_BACKENDS_ENV_VAR = "LINREG_REQUIRE_BACKENDS"
REQUIRE_BROWSER_ENV_VAR = "LINREG_REQUIRE_BROWSER"  # 1: the dashboard tests fail without Chromium


def subset_environ(subset):
    """The environment variables that make the suite measure `subset` ({option: "a,b"})."""
    return {SUBSET_ENV_VARS[option]: values for option, values in subset.items() if option in SUBSET_ENV_VARS}


def subset(option, full, environ=os.environ):
    """The values of one grid axis that this run measures (a ValueError names an unknown one)."""
    var = SUBSET_ENV_VARS[option]
    raw = environ.get(var, "").strip()
    if not raw:
        return list(full)
    chosen = [int(v) if option == "dims" and v.strip().isdigit() else v.strip() for v in raw.split(",")]
    unknown = [v for v in chosen if v not in full]
    if unknown:
        raise ValueError(f"{var}: unknown {SUBSET_OPTIONS[option]} {unknown}; expected a subset of {list(full)}")
    return chosen


def rounds(environ=os.environ):
    raw = environ.get(ROUNDS_ENV_VAR, "8").strip()
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{ROUNDS_ENV_VAR} must be a positive integer, got {raw!r}")
    return int(raw)


def side_by_side(environ=os.environ):
    """Whether the thread settings are measured side by side (LINREG_BENCH_CONCURRENT=1). The
    compiles are single-threaded, so on 2 cores that takes ~0.6x the time, but the settings then
    share the cores and every timing is disturbed: for checking that every point runs, never for
    results (tasks.py bench refuses it)."""
    raw = environ.get(CONCURRENT_ENV_VAR, "").strip()
    if raw not in ("", "0", "1"):
        raise ValueError(f"{CONCURRENT_ENV_VAR} must be 0 or 1, got {raw!r}")
    return raw == "1"


def selection_regex(subset, gpu, measures=("time",), tracks=None):
    """asv's -b regex for the points of `subset` ({option: "a,b"}, "devices" among them) that a
    run measures: timings ("time") or counts ("cost"), the GPU classes only where `gpu`; with
    `tracks` ({class: [track name]}), only those. asv matches it against names such as
    linreg.CpuFit.track_best('jax', '1', 100, 'float64')."""
    axis_values = {SUBSET_OPTIONS[o]: v.split(",") for o, v in subset.items() if o in SUBSET_OPTIONS and v}
    devices = subset.get("devices", ",".join(DEVICES)).split(",")

    def alt(axis):
        values = axis_values.get(axis)
        if not values:
            return r"[^,]+"
        return "(" + "|".join(re.escape(v if axis == "dim" else f"'{v}'") for v in values) + ")"

    def names(name):
        return r"\w+" if tracks is None else "track_(" + "|".join(tracks[name]) + ")"

    parts = [rf"{name}\.{names(name)}\({', '.join(alt(axis) for axis in axes)}\)"
             for name, (measure, device, axes) in CLASSES.items()
             if measure in measures and device in devices and (device == "cpu" or gpu)
             and (tracks is None or name in tracks)]
    return r"^linreg\.(" + "|".join(parts) + r")$"
