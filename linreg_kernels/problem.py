"""The shared problem: data generation, input validation and the float64 reference."""
import math
import numbers
from typing import NamedTuple

import numpy as np

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class Problem(NamedTuple):
    X: np.ndarray
    y: np.ndarray
    w_true: np.ndarray
    b_true: float


def make_problem(n_samples=10_000, n_features=100, *, noise=1.0, seed=0, dtype=np.float64):
    """The article's training data: y = X @ w_true + b_true + noise * N(0, 1).

    Values are drawn in float64 and then cast, so the float32 problem is the float64 one rounded.
    """
    for name, value in (("n_samples", n_samples), ("n_features", n_features)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not isinstance(noise, numbers.Real) or not math.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    dtype = _check_dtype("dtype", np.dtype(dtype))
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features))
    w_true = rng.uniform(-1.0, 1.0, n_features)
    b_true = float(rng.uniform(-1.0, 1.0))
    y = X @ w_true + b_true + noise * rng.standard_normal(n_samples)
    return Problem(X.astype(dtype), y.astype(dtype), w_true.astype(dtype), b_true)


def _check_dtype(name, dtype):
    if dtype not in SUPPORTED_DTYPES:
        raise ValueError(f"{name} has dtype {dtype}; expected float32 or float64")
    return dtype


def validate_inputs(X, y, learning_rate, n_iter):
    """Raise ValueError naming the first bad argument; never modifies or converts anything."""
    for name, arr, ndim in (("X", X, 2), ("y", y, 1)):
        if not isinstance(arr, np.ndarray):
            raise ValueError(f"{name} must be a NumPy array, got {type(arr).__name__}")
        if arr.ndim != ndim:
            raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
        _check_dtype(name, arr.dtype)
    if X.dtype != y.dtype:
        raise ValueError(f"X and y must have the same dtype, got X {X.dtype} and y {y.dtype}")
    n, d = X.shape
    if n == 0 or d == 0:
        raise ValueError(f"X must have at least one row and one column, got shape {X.shape}")
    if y.shape[0] != n:
        raise ValueError(f"y has {y.shape[0]} values but X has {n} rows")
    for name, arr in (("X", X), ("y", y)):
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or inf")
    if (not isinstance(learning_rate, numbers.Real) or isinstance(learning_rate, bool)
            or not math.isfinite(learning_rate) or learning_rate <= 0):
        raise ValueError(f"learning_rate must be a finite number > 0, got {learning_rate!r}")
    if not isinstance(n_iter, numbers.Integral) or isinstance(n_iter, bool) or n_iter < 0:
        raise ValueError(f"n_iter must be an integer >= 0, got {n_iter!r}")


def reference_fit(X, y, learning_rate=0.1, n_iter=1000):
    """The textbook iteration in float64 NumPy: the yardstick every backend is checked against."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, d = X.shape
    w = np.zeros(d)
    b = 0.0
    for _ in range(n_iter):
        e = X @ w + b - y
        w = w - learning_rate * (2 / n) * (X.T @ e)
        b = b - learning_rate * (2 / n) * e.sum()
    return w, b


def least_squares(X, y):
    """The exact minimiser of the MSE, which enough gradient-descent iterations must reach.

    lstsq alone is off by ~2e-15 relative here, more than gradient descent itself; two steps of
    iterative refinement with residuals in extended precision (np.longdouble) bring it to the
    rounding of float64.
    """
    A = np.column_stack([np.asarray(X, dtype=np.float64), np.ones(X.shape[0])])
    y = np.asarray(y, dtype=np.float64)
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    A_ext, y_ext = A.astype(np.longdouble), y.astype(np.longdouble)
    for _ in range(2):
        residual = (A_ext.T @ (y_ext - A_ext @ coef.astype(np.longdouble))).astype(np.float64)
        coef = coef + np.linalg.solve(A.T @ A, residual)
    return coef[:-1], float(coef[-1])


def stable_learning_rate_bound(X):
    """Gradient descent on this MSE converges iff learning_rate < 2 / lambda_max((2/n) A^T A)."""
    X = np.asarray(X, dtype=np.float64)
    A = np.column_stack([X, np.ones(X.shape[0])])
    lam_max = np.linalg.eigvalsh((2 / X.shape[0]) * (A.T @ A))[-1]
    return 2.0 / lam_max


def flops_per_fit(n_samples, n_features, n_iter):
    """Two matrix-vector products per iteration, 2*n*d flops each."""
    return 4 * n_samples * n_features * n_iter
