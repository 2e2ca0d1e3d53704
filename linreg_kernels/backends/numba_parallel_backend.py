import numpy as np

from .base import import_framework, require_api
from .numba_backend import FASTMATH, NumbaBackend, jit_accumulate_rows


def parallel_gradient_descent(X, y, scale, n_iter, n_chunks):
    """The serial kernel's pass over X split into n_chunks row blocks, one per thread; each block
    sums its gradient in a buffer of its own, so no two threads write the same cache line, and
    the blocks' partial sums are added in a fixed order (the result does not depend on timing)."""
    n, d = X.shape
    w = np.zeros(d, dtype=X.dtype)
    b = scale - scale
    partial = np.empty((n_chunks, d + 1), dtype=X.dtype)
    for _ in range(n_iter):
        for c in prange(n_chunks):
            grad = np.zeros(d, dtype=X.dtype)
            partial[c, d] = _accumulate_rows(X, y, w, b, c * n // n_chunks, (c + 1) * n // n_chunks, grad)
            partial[c, :d] = grad
        for j in range(d + 1):
            total = partial[0, j]
            for c in range(1, n_chunks):
                total += partial[c, j]
            if j < d:
                w[j] -= scale * total
            else:
                b -= scale * total
    return w, b


prange = range  # numba.prange once numba is loaded (a plain range to Python)
_accumulate_rows = None
_kernel = None


class NumbaParallelBackend(NumbaBackend):
    """The fused numba kernel parallelised over row blocks (numba.prange), one block per thread."""

    name = "numba-parallel"

    def _load(self):
        global prange, _accumulate_rows, _kernel
        self._numba = numba = import_framework("numba", self.framework)
        set_threads = require_api(numba, "set_num_threads", self.framework)
        if self.threads is not None:
            set_threads(min(self.threads, numba.config.NUMBA_NUM_THREADS))
        if _kernel is None:
            prange = require_api(numba, "prange", self.framework)
            # numba's cache notices edits to this file only: after editing accumulate_rows in
            # numba_backend.py, clear the cache (it lives in __pycache__ or NUMBA_CACHE_DIR).
            _accumulate_rows = jit_accumulate_rows(numba)
            _kernel = numba.njit(fastmath=FASTMATH, parallel=True, nogil=True, cache=True)(parallel_gradient_descent)
        self._kernel = _kernel

    def run(self, data, learning_rate, n_iter):
        X, y = data
        scale = X.dtype.type(2 * learning_rate / X.shape[0])
        return self._kernel(X, y, scale, n_iter, self._numba.get_num_threads())

    def thread_settings(self):
        threads = self._numba.get_num_threads()
        try:
            layer = self._numba.threading_layer()
        except ValueError:  # numba has not started its pool yet: no parallel kernel has run
            layer = None
        return {"threads": threads, "threading_layer": layer}
