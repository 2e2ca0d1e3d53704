"""Backend name -> class. Adding a backend: one module in backends/ and one line here."""
import functools
import importlib

from .errors import BackendUnavailable

_REGISTRY = {
    "numpy": "linreg_kernels.backends.numpy_backend:NumpyBackend",
    "numba": "linreg_kernels.backends.numba_backend:NumbaBackend",
    "jax": "linreg_kernels.backends.jax_backend:JaxBackend",
    "tensorflow": "linreg_kernels.backends.tensorflow_backend:TensorflowBackend",
    "torch": "linreg_kernels.backends.torch_backend:TorchBackend",
}

BACKENDS = tuple(_REGISTRY)
DEVICES = ("cpu", "gpu")


def _check_name(backend, device):
    if backend not in _REGISTRY:
        raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; expected one of {', '.join(DEVICES)}")


def backend_class(backend):
    """The backend's class; importing its module does not import its framework."""
    _check_name(backend, "cpu")
    module, cls = _REGISTRY[backend].split(":")
    return getattr(importlib.import_module(module), cls)


@functools.lru_cache(maxsize=None)
def get_backend(backend="numpy", device="cpu"):
    """The (per-process, cached) backend object; raises BackendUnavailable if it cannot run here."""
    _check_name(backend, device)
    return backend_class(backend)(device)


def availability(backend, device):
    """None if the backend runs on this device here, else the reason it does not."""
    try:
        get_backend(backend, device)
    except BackendUnavailable as exc:
        return str(exc)
    return None
