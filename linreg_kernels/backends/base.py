"""The interface every backend implements, and the helpers they share.

A backend splits one fit into the steps a benchmark must time apart:

    data = backend.to_device(X, y)                    # host -> device copy, complete on return
    result = backend.run(data, learning_rate, n_iter)  # compiles on the first call for a shape,
                                                      # dtype and n_iter; returns once the device is done
    w, b = backend.to_host(result)                    # device -> host

A backend module imports nothing heavy at module level; its framework is imported when the
backend object is created, so listing backends and their devices stays cheap.
"""
import importlib
import os

import numpy as np

from ..errors import BackendUnavailable
from ..frameworks import requirements

THREADS_ENV_VAR = "LINREG_NUM_THREADS"


def requested_threads():
    """Thread count from LINREG_NUM_THREADS, or None to leave every framework at its default."""
    raw = os.environ.get(THREADS_ENV_VAR, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{THREADS_ENV_VAR} must be a positive integer, got {raw!r}")
    return int(raw)


def import_framework(module, framework):
    """Import `module`, or raise BackendUnavailable saying which pip extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendUnavailable(
            f"{module} is not installed ({exc}); install it with: pip install 'linreg_kernels[{framework}]'"
        ) from exc


def require_api(root, dotted, framework):
    """`root.a.b.c` for dotted "a.b.c", or BackendUnavailable if this release of the framework lacks
    it. Only the framework's own API goes through here: an AttributeError in a backend's code
    stays a failure."""
    obj = root
    for part in dotted.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            version = getattr(root, "__version__", "?")
            raise BackendUnavailable(
                f"{framework} {version} has no {dotted}, which this backend needs "
                f"(tested with {', '.join(requirements(framework))})") from None
    return obj


def host_arrays(X, y):
    """C-contiguous views (or copies, for strided input) that every framework can ingest."""
    return np.ascontiguousarray(X), np.ascontiguousarray(y)


class Backend:
    name = ""  # the registry's name for this variant, e.g. "torch-compile"
    framework = ""  # a key of frameworks.FRAMEWORKS: the pip extra, and what a version comparison moves
    devices = ("cpu",)
    compiles = False  # whether trace_count() means anything

    def __init__(self, device="cpu"):
        if device not in self.devices:
            raise BackendUnavailable(f"{self.name} has no {device} implementation (it runs on: {', '.join(self.devices)})")
        self.device = device
        self.threads = requested_threads()
        self._load()

    def _load(self):
        """Import the framework, pick the device, apply thread settings."""
        raise NotImplementedError

    def to_device(self, X, y):
        raise NotImplementedError

    def run(self, data, learning_rate, n_iter):
        raise NotImplementedError

    def to_host(self, result):
        raise NotImplementedError

    def trace_count(self):
        """How many programs this backend has traced or compiled in this process."""
        return 0

    def version(self):
        """The framework's version string."""
        raise NotImplementedError

    def thread_settings(self):
        """The framework's thread settings as they hold now, read back from the framework where it
        says ("threads": None when it cannot tell). Utilisation measured around real runs is the
        proof; this is the label."""
        return {}

    def __repr__(self):
        return f"<{type(self).__name__} {self.name} on {self.device}>"
