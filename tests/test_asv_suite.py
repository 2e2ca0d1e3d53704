"""The asv suite: configuration, `asv check`, a quick run of the whole grid, the offline dashboard.

asv runs in a sandbox (its own HOME and a copy of asv.conf.json whose results, env and html
directories are temporary), against the package installed in this interpreter (-E existing).
"""
import ast
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = ROOT / "test-artifacts"


def reference_pins():
    """REFERENCE_CPU_PINS from setup.py, read without running setup()."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and node.targets[0].id == "REFERENCE_CPU_PINS":
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py defines no REFERENCE_CPU_PINS")


def config():
    return json.loads((ROOT / "asv.conf.json").read_text())


class Asv:
    def __init__(self, home, **paths):
        self.home = home
        conf = config() | {"repo": str(ROOT), "benchmark_dir": str(ROOT / "benchmarks")}
        conf |= {k: str(v) for k, v in paths.items()}
        self.config = home / "asv.conf.json"
        self.config.write_text(json.dumps(conf))
        self.env = dict(os.environ, HOME=str(home))
        self("machine", "--machine", "smoke", "--yes", config=False)

    def __call__(self, *args, config=True, env=None, timeout=1800):
        cmd = [str(BIN / "asv"), *args] + (["--config", str(self.config)] if config else [])
        return subprocess.run(cmd, capture_output=True, text=True, env=self.env | (env or {}),
                              timeout=timeout, cwd=self.home)


@pytest.fixture(scope="module")
def asv(tmp_path_factory):
    home = tmp_path_factory.mktemp("asv")
    return Asv(home, results_dir=home / "results", env_dir=home / "env", html_dir=home / "html")


def test_config_pins_the_reference_environment_of_setup_py():
    req = config()["matrix"]["req"]
    for pin in reference_pins().values():
        name, version = pin.split("==")
        assert req.get(name) == [version], f"asv.conf.json matrix must pin {pin}"


def test_config_keeps_results_and_ignores_envs():
    conf = config()
    assert conf["branches"] == ["main"] and conf["launch_method"] == "spawn"
    ignored = subprocess.run(["git", "check-ignore", "-q", conf["env_dir"] + "/x"], cwd=ROOT).returncode
    kept = subprocess.run(["git", "check-ignore", "-q", conf["results_dir"] + "/x.json"], cwd=ROOT).returncode
    assert ignored == 0, "env_dir must be git-ignored"
    assert kept == 1, "results_dir must be committed"


def test_asv_check(asv):
    out = asv("check", "-E", "existing")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "No problems found" in out.stdout


def test_quick_run_of_the_whole_grid(asv):
    """Every benchmark x parameter runs once; only GPU rows may be n/a; work is cached per process."""
    events = asv.home / "events.jsonl"
    # forkserver: the same benchmark code, without a fresh interpreter per process (see README);
    # the server imports no framework, so forked children start CUDA-clean.
    out = asv("run", "-E", "existing", "--quick", "--dry-run", "--show-stderr", "--launch-method", "forkserver",
              env={"LINREG_BENCH_EVENTS": str(events)})
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-5000:]
    assert "failed" not in log
    na_rows = [line for line in log.splitlines() if "n/a" in line and "For parameters" not in line]
    assert na_rows and all("gpu" in line for line in na_rows), [r for r in na_rows if "gpu" not in r][:5]

    records = [json.loads(line) for line in events.read_text().splitlines()]
    compiles = Counter((r["pid"], tuple(r["key"])) for r in records if r["event"] == "compile")
    setups = sum(r["event"] == "setup" for r in records)
    # setup_cache measures the grid in one process; each timing process compiles its point once
    assert max(compiles.values()) == 1, "a process compiled the same grid point twice"
    required = [b.split(":")[0] for b in os.environ.get("LINREG_REQUIRE_BACKENDS", "").split(",") if b]
    compiled_backends = {key[0] for _, key in compiles}
    assert set(required) <= compiled_backends
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "quick-grid.json").write_text(json.dumps({
        "n/a rows": len(na_rows), "setups": setups, "compiles": sum(compiles.values()),
        "processes that compiled": len({pid for pid, _ in compiles}),
        "seconds from first to last event": round(records[-1]["t"] - records[0]["t"], 1)}))


@pytest.mark.parametrize("env, message", [
    ({"LINREG_BENCH_BACKENDS": "numpy,cupy"}, "LINREG_BENCH_BACKENDS: unknown backend ['cupy']"),
    ({"LINREG_BENCH_DIMS": "2,7"}, "LINREG_BENCH_DIMS: unknown dim [7]"),
    ({"LINREG_BENCH_DTYPES": "float16"}, "LINREG_BENCH_DTYPES: unknown dtype ['float16']"),
])
def test_grid_subset_rejects_unknown_values(env, message):
    code = "import benchmarks.common"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env=dict(os.environ, **env))
    assert out.returncode != 0 and message in out.stderr


def test_grid_subset_selects_parameters():
    code = "import json, benchmarks.common as c; print(json.dumps(c.GRID_PARAMS))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env=dict(os.environ, LINREG_BENCH_BACKENDS="jax,numpy", LINREG_BENCH_DIMS="100"))
    assert json.loads(out.stdout) == [["jax", "numpy"], ["cpu", "gpu"], [100], ["float64", "float32"]]


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """The committed results published to a temporary html dir, with the offline UI installed."""
    home = tmp_path_factory.mktemp("publish")
    asv = Asv(home, results_dir=ROOT / "results", env_dir=home / "env", html_dir=home / "html")
    out = asv("publish")
    assert out.returncode == 0, out.stdout + out.stderr
    subprocess.run([str(BIN / "asv-tachyon"), "install", str(home / "html")], check=True, capture_output=True)
    return home / "html"


@pytest.fixture(scope="module")
def server(published):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(published))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def chromium(*args, tmp_path):
    if CHROMIUM is None:
        if os.environ.get("LINREG_REQUIRE_BROWSER"):
            pytest.fail("chromium is required (LINREG_REQUIRE_BROWSER) but not installed")
        pytest.skip("chromium not installed (apt-get install chromium)")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--window-size=1400,1000"]
    out = subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


MACHINES = sorted(p.parent.name for p in (ROOT / "results").glob("*/machine.json"))


def committed_values(machine="*", point=("numpy", "cpu", 2, "float64")):
    """Every committed steady-state value of one grid point, over the machine's result files."""
    from linreg_kernels.report import STEADY, _rows

    values = []
    for path in (ROOT / "results").glob(f"{machine}/*.json"):
        data = json.loads(path.read_text())
        if STEADY in data.get("results", {}):
            values.append(_rows(data["results"][STEADY], data["result_columns"]).get(point))
    return [v for v in values if isinstance(v, float)]


def shows_committed_latest(explore, machine="*"):
    """The explore page's "Latest" box (its first series, numpy/cpu/d=2/float64) holds a value we
    committed for that machine."""
    shown = re.search(r'Latest</div><div class="v">([0-9.]+)ms', explore)
    return shown is not None and any(shown.group(1) == f"{v * 1e3:.3f}" for v in committed_values(machine))


def test_dashboard_renders_offline_with_data(published, server, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    overview = chromium("--dump-dom", server + "/", tmp_path=tmp_path)
    names = json.loads((published / "index.json").read_text())["benchmarks"]
    assert names and all(f'data-bench="{name}"' in overview for name in names)

    url = server + "/#view=explore&bench=linreg.GradientDescent.time_steady_state"
    explore = chromium("--dump-dom", url, tmp_path=tmp_path)
    assert "<canvas" in explore and 'class="u-axis"' in explore, "no uPlot graph rendered"
    for backend in ("numpy", "numba", "jax", "tensorflow", "torch"):
        assert f"backend='{backend}'" in explore
    assert shows_committed_latest(explore), "the graph shows no committed value"
    chromium(f"--screenshot={ARTIFACTS / 'dashboard.png'}", "--window-size=1400,4200", url, tmp_path=tmp_path)
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000


@pytest.mark.parametrize("machine", MACHINES)
def test_dashboard_link_shows_each_machines_own_data(machine, server, tmp_path):
    """The report's link opens the graph of its machine: every machine field set, data shown."""
    from linreg_kernels.report import dashboard_url

    info = json.loads((ROOT / "results" / machine / "machine.json").read_text())
    explore = chromium("--dump-dom", f"{server}/{dashboard_url(info)}", tmp_path=tmp_path)
    assert shows_committed_latest(explore, machine), "no committed data shown for " + machine


def test_report_renders_from_committed_results(published, server, tmp_path):
    from linreg_kernels.report import write_report

    run, out = write_report(ROOT / "results", published / "report")
    md = (out / "report.md").read_text()
    assert run["commit_hash"] in md and "numpy 2.4.6" in md
    others = set(MACHINES) - {run["machine_info"]["machine"]}
    assert all(name in md for name in others), "the report must say which other machines have results"
    page = chromium("--dump-dom", server + "/report/index.html", tmp_path=tmp_path)
    assert page.count("<table class=\"result\">") == 6  # 3 metrics x 2 dtypes
    assert "n/a: numpy has no gpu implementation" in page
    for name in ("time_vs_dim_cpu_float64.png", "speedup_heatmap_float32.png"):
        assert f'src="{name}"' in page and (out / name).read_bytes()[:4] == b"\x89PNG"
    chromium(f"--screenshot={ARTIFACTS / 'report.png'}", "--window-size=1400,2400", server + "/report/index.html",
             tmp_path=tmp_path)
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000
