"""The harness around the suite: machine naming, the run's noise and whether it joins its series,
grid selection, the framework table as the one source of pins, and static checks over all code."""
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tasks
from benchmarks import settings
from harness import machine as machines
from harness import report, results
from linreg_kernels import FRAMEWORKS
from linreg_kernels.frameworks import requirements

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("model, name", [
    ("Intel(R) Xeon(R) Processor", "cpu-2core-intel-xeon"),
    ("AMD EPYC", "cpu-2core-amd-epyc"),
    ("AMD EPYC 7B13 64-Core Processor", "cpu-2core-amd-epyc-7b13-64-core"),
    ("Intel(R) Core(TM) i5-2520M CPU @ 2.50GHz", "cpu-2core-intel-core-i5-2520m"),
])
def test_machine_name_comes_from_the_cpu_model(model, name):
    assert machines.machine_name(model, 2) == name


def test_a_gpu_leads_the_machine_name():
    assert machines.machine_name("AMD EPYC", 16, "NVIDIA H200") == "gpu-nvidia-h200-cpu-16core-amd-epyc"


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    monkeypatch.setattr(machines, "cpu_model", lambda: "Test CPU 9000")
    monkeypatch.setattr(machines, "gpu_model", lambda: None)
    return tmp_path


def test_register_records_every_field_and_keeps_other_machines(sandbox):
    (sandbox / ".asv-machine.json").write_text(json.dumps({"version": 1, "other": {"machine": "other"}}))
    name = machines.register(sandbox / "results", home=sandbox)
    saved = json.loads((sandbox / ".asv-machine.json").read_text())
    assert name == machines.machine_name("Test CPU 9000", machines.os.cpu_count())
    assert saved["other"] == {"machine": "other"} and saved["version"] == 1
    assert saved[name]["cpu"] == "Test CPU 9000"
    assert set(saved[name]) == {"machine", "os", "arch", "cpu", "num_cpu", "ram"} and all(saved[name].values())


def test_register_refuses_a_name_measured_on_another_cpu(sandbox, monkeypatch):
    monkeypatch.setenv(settings.MACHINE_ENV_VAR, "shared-name")
    (sandbox / "results" / "shared-name").mkdir(parents=True)
    (sandbox / "results" / "shared-name" / "machine.json").write_text(json.dumps({"cpu": "Other CPU 1"}))
    with pytest.raises(SystemExit, match="'Other CPU 1' CPU, this one is 'Test CPU 9000'"):
        machines.register(sandbox / "results", home=sandbox)
    assert not (sandbox / ".asv-machine.json").exists()


def write_run(path, commit, samples):
    """An asv result file holding CpuFit steady-state samples of numpy at d = 2 and 100, float64,
    one thread and all cores ({(threads, dim): [s, ...]})."""
    keys = [(t, d) for t in ("1", "all") for d in (2, 100)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "commit_hash": commit, "env_name": "env", "date": 0, "params": {},
        "result_columns": ["result", "params", "samples"],
        "results": {results.STEADY: [[0.1 if samples.get(k) else None for k in keys],
                                     [["'numpy'"], ["'1'", "'all'"], ["2", "100"], ["'float64'"]],
                                     [samples.get(k) for k in keys]]}}))


STEADY, NOISY = [0.100, 0.101, 0.100, 0.102], [0.100, 0.125, 0.130, 0.120]


def test_a_run_is_judged_by_the_noise_of_its_own_samples(tmp_path):
    write_run(tmp_path / "m" / "c0ffee00-env.json", "c0ffee00", {("1", 2): STEADY, ("1", 100): STEADY, ("all", 2): NOISY})
    samples = results.Run(tmp_path / "m" / "c0ffee00-env.json").fit_samples()
    assert samples == {"1": [STEADY, STEADY], "all": [NOISY]}
    noise, problems = tasks.judge(tmp_path, "m", "c0ffee00")
    assert noise["1"] == pytest.approx(1.005) and noise["all"] == pytest.approx(1.225) and problems == []
    write_run(tmp_path / "m" / "deadbeef-env.json", "deadbeef", {("1", 2): NOISY, ("1", 100): NOISY})
    noise, [problem] = tasks.judge(tmp_path, "m", "deadbeef")
    assert "steady-state samples at threads=1 vary: their median is 22.5% above the fastest (limit 10%)" in problem
    # two samples per point say nothing about spread
    write_run(tmp_path / "m" / "0ld0ld00-env.json", "0ld0ld00", {("1", 2): [0.1, 0.2]})
    assert machines.run_noise({"1": [[0.1, 0.2]]}) == {}
    noise, [problem] = tasks.judge(tmp_path, "m", "0ld0ld00")
    assert noise == {} and "the run's noise is unknown" in problem


def test_a_run_beside_other_work_is_not_fit_whatever_its_noise(tmp_path):
    write_run(tmp_path / "m" / "c0ffee00-env.json", "c0ffee00", {("1", 2): STEADY, ("1", 100): STEADY})
    assert tasks.judge(tmp_path, "m", "c0ffee00", others=0.1)[1] == []
    noise, [problem] = tasks.judge(tmp_path, "m", "c0ffee00", others=0.9)
    assert noise["1"] == pytest.approx(1.005)
    assert "other processes on this machine used 0.90 cores on average while it ran (limit 0.25)" in problem


@pytest.mark.clock
def test_other_work_counts_the_processes_the_run_did_not_start_and_wait_for():
    """A busy process this one has not waited for is other work; its CPU is seen in /proc/stat."""
    watch = machines.OtherWork()
    hog = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 1.5\nwhile time.time() < end: pass"])
    time.sleep(1.0)
    cores = watch.cores()
    hog.wait()
    assert cores >= 0.6


def staged_run(stage, commit, samples):
    """A staged copy of results/ with one timing run of machine m, as `asv run` leaves it."""
    write_run(stage / "results" / "m" / f"{commit}-env.json", commit, samples)
    (stage / "results" / "m" / "machine.json").write_text('{"machine": "m"}')
    (stage / "results" / "benchmarks.json").write_text('{"full": "grid"}')


def test_a_fit_run_joins_its_series_and_an_unfit_one_stays_staged_until_added(tmp_path):
    """record_time copies a fit run into results/ with its line in runs.jsonl; an unfit one stays
    in the staged copy, recorded there as not accepted, and the verdict says why and how to add
    it; add_refused adds it as it is, marked forced; the staged copies of earlier runs never
    overwrite results/."""
    stage, committed = tmp_path / ".asv" / "staging", tmp_path / "results"
    plan = tasks.Plan(["time"], {}, None, False, [])
    staged_run(stage, "c0ffee00", {("1", 2): STEADY, ("1", 100): STEADY})
    write_run(stage / "results" / "m" / "0ld0ld00-env.json", "0ld0ld00", {("1", 2): NOISY})  # a staged copy
    write_run(committed / "m" / "0ld0ld00-env.json", "0ld0ld00", {("1", 2): STEADY})  # updated since
    earlier = (committed / "m" / "0ld0ld00-env.json").read_text()
    joined, verdict = tasks.record_time(plan, "m", "c0ffee00", 60.0, {}, stage, committed)
    assert joined and "added to results/m/: fit to join its series" in verdict and "threads=1 1.0" in verdict
    assert (committed / "m" / "c0ffee00-env.json").exists() and (committed / "benchmarks.json").exists()
    assert (committed / "m" / "0ld0ld00-env.json").read_text() == earlier
    [line] = machines.read_runs(committed, "m")
    assert line["accepted"] and line["commit"] == "c0ffee00" and line["env_name"] == "env" and line["problems"] == []

    staged_run(stage, "deadbeef", {("1", 2): NOISY, ("1", 100): NOISY})
    joined, verdict = tasks.record_time(plan, "m", "deadbeef", 60.0, {}, stage, committed)
    assert not joined and not (committed / "m" / "deadbeef-env.json").exists()
    assert "NOT in results/m/: it is not fit to join that series" in verdict and "22.5% above the fastest" in verdict
    assert "python3 tasks.py bench --add-refused" in verdict
    assert len(machines.read_runs(committed, "m")) == 1
    [staged_line] = [r for r in machines.read_runs(stage / "results", "m") if r["commit"] == "deadbeef"]
    assert staged_line["accepted"] is False

    with pytest.raises(tasks.BenchError, match="no run of 0ld0ld00 on m to add"):
        tasks.add_refused(stage, committed, "m", "0ld0ld00")
    assert "despite: the run's steady-state samples" in tasks.add_refused(stage, committed, "m", "deadbeef")
    assert json.loads((committed / "m" / "deadbeef-env.json").read_text())["commit_hash"] == "deadbeef"
    assert (committed / "m" / "0ld0ld00-env.json").read_text() == earlier
    added = machines.read_runs(committed, "m")[-1]
    assert added["commit"] == "deadbeef" and added["accepted"] and added["forced"] and "22.5%" in added["problems"][0]


def test_selection_regex_picks_exactly_the_subset():
    regex = re.compile(settings.selection_regex({"variants": "jax,numpy", "dims": "100"}, gpu=False))
    assert regex.search("linreg.CpuFit.track_steady_state('jax', '1', 100, 'float64')")
    assert regex.search("linreg.CpuFloor.track_one_pass('all', 100, 'float32')")
    assert regex.search("linreg.CpuProcess.track_peak_memory('numpy', 'all')")
    assert not regex.search("linreg.CpuFit.track_steady_state('jax', '1', 50, 'float64')")
    assert not regex.search("linreg.CpuFit.track_steady_state('numba', '1', 100, 'float64')")
    assert not regex.search("linreg.GpuFit.track_steady_state('jax', 100, 'float64')")
    everything = re.compile(settings.selection_regex({}, gpu=True))
    assert everything.search("linreg.GpuFit.track_steady_state('jax', 100, 'float64')")
    assert everything.search("linreg.GpuFloor.track_best(100, 'float64')")
    gpu_only = re.compile(settings.selection_regex({"devices": "gpu", "dims": "2"}, gpu=True))
    assert gpu_only.search("linreg.GpuFloor.track_best(2, 'float32')")
    assert gpu_only.search("linreg.GpuFit.track_floor_multiple('torch', 2, 'float64')")
    assert not gpu_only.search("linreg.GpuFit.track_best('torch', 5, 'float64')")
    assert not gpu_only.search("linreg.CpuFloor.track_best('1', 2, 'float64')")


def test_side_by_side_thread_settings_are_refused_for_results(monkeypatch):
    assert settings.side_by_side({settings.CONCURRENT_ENV_VAR: "1"}) and not settings.side_by_side({})
    with pytest.raises(ValueError, match=f"{settings.CONCURRENT_ENV_VAR} must be 0 or 1, got 'yes'"):
        settings.side_by_side({settings.CONCURRENT_ENV_VAR: "yes"})
    monkeypatch.setenv(settings.CONCURRENT_ENV_VAR, "1")
    with pytest.raises(tasks.BenchError, match="no run of it can be a result"):
        tasks.plan_bench([])


@pytest.mark.parametrize("argv, error", [
    (["--measure", "speed"], "--measure: expected a subset of time,cost, got 'speed'"),
    (["--devices", "tpu"], "--devices: unknown tpu; expected a subset of cpu,gpu"),
])
def test_bench_refuses_a_bad_option_before_measuring(argv, error):
    with pytest.raises(tasks.BenchError) as refused:
        tasks.plan_bench(argv)
    assert str(refused.value) == error and refused.value.code == 2


def test_a_plan_selects_the_same_points_for_asv_and_the_suite():
    plan = tasks.plan_bench(["--variants", "jax,numpy", "--dims", "100", "--measure", "cost"])
    assert plan.measures == ["cost"] and plan.environ()[settings.SUBSET_ENV_VARS["variants"]] == "jax,numpy"
    args = plan.asv_run("cost", "c0ffee00")
    assert args[0] == "HEAD^!" and re.match(args[args.index("-b") + 1], "linreg.CpuCost.track_instructions('jax', 100, 'float64')")


def test_the_selection_of_the_cost_picks_only_cost_points():
    regex = re.compile(settings.selection_regex({"variants": "numpy", "dims": "2"}, gpu=False, measures=("cost",)))
    assert regex.match("linreg.CpuCost.track_instructions('numpy', 2, 'float64')")
    assert not regex.match("linreg.CpuCost.track_instructions('numba', 2, 'float64')")
    assert not regex.match("linreg.CpuFit.track_best('numpy', '1', 2, 'float64')")
    timing = re.compile(settings.selection_regex({}, gpu=False))
    assert not timing.match("linreg.CpuCost.track_instructions('numpy', 2, 'float64')")


def test_the_run_records_why_a_worker_could_not_run(tmp_path):
    from benchmarks import common

    path = tmp_path / "skipped.json"
    environ = {settings.SKIPPED_ENV_VAR: str(path)}
    common.record_skipped("gpu", "tensorflow", "tensorflow is not installed", environ)
    common.record_skipped("gpu", "floor", "no CUDA GPU", environ)
    common.record_skipped("cpu", "jax", "not recorded", {})
    assert json.loads(path.read_text()) == {"tensorflow:gpu": "tensorflow is not installed", "floor:gpu": "no CUDA GPU"}


def test_bench_existing_refuses_without_asv_or_with_local_changes(monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "asv" else find_spec(name))
    assert "asv not installed" in tasks.existing_problem() and "pip install asv" in tasks.existing_problem()
    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setattr(tasks, "sh", lambda *cmd, **kw: subprocess.CompletedProcess(cmd, 0, stdout=" M tasks.py\n"))
    assert "labelled with HEAD" in tasks.existing_problem() and "tasks.py" in tasks.existing_problem()


GPU_MACHINES = [m for m in results.machines(ROOT / "results")
                if any(run.points(results.GPU_BEST) for run in results.runs(ROOT / "results", m))]


@pytest.mark.parametrize("machine", GPU_MACHINES)
def test_report_of_a_gpu_machine_shows_its_floor_and_multiples(machine, tmp_path):
    from harness.report import write_report

    run, out = write_report(ROOT / "results", tmp_path, machine=machine)
    md = (out / "report.md").read_text()
    assert "## GPU steady state, float64" in md and "## GPU accuracy, float32" in md
    gpu = md[md.index("## GPU steady state, float64"):md.index("## GPU first call, float64")]
    assert "| floor | " in gpu and "(one pass)" in gpu and "× floor" in gpu and "cores" not in gpu
    measured = md.split("## How this run was measured")[1]
    assert "- **GPU**:" in measured and "- **versions**: " in measured and "not recorded" not in measured
    assert (out / "time_vs_dim_gpu_float64.png").read_bytes()[:4] == b"\x89PNG"


def test_the_report_opens_with_the_fastest_fit_and_its_speed_up_over_numpy(tmp_path):
    """First the answers: per thread setting, every variant's fastest fit at every point, its
    speed-up over NumPy there, the fastest starred; the details and the provenance after."""
    cpu = next(m for m in results.machines(ROOT / "results") if m.startswith("cpu-"))
    run, out = report.write_report(ROOT / "results", tmp_path, machine=cpu)
    md = (out / "report.md").read_text()
    titles = [line[3:] for line in md.splitlines() if line.startswith("## ")]
    assert titles[:2] == ["Fastest fit, threads=1", "Fastest fit, threads=all"] and titles[-1] == "How this run was measured"
    columns, rows = report.fastest_table(run, None, "1")
    for j, column in enumerate(columns):
        dim, dtype = int(column.split()[0][2:]), column.split()[1]
        best = {v: run.value(results.BEST, (v, "1", dim, dtype)) for v, _ in rows}
        numpy = best["numpy"]
        for v, cells in rows:
            assert cells[j].text == f"{report.fmt_seconds(best[v])} · {numpy / best[v]:.2f}×"
            assert cells[j].best == (best[v] == min(best.values()))


COST_MACHINES = [m for m in results.machines(ROOT / "results") if m.startswith(results.COST_MACHINE_PREFIX)]


@pytest.mark.skipif(not COST_MACHINES, reason="no cost results committed")
def test_report_shows_the_exact_cost_beside_the_timings(tmp_path):
    """The report of the CPU series shows the newest full cost run: a value at every point of
    its grid, the rank agreement with the timings, and where the counts come from."""
    from harness.report import write_report

    cpu = next(m for m in results.machines(ROOT / "results") if m.startswith("cpu-"))
    run, out = write_report(ROOT / "results", tmp_path, machine=cpu)
    cost = results.cost_run(ROOT / "results", run.commit)
    md = (out / "report.md").read_text()
    for dtype in cost.axis(results.COST_CYCLES, 2):
        table = md.split(f"## Exact cost per gradient step, {dtype}")[1].split("## ")[0]
        for variant in cost.axis(results.COST_CYCLES, 0):
            row = next(line for line in table.splitlines() if line.startswith(f"| {variant} |"))
            assert row.count(" instr · ") == len(cost.axis(results.COST_CYCLES, 1)), row
    assert "## Cost against time" in md and f"- **exact cost**: commit {cost.commit[:8]}" in md


def test_every_benchmark_the_harness_reads_is_one_of_the_suite():
    """harness/results.py names the benchmarks it reads, since old result files outlive the
    suite; a benchmark renamed in the suite and not there fails here."""
    from benchmarks import linreg

    names = {v for v in vars(results).values() if isinstance(v, str) and v.startswith(results.SUITE + ".")}
    assert names
    for name in names:
        _, cls, track = name.split(".")
        assert callable(getattr(getattr(linreg, cls, None), track, None)), f"{name}: not in benchmarks/linreg.py"


def test_asv_matrix_pins_every_framework_of_the_table():
    req = json.loads((ROOT / "asv.conf.json").read_text())["matrix"]["req"]
    for framework in FRAMEWORKS:
        for pin in requirements(framework):
            package, version = pin.split("==")
            assert req.get(package) == [version], f"asv.conf.json's matrix must pin {pin}"


def test_extras_come_from_the_framework_table():
    out = subprocess.run([sys.executable, "setup.py", "-q", "egg_info", "--egg-base", "/tmp"], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    requires = Path("/tmp/linreg_kernels.egg-info/requires.txt").read_text()
    for framework in FRAMEWORKS:
        assert f"[{framework}]" in requires
        assert all(pin in requires for pin in requirements(framework))


def test_config_keeps_results_and_ignores_envs():
    conf = json.loads((ROOT / "asv.conf.json").read_text())
    assert conf["branches"] == ["main"] and conf["launch_method"] == "forkserver"
    ignored = subprocess.run(["git", "check-ignore", "-q", conf["env_dir"] + "/x"], cwd=ROOT).returncode
    kept = subprocess.run(["git", "check-ignore", "-q", conf["results_dir"] + "/x.json"], cwd=ROOT).returncode
    assert ignored == 0, "env_dir must be git-ignored"
    assert kept == 1, "results_dir must be committed"


@pytest.mark.parametrize("machine_dir", sorted(p.parent.name for p in (ROOT / "results").glob("*/machine.json")))
def test_committed_results_carry_their_machines_fields(machine_dir):
    """...with the machine's fields as machine.json has them: asv keys each series by all of them,
    so one differing field (a kernel build, say) would split the machine's history."""
    info = json.loads((ROOT / "results" / machine_dir / "machine.json").read_text())
    assert info["machine"] == machine_dir and info.get("cpu"), "machine.json must say which CPU"
    fields = {k: v for k, v in info.items() if k != "version"}
    for path in (p for p in (ROOT / "results" / machine_dir).glob("*.json") if p.name != "machine.json"):
        params = json.loads(path.read_text())["params"]
        assert {k: params.get(k) for k in fields} == fields, path.name


def test_the_package_ships_only_the_kernels():
    """pip install linreg_kernels gets the kernels, the problem, the registry and fit(): nothing
    that reads asv results or measures machines."""
    out = subprocess.run([sys.executable, "-c", "from setuptools import find_packages; "
                          "import json; print(json.dumps(find_packages(include=['linreg_kernels', 'linreg_kernels.*'])))"],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    assert sorted(json.loads(out.stdout)) == ["linreg_kernels", "linreg_kernels.backends"]
    kernel_code = "\n".join(p.read_text() for p in (ROOT / "linreg_kernels").rglob("*.py"))
    assert not re.search(r"^\s*(import|from)\s+(asv|harness|benchmarks)\b", kernel_code, re.M)


def test_code_has_no_undefined_names_or_unused_imports():
    """pyflakes over everything, tasks.py included: its bench/publish paths run in few other tests."""
    out = subprocess.run([sys.executable, "-m", "pyflakes", "tasks.py", "setup.py", "linreg_kernels", "benchmarks",
                          "harness", "tests"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_report_of_a_run_not_in_the_series_says_so_and_why(tmp_path):
    copy = tmp_path / "results"
    shutil.copytree(Path(tasks.RESULTS), copy)
    run = results.load_run(copy)
    problem = "another guest is busy on this core's host"
    machines.append_run(copy, run.machine, {"commit": run.commit, "env_name": run.env_name, "accepted": False,
                                               "problems": [problem]})
    report.write_report(copy, tmp_path / "report", run.machine, run.commit)
    text = (tmp_path / "report" / "report.md").read_text()
    assert f"NOT part of results/{run.machine}/" in text and problem in text


@pytest.mark.parametrize("dim", [2, 100])
def test_the_one_pass_floor_reads_every_value_a_step_reads(dim):
    """A step computes X @ w + b - y and X.T @ e: it reads every value of X and of y, so the
    floor's passes stream both (at d = 2 y is a third of the reads)."""
    import numpy as np

    import linreg_kernels as lk
    from benchmarks.measure import Floor

    X, y, *_ = lk.make_problem(1_000, dim, seed=0)
    floor = Floor()
    x = floor.to_device(X, y)
    assert x.size == X.size + y.size
    assert np.array_equal(np.sort(x), np.sort(np.concatenate([X.ravel(), y])))
    floor.run(x, 0.1, 3)  # one compiled loop over that buffer runs
