"""The public API's contract: bad input is rejected by name, unavailable backends say why."""
import json
import subprocess
import sys

import numpy as np
import pytest

import linreg_kernels
from helpers import backend_or_skip
from linreg_kernels import BACKENDS, DEVICES, BackendUnavailable, backend_class, fit, make_problem
from linreg_kernels.backends import base

X, Y, *_ = make_problem(100, 3)


def _with_nan(a):
    a = a.copy()
    a.flat[5] = np.nan
    return a


def _with_inf(a):
    a = a.copy()
    a.flat[0] = np.inf
    return a


BAD_INPUTS = {
    "X-1d": (dict(X=X[:, 0]), "X must be 2-D"),
    "X-3d": (dict(X=X[None]), "X must be 2-D"),
    "X-list": (dict(X=X.tolist()), "X must be a NumPy array"),
    "y-2d": (dict(y=Y[:, None]), "y must be 1-D"),
    "length-mismatch": (dict(y=Y[:-1]), "y has 99 values but X has 100 rows"),
    "no-rows": (dict(X=X[:0], y=Y[:0]), "at least one row and one column"),
    "no-columns": (dict(X=X[:, :0]), "at least one row and one column"),
    "X-int": (dict(X=X.astype(np.int64)), "X has dtype int64; expected float32 or float64"),
    "y-int": (dict(y=Y.astype(np.int32)), "y has dtype int32"),
    "X-complex": (dict(X=X.astype(np.complex128)), "X has dtype complex128"),
    "X-float16": (dict(X=X.astype(np.float16), y=Y.astype(np.float16)), "X has dtype float16"),
    "dtype-mismatch": (dict(X=X.astype(np.float32)), "X and y must have the same dtype"),
    "X-nan": (dict(X=_with_nan(X)), "X contains NaN or inf"),
    "X-inf": (dict(X=_with_inf(X)), "X contains NaN or inf"),
    "y-nan": (dict(y=_with_nan(Y)), "y contains NaN or inf"),
    "y-inf": (dict(y=_with_inf(Y)), "y contains NaN or inf"),
    "lr-zero": (dict(learning_rate=0.0), "learning_rate must be a finite number > 0, got 0.0"),
    "lr-negative": (dict(learning_rate=-0.1), "learning_rate must be"),
    "lr-nan": (dict(learning_rate=float("nan")), "learning_rate must be"),
    "lr-inf": (dict(learning_rate=float("inf")), "learning_rate must be"),
    "lr-string": (dict(learning_rate="0.1"), "learning_rate must be"),
    "n_iter-negative": (dict(n_iter=-1), "n_iter must be an integer >= 0, got -1"),
    "n_iter-float": (dict(n_iter=10.0), "n_iter must be an integer >= 0, got 10.0"),
    "n_iter-bool": (dict(n_iter=True), "n_iter must be an integer"),
    "unknown-backend": (dict(backend="cupy"), "unknown backend 'cupy'; expected one of numpy, numba, numba-parallel, jax,"),
    "unknown-device": (dict(device="tpu"), "unknown device 'tpu'; expected one of cpu, gpu"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_raises_value_error_naming_it(case):
    overrides, message = BAD_INPUTS[case]
    kwargs = dict(X=X, y=Y, backend="numpy", device="cpu", learning_rate=0.1, n_iter=10) | overrides
    snapshot = {k: v.copy() for k, v in kwargs.items() if isinstance(v, np.ndarray)}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        fit(kwargs.pop("X"), kwargs.pop("y"), **kwargs)
    for name, before in snapshot.items():
        np.testing.assert_array_equal(overrides.get(name, {"X": X, "y": Y}.get(name)), before)


def test_public_names():
    assert set(BACKENDS) >= {"numpy", "numba", "numba-parallel", "jax", "tensorflow", "torch", "torch-compile"}
    assert DEVICES == ("cpu", "gpu")
    assert issubclass(BackendUnavailable, Exception)


def test_make_problem_is_deterministic_and_typed():
    a = make_problem(500, 4, seed=3)
    b = make_problem(500, 4, seed=3)
    c = make_problem(500, 4, seed=4)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.X, c.X)
    f32 = make_problem(500, 4, seed=3, dtype=np.float32)
    assert f32.X.dtype == f32.y.dtype == np.float32
    np.testing.assert_array_equal(f32.X, a.X.astype(np.float32))
    # noise-free data is exactly linear in the true coefficients
    exact = make_problem(500, 4, noise=0.0)
    np.testing.assert_allclose(exact.X @ exact.w_true + exact.b_true, exact.y, rtol=1e-12)


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_samples=0), "n_samples must be a positive integer"),
    (dict(n_features=2.5), "n_features must be a positive integer"),
    (dict(noise=-1.0), "noise must be a finite number >= 0"),
    (dict(dtype=np.int32), "dtype has dtype int32"),
])
def test_make_problem_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_problem(**kwargs)


def test_import_loads_no_framework():
    code = ("import sys, json, linreg_kernels; linreg_kernels.BACKENDS; "
            "[linreg_kernels.backend_class(b).devices for b in linreg_kernels.BACKENDS]; "
            "print(json.dumps(sorted(m for m in ('numba', 'jax', 'tensorflow', 'torch') if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_missing_framework_names_the_pip_extra(monkeypatch):
    with pytest.raises(BackendUnavailable, match=r"pip install 'linreg_kernels\[jax\]'"):
        base.import_framework("no_such_framework_module", "jax")


GPU_BACKENDS = [b for b in BACKENDS if "gpu" in backend_class(b).devices]


@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_gpu_request_without_gpu_says_no_gpu_found(backend):
    backend_or_skip(backend, "cpu")  # the framework itself must be importable for this check
    try:
        linreg_kernels.get_backend(backend, "gpu")
    except BackendUnavailable as exc:
        assert "no" in str(exc) and ("gpu" in str(exc).lower())
    else:
        pytest.skip(f"{backend} found a GPU on this machine")


@pytest.mark.parametrize("backend", [b for b in BACKENDS if "gpu" not in backend_class(b).devices])
def test_cpu_only_backend_refuses_gpu(backend):
    with pytest.raises(BackendUnavailable, match=f"{backend} has no gpu implementation"):
        linreg_kernels.get_backend(backend, "gpu")


def test_thread_setting_is_validated(monkeypatch):
    monkeypatch.setenv(base.THREADS_ENV_VAR, "two")
    with pytest.raises(ValueError, match=f"{base.THREADS_ENV_VAR} must be a positive integer, got 'two'"):
        base.requested_threads()
    monkeypatch.setenv(base.THREADS_ENV_VAR, "3")
    assert base.requested_threads() == 3


def test_a_release_lacking_an_api_is_unavailable_naming_it():
    import numpy

    with pytest.raises(BackendUnavailable, match=r"numpy .* has no linalg.removed_function, which this backend "
                                                 r"needs \(tested with numpy==2.4.6\)"):
        base.require_api(numpy, "linalg.removed_function", "numpy")


def test_a_bug_in_a_backend_is_a_failure_not_unavailable():
    class Broken(base.Backend):
        name = "broken"
        framework = "numpy"

        def _load(self):
            self.misspelled_attribute.run()

    with pytest.raises(AttributeError):
        Broken("cpu")


def test_every_variant_names_a_declared_framework():
    from linreg_kernels import FRAMEWORKS

    assert {backend_class(b).framework for b in BACKENDS} == set(FRAMEWORKS)
    assert all(backend_class(b).name == b for b in BACKENDS)
