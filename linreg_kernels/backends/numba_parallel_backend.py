import numpy as np

from .base import import_framework, require_api
from .numba_backend import BLOCK, FASTMATH, NumbaBackend, jit_helpers, to_layout


def apply_partials(partial, w, b, scale):
    """One step's update of w (in place) and b (returned) from the blocks' partial sums, added in
    a fixed order (the result does not depend on timing)."""
    n_chunks, d = partial.shape[0], partial.shape[1] - 1
    for j in range(d + 1):
        total = partial[0, j]
        for c in range(1, n_chunks):
            total += partial[c, j]
        if j < d:
            w[j] -= scale * total
        else:
            b -= scale * total
    return b


def parallel_gradient_descent(X, y, scale, n_iter, n_chunks):
    """The serial kernel's pass over X split into n_chunks row blocks, one per thread; each block
    sums its gradient in a buffer of its own, so no two threads write the same cache line, and
    the blocks' partial sums are added by apply_partials."""
    n, d = X.shape
    w = np.zeros(d, dtype=X.dtype)
    b = scale - scale
    partial = np.empty((n_chunks, d + 1), dtype=X.dtype)
    for _ in range(n_iter):
        for c in prange(n_chunks):
            grad = np.zeros(d, dtype=X.dtype)
            partial[c, d] = _accumulate_rows(X, y, w, b, c * n // n_chunks, (c + 1) * n // n_chunks, grad)
            partial[c, :d] = grad
        b = _apply_partials(partial, w, b, scale)
    return w, b


def parallel_gradient_descent_columns(XT, y, scale, n_iter, n_chunks):
    """parallel_gradient_descent over X stored as columns (XT = X.T), each block with its own
    residual buffer."""
    d, n = XT.shape
    w = np.zeros(d, dtype=XT.dtype)
    b = scale - scale
    partial = np.empty((n_chunks, d + 1), dtype=XT.dtype)
    e = np.empty((n_chunks, BLOCK), dtype=XT.dtype)
    for _ in range(n_iter):
        for c in prange(n_chunks):
            grad = np.zeros(d, dtype=XT.dtype)
            partial[c, d] = _accumulate_columns(XT, y, w, b, c * n // n_chunks, (c + 1) * n // n_chunks, grad, e[c])
            partial[c, :d] = grad
        b = _apply_partials(partial, w, b, scale)
    return w, b


prange = range  # numba.prange once numba is loaded (a plain range to Python)
_accumulate_rows = _accumulate_columns = _apply_partials = None
_kernels = {}


class NumbaParallelBackend(NumbaBackend):
    """The fused numba kernel parallelised over row blocks (numba.prange), one block per thread."""

    name = "numba-parallel"

    def _load(self):
        global prange, _accumulate_rows, _accumulate_columns, _apply_partials
        self._numba = numba = import_framework("numba", self.framework)
        set_threads = require_api(numba, "set_num_threads", self.framework)
        if self.threads is not None:
            set_threads(min(self.threads, numba.config.NUMBA_NUM_THREADS))
        if not _kernels:
            prange = require_api(numba, "prange", self.framework)
            # numba's cache notices edits to this file only: after editing a helper in
            # numba_backend.py, clear the cache (it lives in __pycache__ or NUMBA_CACHE_DIR).
            _accumulate_rows, _accumulate_columns = jit_helpers(numba)
            _apply_partials = numba.njit(fastmath=FASTMATH, inline="always", cache=True)(apply_partials)
            jit = numba.njit(fastmath=FASTMATH, parallel=True, nogil=True, cache=True)
            _kernels.update(rows=jit(parallel_gradient_descent), columns=jit(parallel_gradient_descent_columns))
        self._kernels = _kernels

    def to_device(self, X, y):
        """Rows or columns by the serial kernel's rule; its two-feature loop has no parallel form
        (a step at d = 2 is shorter than the pool's fork and join), so d = 2 takes columns."""
        kind, X, y = to_layout(X, y)
        return ("rows" if kind == "rows" else "columns"), X, y

    def run(self, data, learning_rate, n_iter):
        kind, X, y = data
        scale = X.dtype.type(2 * learning_rate / y.shape[0])
        return self._kernels[kind](X, y, scale, n_iter, self._numba.get_num_threads())

    def thread_settings(self):
        threads = self._numba.get_num_threads()
        try:
            layer = self._numba.threading_layer()
        except ValueError:  # numba has not started its pool yet: no parallel kernel has run
            layer = None
        return {"threads": threads, "threading_layer": layer}
