"""Every backend x device x dtype against the float64 reference, the exact solution and each other."""
import numpy as np
import pytest

from accuracy import bound_for
from helpers import backend_device_dtype_params, backend_device_params, backend_or_skip
from linreg_kernels import DivergenceError, fit, least_squares, make_problem, reference_fit

N, D, ITERS, LR = 2_000, 20, 300, 0.1


def rel_err(w, b, w_ref, b_ref):
    v, v_ref = np.append(np.asarray(w, np.float64), b), np.append(w_ref, b_ref)
    return np.linalg.norm(v - v_ref) / np.linalg.norm(v_ref)


@pytest.mark.parametrize("backend, device, dtype", backend_device_dtype_params())
def test_matches_reference_within_the_rounding_bound(backend, device, dtype):
    backend_or_skip(backend, device)
    X, y, *_ = make_problem(N, D, dtype=dtype)
    w_ref, b_ref = reference_fit(X, y, LR, ITERS)
    w, b = fit(X, y, backend=backend, device=device, learning_rate=LR, n_iter=ITERS)
    assert isinstance(w, np.ndarray) and w.shape == (D,) and w.dtype == dtype
    assert type(b) is float
    bound = bound_for((N, D, 0, LR, ITERS), np.dtype(dtype).name)
    assert rel_err(w, b, w_ref, b_ref) <= bound


@pytest.mark.parametrize("backend, device", backend_device_params())
def test_small_dimensions_match_the_reference(backend, device):
    """d = 2 and 5: the shapes where a backend may pick another layout or form (numba's
    two-feature loop and column layout, torch.compile's products) than at d = 20."""
    backend_or_skip(backend, device)
    for d in (2, 5):
        for dtype in ("float64", "float32"):
            X, y, *_ = make_problem(N, d, dtype=dtype)
            w, b = fit(X, y, backend=backend, device=device, learning_rate=LR, n_iter=ITERS)
            assert w.shape == (d,) and w.dtype == dtype
            assert rel_err(w, b, *reference_fit(X, y, LR, ITERS)) <= bound_for((N, d, 0, LR, ITERS), dtype), (d, dtype)


@pytest.mark.parametrize("backend, device, dtype", backend_device_dtype_params())
def test_converges_to_least_squares(backend, device, dtype):
    backend_or_skip(backend, device)
    X, y, *_ = make_problem(N, D, dtype=dtype, seed=1)
    w_ls, b_ls = least_squares(X, y)
    iters = 1000
    w, b = fit(X, y, backend=backend, device=device, learning_rate=LR, n_iter=iters)
    # exact gradient descent contracts the distance to the minimiser by at most 1 - LR * l_min
    # per step (l_min about 1.6 here): after 1,000 steps rounding is all that is left.
    assert rel_err(w, b, w_ls, b_ls) <= bound_for((N, D, 1, LR, iters), np.dtype(dtype).name) + 0.85**iters


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
def test_new_learning_rate_or_values_never_recompile(backend, device):
    impl = backend_or_skip(backend, device)
    X, y, *_ = make_problem(N, 7)
    data = impl.to_device(X, y)
    before = impl.trace_count()
    impl.run(data, LR, 5)
    traced = impl.trace_count()
    # jax, tensorflow and torch.compile specialise on shape (this one is new to them), numba only
    # on dtype; jax and tensorflow also on the iteration count, which is part of their program.
    assert traced >= 1 and traced - before <= 1
    impl.run(data, 0.05, 5)
    impl.run(impl.to_device(X * 2, y), LR, 5)
    assert impl.trace_count() == traced


@pytest.mark.parametrize("backend, device", [pytest.param(b, d, id=f"{b}-{d}") for b in ("jax", "tensorflow")
                                             for d in ("cpu", "gpu")])
def test_compiled_loop_has_a_static_trip_count(backend, device):
    """XLA marks a while loop whose trip count it knows; without it a GPU copies the loop
    condition to the host and waits for it on every iteration. The CPU ids check the program
    XLA would hand a GPU the same loop; the GPU ids the program it runs there."""
    impl = backend_or_skip(backend, device)
    X, y, *_ = make_problem(N, 3)
    data = impl.to_device(X, y)
    program = impl.compiled_program(data, LR, 1000)
    loops = [line for line in program.splitlines() if " while(" in line]
    trips = 1000 // getattr(impl, "loop_unroll", 1)  # jax on a GPU runs several steps per iteration
    assert loops and all(f'"known_trip_count":{{"n":"{trips}"}}' in line for line in loops), loops


def test_torch_compile_never_recompiles_for_a_seen_shape():
    impl = backend_or_skip("torch-compile", "cpu")
    import torch._dynamo

    X, y, *_ = make_problem(N, 9, dtype=np.float32)
    data = impl.to_device(X, y)
    impl.run(data, LR, 3)
    compiled = impl.trace_count()
    torch._dynamo.config.error_on_recompile = True  # any recompile now raises
    try:
        for lr, n_iter, scale in ((0.05, 3, 1.0), (0.02, 11, 2.0), (LR, 1, 0.5)):
            impl.run(impl.to_device(X * scale, y), lr, n_iter)
    finally:
        torch._dynamo.config.error_on_recompile = False
    assert impl.trace_count() == compiled


def test_torch_compile_runs_no_python_between_steps():
    """The CPU loop is one compiled program: ten times the steps make no more Python calls."""
    import sys

    impl = backend_or_skip("torch-compile", "cpu")
    X, y, *_ = make_problem(200, 3)
    data = impl.to_device(X, y)
    impl.run(data, LR, 1)

    def python_calls(n_iter):
        calls = 0

        def count(frame, event, arg):
            nonlocal calls
            calls += event == "call"
        sys.setprofile(count)
        try:
            impl.run(data, LR, n_iter)
        finally:
            sys.setprofile(None)
        return calls

    few, many = python_calls(5), python_calls(50)
    assert many == few, f"{many - few} more Python calls for 45 more steps"


def cuda_runtime_calls(impl, data, n_iter):
    """The CUDA runtime calls one run makes, by name, as torch's profiler saw them."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        impl.run(data, LR, n_iter)
    names = [event.name for event in prof.events() if event.name.startswith("cuda")]
    return {name: names.count(name) for name in set(names)}


@pytest.mark.parametrize("backend", ["torch", "torch-compile"])
def test_gpu_loop_never_waits_on_the_host(backend):
    """Ten times the steps make no more host waits (stream, device or event synchronisations, or
    synchronous copies); torch-compile's steps are one CUDA graph, so it makes no more calls at all."""
    impl = backend_or_skip(backend, "gpu")
    X, y, *_ = make_problem(N, 9)
    data = impl.to_device(X, y)
    for n_iter in (5, 50):  # compile, and capture each count's graph, before counting
        impl.run(data, LR, n_iter)
    few, many = cuda_runtime_calls(impl, data, 5), cuda_runtime_calls(impl, data, 50)
    waits = lambda calls: {k: v for k, v in calls.items() if "Synchronize" in k or k == "cudaMemcpy"}
    assert waits(many) == waits(few), (few, many)
    if backend == "torch-compile":
        assert many == few and few.get("cudaGraphLaunch") == 1, (few, many)


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
