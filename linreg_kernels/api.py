import math

import numpy as np

from .errors import DivergenceError
from .problem import stable_learning_rate_bound, validate_inputs
from .registry import _check_name, get_backend


def fit(X, y, *, backend="numpy", device="cpu", learning_rate=0.1, n_iter=1000):
    """Fit y ~ X @ w + b by `n_iter` steps of batch gradient descent on the MSE, from w=0, b=0.

    Returns (w, b): w a NumPy array of shape (d,) in X's dtype, b a Python float.
    """
    validate_inputs(X, y, learning_rate, n_iter)
    _check_name(backend, device)
    impl = get_backend(backend, device)
    w, b = impl.to_host(impl.run(impl.to_device(X, y), learning_rate, n_iter))
    if not (np.isfinite(w).all() and math.isfinite(b)):
        raise DivergenceError(
            f"gradient descent diverged with learning_rate={learning_rate}: the weights are not finite "
            f"after n_iter={n_iter} iterations; for this X it converges only for learning_rate < "
            f"{stable_learning_rate_bound(X):.4g}"
        )
    return np.asarray(w), b
