"""Commit ranges, the regression gate and a version comparison, on a small scale: a clone of this
repository with a planted slowdown, one backend, one grid point, asv's virtualenv environments."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ONE_POINT = {"LINREG_BENCH_BACKENDS": "numpy", "LINREG_BENCH_DEVICES": "cpu", "LINREG_BENCH_DIMS": "100",
             "LINREG_BENCH_DTYPES": "float64"}
SMALL_MATRIX = ["setuptools", "threadpoolctl", "asv_runner", "numpy"]


def git(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """This repo's HEAD plus one commit that makes the numpy kernel do every iteration twice."""
    tmp = tmp_path_factory.mktemp("history")
    repo = tmp / "repo"
    git("clone", "--quiet", "--branch", "main", str(ROOT), str(repo), cwd=tmp)
    git("config", "user.email", "test@example.invalid", cwd=repo)
    git("config", "user.name", "test", cwd=repo)
    conf = json.loads((repo / "asv.conf.json").read_text())
    conf["matrix"]["req"] = {k: v for k, v in conf["matrix"]["req"].items() if k in SMALL_MATRIX}
    (repo / "asv.conf.json").write_text(json.dumps(conf, indent=2))
    git("commit", "--quiet", "-am", "one-backend matrix", cwd=repo)
    kernel = repo / "linreg_kernels" / "backends" / "numpy_backend.py"
    source = kernel.read_text()
    assert "for _ in range(n_iter):" in source
    kernel.write_text(source.replace("for _ in range(n_iter):", "for _ in range(2 * n_iter):"))
    git("commit", "--quiet", "-am", "planted slowdown", cwd=repo)
    home = tmp / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home), **ONE_POINT)
    subprocess.run([str(BIN / "asv"), "machine", "--machine", "smoke", "--yes"], env=env, check=True,
                   capture_output=True)
    return repo, env


def asv(repo, env, *args, timeout=900):
    return subprocess.run([str(BIN / "asv"), *args], cwd=repo, env=env, capture_output=True, text=True,
                          timeout=timeout)


def steady_state(repo, commit):
    from linreg_kernels.report import STEADY, load_run

    run = load_run(repo / "results", "smoke", commit)
    return run["benchmarks"][STEADY][("numpy", "cpu", 100, "float64")]


def test_commit_range_runs_every_commit_in_one_reused_environment(clone):
    repo, env = clone
    out = asv(repo, env, "run", "HEAD~2..HEAD", "--machine", "smoke", "-b", "time_steady_state")
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    envs = [p for p in (repo / ".asv" / "env").iterdir() if p.is_dir()]
    assert len(envs) == 1, "one environment, reused for both commits"
    before, after = steady_state(repo, git("rev-parse", "HEAD~1", cwd=repo)), steady_state(repo, git("rev-parse", "HEAD", cwd=repo))
    assert after / before > 1.5, (before, after)  # twice the iterations


def test_continuous_exits_1_on_the_planted_slowdown(clone):
    repo, env = clone
    out = asv(repo, env, "continuous", "--factor", "1.3", "--machine", "smoke", "-b", "time_steady_state",
              "HEAD~1", "HEAD")
    assert out.returncode == 1, out.stdout[-4000:] + out.stderr[-2000:]
    assert "PERFORMANCE DECREASED" in out.stdout.upper() or "SOME BENCHMARKS HAVE CHANGED" in out.stdout.upper()


def test_version_comparison_builds_one_environment_per_version(clone):
    repo, env = clone
    out = subprocess.run([sys.executable, "-m", "linreg_kernels.versions", "numpy", "2.3.5", "2.4.6",
                          "--machine", "smoke", "--root", str(repo), "--", "-b", "time_steady_state"],
                         cwd=repo.parent, env=env, capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "| time_steady_state | numpy | cpu | 100 | float64 |" in out.stdout
    names = {json.loads(p.read_text())["env_name"] for p in (repo / "results" / "smoke").glob("*-*.json")}
    assert any("numpy2.3.5" in n for n in names) and any("numpy2.4.6" in n for n in names)


def test_version_config_varies_only_that_framework():
    from linreg_kernels.versions import write_config

    conf = json.loads(write_config(ROOT, "jax", ["0.10.1", "0.10.2"]).read_text())
    reference = json.loads((ROOT / "asv.conf.json").read_text())["matrix"]["req"]
    for package, pins in conf["matrix"]["req"].items():
        expected = ["0.10.1", "0.10.2"] if package in ("jax", "jaxlib") else reference[package]
        assert pins == expected, package
    assert len(conf["exclude"]) == 2  # jax 0.10.1 with jaxlib 0.10.2, and the reverse


@pytest.mark.parametrize("framework, versions, message", [
    ("cupy", ["1", "2"], "unknown framework 'cupy'"),
    ("jax", ["0.10.2"], "at least two different versions"),
    ("jax", ["0.10.2; rm -rf /", "0.10.1"], "not a version number"),
])
def test_version_config_rejects_bad_requests(framework, versions, message):
    from linreg_kernels.versions import write_config

    with pytest.raises(ValueError, match=message):
        write_config(ROOT, framework, versions)
