"""The interface every backend implements, and the helpers they share.

A backend splits one fit into the steps a benchmark must time apart:

    data = backend.to_device(X, y)            # host -> device copy, complete on return
    backend.warmup(data, learning_rate)       # compiles for these shapes and dtype
    result = backend.run(data, learning_rate, n_iter)   # returns once the device is done
    w, b = backend.to_host(result)            # device -> host

A backend module imports nothing heavy at module level; its framework is imported when the
backend object is created, so listing backends and their devices stays cheap.
"""
import importlib
import os

import numpy as np

from ..errors import BackendUnavailable

THREADS_ENV_VAR = "LINREG_NUM_THREADS"


def requested_threads():
    """Thread count from LINREG_NUM_THREADS, or None to leave every framework at its default."""
    raw = os.environ.get(THREADS_ENV_VAR, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{THREADS_ENV_VAR} must be a positive integer, got {raw!r}")
    return int(raw)


def import_framework(module, extra):
    """Import `module`, or raise BackendUnavailable saying which pip extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendUnavailable(
            f"{module} is not installed ({exc}); install it with: pip install 'linreg_kernels[{extra}]'"
        ) from exc


def host_arrays(X, y):
    """C-contiguous views (or copies, for strided input) that every framework can ingest."""
    return np.ascontiguousarray(X), np.ascontiguousarray(y)


class Backend:
    name = ""
    extra = ""  # the pip extra that installs the framework
    devices = ("cpu",)
    compiles = False  # whether trace_count() means anything

    def __init__(self, device="cpu"):
        if device not in self.devices:
            raise BackendUnavailable(f"{self.name} has no {device} implementation (it runs on: {', '.join(self.devices)})")
        self.device = device
        self.threads = requested_threads()
        try:
            self._load()
        except AttributeError as exc:
            # A release that renamed or dropped an API this backend calls: report, don't crash.
            raise BackendUnavailable(f"{self.name}: the installed release lacks an API this backend needs "
                                     f"({exc}); see setup.py for the tested versions") from exc

    def _load(self):
        """Import the framework, pick the device, apply thread settings."""
        raise NotImplementedError

    def to_device(self, X, y):
        raise NotImplementedError

    def run(self, data, learning_rate, n_iter):
        raise NotImplementedError

    def to_host(self, result):
        raise NotImplementedError

    def warmup(self, data, learning_rate):
        """Trigger compilation for these shapes and dtype; one iteration suffices because the
        iteration count is a runtime argument of every compiled kernel."""
        self.run(data, learning_rate, 1)

    def trace_count(self):
        """How many times the kernel was traced or compiled in this process."""
        return 0

    def version(self):
        """The framework's version string."""
        raise NotImplementedError

    def thread_settings(self):
        """The thread settings in force for this framework, as recorded with results."""
        return {}

    def __repr__(self):
        return f"<{type(self).__name__} {self.name} on {self.device}>"
