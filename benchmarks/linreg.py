"""asv benchmarks: linear regression by batch gradient descent, n = 10,000, 1,000 iterations.

Every class runs the same grid, backend x device x dim x dtype. Pairs that cannot run here
(framework missing, no GPU) are n/a, with the reason in asv's log.
"""
import linreg_kernels as lk

from .common import (BACKENDS, GRID_NAMES, GRID_PARAMS, LEARNING_RATE, N_ITER, availability, measure_grid,
                     prepared, problem, skip_if_unavailable)


class GradientDescent:
    """Wall time of a fit, in a process that imported the framework and compiled beforehand."""

    params = GRID_PARAMS
    param_names = GRID_NAMES
    version = "1"
    rounds = 1
    repeat = (3, 5, 0.75)  # 3 to 5 samples, stopping after 0.75 s: keeps the full grid near 10 min
    warmup_time = 0
    timeout = 300

    def setup_cache(self):
        return availability()

    def setup(self, unavailable, backend, device, dim, dtype):
        skip_if_unavailable(unavailable, backend, device)
        self.impl, self.data = prepared(backend, device, dim, dtype)
        self.X, self.y, *_ = problem(dim, dtype)

    def time_steady_state(self, *_):
        """Data already on the device, kernel compiled; returns once the device has finished."""
        self.impl.run(self.data, LEARNING_RATE, N_ITER)

    def _fit_from_host(self, backend, device):
        lk.fit(self.X, self.y, backend=backend, device=device, learning_rate=LEARNING_RATE, n_iter=N_ITER)

    def time_end_to_end(self, _, backend, device, *__):
        """Host arrays in, host result out: validation and both transfers included."""
        self._fit_from_host(backend, device)

    def peakmem_fit(self, _, backend, device, *__):
        """Peak RSS of a process holding the framework, the compiled kernel and one fit."""
        self._fit_from_host(backend, device)

    time_steady_state.pretty_name = "steady-state fit (compiled, data on device)"
    time_end_to_end.pretty_name = "end-to-end fit (host arrays in, host result out)"
    peakmem_fit.pretty_name = "peak memory of a process running one fit"


def _measured_grid(self):
    return measure_grid()


class FitMetrics:
    """Compile cost, throughput and accuracy, all measured once per run in setup_cache: they
    need no process of their own, which keeps the suite's run time down."""

    params = GRID_PARAMS
    param_names = GRID_NAMES
    version = "2"  # 2: first call measured without a warm-up that hid numba's float64 compile
    timeout = 900

    # asv keys setup_cache by its source location, so Threads shares this one measurement.
    setup_cache = _measured_grid

    def setup(self, cache, backend, device, dim, dtype):
        skip_if_unavailable(cache["unavailable"], backend, device)

    def track_first_call(self, cache, *key):
        """Seconds of the first call for a new shape and dtype (compile + one iteration)."""
        return cache["metrics"][key]["first_call_s"]

    def track_ns_per_flop(self, cache, *key):
        """Inverse throughput of the steady state (4*n*d flops per iteration): up is worse."""
        return cache["metrics"][key]["ns_per_flop"]

    def track_relative_error(self, cache, *key):
        """||w - w_ref|| / ||w_ref|| against a float64 NumPy reference of the same iterations."""
        return cache["metrics"][key]["rel_error"]

    track_first_call.unit = "seconds"
    track_first_call.pretty_name = "first call: compile + 1 iteration"
    track_ns_per_flop.unit = "ns/flop"
    track_ns_per_flop.pretty_name = "inverse throughput (1 / GFLOP/s)"
    track_relative_error.unit = "relative error"
    track_relative_error.pretty_name = "accuracy vs float64 reference"


class Threads:
    """The thread count each framework ran with (it changes the ranking, so it is recorded)."""

    params = [BACKENDS]
    param_names = ["backend"]
    version = "1"

    setup_cache = _measured_grid

    def setup(self, cache, backend):
        if backend not in cache["threads"]:
            raise NotImplementedError(cache["unavailable"].get(f"{backend}-cpu", f"{backend} not measured"))

    def track_threads(self, cache, backend):
        return cache["threads"][backend]

    track_threads.unit = "threads"
