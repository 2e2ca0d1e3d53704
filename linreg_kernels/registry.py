"""Variant name -> backend class. Adding a variant: one module in backends/ and one line here;
the tests, the benchmarks and the report pick it up from BACKENDS."""
import functools
import importlib

from .errors import BackendUnavailable

_REGISTRY = {
    "numpy": "numpy_backend:NumpyBackend",
    "numba": "numba_backend:NumbaBackend",
    "numba-parallel": "numba_parallel_backend:NumbaParallelBackend",
    "jax": "jax_backend:JaxBackend",
    "tensorflow": "tensorflow_backend:TensorflowBackend",
    "torch": "torch_backend:TorchBackend",
    "torch-compile": "torch_compile_backend:TorchCompileBackend",
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
    return getattr(importlib.import_module(f"linreg_kernels.backends.{module}"), cls)


def backends_on(device):
    """The variants that have an implementation for `device`, in registry order."""
    return [b for b in BACKENDS if device in backend_class(b).devices]


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
