import numpy as np

from .base import Backend, host_arrays, import_framework


def gradient_descent(X, y, scale, n_iter):
    """One fused pass over X per iteration: each row's residual is formed and immediately
    accumulated into the gradient, so X streams through the cache once, not twice."""
    n, d = X.shape
    w = np.zeros(d, dtype=X.dtype)
    grad = np.empty(d, dtype=X.dtype)
    b = scale - scale  # a zero of the input's float type
    for _ in range(n_iter):
        grad[:] = 0
        e_sum = scale - scale
        for i in range(n):
            e = b - y[i]
            for j in range(d):
                e += X[i, j] * w[j]
            e_sum += e
            for j in range(d):
                grad[j] += e * X[i, j]
        for j in range(d):
            w[j] -= scale * grad[j]
        b -= scale * e_sum
    return w, b


_kernel = None


class NumbaBackend(Backend):
    """An explicit-loop kernel compiled by numba.njit (serial: one core)."""

    name = "numba"
    extra = "numba"
    compiles = True

    def _load(self):
        global _kernel
        self._numba = import_framework("numba", self.extra)
        if self.threads is not None:
            self._numba.set_num_threads(min(self.threads, self._numba.config.NUMBA_NUM_THREADS))
        if _kernel is None:
            # 'reassoc' lets LLVM vectorise the row dot product; nnan/ninf stay off so that a
            # diverging fit still produces inf/nan for fit() to detect. cache=True: later
            # processes load the machine code from numba's cache (NUMBA_CACHE_DIR) instead
            # of compiling again, as a numba user's program would.
            _kernel = self._numba.njit(fastmath={"reassoc", "contract"}, nogil=True, cache=True)(gradient_descent)
        self._kernel = _kernel

    def to_device(self, X, y):
        return host_arrays(X, y)

    def run(self, data, learning_rate, n_iter):
        X, y = data
        scale = X.dtype.type(2 * learning_rate / X.shape[0])
        return self._kernel(X, y, scale, n_iter)

    def to_host(self, result):
        w, b = result
        return w, float(b)

    def trace_count(self):
        return len(self._kernel.signatures)

    def version(self):
        return self._numba.__version__

    def thread_settings(self):
        # The kernel has no prange, so it runs on one thread whatever numba's pool size.
        return {"threads": 1, "numba_pool": self._numba.get_num_threads()}
