from .base import require_api
from .torch_backend import TorchBackend

# Above the grid's 12 shapes (6 dimensions x 2 dtypes) with room to spare: past torch's default
# of 8, a function silently falls back to eager, which would time eager under this label.
RECOMPILE_LIMIT = 64


def gradient_step(X, y, w, b, scale):
    e = X @ w + b - y
    return w - scale * (e @ X), b - scale * e.sum()


class TorchCompileBackend(TorchBackend):
    """torch.compile of one gradient step, called n_iter times from Python, as PyTorch's guide
    advises for a training loop: compiling the loop itself would unroll all its iterations.

    Static shapes (dynamic=False) give one specialised program per shape and dtype; the step size
    is a 0-d tensor, so a new learning rate is a new value, not a new guard; a recompile-limit hit
    raises instead of running eager. On a GPU, mode="reduce-overhead" replays each step as a CUDA
    graph, so kernel launches do not dominate. Compiled code is cached on disk
    (TORCHINDUCTOR_CACHE_DIR): a first call is cold only with an empty cache.
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
        mode = "reduce-overhead" if self.device == "gpu" else None
        self._step = torch.compile(gradient_step, fullgraph=True, dynamic=False, mode=mode)
        self._mark_step = require_api(torch, "compiler.cudagraph_mark_step_begin", self.framework)

    def run(self, data, learning_rate, n_iter):
        torch = self._torch
        X, y = data
        n, d = X.shape
        scale = torch.tensor(2 * learning_rate / n, dtype=X.dtype, device=X.device)
        with torch.inference_mode():
            w, b = X.new_zeros(d), X.new_zeros(())
            for _ in range(n_iter):
                if self.device == "gpu":
                    self._mark_step()  # each step's outputs are the next step's inputs
                w, b = self._step(X, y, w, b, scale)
            w, b = w.clone(), b.clone()  # a CUDA graph's outputs are overwritten by its next replay
        self._sync()
        return w, b

    def trace_count(self):
        """Graphs dynamo has compiled in this process (every torch.compile in it counts)."""
        return self._counters["stats"]["unique_graphs"]
