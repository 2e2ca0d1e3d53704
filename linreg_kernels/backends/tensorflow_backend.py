import os

from .base import Backend, BackendUnavailable, host_arrays, import_framework, require_api


class TensorflowBackend(Backend):
    """tf.function(jit_compile=True): the whole loop, a tf.while_loop, compiled by XLA.

    The iteration count is a Python int, so it is a constant of the traced program: XLA knows the
    loop's trip count (a GPU never copies the condition to the host) and a new count traces anew.
    The learning rate is a tensor, so a new value reuses the trace.
    """

    name = "tensorflow"
    framework = "tensorflow"
    devices = ("cpu", "gpu")
    compiles = True

    def _load(self):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide oneDNN/absl start-up chatter
        tf = import_framework("tensorflow", self.framework)
        kind = self.device.upper()
        if not tf.config.list_physical_devices(kind):
            raise BackendUnavailable(f"tensorflow found no {self.device} device")
        threading = require_api(tf, "config.threading", self.framework)
        if self.threads is not None:
            try:
                threading.set_intra_op_parallelism_threads(self.threads)
                threading.set_inter_op_parallelism_threads(self.threads)
            except RuntimeError:
                pass  # the runtime already started in this process; thread_settings() shows what holds
        tf.config.experimental.enable_tensor_float_32_execution(False)
        if self.device == "gpu":
            self._sync_devices = require_api(tf, "test.experimental.sync_devices", self.framework)
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

        start = (tf.constant(0), tf.zeros([X.shape[1]], X.dtype), tf.zeros([], X.dtype))
        _, w, b = tf.while_loop(lambda i, w, b: i < n_iter, step, start)
        return w, b

    def _args(self, data, learning_rate, n_iter):
        X, y = data
        return X, y, self._tf.constant(learning_rate, X.dtype), int(n_iter)

    def compiled_program(self, data, learning_rate, n_iter):
        """The optimised HLO XLA compiles for these arguments (for tests)."""
        args = self._args(data, learning_rate, n_iter)
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
        with self._tf.device(self._device):
            result = self._kernel(*self._args(data, learning_rate, n_iter))
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
