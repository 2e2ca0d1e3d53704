"""Every backend x device x dtype against the float64 NumPy reference and the exact solution."""
import numpy as np
import pytest

from conftest import backend_device_dtype_params, backend_device_params, backend_or_skip
from linreg_kernels import DivergenceError, fit, least_squares, make_problem, reference_fit

N, D, ITERS, LR = 2_000, 20, 300, 0.1

# float64: backends differ from the reference only in summation order, ~1e-15 relative.
# float32: rounding of eps32 ~ 1.2e-7 in n = 2,000-term sums grows like sqrt(n) ~ 45, and the
# fixed point of the float32 iteration sits that far from the float64 one: ~1e-5, so 1e-4
# leaves a 10x margin (measured: 1.6e-7 to 1.3e-5 at n = 10,000).
RTOL = {np.float64: 1e-10, np.float32: 1e-4}


def rel_err(a, b):
    return np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b)


@pytest.mark.parametrize("backend, device, dtype", backend_device_dtype_params())
def test_matches_reference(backend, device, dtype):
    backend_or_skip(backend, device)
    X, y, *_ = make_problem(N, D, dtype=dtype)
    w_ref, b_ref = reference_fit(X, y, LR, ITERS)
    w, b = fit(X, y, backend=backend, device=device, learning_rate=LR, n_iter=ITERS)
    assert isinstance(w, np.ndarray) and w.shape == (D,) and w.dtype == dtype
    assert type(b) is float
    assert rel_err(w, w_ref) < RTOL[dtype]
    assert abs(b - b_ref) < RTOL[dtype] * max(1.0, abs(b_ref))


@pytest.mark.parametrize("backend, device, dtype", backend_device_dtype_params())
def test_converges_to_least_squares(backend, device, dtype):
    backend_or_skip(backend, device)
    X, y, *_ = make_problem(N, D, dtype=dtype, seed=1)
    w_ls, b_ls = least_squares(X, y)
    w, b = fit(X, y, backend=backend, device=device, learning_rate=LR, n_iter=1000)
    assert rel_err(w, w_ls) < RTOL[dtype]
    assert abs(b - b_ls) < RTOL[dtype] * max(1.0, abs(b_ls))


@pytest.mark.parametrize("layout", ["fortran", "strided"])
@pytest.mark.parametrize("backend, device", backend_device_params())
def test_non_contiguous_input_gives_same_result_and_is_not_modified(backend, device, layout):
    backend_or_skip(backend, device)
    X, y, *_ = make_problem(N, D)
    if layout == "fortran":
        Xin, yin = np.asfortranarray(X), y
    else:  # every other row and column of a bigger array, y a strided view too
        big = np.zeros((2 * N, 2 * D))
        big[::2, ::2] = X
        ybig = np.zeros(2 * N)
        ybig[::2] = y
        Xin, yin = big[::2, ::2], ybig[::2]
    before = Xin.copy(), yin.copy()
    w, b = fit(Xin, yin, backend=backend, device=device, learning_rate=LR, n_iter=ITERS)
    w_c, b_c = fit(X, y, backend=backend, device=device, learning_rate=LR, n_iter=ITERS)
    np.testing.assert_allclose(w, w_c, rtol=1e-12)
    assert b == pytest.approx(b_c, rel=1e-12)
    np.testing.assert_array_equal(Xin, before[0])
    np.testing.assert_array_equal(yin, before[1])


@pytest.mark.parametrize("backend, device", backend_device_params(compiling_only=True))
def test_no_retrace_for_same_shape_and_dtype(backend, device):
    impl = backend_or_skip(backend, device)
    X, y, *_ = make_problem(N, 7)
    data = impl.to_device(X, y)
    before = impl.trace_count()
    impl.run(data, LR, 5)
    # jax and tensorflow specialise on shape (this one is new to them), numba only on dtype.
    traced = impl.trace_count()
    assert traced >= 1 and traced - before <= 1
    impl.run(data, 0.05, 17)  # new learning rate and iteration count: same compiled kernel
    impl.run(impl.to_device(X * 2, y), LR, 5)  # new values, same shape and dtype
    assert impl.trace_count() == traced


@pytest.mark.parametrize("backend, device", backend_device_params())
def test_divergence_raises_naming_learning_rate(backend, device):
    backend_or_skip(backend, device)
    X, y, *_ = make_problem(N, D)
    with pytest.raises(DivergenceError, match=r"learning_rate=5\.0"):
        fit(X, y, backend=backend, device=device, learning_rate=5.0, n_iter=2000)


@pytest.mark.parametrize("backend, device", backend_device_params())
def test_zero_iterations_returns_the_starting_point(backend, device):
    backend_or_skip(backend, device)
    X, y, *_ = make_problem(50, 3)
    w, b = fit(X, y, backend=backend, device=device, n_iter=0)
    np.testing.assert_array_equal(w, np.zeros(3))
    assert b == 0.0


@pytest.mark.parametrize("device", ["cpu", "gpu"])
def test_tensorflow_program_does_not_depend_on_iteration_count(device):
    # tracing counts miss this: XLA itself recompiles when a value is baked into the program,
    # as tf.range's length would be.
    impl = backend_or_skip("tensorflow", device)
    X, y, *_ = make_problem(N, 3)
    data = impl.to_device(X, y)
    assert impl.compiled_program(data, LR, 5) == impl.compiled_program(data, 0.05, 1000)
