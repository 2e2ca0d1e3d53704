import os

import numpy as np
import pytest

from linreg_kernels import BACKENDS, BackendUnavailable, backend_class, get_backend

# Comma-separated backends ("jax" means jax on the CPU, "jax:gpu" the GPU) whose absence fails
# the run instead of skipping: CI lists the five CPU backends so a broken install cannot pass.
REQUIRE_ENV_VAR = "LINREG_REQUIRE_BACKENDS"

DTYPES = (np.float32, np.float64)
BACKEND_DEVICES = [(b, d) for b in BACKENDS for d in backend_class(b).devices]


def _required():
    entries = [e.strip() for e in os.environ.get(REQUIRE_ENV_VAR, "").split(",") if e.strip()]
    return {e if ":" in e else f"{e}:cpu" for e in entries}


def backend_or_skip(name, device):
    try:
        return get_backend(name, device)
    except BackendUnavailable as exc:
        if f"{name}:{device}" in _required():
            pytest.fail(f"{name} on {device} is required by {REQUIRE_ENV_VAR} but unavailable: {exc}")
        pytest.skip(f"{name} on {device} unavailable: {exc}")


def backend_device_params(compiling_only=False):
    return [pytest.param(b, d, id=f"{b}-{d}") for b, d in BACKEND_DEVICES
            if not compiling_only or backend_class(b).compiles]


def backend_device_dtype_params():
    return [pytest.param(b, d, dt, id=f"{b}-{d}-{np.dtype(dt).name}") for b, d in BACKEND_DEVICES for dt in DTYPES]
