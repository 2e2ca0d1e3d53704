"""The README's commands: `python3 tasks.py bench` and `python3 tasks.py test`, and helpers.

Standard library only, so it runs on a fresh machine with nothing but Python: each task creates
(or reuses) the virtual environment .venv with every framework installed, then runs.
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from harness import machine as machines
from harness import report, results

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
STAMP = VENV / ".installed-from"
HTML = ROOT / "html"
RESULTS = ROOT / "results"
STAGE = ROOT / ".asv" / "staging"
REFUSED = STAGE / "refused.json"  # what a run refused after running would add; removed by the next run
SUBSET_OPTIONS = {"variants": "LINREG_BENCH_VARIANTS", "threads": "LINREG_BENCH_THREADS",
                  "dims": "LINREG_BENCH_DIMS", "dtypes": "LINREG_BENCH_DTYPES"}  # benchmarks/common.py's
SKIPPED = STAGE / "skipped.json"  # why variants were n/a in the last run (benchmarks/common.py record_skipped)
SKIPPED_ENV_VAR = "LINREG_BENCH_SKIPPED"
MEASURES = ("time", "cost")  # timings on this machine; the exact cost, counted under valgrind
CONCURRENT_ENV_VAR = "LINREG_BENCH_CONCURRENT"  # thread settings side by side: smoke runs only, refused here


def sh(*cmd, **kwargs):
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], cwd=kwargs.pop("cwd", ROOT), **kwargs)


def ensure_venv():
    """Create .venv and install the package with every extra; reinstall when setup.py or the
    framework table changes."""
    digest = hashlib.sha256((ROOT / "setup.py").read_bytes()
                            + (ROOT / "linreg_kernels" / "frameworks.py").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == digest and PY.exists():
        return
    if not PY.exists():
        sh(sys.executable, "-m", "venv", VENV, check=True)
    sh(PY, "-m", "pip", "install", "--quiet", "-e", ".[all,test]", check=True)
    STAMP.write_text(digest)


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
    """pytest over tests/: first, alone, the tests that read CPU time or load against wall time
    (marked `clock`: other work on the machine disturbs them); then all the others (kernels, asv
    runs, counts under valgrind, the browser: none of them reads the clock) two test files at a
    time. `--fast` runs only the fast tier; any other arguments go to one plain pytest."""
    ensure_venv()
    fast = "--fast" in args
    args = [a for a in args if a != "--fast"]
    env = dict(os.environ)
    # This command installs every framework, so a CPU variant that cannot run is a failure.
    env.setdefault("LINREG_REQUIRE_BACKENDS", "cpu")
    pytest = [PY, "-m", "pytest", "-rs"]  # over pytest.ini's testpaths unless told otherwise
    if fast:
        return sh(*pytest, "-m", "not slow", *args, env=env).returncode
    ensure_debian_packages({"chromium": "chromium", "valgrind": "valgrind", "gcc": "gcc"})
    if os.environ.get("CI"):
        env.setdefault("LINREG_REQUIRE_BROWSER", "1")  # in CI a missing browser fails, never skips
    if args:
        return sh(*pytest, *args, env=env).returncode
    alone = sh(*pytest, "-m", "clock", env=env).returncode
    side_by_side = sh(*pytest, "-m", "not clock", "-n", "2", "--dist", "loadfile", env=env).returncode
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


def selection_regex(subset, gpu, measures=("time",)):
    """asv -b regex for the grid points a run measures: timings ("time") or counts ("cost",
    CpuCost). asv matches it against names such as
    linreg.CpuFit.track_steady_state('jax', '1', 100, 'float64'), and keeps the earlier values
    of every point it does not select."""
    def alt(name, quoted=True):
        values = subset.get(name)
        if not values:
            return r"[^,]+"
        return "(" + "|".join(re.escape(f"'{v}'" if quoted else v) for v in values.split(",")) + ")"
    v, t, d, dt = alt("variants"), alt("threads"), alt("dims", quoted=False), alt("dtypes")
    devices = subset.get("devices", "cpu,gpu").split(",")
    parts = []
    if "cost" in measures and "cpu" in devices:
        parts.append(rf"CpuCost\.\w+\({v}, {d}, {dt}\)")
    if "time" in measures and "cpu" in devices:
        parts += [rf"CpuFit\.\w+\({v}, {t}, {d}, {dt}\)", rf"CpuFirstCall\.\w+\({v}, {d}, {dt}\)",
                  rf"CpuProcess\.\w+\({v}, {t}\)", rf"CpuFloor\.\w+\({t}, {d}, {dt}\)"]
    if "time" in measures and gpu and "gpu" in devices:
        parts += [rf"GpuFit\.\w+\({v}, {d}, {dt}\)", rf"GpuFloor\.\w+\({d}, {dt}\)"]
    return r"^linreg\.(" + "|".join(parts) + r")$"


def calibrate(python=PY):
    out = sh(python, "-m", "harness.calibrate", capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def staged_config():
    """A copy of the results and an asv config writing there: a run joins results/ only once it
    is known to be comparable."""
    shutil.rmtree(STAGE, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    shutil.copytree(RESULTS, STAGE / "results")
    conf = json.loads((ROOT / "asv.conf.json").read_text())
    for key in ("benchmark_dir", "env_dir", "html_dir"):
        conf[key] = str(ROOT / conf[key])
    conf["repo"], conf["results_dir"] = str(ROOT), str(STAGE / "results")
    path = STAGE / "asv.conf.json"
    path.write_text(json.dumps(conf, indent=2))
    return path


def head():
    return sh("git", "rev-parse", "HEAD", capture_output=True, text=True, check=True).stdout.strip()


def accept(machine, commit):
    """Copy the staged run's result files and asv's description of the machine into results/ (not
    the staged copies of earlier runs: results/ may have changed since, when a refused run is added
    later)."""
    staged = STAGE / "results" / machine
    for path in [*staged.glob(f"{commit[:8]}-*.json"), staged / "machine.json"]:
        target = RESULTS / machine / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    shutil.copy2(STAGE / "results" / "benchmarks.json", RESULTS / "benchmarks.json")


def bench(argv):
    """The whole grid for the checked-out commit (both thread settings, every variant; GPU points
    where a GPU answers), on a quiet machine, added to results/ only if comparable; html/ published.

    Options select a subset of the grid; anything after `--` goes to `asv run`.
    """
    parser = argparse.ArgumentParser(prog="python3 tasks.py bench")
    for option in SUBSET_OPTIONS:
        parser.add_argument(f"--{option}", help="comma-separated subset of the grid")
    parser.add_argument("--force", action="store_true",
                        help="add the run even if the machine was busy or its calibration differs")
    parser.add_argument("--devices", help="comma-separated subset of cpu,gpu (default: the CPU, and the GPU "
                                          "where one answers)")
    parser.add_argument("--measure", default=",".join(MEASURES),
                        help="comma-separated subset of time,cost: timings on this machine, and the exact cost "
                             "counted under valgrind (default: both)")
    parser.add_argument("--add-refused", action="store_true",
                        help="run nothing: add the run the last bench refused after running, as it is")
    parser.add_argument("--existing", action="store_true",
                        help="measure the frameworks installed in this Python instead of .venv's pinned ones "
                             "(a machine without package access, or with its own CUDA builds); needs asv "
                             "and asv-runner there, and a clean checkout: results carry HEAD's hash")
    own, asv_args = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    args = parser.parse_args(own)
    if os.environ.get(CONCURRENT_ENV_VAR, "").strip() not in ("", "0"):
        print(f"{CONCURRENT_ENV_VAR}={os.environ[CONCURRENT_ENV_VAR]} measures the thread settings side by side, "
              f"sharing the cores: no run of it can be a result. Unset it and run again.", file=sys.stderr)
        return 2
    if args.existing:
        python, asv_command = Path(sys.executable), [sys.executable, "-m", "asv"]
        problem = existing_problem()
        if problem:
            print(f"--existing: {problem}", file=sys.stderr)
            return 2
    else:
        ensure_venv()
        python, asv_command = PY, [VENV / "bin" / "asv"]
    machine = machines.register(RESULTS)
    if args.add_refused:
        return add_refused(machine, publish_html=not args.existing)
    measures = args.measure.split(",")
    if not measures or set(measures) - set(MEASURES):
        print(f"--measure: expected a subset of {','.join(MEASURES)}, got {args.measure!r}", file=sys.stderr)
        return 2
    subset = {k: getattr(args, k) for k in SUBSET_OPTIONS if getattr(args, k)}
    env = dict(os.environ, **{SUBSET_OPTIONS[k]: v for k, v in subset.items()})
    gpu_missing = has_gpu()
    if args.devices:
        unknown = set(args.devices.split(",")) - {"cpu", "gpu"}
        if unknown:
            print(f"--devices: unknown {', '.join(sorted(unknown))}; expected a subset of cpu,gpu", file=sys.stderr)
            return 2
        if "gpu" in args.devices.split(",") and gpu_missing:
            print(f"--devices gpu: {gpu_missing}", file=sys.stderr)
            return 2
        subset["devices"] = args.devices  # selects benchmarks (-b); no environment variable of its own
    if args.existing:
        # asv drops PYTHONPATH in its processes and sets ASV_PYTHONPATH in its place: the
        # benchmarks then import this checkout's linreg_kernels.
        env["ASV_PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        revision = ["-E", f"existing:{sys.executable}", "--set-commit-hash", head()]
    else:
        revision = ["HEAD^!"]
    chosen = "-b" in asv_args or "--bench" in asv_args

    def selected(measure):
        return [*revision, *([] if chosen else ["-b", selection_regex(subset, gpu_missing is None, (measure,))]),
                *asv_args]

    cost_code = None
    if "cost" in measures and "cpu" in subset.get("devices", "cpu").split(","):
        cost_code = bench_cost(asv_command, selected("cost"), env, subset, args.existing)
    code = 0
    if "time" in measures:
        code = bench_time(args, python, asv_command, machine, selected("time"), env, subset, gpu_missing)
    if cost_code == 0 and not args.existing and "time" not in measures:
        # What landed: the cost run, beside this machine's timings or, where it has none yet,
        # beside the committed timings the report picks.
        publish(["--machine", machine] if results.runs(RESULTS, machine) else [])
    return code or cost_code or 0


def bench_cost(asv_command, asv_args, env, subset, existing):
    """The exact cost of this commit, counted under valgrind (benchmarks/cost.py), into
    results/<valgrind machine>/ at once: counts do not depend on the machine's load, so there
    is nothing to check before they join the series."""
    from benchmarks.cost import missing_tools, valgrind_version

    missing = missing_tools()
    info = machines.cost_machine_info(valgrind_version() if not missing else "valgrind-missing")
    machine = machines.register(RESULTS, info=info)
    commit = head()
    STAGE.mkdir(parents=True, exist_ok=True)
    skipped = STAGE / "cost-skipped.json"
    skipped.unlink(missing_ok=True)
    start = time.perf_counter()
    code = sh(*asv_command, "run", "--machine", machine, "--show-stderr", *asv_args,
              env=dict(env, **{SKIPPED_ENV_VAR: str(skipped)})).returncode
    seconds = time.perf_counter() - start
    if code:
        print(f"asv run exited {code}: the cost run failed (see above)", file=sys.stderr)
        return code
    env_names = sorted({run.env_name for run in results.runs(RESULTS, machine) if run.commit == commit})
    for env_name in env_names:
        machines.append_run(RESULTS, machine, {
            "commit": commit, "env_name": env_name, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "host": machines.machine_info(), "seconds": round(seconds), "subset": subset,
            "skipped": {"cost": missing} if missing else json.loads(skipped.read_text()) if skipped.exists() else {},
            "accepted": True,
            **({"versions": installed_versions()} if existing else {})})
    print(f"cost of {commit[:8]} added to results/{machine}/ ({seconds:.0f} s)"
          + (f"; every point n/a: {missing}" if missing else ""))
    return 0


def bench_time(args, python, asv_command, machine, asv_args, env, subset, gpu_missing):
    """The timings, on a quiet machine, added to results/ only if comparable."""
    reference = machines.series_calibration(machines.read_runs(RESULTS, machine))
    load = {"before": machines.quiet_window()}
    calibration = {"before": calibrate(python)}
    before = machines.load_problems(load["before"]) + machines.calibration_problems(calibration["before"], reference)
    print(f"machine {machine}: load {load['before']}, calibration {calibration['before']}, series {reference}")

    config = staged_config()
    env[SKIPPED_ENV_VAR] = str(SKIPPED)
    with machines.BackgroundLoad() as during:
        code = sh(*asv_command, "run", "--config", config, "--machine", machine, "--show-stderr", "--record-samples",
                  *asv_args, env=env).returncode
    load["during"] = during.summary()
    load["after"] = machines.quiet_window()
    calibration["after"] = calibrate(python)
    if code:
        print(f"asv run exited {code}: some benchmarks failed (see above); nothing added to results/",
              file=sys.stderr)
        return code
    commit = head()
    staged = [run for run in results.runs(STAGE / "results", machine) if run.commit == commit]
    noise = machines.run_noise(max(staged, key=lambda run: run.measured()).fit_samples())
    problems = [*before, *machines.load_problems(load["during"]), *machines.load_problems(load["after"]),
                *noise_problems(noise, calibration["after"]),
                *machines.floor_problems(calibration["after"]["floor"], reference),
                *machines.floor_problems(calibration["after"]["floor"], calibration["before"]["floor"], "before the run")]
    record = {"commit": commit, "env_names": sorted({run.env_name for run in staged}),
              "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "calibration": calibration,
              "noise_during": noise, "load": load, "problems": problems, "subset": subset,
              "skipped": {**({"gpu": gpu_missing} if gpu_missing else {}),
                          **(json.loads(SKIPPED.read_text()) if SKIPPED.exists() else {})},
              "gpu": machines.gpu_model(),
              **({"versions": installed_versions()} if args.existing else {})}
    if problems and not args.force:
        print(f"load {load}\ncalibration {calibration}, series {reference}\nnoise during the run {noise}")
        REFUSED.write_text(json.dumps({"machine": machine, **record}, indent=1))
        return deliver_unjoined(machine, record, problems, publish_html=not args.existing)
    return add(machine, record, publish_html=not args.existing)


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


def record_run(results_dir, machine, record, **fields):
    """The run's lines in results_dir/<machine>/runs.jsonl: one per environment it ran in."""
    for env_name in record["env_names"]:
        machines.append_run(results_dir, machine, {**{k: v for k, v in record.items() if k != "env_names"},
                                                   "env_name": env_name, **fields})


def add(machine, record, publish_html=True):
    """Copy the staged run into results/, one runs.jsonl line per environment, and publish (a run
    in an existing Python is published where the harness is installed: `python3 tasks.py publish`)."""
    accept(machine, record["commit"])
    record_run(RESULTS, machine, record, accepted=True, forced=bool(record["problems"]))
    print(f"added to results/{machine}/: commit {record['commit'][:8]}; calibration {record['calibration']}")
    if not publish_html:
        print("not published here: `python3 tasks.py publish` writes html/ where .venv can be installed")
        return 0
    return publish(["--machine", machine])


def add_refused(machine, publish_html=True):
    """The run the last `bench` refused after running, added as it is (forced, with its problems)
    instead of measured again."""
    if not REFUSED.exists():
        print(f"no refused run to add: {REFUSED.relative_to(ROOT)} is missing (only a run refused after "
              "running leaves one, until the next bench starts)", file=sys.stderr)
        return 2
    record = json.loads(REFUSED.read_text())
    if record.pop("machine") != machine or record["commit"] != head():
        print(f"the refused run is of commit {record['commit'][:8]}; check it out (and use its machine name) "
              "to add it", file=sys.stderr)
        return 2
    code = add(machine, record, publish_html)
    REFUSED.unlink()
    return code


def noise_problems(noise, after):
    """The run's noise at one thread from its own steady-state samples; the calibration after
    the run only where the run has none (a grid subset without threads=1, or fewer than 3
    rounds). A calibration's second of identical passes said little about the run: runs accepted
    by it had the same noise during the run as runs it refused (README, A quiet, comparable machine)."""
    if "1" in noise:
        return machines.noise_problems(noise["1"], "the run's steady-state samples at one thread")
    return machines.noise_problems(after["noise"], "identical passes after the run")


def deliver_unjoined(machine, record, problems, publish_html=True):
    """A run not fit to join results/<machine>/: html/ shows it all the same (published from the
    staged copy of results/, where it is recorded as not accepted), and the verdict says why."""
    staged = STAGE / "results"
    record_run(staged, machine, record, accepted=False)
    if publish_html:
        publish(["--results-dir", staged, "--machine", machine, "--commit", record["commit"]],
                config=STAGE / "asv.conf.json")
    shown = "is in html/ (dashboard and report)" if publish_html else "was not published here (--existing)"
    print(f"\nThis run {shown} but NOT in results/{machine}/: it is not fit to join that series, because")
    for problem in problems:
        print(f"  - {problem}")
    print(f"It stays in {STAGE.relative_to(ROOT)}/ until the next bench. To add it as it is (marked forced, "
          "with these reasons, in runs.jsonl): python3 tasks.py bench --add-refused. To start a series of "
          "its own: LINREG_ASV_MACHINE=<new name> python3 tasks.py bench.")
    return 0


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
    """Compare releases of one framework, e.g. `python3 tasks.py versions jax 0.10.1 0.10.2`
    (arguments after `--` go to asv run)."""
    ensure_venv()
    machine = machines.register(RESULTS)
    code = sh(PY, "-m", "harness.versions", "--machine", machine, *args).returncode
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
