"""The README's commands: `python3 tasks.py bench` and `python3 tasks.py test`, and helpers.

Standard library only, so it runs on a fresh machine with nothing but Python: each task creates
(or reuses) the virtual environment .venv with every framework installed, then runs.
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks import settings
from harness import machine as machines
from harness import report, results

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
STAMP = VENV / ".installed-from"
HTML = ROOT / "html"
RESULTS = ROOT / "results"
STAGE = ROOT / ".asv" / "staging"  # a copy of results/ that a timing run is measured into


def sh(*cmd, **kwargs):
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], cwd=kwargs.pop("cwd", ROOT), **kwargs)


def ensure_venv():
    """Create .venv and install the package with every extra; reinstall when setup.py or the
    framework table changes."""
    digest = hashlib.sha256((ROOT / "setup.py").read_bytes()
                            + (ROOT / "linreg_kernels" / "frameworks.py").read_bytes()
                            + b"byte-compiled").hexdigest()
    if STAMP.exists() and STAMP.read_text() == digest and PY.exists():
        return
    if not PY.exists():
        sh(sys.executable, "-m", "venv", VENV, check=True)
    sh(PY, "-m", "pip", "install", "--quiet", "--no-compile", "-e", ".[all,test]", check=True)
    # Byte-compiled once here, on both cores (pip's own compiling is serial: ~90 s), because
    # Python need not do it later: with PYTHONDONTWRITEBYTECODE set (as on these VMs) every
    # process compiled every module it imported, each time (importing tensorflow: 9.6 s, 4.4 s
    # from bytecode), and the cost workers did it under valgrind. No check: a framework may ship
    # files for a newer Python (torch's py312_intrinsics.py), which compileall reports and skips.
    sh(PY, "-m", "compileall", "-qq", "-j", "0", *site_packages())
    STAMP.write_text(digest)


def site_packages():
    return subprocess.run([PY, "-c", "import site; print(*site.getsitepackages(), sep=chr(10))"],
                          capture_output=True, text=True, check=True).stdout.split()


def ensure_debian_packages(needed):
    """Install Debian's packages for the commands in `needed` ({command: package}) that are
    missing, where we may (root, apt-get): the dashboard tests drive headless Chromium, the cost
    tests valgrind and gcc."""
    missing = sorted({package for command, package in needed.items() if not shutil.which(command)})
    if not missing or not shutil.which("apt-get") or os.geteuid() != 0:
        return
    sh("apt-get", "update", "-qq", check=True)
    sh("apt-get", "install", "-y", "-qq", *missing, check=True, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def test(args):
    """pytest over tests/: first the tests that read CPU time against wall time (marked `clock`),
    two at a time and apart from the rest; then all the others (kernels, asv runs, counts under
    valgrind, the browser: none of them reads the clock) two test files at a time. Each clock
    test asks whether a process at one thread uses at most ~one core: a second such process on
    the other core cannot make it look busier, and a variant that ran two threads would still
    show ~1.3 cores beside it, but the rest of the suite, busy on both cores, could hide that.
    `--fast` runs only the fast tier; any other arguments go to one plain pytest."""
    ensure_venv()
    fast = "--fast" in args
    args = [a for a in args if a != "--fast"]
    env = dict(os.environ)
    # This command installs every framework, so a CPU variant that cannot run is a failure.
    env.setdefault(settings.REQUIRE_BACKENDS_ENV_VAR, "cpu")
    pytest = [PY, "-m", "pytest", "-rs"]  # over pytest.ini's testpaths unless told otherwise
    if fast:
        return sh(*pytest, "-m", "not slow", *args, env=env).returncode
    ensure_debian_packages({"chromium": "chromium", "valgrind": "valgrind", "gcc": "gcc"})
    if os.environ.get("CI"):
        env.setdefault(settings.REQUIRE_BROWSER_ENV_VAR, "1")  # in CI a missing browser fails, never skips
    if args:
        return sh(*pytest, *args, env=env).returncode
    alone = sh(*pytest, "-m", "clock", "-n", "2", env=env).returncode
    side_by_side = sh(*pytest, "-m", "not clock", "-n", "2", "--dist", "loadfile", "--no-loadscope-reorder",
                      env=env).returncode  # in tests/conftest.py's order
    return alone or side_by_side


def asv(*args, **kwargs):
    return sh(VENV / "bin" / "asv", *args, **kwargs)


def has_gpu():
    """None if an NVIDIA GPU answers here, else why not (the suite's GPU points are then left out)."""
    if shutil.which("nvidia-smi") is None:
        return "no NVIDIA GPU on this machine (nvidia-smi not found)"
    if machines.gpu_model() is None:
        return "nvidia-smi found no usable GPU"
    return None


def head():
    return sh("git", "rev-parse", "HEAD", capture_output=True, text=True, check=True).stdout.strip()


class BenchError(Exception):
    """A bad option or a failed step, said in its message; bench exits with `code`."""

    def __init__(self, message, code=2):
        super().__init__(message)
        self.code = code


@dataclass
class Plan:
    """What one `tasks.py bench` measures, and with which Python."""
    measures: list  # a subset of settings.MEASURES, in that order
    subset: dict  # {option: "a,b"} of the grid, "devices" among them
    gpu_missing: str  # why the GPU points are left out; None where a GPU answers
    existing: bool  # this Python's frameworks instead of .venv's pinned ones
    asv_args: list  # anything after `--`, for asv run
    add_refused: bool = False
    python: Path = PY
    asv: tuple = (VENV / "bin" / "asv",)

    def environ(self):
        env = dict(os.environ, **settings.subset_environ(self.subset))
        if self.existing:
            # asv drops PYTHONPATH in its processes and sets ASV_PYTHONPATH in its place: the
            # benchmarks then import this checkout's linreg_kernels.
            env["ASV_PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        return env

    def asv_run(self, measure, commit):
        """asv run's arguments for one measure: the commit, and the points unless -b was given."""
        revision = ["-E", f"existing:{self.python}", "--set-commit-hash", commit] if self.existing else ["HEAD^!"]
        chosen = "-b" in self.asv_args or "--bench" in self.asv_args
        select = [] if chosen else ["-b", settings.selection_regex(self.subset, self.gpu_missing is None, (measure,))]
        return [*revision, *select, *self.asv_args]


def plan_bench(argv):
    """Step 1: what to measure, from the command line; a BenchError names a bad option."""
    parser = argparse.ArgumentParser(prog="python3 tasks.py bench")
    for option in settings.SUBSET_OPTIONS:
        parser.add_argument(f"--{option}", help="comma-separated subset of the grid")
    parser.add_argument("--devices", help="comma-separated subset of cpu,gpu (default: the CPU, and the GPU "
                                          "where one answers)")
    parser.add_argument("--measure", default=",".join(settings.MEASURES),
                        help="comma-separated subset of time,cost: timings on this machine, and the exact cost "
                             "counted under valgrind (default: both)")
    parser.add_argument("--add-refused", action="store_true",
                        help="run nothing: add the timing run the last bench left out of results/, as it is")
    parser.add_argument("--existing", action="store_true",
                        help="measure the frameworks installed in this Python instead of .venv's pinned ones "
                             "(a machine without package access, or with its own CUDA builds); needs asv "
                             "and asv-runner there, and a clean checkout: results carry HEAD's hash")
    own, asv_args = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    args = parser.parse_args(own)
    if settings.side_by_side():
        raise BenchError(f"{settings.CONCURRENT_ENV_VAR}=1 measures the thread settings side by side, sharing "
                         "the cores: no run of it can be a result. Unset it and run again.")
    measures = [m for m in settings.MEASURES if m in args.measure.split(",")]
    if not measures or set(args.measure.split(",")) - set(settings.MEASURES):
        raise BenchError(f"--measure: expected a subset of {','.join(settings.MEASURES)}, got {args.measure!r}")
    subset = {option: getattr(args, option) for option in settings.SUBSET_OPTIONS if getattr(args, option)}
    gpu_missing = has_gpu()
    if args.devices:
        unknown = set(args.devices.split(",")) - set(settings.DEVICES)
        if unknown:
            raise BenchError(f"--devices: unknown {', '.join(sorted(unknown))}; expected a subset of cpu,gpu")
        if "gpu" in args.devices.split(",") and gpu_missing:
            raise BenchError(f"--devices gpu: {gpu_missing}")
        subset["devices"] = args.devices
    if "cpu" not in subset.get("devices", "cpu").split(","):
        measures = [m for m in measures if m != "cost"]  # the cost is counted on the CPU only
    return Plan(measures, subset, gpu_missing, args.existing, asv_args, args.add_refused)


def choose_environment(plan):
    """Step 2: .venv with the pinned frameworks (created or updated), or, with --existing, this
    Python if it can run asv on a clean checkout."""
    if not plan.existing:
        ensure_venv()
        return plan
    problem = existing_problem()
    if problem:
        raise BenchError(f"--existing: {problem}")
    plan.python, plan.asv = Path(sys.executable), (sys.executable, "-m", "asv")
    return plan


def measure(plan, measure_name, machine, commit, config=None):
    """Step 3: one asv run of one measure (into the results of asv config `config`, default
    results/); (seconds, {"variant:device": why n/a})."""
    skipped = ROOT / ".asv" / f"skipped-{measure_name}.json"
    skipped.parent.mkdir(exist_ok=True)
    skipped.unlink(missing_ok=True)
    start = time.perf_counter()
    code = sh(*plan.asv, "run", *(["--config", config] if config else []), "--machine", machine, "--show-stderr",
              *(["--record-samples"] if measure_name == "time" else []), *plan.asv_run(measure_name, commit),
              env=dict(plan.environ(), **{settings.SKIPPED_ENV_VAR: str(skipped)})).returncode
    if code:
        raise BenchError(f"asv run exited {code}: the {measure_name} run failed (see above); nothing added to "
                         "results/", code)
    return time.perf_counter() - start, json.loads(skipped.read_text()) if skipped.exists() else {}


def staged_config(stage):
    """A copy of results/ and an asv config writing there: a timing run joins results/ only once
    it is known to be fit to."""
    shutil.rmtree(stage, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    shutil.copytree(RESULTS, stage / "results")
    conf = json.loads((ROOT / "asv.conf.json").read_text())
    for key in ("benchmark_dir", "env_dir", "html_dir"):
        conf[key] = str(ROOT / conf[key])
    conf["repo"], conf["results_dir"] = str(ROOT), str(stage / "results")
    (stage / "asv.conf.json").write_text(json.dumps(conf, indent=2))
    return stage / "results"


def run_record(plan, commit, seconds, skipped, **fields):
    """What runs.jsonl says of one run beside asv's files."""
    return {"commit": commit, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "seconds": round(seconds),
            "host": machines.machine_info(), "subset": plan.subset, "skipped": skipped, **fields,
            **({"versions": installed_versions()} if plan.existing else {})}


def append_record(results_dir, machine, record):
    """The run's lines in results_dir/<machine>/runs.jsonl: one per environment it ran in."""
    env_names = sorted({run.env_name for run in results.runs(results_dir, machine) if run.commit == record["commit"]})
    for env_name in env_names:
        machines.append_run(results_dir, machine, {**record, "env_name": env_name})


def record_cost(plan, machine, commit, seconds, skipped, missing, results_dir=RESULTS):
    """Step 4 for the exact cost: it joins results_dir at once, since counts do not depend on the
    machine's load; the verdict line."""
    append_record(results_dir, machine, run_record(plan, commit, seconds, {"cost": missing} if missing else skipped,
                                               accepted=True))
    return f"cost of {commit[:8]} added to results/{machine}/ ({seconds:.0f} s)" + (
        f"; every point n/a: {missing}" if missing else "")


def judge(staged_results, machine, commit, others=None):
    """(noise, problems): the run's noise from its own steady-state samples, and why it is not
    fit to join its machine's series (empty if it is): that noise, or `others`, the cores other
    processes used meanwhile (machines.OtherWork)."""
    staged = [run for run in results.runs(staged_results, machine) if run.commit == commit]
    noise = machines.run_noise(max(staged, key=lambda run: run.measured()).fit_samples()) if staged else {}
    if not noise:
        return noise, [f"no point has 3 samples or more: the run's noise is unknown ({settings.ROUNDS_ENV_VAR} below 3?)",
                       *machines.others_problems(others)]
    threads = "1" if "1" in noise else next(iter(noise))
    return noise, [*machines.noise_problems(noise[threads], f"the run's steady-state samples at threads={threads}"),
                   *machines.others_problems(others)]


def record_time(plan, machine, commit, seconds, skipped, stage, results_dir=RESULTS, others=None):
    """Step 4 for the timings: into results_dir if the run is fit to join its machine's series,
    else left in the staged copy (html/ shows it all the same). (joined, verdict lines)."""
    noise, problems = judge(stage / "results", machine, commit, others)
    record = run_record(plan, commit, seconds, {**({"gpu": plan.gpu_missing} if plan.gpu_missing else {}), **skipped},
                        noise_during=noise, others_cores=None if others is None else round(others, 3),
                        problems=problems, gpu=machines.gpu_model())
    noise_text = ", ".join(f"threads={t} {v:.2f}" for t, v in noise.items())
    if not problems:
        accept(stage, results_dir, machine, commit)
        append_record(results_dir, machine, {**record, "accepted": True})
        others_text = "" if others is None else f"; other processes {others:.2f} cores, limit {machines.MAX_OTHERS:.2f}"
        return True, (f"timings of {commit[:8]} added to results/{machine}/: fit to join its series (noise, the "
                      f"median over the fastest of each point's samples: {noise_text}; limit {machines.MAX_NOISE:.2f}"
                      f"{others_text})")
    append_record(stage / "results", machine, {**record, "accepted": False})
    lines = [f"This run is in html/ (dashboard and report) but NOT in results/{machine}/: it is not fit to join "
             "that series, because", *(f"  - {problem}" for problem in problems),
             f"It stays in {stage.relative_to(ROOT) if stage.is_relative_to(ROOT) else stage}/ until the next bench. To add it as it is (marked forced, with "
             "these reasons, in runs.jsonl): python3 tasks.py bench --add-refused. To start a series of its own: "
             f"{settings.MACHINE_ENV_VAR}=<new name> python3 tasks.py bench."]
    return False, "\n".join(lines)


def accept(stage, results_dir, machine, commit):
    """Copy the staged run's result files and asv's description of the machine into results_dir
    (not the staged copies of earlier runs: results/ may have changed since)."""
    staged = stage / "results" / machine
    for path in [*staged.glob(f"{commit[:8]}-*.json"), staged / "machine.json"]:
        target = results_dir / machine / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    shutil.copy2(stage / "results" / "benchmarks.json", results_dir / "benchmarks.json")


def add_refused(stage, results_dir, machine, commit):
    """The deliberate step: the staged timing run of `commit` that the last bench did not add,
    added as it is, marked forced with its reasons."""
    refused = [r for r in machines.read_runs(stage / "results", machine)
               if r.get("commit") == commit and r.get("accepted") is False]
    if not refused:
        raise BenchError(f"no run of {commit[:8]} on {machine} to add: only a timing run that was not fit to join "
                         f"leaves one in {stage}, until the next bench starts")
    accept(stage, results_dir, machine, commit)
    for record in refused:
        machines.append_run(results_dir, machine, {**record, "accepted": True, "forced": True})
    return f"added to results/{machine}/ as it is: commit {commit[:8]}, despite: " + "; ".join(refused[0]["problems"])


def bench(argv):
    """The whole grid for the checked-out commit (every variant, both thread settings; the GPU
    points where a GPU answers), in four steps: choose the environment; measure the exact cost,
    then the timings; record (the cost joins results/ at once, the timings if fit to join their
    series); publish html/ with this run. Options select a subset; anything after `--` goes to
    `asv run`."""
    try:
        plan = choose_environment(plan_bench(argv))
        commit, timing_machine = head(), machines.register(RESULTS)
        if plan.add_refused:
            verdicts, shown = [add_refused(STAGE, RESULTS, timing_machine, commit)], (RESULTS, None)
        else:
            verdicts, shown = [], (RESULTS, None)
            if "cost" in plan.measures:
                from benchmarks.cost import missing_tools, valgrind_version

                missing = missing_tools()
                machine = machines.register(RESULTS, info=machines.cost_machine_info(
                    valgrind_version() if not missing else "valgrind-missing"))
                seconds, skipped = measure(plan, "cost", machine, commit)
                verdicts.append(record_cost(plan, machine, commit, seconds, skipped, missing))
            if "time" in plan.measures:
                staged = staged_config(STAGE)
                others = machines.OtherWork()
                seconds, skipped = measure(plan, "time", timing_machine, commit, STAGE / "asv.conf.json")
                joined, verdict = record_time(plan, timing_machine, commit, seconds, skipped, STAGE, others=others.cores())
                verdicts.append(verdict)
                shown = (RESULTS, None) if joined else (staged, STAGE / "asv.conf.json")
    except BenchError as exc:
        print(exc, file=sys.stderr)
        return exc.code
    if plan.existing:
        verdicts.append("not published here: `python3 tasks.py publish` writes html/ where .venv can be installed")
    else:
        results_dir, config = shown
        # The report shows this machine's timings or, where it has none yet, the committed ones it picks.
        machine = ["--machine", timing_machine] if results.runs(results_dir, timing_machine) else []
        publish(["--results-dir", results_dir, *machine, "--commit", commit] if config else machine, config=config)
    print("\n" + "\n".join(verdicts))
    return 0


def existing_problem():
    """Why `bench --existing` cannot run in this Python (None if it can)."""
    import importlib.util

    missing = [m for m in ("asv", "asv_runner") if importlib.util.find_spec(m) is None]
    if missing:
        return (f"{' and '.join(missing)} not installed in {sys.executable}: pip install asv asv-runner "
                "(the versions setup.py's HARNESS pins)")
    dirty = sh("git", "status", "--porcelain", "--untracked-files=no", capture_output=True, text=True,
               check=True).stdout.strip()
    if dirty:
        return f"the checkout has changes, and the results would be labelled with HEAD:\n{dirty}"
    return None


def installed_versions():
    """The framework packages installed in this Python (asv records them only for its own environments)."""
    from linreg_kernels.frameworks import installed

    return installed()


def publish(args=(), config=None):
    """results/ (or the results of asv config `config`) -> html/: asv's data, an offline UI over
    it (asv-tachyon) and the report."""
    ensure_venv()
    asv("publish", *(["--config", config] if config else []), check=True)
    sh(VENV / "bin" / "asv-tachyon", "install", HTML, check=True, stdout=subprocess.DEVNULL)
    report.compact_dashboard(HTML)
    sh(PY, "-m", "harness.report", "--out", HTML / "report", *args, check=True)
    print("\nto browse it: python3 -m http.server -d html 8080, then open http://localhost:8080/ "
          "(dashboard) and http://localhost:8080/report/ (comparison report)")
    return 0


def versions(args):
    """Compare releases of one framework by cost and time, e.g. `python3 tasks.py versions jax
    0.10.0 0.10.1 0.10.2` (harness/versions.py), then publish html/ with the comparison."""
    ensure_venv()
    code = sh(PY, "-m", "harness.versions", *args).returncode
    if code == 0:
        publish()
    return code


def machine(args):
    """Register this machine with asv and print its name, for `asv run --machine ...`; with
    `--cost`, the machine the exact cost is counted on (valgrind's virtual CPU)."""
    if args not in ([], ["--cost"]):
        print("usage: python3 tasks.py machine [--cost]", file=sys.stderr)
        return 2
    if args:
        from benchmarks.cost import missing_tools, valgrind_version

        if missing_tools():
            print(missing_tools(), file=sys.stderr)
            return 2
        print(machines.register(RESULTS, info=machines.cost_machine_info(valgrind_version())))
        return 0
    print(machines.register(RESULTS))
    return 0


def main(argv):
    tasks = {"bench": bench, "test": test, "publish": publish, "versions": versions, "machine": machine}
    if not argv or argv[0] not in tasks:
        print(f"usage: python3 tasks.py {{{'|'.join(tasks)}}} [extra args]", file=sys.stderr)
        return 2
    start = time.perf_counter()
    code = tasks[argv[0]](argv[1:])
    print(f"tasks.py {argv[0]}: exit {code} after {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
