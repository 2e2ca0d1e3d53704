import os

from .base import Backend, BackendUnavailable, host_arrays, import_framework, require_api

# XLA's CPU client sizes its thread pool from PJRT_NPROC when it is created; neither OMP_NUM_THREADS
# nor any XLA_FLAGS entry confines it (measured: 1.9 cores busy with both set).
_NPROC_ENV_VAR = "PJRT_NPROC"
_client_threads = None  # the pool size this module gave jax's CPU client, once it created it
# Steps per loop iteration on a GPU, where each iteration of XLA's loop costs launches and control
# besides the step's tiny kernels: 10 took 0.63-0.78x the time of 1 (H200, d=2, 20 and 100). On
# a CPU it made no consistent difference (0.96-1.19x, AMD EPYC, one thread and both), so the CPU
# loop stays rolled.
GPU_UNROLL = 10


def _start_cpu_client(jax, threads):
    """Create jax's CPU client with `threads` worker threads (None: XLA's default, every core) and
    return the pool size, or None when jax had started before this module could choose it.
    PJRT_NPROC is set only while the client starts, so nothing else in the process sees it."""
    global _client_threads
    if _client_threads is not None:
        return _client_threads
    started = require_api(jax, "_src.xla_bridge.backends_are_initialized", "jax")()
    if started:
        return None
    saved = os.environ.get(_NPROC_ENV_VAR)
    if threads is not None:
        os.environ[_NPROC_ENV_VAR] = str(threads)
    try:
        jax.devices("cpu")
    finally:
        if saved is None:
            os.environ.pop(_NPROC_ENV_VAR, None)
        else:
            os.environ[_NPROC_ENV_VAR] = saved
    _client_threads = threads or os.cpu_count()
    return _client_threads


class JaxBackend(Backend):
    """The whole loop, a lax.fori_loop, compiled once per shape, dtype and iteration count.

    The iteration count is static, so XLA knows the loop's trip count and a GPU never copies the
    loop condition back to the host (there the loop runs GPU_UNROLL steps per iteration); the
    program is compiled ahead of time (lower().compile()) and the learning rate is an argument of
    it, so a new learning rate never recompiles.
    """

    name = "jax"
    framework = "jax"
    devices = ("cpu", "gpu")
    compiles = True

    def _load(self):
        jax = import_framework("jax", self.framework)
        self._cpu_threads = _start_cpu_client(jax, self.threads)
        jax.config.update("jax_enable_x64", True)
        try:
            self._device = jax.devices(self.device)[0]
        except RuntimeError as exc:
            raise BackendUnavailable(f"jax found no {self.device} device: {exc}") from exc
        self._jax = jax
        self._traces = 0
        self.loop_unroll = GPU_UNROLL if self.device == "gpu" else 1
        self._jit = jax.jit(self._fit, static_argnums=3)
        self._executables = {}

    def _fit(self, X, y, learning_rate, n_iter):
        jnp, lax = self._jax.numpy, self._jax.lax
        self._traces += 1  # Python side effect: runs at trace time only
        n, d = X.shape
        scale = (2 * learning_rate / n).astype(X.dtype)
        # HIGHEST keeps float32 matmuls in true float32 on GPUs that would otherwise use TF32.
        matvec = lambda A, v: jnp.matmul(A, v, precision=lax.Precision.HIGHEST)

        def step(_, wb):
            w, b = wb
            e = matvec(X, w) + b - y
            return w - scale * matvec(e, X), b - scale * jnp.sum(e)

        zero = jnp.zeros((), X.dtype)
        return lax.fori_loop(0, n_iter, step, (jnp.zeros(d, X.dtype), zero), unroll=self.loop_unroll)

    def _executable(self, X, y, lr, n_iter):
        key = (X.shape, str(X.dtype), n_iter)
        if key not in self._executables:
            self._executables[key] = self._jit.lower(X, y, lr, n_iter).compile()
        return self._executables[key]

    def _learning_rate(self, X, learning_rate):
        return self._jax.device_put(self._jax.numpy.asarray(learning_rate, dtype=X.dtype), self._device)

    def compiled_program(self, data, learning_rate, n_iter):
        """The optimised HLO that XLA runs for these arguments (for tests)."""
        X, y = data
        return self._executable(X, y, self._learning_rate(X, learning_rate), n_iter).as_text()

    def to_device(self, X, y):
        X, y = host_arrays(X, y)
        return self._jax.block_until_ready(self._jax.device_put((X, y), self._device))

    def run(self, data, learning_rate, n_iter):
        X, y = data
        lr = self._learning_rate(X, learning_rate)
        return self._jax.block_until_ready(self._executable(X, y, lr, n_iter)(X, y, lr))

    def to_host(self, result):
        w, b = self._jax.device_get(result)
        return w, float(b)

    def trace_count(self):
        return self._traces

    def version(self):
        return self._jax.__version__

    def thread_settings(self):
        return {"threads": self._cpu_threads, _NPROC_ENV_VAR: self.threads}
