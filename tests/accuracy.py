"""How far a correct backend's weights may be from the float64 reference: a bound derived from
the problem, one formula for every backend, evaluated per dtype.

Write v = (w, b), A = [X 1], H = (2/n) A^T A with eigenvalues l_min..l_max, step size eta. Exact
gradient descent is v+ = v - eta (2/n) A^T (A v - y). A computed step adds a rounding error r_k,
so the error E_k of the computed iterate against the exact one follows
    E_{k+1} = (I - eta H) E_k + r_k,   hence   ||E_K|| <= sum_k rho^(K-1-k) ||r_k||,
with rho = max |1 - eta l| over H's eigenvalues: the conditioning of X sets how long a rounding
error survives (1 / (eta l_min) iterations once the iteration has converged).

r_k has three parts, u being the dtype's unit roundoff (eps / 2):
1. The update v - eta g itself, rounded to the dtype: at most u (||v_{k+1}|| + eta ||g_k||).
   Near convergence this is the whole story: the iterate stops moving once eta g is below half
   an ulp of v, i.e. within u ||v|| / (eta l_min) of the fixed point.
2. The residual e_i = a_i . v - y_i, a sum of d + 2 terms, and
3. the gradient A^T e, n sums of n terms each.
   For 2 and 3 the standard probabilistic model of rounding (Higham and Mary, 2019: independent
   errors of mean zero, each at most u times the partial sum it rounds) gives a standard deviation
   of u sqrt(sum of squared partial sums). The partial sums are taken in row order, i.e. of a
   sequential sum, the order with the largest partial sums when terms cancel (blocked and pairwise
   BLAS orders have smaller ones). Both are propagated through (2/n) A^T, and LAMBDA standard
   deviations bound them (a normal tail beyond 4 sigma: 6e-5).
The bound is evaluated along the float64 reference trajectory, and the reference's own error (the
same formula with float64's u) is added: both are compared with the exact iterate.

What it catches: a step that adds its n scaled gradient terms straight into w rounds every
partial sum at the size of w, a sqrt(n)-fold larger error per step (measured 4e-6 to 1e-5
relative in float32, 8e-15 to 2e-14 in float64, against bounds of 6e-7 and 2e-15 here).
"""
import functools

import numpy as np

LAMBDA = 4.0


def rounding_bound(X, y, learning_rate, n_iter, dtype):
    """Bound on ||v_computed - v_exact|| / ||v_exact|| after n_iter steps in `dtype`."""
    u = np.finfo(dtype).eps / 2
    A = np.column_stack([np.asarray(X, np.float64), np.ones(len(y))])
    y = np.asarray(y, np.float64)
    n = len(y)
    eig = np.linalg.eigvalsh((2 / n) * A.T @ A)
    rho = max(abs(1 - learning_rate * eig[0]), abs(1 - learning_rate * eig[-1]))
    v = np.zeros(A.shape[1])
    error = 0.0
    for _ in range(n_iter):
        partial_e = np.cumsum(np.column_stack([A * v, -y]), axis=1)  # residual: d + 2 terms per row
        e = partial_e[:, -1]
        partial_g = np.cumsum(A * e[:, None], axis=0)  # gradient: n terms per column
        g = (2 / n) * partial_g[-1]
        var_e = u**2 * (partial_e**2).sum(axis=1)
        var_g = (2 / n) ** 2 * ((A**2).T @ var_e + u**2 * (partial_g**2).sum(axis=0))
        v_next = v - learning_rate * g
        step = u * (np.linalg.norm(v_next) + learning_rate * np.linalg.norm(g))
        error = rho * error + step + learning_rate * LAMBDA * np.sqrt(var_g.sum())
        v = v_next
    return error / np.linalg.norm(v)


@functools.lru_cache(maxsize=None)
def bound_for(problem_key, dtype_name):
    """rounding_bound for a make_problem(...) problem, the reference's float64 error added."""
    import linreg_kernels as lk

    n, d, seed, learning_rate, n_iter = problem_key
    X, y, *_ = lk.make_problem(n, d, seed=seed, dtype=dtype_name)
    return (rounding_bound(X, y, learning_rate, n_iter, np.dtype(dtype_name))
            + rounding_bound(X, y, learning_rate, n_iter, np.float64))
