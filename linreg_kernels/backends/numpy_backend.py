import numpy as np

from .base import Backend, host_arrays


class NumpyBackend(Backend):
    """Plain NumPy on the CPU; the BLAS library does the two matrix-vector products.

    The loop reuses preallocated buffers (`out=` and in-place updates), as NumPy code tuned by
    hand would, so each iteration allocates nothing.
    """

    name = "numpy"
    framework = "numpy"

    def _load(self):
        if self.threads is not None:
            import threadpoolctl

            self._limits = threadpoolctl.threadpool_limits(limits=self.threads, user_api="blas")

    def to_device(self, X, y):
        return host_arrays(X, y)

    def run(self, data, learning_rate, n_iter):
        X, y = data
        n, d = X.shape
        dtype = X.dtype.type
        scale = dtype(2 * learning_rate / n)
        w = np.zeros(d, dtype=X.dtype)
        b = dtype(0)
        e = np.empty(n, dtype=X.dtype)
        grad = np.empty(d, dtype=X.dtype)
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is fit()'s to report
            for _ in range(n_iter):
                np.dot(X, w, out=e)
                e += b
                e -= y
                np.dot(e, X, out=grad)  # X.T @ e without materialising the transpose
                grad *= scale
                w -= grad
                b -= scale * e.sum()
        return w, b

    def to_host(self, result):
        w, b = result
        return w, float(b)

    def version(self):
        return np.__version__

    def thread_settings(self):
        import threadpoolctl

        pools = [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
        return {"threads": max(pools, default=1), "blas_pools": pools}
