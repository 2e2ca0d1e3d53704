from .base import require_api
from .torch_backend import TorchBackend

# Above the grid's 12 shapes (6 dimensions x 2 dtypes) with room to spare: past torch's default
# of 8, a function silently falls back to eager, which would time eager under this label.
RECOMPILE_LIMIT = 64


def as_matrix_products(X):
    """The rule for the form of the two products (read at trace time: shapes are static): as
    matrix products (X @ w[:, None]), which Inductor hands to BLAS, in float64 at d = 10-50; as
    the matrix-vector products it turns into loops of its own everywhere else. Measured on a
    2-core AMD EPYC VM (2026-11-26, C++ wrapper, both forms compiled in one process, interleaved,
    fastest of 7): the matrix products took 0.23-0.83x the time in float64 at d = 10-50 at both
    thread settings (d = 10, one thread: 64 against 275 ms), whose float64 loop tail is slow, and
    0.97-1.56x at the other 18 points. On a Zen 5 VM (2026-12-03, fastest of 5, each form compiled
    alone): float64 d = 10, 20, 50 at one thread 35, 59, 125 against 382, 399, 428 ms; float64 at
    d = 100 the hosts disagree (Zen 5 0.44x at one thread and 0.71x at all cores, the Zen 3 VM
    1.38x at all cores), so d = 100 keeps the loops; float32 d = 20 and 100 and float64 d = 2
    kept the loops there too (1.13x, 1.56x, 1.28x)."""
    return X.dtype.itemsize == 8 and 10 <= X.shape[1] <= 50


def gradient_step(X, y, w, b, scale):
    if as_matrix_products(X):
        e = (X @ w[:, None])[:, 0] + b - y
        return w - scale * (e[None, :] @ X)[0], b - scale * e.sum()
    e = X @ w + b - y
    return w - scale * (e @ X), b - scale * e.sum()


def gradient_descent(X, y, scale, n_iter, while_loop):
    """All n_iter steps as one compiled program. n_iter is a 0-d tensor, so a new count is a new
    value, not a recompile; while_loop is torch.while_loop (this module does not import torch)."""
    def not_done(i, w, b):
        return i < n_iter

    def step(i, w, b):
        return (i + 1, *gradient_step(X, y, w, b, scale))

    _, w, b = while_loop(not_done, step, (n_iter.new_zeros(()), X.new_zeros(X.shape[1]), X.new_zeros(())))
    return w, b


class TorchCompileBackend(TorchBackend):
    """torch.compile with static shapes (dynamic=False: one specialised program per shape and
    dtype), the step size a 0-d tensor (a new learning rate is a new value, not a new guard), and
    a recompile-limit hit raising instead of running eager.

    On a CPU the whole loop is compiled: torch.while_loop, PyTorch's loop operator for compiled
    code, keeps the loop rolled. Measured on this project's AMD EPYC machine it beat one compiled
    step called from a Python loop at every CPU grid point and thread setting (1.18-2.65x), though
    each shape takes about 1 s longer to compile. Inductor's default wrapper is Python and runs
    that loop as a Python while loop, two Python calls per step; its C++ wrapper (cpp_wrapper)
    runs the loop in the generated C++, so no Python runs between steps. That took 0.58-0.96x the
    time of the Python wrapper at every CPU grid point and thread setting (interleaved in one
    process; most at d <= 20), for ~1.3 s more compile per shape.

    On a GPU that loop would copy its condition to the host on every iteration, so there one
    gradient step is compiled and all n_iter steps are captured in one CUDA graph, replayed as a
    single launch: no host work between steps. The graph reads static copies of X and y and a
    step-size buffer, so new values or a new learning rate replay the same graph. Measured on an
    H200 (torch 2.11): 7.7-17.9 ms per 1,000 steps against 87-115 ms for the compiled step called
    from a Python loop. mode="reduce-overhead" (a CUDA graph per step) cannot run this loop: each
    step's inputs are the previous step's outputs, which its CUDA graph trees free when the next
    step starts ("accessing tensor output of CUDAGraphs that has been overwritten by a subsequent
    run"). The capture is thread-local: in torch's default (global) mode a CUDA call from any
    other thread of the process invalidates it, and in the GPU test suite, where jax's threads
    share the process, 2 of 3 runs failed that way ("operation failed due to a previous error
    during capture" at d=20 float32, right after jax's GPU fits, whose stream was in an error state
    from then on), one of them with Python's garbage collector off during the capture. With the
    thread-local capture they pass (H200, torch 2.11).

    In float64 at d = 10-50 the products are written as matrix products (as_matrix_products).

    Inductor's graph cache cannot hold a graph with while_loop in it (torch 2.13: "Can't cache
    HigherOrderOperator: while_loop"), so every process traces, lowers and loads each shape
    again; only the generated C++'s build is found in TORCHINDUCTOR_CACHE_DIR. The grid's 12
    shapes took 87 s in one process with that cache empty and 76 s with it full (a 2-core AMD
    EPYC Zen 3 VM).
    """

    name = "torch-compile"
    compiles = True

    def _load(self):
        super()._load()
        torch = self._torch
        config = require_api(torch, "_dynamo.config", self.framework)
        config.recompile_limit = max(config.recompile_limit, RECOMPILE_LIMIT)
        config.fail_on_recompile_limit_hit = True
        self._counters = require_api(torch, "_dynamo.utils.counters", self.framework)
        if self.device == "gpu":
            self._step = torch.compile(gradient_step, fullgraph=True, dynamic=False)
            self._graphs = {}
        else:
            self._while_loop = require_api(torch, "while_loop", self.framework)
            self._fit = torch.compile(gradient_descent, fullgraph=True, dynamic=False,
                                      options={"cpp_wrapper": True})

    def _graph(self, X, y, n_iter):
        """The CUDA graph of n_iter compiled steps for X's shape and dtype: (graph, the static
        buffers it reads, the (w, b) it writes). Built on the first call, in inference mode."""
        torch = self._torch
        key = (tuple(X.shape), X.dtype, n_iter)
        if key not in self._graphs:
            static = {"X": torch.empty_like(X), "y": torch.empty_like(y), "scale": X.new_zeros(())}
            start = lambda: (X.new_zeros(X.shape[1]), X.new_zeros(()))
            side = torch.cuda.Stream(self._device)  # a capture's warm-up belongs off the default stream
            side.wait_stream(torch.cuda.current_stream(self._device))
            with torch.cuda.stream(side):
                self._step(static["X"], static["y"], *start(), static["scale"])  # compiles outside the capture
            torch.cuda.current_stream(self._device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                w, b = start()
                for _ in range(n_iter):
                    w, b = self._step(static["X"], static["y"], w, b, static["scale"])
            self._graphs[key] = graph, static, (w, b)
        return self._graphs[key]

    def run(self, data, learning_rate, n_iter):
        torch = self._torch
        X, y = data
        n, d = X.shape
        with torch.inference_mode():
            if self.device == "gpu":
                graph, static, (w, b) = self._graph(X, y, n_iter)
                static["X"].copy_(X)
                static["y"].copy_(y)
                static["scale"].fill_(2 * learning_rate / n)
                graph.replay()
                w, b = w.clone(), b.clone()  # the next replay overwrites the graph's outputs
            else:
                scale = torch.tensor(2 * learning_rate / n, dtype=X.dtype)
                w, b = self._fit(X, y, scale, torch.tensor(n_iter), self._while_loop)
        self._sync()
        return w, b

    def trace_count(self):
        """Graphs dynamo has compiled in this process (every torch.compile in it counts)."""
        return self._counters["stats"]["unique_graphs"]
