"""What the tests share: which backend/device pairs exist, and which must not be skipped."""
import os

import numpy as np
import pytest

from benchmarks.settings import REQUIRE_BACKENDS_ENV_VAR as REQUIRE_ENV_VAR
from linreg_kernels import BACKENDS, BackendUnavailable, backend_class, get_backend

# REQUIRE_ENV_VAR, comma-separated: "cpu" (every variant registered for the CPU), "gpu", or
# "variant:device" entries such as "jax:gpu". A required pair that cannot run fails instead of
# skipping, so a broken install cannot pass; tasks.py test requires "cpu".

DTYPES = (np.float32, np.float64)
BACKEND_DEVICES = [(b, d) for b in BACKENDS for d in backend_class(b).devices]


def required():
    out = set()
    for entry in (e.strip() for e in os.environ.get(REQUIRE_ENV_VAR, "").split(",")):
        if entry in ("cpu", "gpu"):
            out |= {f"{b}:{d}" for b, d in BACKEND_DEVICES if d == entry}
        elif entry:
            out.add(entry if ":" in entry else f"{entry}:cpu")
    return out


def backend_or_skip(name, device):
    try:
        return get_backend(name, device)
    except BackendUnavailable as exc:
        if f"{name}:{device}" in required():
            pytest.fail(f"{name} on {device} is required by {REQUIRE_ENV_VAR} but unavailable: {exc}")
        pytest.skip(f"{name} on {device} unavailable: {exc}")


def backend_device_params(compiling_only=False):
    return [pytest.param(b, d, id=f"{b}-{d}") for b, d in BACKEND_DEVICES
            if not compiling_only or backend_class(b).compiles]


def backend_device_dtype_params():
    return [pytest.param(b, d, dt, id=f"{b}-{d}-{np.dtype(dt).name}") for b, d in BACKEND_DEVICES for dt in DTYPES]


def cpu_params():
    return [pytest.param(b, id=b) for b, d in BACKEND_DEVICES if d == "cpu"]
