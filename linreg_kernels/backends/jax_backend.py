import os
import sys

from .base import Backend, BackendUnavailable, host_arrays, import_framework

_XLA_SINGLE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


class JaxBackend(Backend):
    """The whole loop compiled once by jax.jit (lax.fori_loop); 64-bit enabled for float64.

    The learning rate and iteration count are traced arguments, not static ones, so changing
    them never recompiles; only a new shape or dtype does.
    """

    name = "jax"
    extra = "jax"
    devices = ("cpu", "gpu")
    compiles = True

    def _load(self):
        if self.threads == 1 and "jax" not in sys.modules:
            # XLA reads its flags once, when its CPU client starts; it has no N-thread knob.
            os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_XLA_SINGLE_THREAD}".strip()
        jax = import_framework("jax", self.extra)
        jax.config.update("jax_enable_x64", True)
        try:
            self._device = jax.devices(self.device)[0]
        except RuntimeError as exc:
            raise BackendUnavailable(f"jax found no {self.device} device: {exc}") from exc
        self._jax = jax
        self._traces = 0
        self._kernel = jax.jit(self._fit)

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
        return lax.fori_loop(0, n_iter, step, (jnp.zeros(d, X.dtype), zero))

    def to_device(self, X, y):
        X, y = host_arrays(X, y)
        data = self._jax.device_put((X, y), self._device)
        return self._jax.block_until_ready(data)

    def run(self, data, learning_rate, n_iter):
        X, y = data
        lr = self._jax.device_put(self._jax.numpy.asarray(learning_rate, dtype=X.dtype), self._device)
        return self._jax.block_until_ready(self._kernel(X, y, lr, n_iter))

    def to_host(self, result):
        w, b = self._jax.device_get(result)
        return w, float(b)

    def trace_count(self):
        return self._traces

    def version(self):
        return self._jax.__version__

    def thread_settings(self):
        flags = os.environ.get("XLA_FLAGS", "")
        # XLA exposes no thread count: without the single-thread flag its CPU pool uses every core.
        return {"threads": 1 if _XLA_SINGLE_THREAD in flags else os.cpu_count(), "XLA_FLAGS": flags}
