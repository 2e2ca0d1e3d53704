import os

from .base import Backend, BackendUnavailable, host_arrays, import_framework


class TensorflowBackend(Backend):
    """tf.function(jit_compile=True): the whole loop, a tf.while_loop, compiled by XLA.

    The learning rate and iteration count are passed as tensors, so new values reuse the
    trace. The loop is a while_loop on a counter, not `for _ in tf.range(n)`: XLA needs a
    range's length at compile time, so tf.range would recompile for every iteration count.
    """

    name = "tensorflow"
    extra = "tensorflow"
    devices = ("cpu", "gpu")
    compiles = True

    def _load(self):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide oneDNN/absl start-up chatter
        tf = import_framework("tensorflow", self.extra)
        kind = self.device.upper()
        if not tf.config.list_physical_devices(kind):
            raise BackendUnavailable(f"tensorflow found no {self.device} device")
        if self.threads is not None:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(self.threads)
                tf.config.threading.set_inter_op_parallelism_threads(self.threads)
            except RuntimeError:
                pass  # the runtime already started in this process; thread_settings() shows what holds
        tf.config.experimental.enable_tensor_float_32_execution(False)
        self._sync_devices = getattr(tf.test.experimental, "sync_devices", None)  # TensorFlow >= 2.14
        if self.device == "gpu" and self._sync_devices is None:
            raise BackendUnavailable(f"tensorflow {tf.__version__} has no tf.test.experimental.sync_devices "
                                     "(2.14+), needed to wait for GPU work to finish")
        self._tf = tf
        self._device = f"/{kind}:0"
        self._kernel = tf.function(self._fit, jit_compile=True)

    def _fit(self, X, y, learning_rate, n_iter):
        tf = self._tf
        scale = tf.cast(2 * learning_rate / X.shape[0], X.dtype)
        def step(i, w, b):
            e = tf.linalg.matvec(X, w) + b - y
            return (i + 1, w - scale * tf.linalg.matvec(X, e, transpose_a=True),
                    b - scale * tf.reduce_sum(e))

        start = (tf.constant(0, n_iter.dtype), tf.zeros([X.shape[1]], X.dtype), tf.zeros([], X.dtype))
        _, w, b = tf.while_loop(lambda i, w, b: i < n_iter, step, start)
        return w, b

    def compiled_program(self, data, learning_rate, n_iter):
        """The optimised HLO text XLA compiles for these arguments (for tests)."""
        X, y = data
        args = X, y, self._tf.constant(learning_rate, X.dtype), self._tf.constant(n_iter, self._tf.int64)
        with self._tf.device(self._device):
            return self._kernel.experimental_get_compiler_ir(*args)(stage="optimized_hlo")

    def _sync(self):
        if self.device == "gpu":
            self._sync_devices()

    def to_device(self, X, y):
        X, y = host_arrays(X, y)
        with self._tf.device(self._device):
            data = self._tf.identity(X), self._tf.identity(y)
        self._sync()
        return data

    def run(self, data, learning_rate, n_iter):
        tf = self._tf
        X, y = data
        with tf.device(self._device):
            result = self._kernel(X, y, tf.constant(learning_rate, X.dtype), tf.constant(n_iter, tf.int64))
        self._sync()  # CPU execution is synchronous in eager TF; GPU kernels are not
        return result

    def to_host(self, result):
        w, b = result
        return w.numpy(), float(b.numpy())

    def trace_count(self):
        return self._kernel.experimental_get_tracing_count()

    def version(self):
        return self._tf.__version__

    def thread_settings(self):
        threading = self._tf.config.threading
        intra = threading.get_intra_op_parallelism_threads()
        # 0 is TensorFlow's "system default": one thread per core.
        return {"threads": intra or os.cpu_count(), "intra_op": intra,
                "inter_op": threading.get_inter_op_parallelism_threads()}
