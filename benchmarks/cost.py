"""Exact cost: the work of each CPU variant's steady-state fit, counted by valgrind's callgrind.

    python benchmarks/cost.py SPEC.json OUT.json     # the worker; runs under valgrind (command())

Times say how fast a kernel is on this machine now; counts say whether it changed. On these shared
VMs the same code timed twice agrees within 5% at barely half the points, while callgrind counts
the instructions a fit executes, and the hits and misses of a simulated cache, the same whatever
else the machine does. measure() runs one worker per variant under valgrind, both cores at once
(counts do not depend on load). Each worker counts only around backend.run, switching
callgrind's instrumentation on and off with client requests (callgrind.c, built here with gcc):
imports, compiles and data generation run uninstrumented. Memory comes from an allocator of
callgrind.c's (preloaded), and a point's data and counted fits from a generation of its own, which
places a block by that point's requests alone: where glibc put them followed the process's whole
history.

Per point, SHORT_FITS fits of STEPS[0] gradient steps and one of STEPS[1] are counted: the
difference between the longer fit and the shorter ones' mean, over the difference in steps, is
the cost of one step, and what is left of that mean is the fixed cost of a call (dispatch,
allocation, result). All start from the same simulated cache: the state a fit of
STEPS[0] steps leaves (the first counted fit follows a simulated one, each of the others the one
before, all inside one switch of instrumentation: Requests.instrumented).

What the counts describe: the code path valgrind's virtual CPU takes (it has AVX2, never
AVX-512, so a JIT or BLAS that dispatches on the CPU takes its AVX2 path there), at one thread
(valgrind runs one thread at a time), on a fixed cache (the geometry CodSpeed and iai-callgrind
use). They are blind to memory bandwidth, frequency and parallelism: times answer "which is
faster", counts answer "did this change".
"""
import ctypes
import fcntl
import gc
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

# A planted 10% (n + n // 10) or 2% (n + n // 50) steps shows exactly in the difference. One step,
# not five, in the shorter fit: the same instructions per step within 0.1%, 17% less counting.
STEPS = (1, 51)
# Counted fits of STEPS[0] steps per point, their counts averaged. A jax call races XLA's thread
# that runs it (whether the caller finds the result ready or waits for it: different paths
# through absl's mutex and tsl's futures), which moved one call's ~650,000 instructions by up to
# 0.9% between processes. Over 12 points of two processes: one call's fixed part 0.78% apart at
# worst, the median of 5 calls 0.54%, their mean 0.27%.
SHORT_FITS = 5
CACHE = ("--I1=32768,8,64", "--D1=32768,8,64", "--LL=8388608,16,64")
EVENTS = ("Ir", "Dr", "Dw", "I1mr", "D1mr", "D1mw", "ILmr", "DLmr", "DLmw")
SHIM = Path(__file__).with_name("callgrind.c")
WORKER_TIMEOUT = 3600
WORK_ROOT = Path("/tmp", f"linreg-cost-{os.getuid()}")
# How long a counted fit's process sleeps, still counted, after the fit returns. A runtime's pool
# thread that finished the fit spins looking for more work before it parks (XLA's Eigen pool:
# ThreadPoolTempl::MaybeGetTask), and how much of that spin fell inside the count depended on when
# valgrind next let the sleeping caller run: jax's counts moved by up to 1.8% per step between two
# processes. Sleeping hands valgrind to the spinning thread until it parks, so all of it counts.
SETTLE_SECONDS = 0.1
# Fits of STEPS[0] steps a worker runs before counting a point where no fit of STEPS[1] steps ran:
# Python's interpreter specialises a function's bytecode after ~8 calls and loop iterations, so
# the counted fits run it specialised.
WARM_CALLS = 8
# The counted process's whole environment: nothing of the caller's is passed on (the same code
# counted from asv and from a plain script differed by up to 14% in estimated cycles where the
# two environments differed), only which linreg_kernels to import (import_path()). One thread in
# every pool the frameworks start, no hash or address randomisation, Python's objects from
# malloc (so from callgrind.c's allocator), and OpenBLAS's Haswell kernels (valgrind's CPU is
# an AVX2 one). Inductor compiles its C++ with g++ outside valgrind, for the host CPU unless told
# otherwise: x86-64-v3 is the AVX2 level valgrind runs. jax's CPU client without async dispatch:
# its worker took 194 s instead of 240 s under valgrind (the computation still runs on XLA's
# thread, by callgrind's per-thread counts, so the race SHORT_FITS answers remains).
# The kernels' own thread variable (linreg_kernels.backends.base) is added by environment(): this
# module imports nothing at the top, for tasks.py.
ENVIRONMENT = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1",
               "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "PYTHONHASHSEED": "0", "PYTHONMALLOC": "malloc",
               "OPENBLAS_CORETYPE": "Haswell", "TORCHINDUCTOR_CPP_MARCH": "x86-64-v3", "TF_CPP_MIN_LOG_LEVEL": "2",
               "JAX_CPU_ENABLE_ASYNC_DISPATCH": "false"}
# Started first, so that the shorter workers fill the other core at the end: under valgrind
# these took 281, 240 and 173 s of a 563 s grid on 2 cores (compiling under valgrind), the others
# 62-144 s.
SLOWEST_FIRST = ("tensorflow", "jax", "torch-compile")


def missing_tools():
    """Why counts cannot be taken here (None if they can), with the command that fixes it."""
    for tool in ("valgrind", "gcc"):
        if shutil.which(tool) is None:
            return f"{tool} not found: install it (Debian: apt-get install valgrind gcc)"
    if not Path("/usr/include/valgrind/callgrind.h").exists():
        return "valgrind/callgrind.h not found: install valgrind's headers (Debian: apt-get install valgrind)"
    return None


def valgrind_version():
    return subprocess.run(["valgrind", "--version"], capture_output=True, text=True, check=True).stdout.strip()


def build_shim(directory):
    """callgrind.c as a shared library in `directory`."""
    path = Path(directory) / "libcallgrind_requests.so"
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(path), str(SHIM)], check=True, capture_output=True)
    return path


def estimated_cycles(events):
    """iai-callgrind's model: L1 hits + 5 x last-level hits + 35 x RAM accesses (an estimate that
    only correlates with time; its use is to compare a kernel with itself)."""
    ram = events["ILmr"] + events["DLmr"] + events["DLmw"]
    ll = events["I1mr"] + events["D1mr"] + events["D1mw"] - ram
    l1 = events["Ir"] + events["Dr"] + events["Dw"] - ll - ram
    return l1 + 5 * ll + 35 * ram


def read_dump(path):
    """(label, {event: count}) of one callgrind dump file."""
    label, names, totals = None, None, None
    trigger = "desc: Trigger: Client Request: "
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith(trigger):
                label = line[len(trigger):].strip()
            elif line.startswith("events:"):
                names = line.split()[1:]
            elif line.startswith("totals:"):
                totals = [int(v) for v in line.split()[1:]]
    if names is None or totals is None:
        raise ValueError(f"{path}: no events or totals line; not a callgrind dump")
    counts = dict(zip(names, totals + [0] * (len(names) - len(totals))))
    return label, {e: counts.get(e, 0) for e in EVENTS}


def split(short, long, steps=STEPS):
    """(per step, fixed per call) from the counts of fits of steps[0] and steps[1] steps."""
    per_step = {e: (long[e] - short[e]) / (steps[1] - steps[0]) for e in EVENTS}
    fixed = {e: short[e] - steps[0] * per_step[e] for e in EVENTS}
    return per_step, fixed


def command(python, script, shim_out, spec_path, out_path):
    """valgrind's command line for one worker: ASLR off (setarch -R), instrumentation only where
    the worker switches it on."""
    setarch = shutil.which("setarch")
    prefix = [setarch, os.uname().machine, "-R"] if setarch else []
    return [*prefix, shutil.which("valgrind"), "--tool=callgrind", "--instr-atstart=no", "--cache-sim=yes", *CACHE,
            f"--callgrind-out-file={shim_out}", "--dump-instr=no", "--compress-strings=no",
            "--error-limit=no", str(python), str(script), str(spec_path), str(out_path)]


def worker_files(work):
    """(python, script): this interpreter and this module as the worker runs them, at paths under
    `work` that are the same from any checkout or environment. Every path the worker's Python
    sees is in its heap (sys.prefix, each module's file, sys.path[0]), so the environment's
    location moved the memory layout: the same numpy and torch counted through a venv at a longer
    path took 1.8% and 10.7% more estimated cycles per step at d = 100 float64 (8 MB of X at the
    edge of the 8 MiB simulated LL; instructions within 0.005%). So the environment is rebuilt
    under `work` of hard links (~1.5 s for 3 GB; a virtual environment's Python takes its prefix
    from the path it is started by), and the script is copied. A link to the environment instead
    left torch 0.1% apart (something resolves it: the real path's length is in the heap again);
    it is the fallback where `work` is on another file system than the environment."""
    executable, prefix = Path(sys.executable), Path(sys.prefix)
    script = shutil.copy(Path(__file__), Path(work, "worker.py"))
    if not executable.is_relative_to(prefix):
        return executable, script
    env = Path(work, "env")
    if os.stat(prefix).st_dev == os.stat(work).st_dev:
        shutil.copytree(prefix, env, symlinks=True, copy_function=os.link)
    else:
        env.symlink_to(prefix, target_is_directory=True)
    return env / executable.relative_to(prefix), script


def import_path(base, tmp):
    """A directory under `tmp` holding only a link to the linreg_kernels that `base`'s PYTHONPATH
    provides (None when it provides none: the worker's Python then imports its installed one).
    A directory on the worker's path is listed when it imports from it, and the listing's size moves
    the heap: with the checkout on the path, forty files added beside the package moved numpy's
    count at d = 100 float64 by 166 instructions per step and 5,000 cache misses per call."""
    for entry in filter(None, base.get("PYTHONPATH", "").split(os.pathsep)):
        package = Path(entry, "linreg_kernels")
        if (package / "__init__.py").is_file():
            path = Path(tmp, "path")
            path.mkdir(exist_ok=True)
            link = path / package.name
            if not link.is_symlink():
                link.symlink_to(package.resolve(), target_is_directory=True)
            return path
    return None


def environment(base, tmp):
    """The worker's environment: ENVIRONMENT, import_path() as PYTHONPATH, and a home, temporary
    directory and compile caches of its own under `tmp`, empty at the start."""
    for name in ("home", "tmp"):
        Path(tmp, name).mkdir(exist_ok=True)
    own = {"HOME": "home", "TMPDIR": "tmp", "NUMBA_CACHE_DIR": "numba", "TORCHINDUCTOR_CACHE_DIR": "inductor",
           "TRITON_CACHE_DIR": "triton"}
    from linreg_kernels.backends.base import THREADS_ENV_VAR

    fixed = list(ENVIRONMENT.items())
    fixed.insert(2, (THREADS_ENV_VAR, "1"))  # third, where every committed count had it: the order is the memory layout
    path = import_path(base, tmp)
    return ({"PYTHONPATH": str(path)} if path else {}) | dict(fixed) | {k: str(Path(tmp, v)) for k, v in own.items()}


@contextmanager
def worker_directory(variant):
    """The worker's directory, empty, at the same path on every run (WORK_ROOT/variant): with
    random temporary names, two identical runs counted 1-7% apart in estimated cycles at d = 100
    float64 and a few instructions apart per step; at one fixed path they agreed to the event.
    Runs that count the same variant at once wait for each other here."""
    WORK_ROOT.mkdir(exist_ok=True)
    with open(WORK_ROOT / f"{variant}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        work = WORK_ROOT / variant
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        try:
            yield work
        finally:
            shutil.rmtree(work, ignore_errors=True)


def count_variant(variant, points, problem, base_env):
    """One worker under valgrind: {"unavailable": None or why, "points": {"dim,dtype": {"per_step",
    "fixed", "calls": the counts of the fit of STEPS[1] steps and the mean counts of those of
    STEPS[0], "short_instructions": the instructions of each fit of STEPS[0] steps}}, "seconds":
    wall time of the worker,
    "phases": the worker's own seconds loading, warming up and counting, "version"}."""
    with worker_directory(variant) as work:
        return run_worker(variant, points, problem, base_env, work)


def run_worker(variant, points, problem, base_env, work):
    spec = {"variant": variant, "points": points, "steps": list(STEPS), "short_fits": SHORT_FITS,
            "shim": str(build_shim(work)), **problem}
    spec_path, out_path = work / "spec.json", work / "out.json"
    spec_path.write_text(json.dumps(spec))
    start = time.perf_counter()
    python, script = worker_files(work)
    env = environment(base_env, work) | {"LD_PRELOAD": spec["shim"]}  # its allocator (callgrind.c) replaces glibc's
    proc = subprocess.run(command(python, script, work / "cg.out", spec_path, out_path), env=env, cwd=work,
                          capture_output=True, text=True, timeout=WORKER_TIMEOUT)
    seconds = time.perf_counter() - start
    if proc.returncode != 0 or not out_path.exists():
        raise RuntimeError(f"counting {variant} under valgrind failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    out = json.loads(out_path.read_text())
    if out["unavailable"] is not None:
        return {"unavailable": out["unavailable"], "points": {}, "seconds": seconds}
    dumps = dict(read_dump(p) for p in work.glob("cg.out*") if re.search(r"\.\d+$", p.name))
    result = {}
    for key in out["points"]:
        shorts = [dumps[f"{key} {STEPS[0]} {i}"] for i in range(SHORT_FITS)]
        calls = {STEPS[0]: {e: sum(c[e] for c in shorts) / SHORT_FITS for e in EVENTS},
                 STEPS[1]: dumps[f"{key} {STEPS[1]}"]}
        per_step, fixed = split(calls[STEPS[0]], calls[STEPS[1]])
        result[key] = {"per_step": per_step, "fixed": fixed, "calls": {str(n): c for n, c in calls.items()},
                       "short_instructions": [c["Ir"] for c in shorts]}
    return {"unavailable": None, "points": result, "seconds": seconds, "phases": out["seconds"],
            "version": out["version"]}


def measure(variants, points, problem, environ=os.environ, jobs=None):
    """{"variants": {variant: count_variant()}, ...} or {"unavailable": why} where valgrind or gcc
    is missing. `problem`: {"n_samples", "learning_rate"}."""
    missing = missing_tools()
    if missing:
        return {"unavailable": missing}
    with ThreadPoolExecutor(jobs or os.cpu_count()) as pool:
        order = sorted(variants, key=lambda v: SLOWEST_FIRST.index(v) if v in SLOWEST_FIRST else len(SLOWEST_FIRST))
        futures = {v: pool.submit(count_variant, v, points, problem, dict(environ)) for v in order}
        counted = {v: futures[v].result() for v in variants}
    return {"unavailable": None, "valgrind": valgrind_version(), "steps": list(STEPS), "variants": counted}


# --- the worker, under valgrind ---------------------------------------------------------------

class Requests:
    """callgrind's client requests through the shim."""

    def __init__(self, path):
        self.lib = ctypes.CDLL(path)
        self.lib.cg_stop.argtypes = [ctypes.c_char_p]
        if not self.lib.cg_running_on_valgrind():
            raise RuntimeError("the cost worker must run under valgrind (benchmarks/cost.py command())")
        error = self.lib.cg_arena_reserve()
        if error:
            raise OSError(error, f"reserving the counted fits' arena: {os.strerror(error)}")

    @contextmanager
    def arena(self):
        """Allocations inside from a new generation of the fits' arena (callgrind.c), which a
        point's counted fits then go on using: its layout follows that point's requests alone."""
        self.lib.cg_arena_renew()
        self.lib.cg_arena(1)
        try:
            yield
        finally:
            self.lib.cg_arena(0)

    @contextmanager
    def instrumented(self):
        """Instrumentation on inside. Each switch discards every translation (code then runs
        translated afresh) and empties the simulated cache, so a point switches once."""
        self.lib.cg_instrument(1)
        try:
            yield
        finally:
            self.lib.cg_instrument(0)

    def count(self, label, fn, *args):
        """fn(*args), instrumented, with memory from the arena; its counts go to a dump labelled
        `label` (None: simulated, not dumped)."""
        self.lib.cg_start()
        fn(*args)
        time.sleep(SETTLE_SECONDS)
        self.lib.cg_stop(label.encode() if label is not None else None)


def work(spec):
    import linreg_kernels as lk

    importlib.import_module("numpy.random")  # else imported lazily by the first point's data, in its arena

    start = time.perf_counter()
    requests = Requests(spec["shim"])
    try:
        backend = lk.get_backend(spec["variant"], "cpu")
    except lk.BackendUnavailable as exc:
        return {"unavailable": str(exc)}
    short, long = spec["steps"]
    lr = spec["learning_rate"]
    keys, seconds = [], {"load": time.perf_counter() - start, "warm-up": 0.0, "counted": 0.0}
    per_count = None  # whether a new iteration count compiles a program of its own: found at the first point
    for dim, dtype in spec["points"]:
        X = y = data = None  # the last point's, freed before this one's are made
        with requests.arena():
            X, y, *_ = lk.make_problem(spec["n_samples"], dim, seed=0, dtype=dtype)
            data = backend.to_device(X, y)
        start = time.perf_counter()
        # Compiles and first calls, uncounted. A fit of `long` steps runs only where the iteration
        # count is compiled into the program (jax, tensorflow); elsewhere it would compile nothing,
        # and its steps took a third of the grid's time (valgrind runs FMA code ~25x slower than
        # the same work in AVX without FMA: OpenBLAS's 52 steps at d = 100, 6.8 s against 0.27 s).
        backend.run(data, lr, short)
        if per_count is not False:
            traced = backend.trace_count()
            backend.run(data, lr, long)
            per_count = per_count or backend.trace_count() != traced
        else:
            for _ in range(WARM_CALLS):
                backend.run(data, lr, short)
        seconds["warm-up"] += time.perf_counter() - start
        key = f"{dim},{dtype}"
        start = time.perf_counter()
        traced = backend.trace_count()
        gc.collect()
        gc.disable()  # a collection inside a counted fit would count another fit's garbage
        try:
            with requests.instrumented():
                # Every counted fit starts from the simulated cache a fit of `short` steps leaves.
                requests.count(None, backend.run, data, lr, short)
                for i in range(spec["short_fits"]):
                    requests.count(f"{key} {short} {i}", backend.run, data, lr, short)
                requests.count(f"{key} {long}", backend.run, data, lr, long)
        finally:
            gc.enable()
        if backend.trace_count() != traced:
            raise RuntimeError(f"{spec['variant']} compiled during a counted fit at d={dim} {dtype}: "
                               "its warm-up no longer covers what its fits compile")
        seconds["counted"] += time.perf_counter() - start
        keys.append(key)
    return {"unavailable": None, "points": keys, "version": backend.version(), "seconds": seconds}


def main(argv):
    spec_path, out_path = argv
    out = work(json.loads(Path(spec_path).read_text()))
    Path(out_path).write_text(json.dumps(out))
    # Without the interpreter's teardown of the frameworks, seconds under valgrind; the counts
    # are dumped already.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
