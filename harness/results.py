"""Reading asv's result files (asv 0.6 format), independent of today's suite and registry.

A result file holds, per benchmark, a row of `result_columns`: the values follow the cartesian
product of that benchmark's params, which the file also records. Everything the report and the
version comparison show is read from here.
"""
import ast
import json
import math
from pathlib import Path

SUITE = "linreg"
STEADY = f"{SUITE}.CpuFit.track_steady_state"
BEST = f"{SUITE}.CpuFit.track_best"
UTILISATION = f"{SUITE}.CpuFit.track_utilisation"
MULTIPLE = f"{SUITE}.CpuFit.track_floor_multiple"
ERROR = f"{SUITE}.CpuFit.track_relative_error"
FIRST_CALL = f"{SUITE}.CpuFirstCall.track_first_call"
END_TO_END = f"{SUITE}.CpuFirstCall.track_end_to_end"
PEAK_MEMORY = f"{SUITE}.CpuProcess.track_peak_memory"
THREADS_REPORTED = f"{SUITE}.CpuProcess.track_threads_reported"
FLOOR = f"{SUITE}.CpuFloor.track_one_pass"
FLOOR_BEST = f"{SUITE}.CpuFloor.track_best"
FLOOR_ARITHMETIC = f"{SUITE}.CpuFloor.track_arithmetic"
GPU_STEADY = f"{SUITE}.GpuFit.track_steady_state"
GPU_BEST = f"{SUITE}.GpuFit.track_best"
GPU_MULTIPLE = f"{SUITE}.GpuFit.track_floor_multiple"
GPU_FLOOR_BEST = f"{SUITE}.GpuFloor.track_best"
GPU_FIRST_CALL = f"{SUITE}.GpuFit.track_first_call"
GPU_ERROR = f"{SUITE}.GpuFit.track_relative_error"
COST_INSTRUCTIONS = f"{SUITE}.CpuCost.track_instructions"
COST_CYCLES = f"{SUITE}.CpuCost.track_estimated_cycles"
COST_FIXED = f"{SUITE}.CpuCost.track_fixed_instructions"
COST_MACHINE_PREFIX = "valgrind-"  # harness.machine.cost_machine_info's names
MACHINE_FIELDS = ("machine", "os", "arch", "cpu", "num_cpu", "ram")


class ResultsError(ValueError):
    pass


def ok(value):
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _keys(params):
    keys = [()]
    for axis in params:
        keys = [k + (ast.literal_eval(v),) for k in keys for v in axis]
    return keys


def benchmark_points(entry, columns):
    """{param tuple: {"value", "ci": (lo, hi) or None, "samples"}} for one benchmark's row."""
    record = dict(zip(columns, entry))
    keys = _keys(record["params"])
    n = len(keys)
    column = lambda name: record.get(name) or [None] * n
    values, lo, hi, samples = column("result"), column("stats_ci_99_a"), column("stats_ci_99_b"), column("samples")
    return {k: {"value": v if ok(v) else None, "ci": (a, b) if ok(a) and ok(b) else None, "samples": s}
            for k, v, a, b, s in zip(keys, values, lo, hi, samples)}


class Run:
    """One asv result file: a commit in one environment on one machine."""

    def __init__(self, path):
        self.path = Path(path)
        data = json.loads(self.path.read_text())
        self.machine = self.path.parent.name
        self.commit, self.env_name, self.date = data["commit_hash"], data["env_name"], data["date"]
        self.params = data["params"]
        self.versions = {k: v for k, v in data.get("requirements", {}).items() if v}
        columns = data["result_columns"]
        self.benchmarks = {name: benchmark_points(entry, columns) for name, entry in data["results"].items()}
        self.durations = data.get("durations", {})

    def points(self, benchmark):
        return self.benchmarks.get(benchmark, {})

    def value(self, benchmark, key):
        return self.points(benchmark).get(tuple(key), {}).get("value")

    def axis(self, benchmark, index):
        """The values of one param axis of a benchmark, in the order the run recorded them."""
        seen = []
        for key in self.points(benchmark):
            if key[index] not in seen:
                seen.append(key[index])
        return seen

    def fit_samples(self):
        """{threads: [the steady-state samples of each CPU grid point]} (points without samples
        left out)."""
        out = {}
        for (_, threads, *_), point in self.points(STEADY).items():
            if point["samples"]:
                out.setdefault(threads, []).append(point["samples"])
        return out

    def measured(self):
        """How many values this run holds, over all benchmarks."""
        return sum(ok(p["value"]) for b in self.benchmarks.values() for p in b.values())


def machines(results_dir):
    return sorted(p.parent.name for p in Path(results_dir).glob("*/machine.json"))


def machine_info(results_dir, machine):
    return json.loads((Path(results_dir) / machine / "machine.json").read_text())


def runs(results_dir, machine):
    return [Run(p) for p in sorted((Path(results_dir) / machine).glob("*.json")) if p.name != "machine.json"]


def cost_run(results_dir, commit=None):
    """The cost run (a result file of a valgrind-* machine) of `commit`, else the newest cost run
    with the most values; None where there is none."""
    candidates = [run for m in machines(results_dir) if m.startswith(COST_MACHINE_PREFIX)
                  for run in runs(results_dir, m) if run.measured()]
    same = [run for run in candidates if commit and run.commit == commit]
    return max(same or candidates, key=lambda run: (run.measured(), run.date), default=None)


def load_run(results_dir, machine=None, commit=None, env=None):
    """One result file: of the runs of `machine` (default: every machine) matching the commit
    prefix and environment substring, the one holding the most values, newest among equals, so a
    grid-subset run never hides a full one."""
    names = machines(results_dir)
    if not names:
        raise ResultsError(f"no asv results under {results_dir}/ (run `python3 tasks.py bench` first)")
    if machine is None:  # a cost run is read beside a timing run (cost_run), not in its place
        names = [m for m in names if not m.startswith(COST_MACHINE_PREFIX)] or names
    candidates = [run for m in (names if machine is None else [machine]) for run in runs(results_dir, m)
                  if (not commit or run.commit.startswith(commit)) and (not env or env in run.env_name)]
    if not candidates:
        raise ResultsError(f"no results match machine={machine!r} commit={commit!r} env={env!r} "
                           f"(machines with results: {', '.join(names)})")
    return max(candidates, key=lambda run: (run.measured(), run.date))
