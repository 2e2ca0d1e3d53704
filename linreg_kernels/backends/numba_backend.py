import numpy as np

from .base import Backend, host_arrays, import_framework, require_api

# 'reassoc' lets LLVM vectorise the row dot products; nnan/ninf stay off so that a diverging fit
# still produces inf/nan for fit() to detect.
FASTMATH = {"reassoc", "contract"}


def accumulate_rows(X, y, w, b, lo, hi, grad):
    """grad += sum of e_i * X[i] over rows lo..hi-1, where e_i = X[i] @ w + b - y[i]; returns the
    sum of the e_i. One pass over those rows: each row's residual is used while the row is still
    in L1. Four rows per step share every load of w and every load and store of grad, which
    measured ~1.2x faster than one row per step at d = 100 (it halves the loads and stores)."""
    d = X.shape[1]
    e_sum = b - b
    i = lo
    while i + 4 <= hi:
        r0, r1, r2, r3 = X[i], X[i + 1], X[i + 2], X[i + 3]
        e0, e1, e2, e3 = b - y[i], b - y[i + 1], b - y[i + 2], b - y[i + 3]
        for j in range(d):
            wj = w[j]
            e0 += r0[j] * wj
            e1 += r1[j] * wj
            e2 += r2[j] * wj
            e3 += r3[j] * wj
        for j in range(d):
            grad[j] += (e0 * r0[j] + e1 * r1[j]) + (e2 * r2[j] + e3 * r3[j])
        e_sum += (e0 + e1) + (e2 + e3)
        i += 4
    while i < hi:
        row = X[i]
        e = b - y[i]
        for j in range(d):
            e += row[j] * w[j]
        for j in range(d):
            grad[j] += e * row[j]
        e_sum += e
        i += 1
    return e_sum


BLOCK = 1024  # rows per block of the column layout: their residuals (8 KiB in float64) stay in L1
COLUMNS_MAX_ROW_BYTES = 80  # measured: columns won up to d = 10 in float64 and d = 20 in float32


def layout(d, dtype):
    """How to_device lays X out for d features (the rule; measured on a 2-core AMD EPYC Zen 5, one
    thread, 2026-12-03, fastest of 5). "two": d = 2, both weights and gradients held in
    registers over one pass that LLVM vectorises across rows (1.0 ms against 16.6 ms for rows in
    float64); at d >= 3 LLVM no longer keeps them in registers and that loop stops vectorising.
    "columns": X.T, each feature's column read in blocks of BLOCK rows, every inner loop over
    rows and so vectorised (float64 d = 10: 12.6 against 22.3 ms), for rows of at most
    COLUMNS_MAX_ROW_BYTES; past that the row loops below are faster (d = 20 float64: 34 against
    30 ms). "rows": X as given."""
    if d == 2:
        return "two"
    return "columns" if d * dtype.itemsize <= COLUMNS_MAX_ROW_BYTES else "rows"


def accumulate_columns(XT, y, w, b, lo, hi, grad, e):
    """accumulate_rows for X stored as XT = X.T (C-contiguous), using e (BLOCK values) for the
    residuals of one block of rows at a time. Each loop runs over a slice of a column, which
    numba types as contiguous and LLVM vectorises (indexing XT[j, i] directly does not)."""
    d = XT.shape[0]
    e_sum = b - b
    for start in range(lo, hi, BLOCK):
        stop = min(start + BLOCK, hi)
        ys = y[start:stop]
        for i in range(stop - start):
            e[i] = b - ys[i]
        for j in range(d):
            column, wj = XT[j][start:stop], w[j]
            for i in range(stop - start):
                e[i] += column[i] * wj
        for j in range(d):
            column, s = XT[j][start:stop], b - b
            for i in range(stop - start):
                s += column[i] * e[i]
            grad[j] += s
        for i in range(stop - start):
            e_sum += e[i]
    return e_sum


def gradient_descent_two(XT, y, scale, n_iter):
    """Two features: one pass over the rows per step, weights and gradients in registers."""
    x0, x1 = XT[0], XT[1]
    w0 = w1 = b = scale - scale
    for _ in range(n_iter):
        g0 = g1 = e_sum = b - b
        for i in range(y.size):
            e = x0[i] * w0 + x1[i] * w1 + b - y[i]
            g0 += e * x0[i]
            g1 += e * x1[i]
            e_sum += e
        w0 -= scale * g0
        w1 -= scale * g1
        b -= scale * e_sum
    return np.array([w0, w1]), b


def gradient_descent_columns(XT, y, scale, n_iter):
    d, n = XT.shape
    w = np.zeros(d, dtype=XT.dtype)
    grad = np.empty(d, dtype=XT.dtype)
    e = np.empty(BLOCK, dtype=XT.dtype)
    b = scale - scale
    for _ in range(n_iter):
        grad[:] = 0
        e_sum = _accumulate_columns(XT, y, w, b, 0, n, grad, e)
        for j in range(d):
            w[j] -= scale * grad[j]
        b -= scale * e_sum
    return w, b


def gradient_descent(X, y, scale, n_iter):
    n, d = X.shape
    w = np.zeros(d, dtype=X.dtype)
    grad = np.empty(d, dtype=X.dtype)
    b = scale - scale  # a zero of the input's float type
    for _ in range(n_iter):
        grad[:] = 0
        e_sum = _accumulate_rows(X, y, w, b, 0, n, grad)
        for j in range(d):
            w[j] -= scale * grad[j]
        b -= scale * e_sum
    return w, b


# The compiled helpers the kernels call (numba reads them when it compiles a kernel), and the
# kernels by layout; made on first use.
_accumulate_rows = _accumulate_columns = None
_kernels = {}


def jit_helpers(numba):
    global _accumulate_rows, _accumulate_columns
    if _accumulate_rows is None:
        # cache=True: later processes load the machine code from numba's cache
        # (NUMBA_CACHE_DIR) instead of compiling again, as a numba user's program would.
        jit = numba.njit(fastmath=FASTMATH, inline="always", cache=True)
        _accumulate_rows, _accumulate_columns = jit(accumulate_rows), jit(accumulate_columns)
    return _accumulate_rows, _accumulate_columns


def to_layout(X, y):
    """(layout, X as that layout wants it, y), C-contiguous."""
    X, y = host_arrays(X, y)
    kind = layout(X.shape[1], X.dtype)
    return kind, (X if kind == "rows" else np.ascontiguousarray(X.T)), y


class NumbaBackend(Backend):
    """Explicit loops compiled by numba.njit, serial: one core whatever the thread setting."""

    name = "numba"
    framework = "numba"
    compiles = True

    def _load(self):
        self._numba = import_framework("numba", self.framework)
        if not _kernels:
            jit_helpers(self._numba)
            jit = self._numba.njit(fastmath=FASTMATH, nogil=True, cache=True)
            _kernels.update(rows=jit(gradient_descent), columns=jit(gradient_descent_columns),
                            two=jit(gradient_descent_two))
        self._kernels = _kernels

    def to_device(self, X, y):
        return to_layout(X, y)

    def run(self, data, learning_rate, n_iter):
        kind, X, y = data
        return self._kernels[kind](X, y, X.dtype.type(2 * learning_rate / y.shape[0]), n_iter)

    def to_host(self, result):
        w, b = result
        return w, float(b)

    def trace_count(self):
        return sum(len(kernel.signatures) for kernel in self._kernels.values())

    def version(self):
        return self._numba.__version__

    def thread_settings(self):
        return {"threads": 1, "numba_pool": require_api(self._numba, "get_num_threads", self.framework)()}
