"""History at small scale, in asv's own virtualenvs: a commit range in one reused environment,
the regression gate on the exact cost (a commit that changes no kernel flags nothing; planted 10%
and 2% slowdowns of numpy are flagged at their ratio at both dtypes and nothing else is), and a
version comparison (numpy, and numba as its control)."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import settings
from harness import results as R

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
BIN = Path(sys.executable).parent
SUBSET = {"variants": "numpy,numba", "threads": "1", "dims": "2,100", "dtypes": "float64"}
# numpy alone: counting numba too would compile it under valgrind at every commit (about 20 s
# each); the commit that changes no kernel is the gate's control.
COST_SUBSET = {**SUBSET, "variants": "numpy", "dims": "2", "dtypes": "float64,float32"}
COST_POINTS = [("numpy", 2, dtype) for dtype in ("float64", "float32")]
SMALL_MATRIX = ["setuptools", "threadpoolctl", "asv_runner", "numpy", "numba"]
LOOP = "for _ in range(n_iter):"
PLANTED = {10: "for _ in range(n_iter + n_iter // 10):", 50: "for _ in range(n_iter + n_iter // 50):"}


def git(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """This repo's HEAD with a two-framework matrix (HEAD~3 of the clone), a commit that changes
    no kernel (HEAD~2), one that makes numpy's kernel run 10% more steps (HEAD~1), and one with 2%
    more steps instead (HEAD)."""
    tmp = tmp_path_factory.mktemp("history")
    repo = tmp / "repo"
    git("clone", "--quiet", "--branch", "main", str(ROOT), str(repo), cwd=tmp)
    git("config", "user.email", "test@example.invalid", cwd=repo)
    git("config", "user.name", "test", cwd=repo)
    conf = json.loads((repo / "asv.conf.json").read_text())
    conf["matrix"]["req"] = {k: v for k, v in conf["matrix"]["req"].items() if k in SMALL_MATRIX}
    (repo / "asv.conf.json").write_text(json.dumps(conf, indent=2))
    git("commit", "--quiet", "-am", "two-framework matrix", cwd=repo)
    (repo / "README.md").write_text((repo / "README.md").read_text() + "\nno kernel change\n")
    git("commit", "--quiet", "-am", "no kernel change", cwd=repo)
    kernel = repo / "linreg_kernels" / "backends" / "numpy_backend.py"
    source = kernel.read_text()
    assert LOOP in source
    for planted, loop in PLANTED.items():
        kernel.write_text(source.replace(LOOP, loop))
        git("commit", "--quiet", "-am", f"planted slowdown: {loop}", cwd=repo)
    home = tmp / "home"
    home.mkdir()
    # PIP_NO_COMPILE=0 is pip's spelling of --no-compile (a "no-" option set false): asv's pip
    # would byte-compile every module of numpy and numba into each environment it builds.
    env = dict(os.environ, HOME=str(home), PIP_NO_COMPILE="0", **{settings.ROUNDS_ENV_VAR: "8"},
               **settings.subset_environ(SUBSET))
    subprocess.run([str(BIN / "asv"), "machine", "--machine", "smoke", "--yes"], env=env, check=True,
                   capture_output=True)
    return repo, env


def asv(repo, env, *args, timeout=1800):
    return subprocess.run([str(BIN / "asv"), *args], cwd=repo, env=env, capture_output=True, text=True,
                          timeout=timeout)


def bench_args():
    return ["--machine", "smoke", "-b", settings.selection_regex(SUBSET, gpu=False)]


def flagged(output):
    """(mark, row) for every benchmark asv continuous or compare marks as changed: "+" worse, "-"
    better. asv 0.6 prints its table with or without "|" borders: "| +  | 25.2±3ms | ..." or
    "+  25.2±3ms ..."."""
    rows = []
    for line in output.splitlines():
        mark = re.match(r"\s*\|?\s*([+-])\s", line)
        if mark and "linreg." in line:
            rows.append((mark.group(1), line.strip()))
    return rows


def ratio(row):
    """The ratio column (the fourth) of one row of asv's comparison table."""
    cells = [c.strip() for c in row.strip("|").split("|")] if "|" in row else row.split()
    return float(cells[3])


def benchmark(row):
    """The benchmark and its parameters named by one row of asv's comparison table."""
    return re.search(r"linreg\.(\w+\.\w+\([^)]*\))", row).group(1)


def test_flagged_reads_both_table_styles_of_asv_continuous():
    bordered = """| Change   | Before [2d97cdc2]   | After [886248d1]   |   Ratio | Benchmark (Parameter)  |
|----------|---------------------|--------------------|---------|------------------------|
| +        | 25.2±3ms            | 37.2±5ms           |    1.48 | linreg.CpuFit.track_steady_state('numpy', '1', 2, 'float64') |
|          | 120±2ms             | 121±3ms            |    1.01 | linreg.CpuFit.track_steady_state('numba', '1', 2, 'float64') |
| -        | 361±20ms            | 300±30ms           |    0.83 | linreg.CpuFit.track_steady_state('numpy', '1', 100, 'float64') |"""
    plain = "+     25.2±3ms     37.2±5ms     1.48  linreg.CpuFit.track_steady_state('numpy', '1', 2, 'float64')"
    assert [mark for mark, _ in flagged(bordered)] == ["+", "-"]
    assert [mark for mark, _ in flagged(plain)] == ["+"]
    assert [ratio(row) for _, row in flagged(bordered)] == [1.48, 0.83] and ratio(flagged(plain)[0][1]) == 1.48
    assert benchmark(flagged(bordered)[0][1]) == "CpuFit.track_steady_state('numpy', '1', 2, 'float64')"


GATED = {f"CpuCost.track_{track}{point}" for track in ("instructions", "estimated_cycles") for point in COST_POINTS}


def readme_gate():
    """The benchmark patterns (-b) of the README's gate command, as the README writes them."""
    text = (ROOT / "README.md").read_text()
    block = text[text.index("**My branch against main, as a gate**"):]
    block = block[block.index("```sh"):block.index("```\n", block.index("```sh") + 5)]
    return re.findall(r'-b "([^"]+)"', block)


def test_the_readme_gate_takes_both_per_step_counts_at_every_point():
    """asv matches -b against "name(params)": the gate takes instructions and estimated cycles per
    step everywhere, and neither the fixed part nor a timing."""
    patterns = readme_gate()
    chosen = lambda name: any(re.search(p, name) for p in patterns)
    for variant in ("numpy", "jax"):
        for dim, dtype in ((2, "float64"), (100, "float32"), (100, "float64")):
            params = f"('{variant}', {dim}, '{dtype}')"
            assert chosen(f"linreg.CpuCost.track_instructions{params}")
            assert chosen(f"linreg.CpuCost.track_estimated_cycles{params}")
            assert not chosen(f"linreg.CpuCost.track_fixed_instructions{params}")
            assert not chosen(f"linreg.CpuFit.track_steady_state('{variant}', '1', {dim}, '{dtype}')")


@pytest.fixture(scope="module")
def cost_history(clone):
    """The exact cost of all four commits of the clone, on the cost machine, as tasks.py bench
    counts it: `asv run` over the middle two, then the README's gate, `asv continuous` of the
    first against the last (the planted 2%), which counts both (even a commit with results) and
    keeps their results. Returns
    the repo, its environment and what asv continuous returned."""
    repo, env = clone
    env = dict(env, **settings.subset_environ(COST_SUBSET))
    subprocess.run([str(BIN / "asv"), "machine", "--machine", "cost", "--yes"], env=env, check=True,
                   capture_output=True)
    out = asv(repo, env, "run", "HEAD~3..HEAD~1", "--machine", "cost", "--show-stderr",
              "-b", settings.selection_regex(COST_SUBSET, gpu=False, measures=("cost",)))
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    gate = asv(repo, env, "continuous", "--factor", "1.01", "--machine", "cost",
               *(a for p in readme_gate() for a in ("-b", p)), "HEAD~3", "HEAD")
    return repo, env, gate


def compare(repo, env, factor, before, after, name):
    out = asv(repo, env, "compare", "--factor", str(factor), "--machine", "cost",
              git("rev-parse", before, cwd=repo), git("rev-parse", after, cwd=repo))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"cost-gate-{name}.txt").write_text(out.stdout)
    return [(mark, row) for mark, row in flagged(out.stdout) if re.search(r"CpuCost\.track_(instructions|estimated_cycles)", row)]


@pytest.mark.slow
def test_commit_range_runs_every_commit_in_one_reused_environment(cost_history):
    repo, _, _ = cost_history
    envs = [p for p in (repo / ".asv" / "env").iterdir() if p.is_dir()]
    assert len(envs) == 1, "one environment, reused for every commit"
    runs = {run.commit: run for run in R.runs(repo / "results", "cost")}
    for rev in ("HEAD~3", "HEAD~2", "HEAD~1", "HEAD"):
        commit = git("rev-parse", rev, cwd=repo)
        assert all(runs[commit].value(R.COST_INSTRUCTIONS, point) for point in COST_POINTS), rev


@pytest.mark.slow
def test_cost_gate_flags_nothing_between_commits_that_change_no_kernel(cost_history):
    assert compare(*cost_history[:2], 1.005, "HEAD~3", "HEAD~2", "no-change") == []


@pytest.mark.slow
@pytest.mark.parametrize("rev, factor, expected", [("HEAD~1", 1.05, 1.10), ("HEAD", 1.01, 1.02)], ids=["10%", "2%"])
def test_cost_gate_flags_a_planted_slowdown_at_its_ratio_and_nothing_else(cost_history, rev, factor, expected):
    rows = compare(*cost_history[:2], factor, "HEAD~3", rev, f"planted-{rev.lower().replace('~', '-')}")
    names = {benchmark(row) for _, row in rows}
    assert names == GATED, rows
    assert all(mark == "+" and ratio(row) == pytest.approx(expected, abs=0.01) for mark, row in rows), rows


@pytest.mark.slow
def test_the_readme_gate_asv_continuous_flags_the_planted_slowdown(cost_history):
    """The README's gate command as a user runs it (factor 1.01): exit 1 on the planted 2%."""
    *_, out = cost_history
    assert out.returncode == 1, out.stdout[-4000:] + out.stderr[-2000:]
    rows = flagged(out.stdout)
    assert {benchmark(row) for _, row in rows} == GATED, out.stdout[-3000:]
    assert all(ratio(row) == pytest.approx(1.02, abs=0.01) for _, row in rows), rows


@pytest.mark.slow
def test_version_comparison_builds_one_environment_per_version(cost_history):
    """`tasks.py versions` at one point and thread setting: numpy 2.4.6's environment is the
    history's (the same packages), 2.3.5's a new one; the table has the numpy rows and numba's
    as control."""
    repo, env, _ = cost_history
    subset = {"threads": "1", "dims": "100", "dtypes": "float64"}
    out = subprocess.run([sys.executable, "-m", "harness.versions", "numpy", "2.3.5", "2.4.6", "--measure", "time",
                          "--root", str(repo)], cwd=ROOT, env=dict(env, **settings.subset_environ(subset)),
                         capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert re.search(r"\| numpy d=100 float64 \| .* \| [0-9.]+× (within noise|slower|faster) \| n/a \|", out.stdout)
    assert "| numba d=100 float64 (control) |" in out.stdout
    assert len([p for p in (repo / ".asv" / "env").iterdir() if p.is_dir()]) == 2
    head = git("rev-parse", "HEAD", cwd=repo)[:8]
    timed = {json.loads(p.read_text())["env_name"] for p in (repo / "results").glob(f"cpu-*/{head}-*.json")}
    assert len(timed) == 2 and any("numpy2.3.5" in n for n in timed) and any("numpy2.4.6" in n for n in timed), timed
