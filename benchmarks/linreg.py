"""asv benchmarks: linear regression by batch gradient descent, n = 10,000, 1,000 iterations.

Every value comes from one measurement per run (common.measure_cpu / measure_gpu, asv's
setup_cache); see common.py for why. Variants that cannot run here, and points a grid-subset run
did not measure, are n/a with the reason in asv's log.
"""
from asv_runner.benchmarks.mark import SkipNotImplemented  # n/a from a benchmark's body (NotImplementedError there fails)

from .common import (CPU_VARIANTS, GPU_VARIANTS, cost_point, floor_missing, measure_cost, measure_cpu,
                     measure_gpu, point, timing, variant_run)
from .cost import estimated_cycles
from .settings import CLASSES, DIMS, DTYPES, THREADS

# The tracks that read one grid point's values (self.values, set by each class's setup); a class
# takes the ones it publishes. Underscored, so that asv does not also find them as module-level
# benchmarks: in a class, asv names a benchmark after the attribute.


def _steady_state(self, measurement, *key):
    """Seconds per fit: the median of the run's samples, with their 99% confidence interval."""
    return timing(self.values["samples"])


def _best(self, measurement, *key):
    """Seconds of the fastest sample. On a shared VM a core runs for seconds at a time at one of
    two speeds (~40% apart, whatever else runs on the host); the fastest sample is the
    uncontended machine, and is what stays put from run to run."""
    return min(self.values["samples"])


def _first_call(self, measurement, *key):
    """Seconds of the first fit for a shape and dtype, compile included, with empty compile
    caches, in a process that walked the grid in order (float64 then float32, d ascending)."""
    return self.values["first_call"]


def _end_to_end(self, measurement, *key):
    """fit() from NumPy arrays to NumPy result: validation and both transfers included."""
    return timing(self.values["end_to_end"])


def _relative_error(self, measurement, *key):
    """||(w, b) - reference|| / ||reference||, against float64 NumPy doing the same iterations."""
    return self.values["relative_error"]


for _track, _unit, _name in ((_steady_state, "seconds", "steady-state fit (compiled, data in place)"),
                             (_best, "seconds", "fastest fit of the run"),
                             (_first_call, "seconds", "first call: compile + one fit, cold caches"),
                             (_end_to_end, "seconds", "end-to-end fit (host arrays in, host result out)"),
                             (_relative_error, "relative error", "accuracy vs float64 reference")):
    _track.unit, _track.pretty_name = _unit, _name


class CpuFit:
    """One fit of 1,000 iterations, compiled, data in place, at one thread and at all cores."""

    version = "1"
    setup_cache = measure_cpu  # one function object: asv measures once for every Cpu* class

    def setup(self, measurement, *key):
        self.values = point(measurement, *key)

    track_steady_state = _steady_state
    track_best = _best
    track_relative_error = _relative_error

    def track_utilisation(self, measurement, *key):
        """CPU time over wall time of the timed fits: the cores the thread setting really used."""
        return self.values["utilisation"]

    def track_floor_multiple(self, measurement, variant, threads, dim, dtype):
        """Fastest fit over the fastest one-pass floor at the same point and thread setting."""
        return floor_multiple(measurement, self.values["samples"], threads, dim, dtype)

    track_utilisation.unit = "cores"
    track_utilisation.pretty_name = "cores used (CPU time / wall time)"
    track_floor_multiple.unit = "x floor"
    track_floor_multiple.pretty_name = "time as a multiple of the one-pass floor"


class CpuFirstCall:
    """Costs a user pays once per shape, or per call from host arrays; measured at one thread."""

    version = "1"
    setup_cache = measure_cpu

    def setup(self, measurement, variant, dim, dtype):
        self.values = point(measurement, variant, THREADS[0], dim, dtype)

    track_first_call = _first_call
    track_end_to_end = _end_to_end


class CpuProcess:
    """The measuring process of each variant and thread setting."""

    version = "1"
    setup_cache = measure_cpu

    def setup(self, measurement, variant, threads):
        self.run = variant_run(measurement, variant, threads)

    def track_peak_memory(self, measurement, *key):
        """Peak RSS of a process holding the framework, every compiled kernel and the grid's data."""
        return self.run["peak_rss_mb"]

    def track_threads_reported(self, measurement, *key):
        """The thread count the framework reports (its label; track_utilisation is the fact)."""
        threads = self.run["thread_settings"]["threads"]
        if threads is None:
            raise SkipNotImplemented(f"the framework does not say: {self.run['thread_settings']}")
        return threads

    track_peak_memory.unit = "MB"
    track_threads_reported.unit = "threads"


def _one_pass(self, measurement, *key):
    """Seconds of 1,000 passes: the median of the run's samples, with their 99% CI."""
    return timing(self.values["samples"])


def _floor_best(self, measurement, *key):
    """Seconds of the fastest sample of 1,000 passes."""
    return min(self.values["samples"])


_one_pass.unit = _floor_best.unit = "seconds"
_one_pass.pretty_name = "one-pass floor (1,000 reads of X and y)"


def floor_multiple(measurement, samples, threads, dim, dtype):
    """Fastest fit over the floor at the same point and thread setting."""
    missing = floor_missing(measurement, threads, dim, dtype)
    if missing:
        raise SkipNotImplemented(missing)
    return min(samples) / floor_limit(floor_point(measurement, threads, dim, dtype))


def floor_limit(values):
    """The larger of the fastest one pass and the arithmetic floor (a GPU floor has only the first)."""
    return max(min(values["samples"]), values.get("arithmetic") or 0)


def floor_point(measurement, threads, dim, dtype):
    missing = floor_missing(measurement, threads, dim, dtype)
    if missing:
        raise NotImplementedError(missing)
    return measurement["floor"][threads]["points"][f"{dim},{dtype}"]


class CpuFloor:
    """The floor (benchmarks/measure.py Floor): 1,000 streaming passes over X and y as one compiled
    loop, the least that 1,000 gradient steps must read, and the arithmetic floor, the seconds
    their multiply-adds take at the peak multiply-add rate measured by a compiled chain of them;
    its worker takes its turns among the variants'."""

    # 1: the passes were np.dot calls from Python (the interpreter was ~half at d = 2); 2: they read X
    # but not y, which every step reads too (a third of a step's reads at d = 2).
    version = "3"
    setup_cache = measure_cpu

    def setup(self, measurement, threads, dim, dtype):
        self.values = floor_point(measurement, threads, dim, dtype)

    track_one_pass = _one_pass
    track_best = _floor_best

    def track_arithmetic(self, measurement, *key):
        """Seconds of 1,000 steps' multiply-adds (4·n·d flops a step) at the measured peak rate."""
        return self.values["arithmetic"]

    track_arithmetic.unit = "seconds"
    track_arithmetic.pretty_name = "arithmetic floor (1,000 steps' flops at the peak rate)"


class GpuFit:
    """The GPU variants at framework defaults."""

    version = "1"
    setup_cache = measure_gpu

    def setup(self, measurement, variant, dim, dtype):
        self.values = point(measurement, variant, "all", dim, dtype)

    track_steady_state = _steady_state
    track_best = _best
    track_first_call = _first_call
    track_end_to_end = _end_to_end
    track_relative_error = _relative_error

    def track_floor_multiple(self, measurement, variant, dim, dtype):
        """Fastest fit over the fastest GPU floor at the same point."""
        return floor_multiple(measurement, self.values["samples"], "all", dim, dtype)

    track_floor_multiple.unit = "x floor"
    track_floor_multiple.pretty_name = "time as a multiple of the GPU's one-pass floor"


class GpuFloor:
    """The floor on the GPU: 1,000 streaming passes over X as 1,000 dot kernels replayed from one
    CUDA graph (benchmarks/measure.py GpuFloor); its worker takes turns with the GPU variants'."""

    version = "1"
    setup_cache = measure_gpu

    def setup(self, measurement, dim, dtype):
        self.values = floor_point(measurement, "all", dim, dtype)

    track_one_pass = _one_pass
    track_best = _floor_best


class CpuCost:
    """The exact cost of one gradient step, counted by valgrind's callgrind (benchmarks/cost.py):
    the work of the AVX2 code path of valgrind's virtual CPU at one thread, on a simulated cache
    (I1 and D1 32 KiB 8-way, LL 8 MiB 16-way, 64-byte lines). The same on a busy or a quiet
    machine, so a change of a fraction of a percent shows; blind to bandwidth, frequency and
    parallelism, so the timings still say which variant is faster."""

    version = "1"
    setup_cache = measure_cost

    def setup(self, measurement, variant, dim, dtype):
        self.values = cost_point(measurement, variant, dim, dtype)

    def track_instructions(self, measurement, *key):
        """Instructions per gradient step: the difference of two counted fits over their steps."""
        return self.values["per_step"]["Ir"]

    def track_estimated_cycles(self, measurement, *key):
        """Estimated cycles per gradient step, iai-callgrind's model: L1 hits + 5 x last-level
        hits + 35 x RAM accesses of the simulated cache."""
        return estimated_cycles(self.values["per_step"])

    def track_fixed_instructions(self, measurement, *key):
        """Instructions per call besides its steps (dispatch, allocation, the result)."""
        return self.values["fixed"]["Ir"]

    track_instructions.unit = "instructions"
    track_instructions.pretty_name = "instructions per gradient step (callgrind, one thread, AVX2)"
    track_estimated_cycles.unit = "estimated cycles"
    track_estimated_cycles.pretty_name = "estimated cycles per gradient step (L1 + 5 LL + 35 RAM, callgrind)"
    track_fixed_instructions.unit = "instructions"
    track_fixed_instructions.pretty_name = "fixed instructions per call (the shorter counted fit less its steps)"


for _benchmark in (CpuFit, CpuFirstCall, CpuProcess, CpuFloor, GpuFit, GpuFloor, CpuCost):
    _measure, _device, _axes = CLASSES[_benchmark.__name__]
    _values = {"variant": CPU_VARIANTS if _device == "cpu" else GPU_VARIANTS, "threads": THREADS, "dim": DIMS,
               "dtype": DTYPES}
    _benchmark.param_names, _benchmark.params = list(_axes), [list(_values[axis]) for axis in _axes]
    for _name in dir(_benchmark):
        if _name.startswith("track_"):
            # Up is worse for every benchmark here, as asv assumes; asv-tachyon's dashboard
            # takes a track_ benchmark for higher-is-better unless it says otherwise.
            getattr(_benchmark, _name).less_is_better = True
