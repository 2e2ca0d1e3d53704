from .base import Backend, BackendUnavailable, host_arrays, import_framework


class TorchBackend(Backend):
    """PyTorch eager mode: in-place BLAS calls into preallocated buffers, no autograd.

    Eager is what the article ran and what PyTorch users write for a loop of two matrix-vector
    products. The gradient goes into a buffer of its own before it is subtracted: adding the
    scaled terms straight into w (addmv_ on w) rounds every partial sum at the size of w and was
    100-300x less accurate than every other backend.
    """

    name = "torch"
    framework = "torch"
    devices = ("cpu", "gpu")

    def _load(self):
        torch = import_framework("torch", self.framework)
        if self.device == "gpu":
            if not torch.cuda.is_available():
                raise BackendUnavailable("torch found no CUDA GPU (torch.cuda.is_available() is False)")
            self._device = torch.device("cuda", torch.cuda.current_device())
        else:
            self._device = torch.device("cpu")
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        torch.set_float32_matmul_precision("highest")  # no TF32 on GPUs that have it
        self._torch = torch

    def _sync(self):
        if self._device.type == "cuda":
            self._torch.cuda.synchronize(self._device)

    def to_device(self, X, y):
        X, y = host_arrays(X, y)
        # torch.tensor copies, so the caller's arrays can never be written through.
        data = self._torch.tensor(X, device=self._device), self._torch.tensor(y, device=self._device)
        self._sync()
        return data

    def run(self, data, learning_rate, n_iter):
        torch = self._torch
        X, y = data
        n, d = X.shape
        scale = 2 * learning_rate / n
        with torch.inference_mode():
            w = X.new_zeros(d)
            b = X.new_zeros(())  # stays on the device: no host sync per iteration
            e = torch.empty_like(y)
            grad = X.new_empty(d)
            for _ in range(n_iter):
                torch.addmv(y, X, w, beta=-1, out=e)  # e = X @ w - y
                e += b
                torch.mv(X.T, e, out=grad)
                w.sub_(grad, alpha=scale)
                b.sub_(e.sum(), alpha=scale)
        self._sync()
        return w, b

    def to_host(self, result):
        w, b = result
        return w.cpu().numpy(), float(b)

    def version(self):
        return self._torch.__version__

    def thread_settings(self):
        return {"threads": self._torch.get_num_threads(), "inter_op": self._torch.get_num_interop_threads()}
