"""The asv suite: `asv check`, a quick run of the whole grid, subset runs that hide nothing, and
the published dashboard and report, loaded offline in headless Chromium.

asv runs in a sandbox (its own HOME and a copy of asv.conf.json whose results, env and html
directories are temporary), against the package installed in this interpreter (-E existing).
"""
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from math import prod
from pathlib import Path

import pytest

from benchmarks import settings
from harness import results as R
from harness.report import compact_dashboard, dashboard_url, headline_bench, write_report
from harness.versions import upgrades
from linreg_kernels import FRAMEWORKS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = ROOT / "test-artifacts"
MACHINES = R.machines(ROOT / "results")
HEAD = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()


class Asv:
    def __init__(self, home, **paths):
        self.home = home
        conf = json.loads((ROOT / "asv.conf.json").read_text())
        conf |= {"repo": str(ROOT), "benchmark_dir": str(ROOT / "benchmarks")}
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


def test_asv_check(asv):
    out = asv("check", "-E", "existing")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "No problems found" in out.stdout


def test_quick_run_of_the_whole_grid(asv):
    """Every benchmark and grid point tasks.py bench would run here, one sample each, and every
    point of each has a value: nothing fails, nothing is n/a (GPU points only where a GPU answers,
    as tasks.py bench selects them). The thread settings run side by side, so the values say only
    that each point runs."""
    import tasks

    start = time.perf_counter()
    selection = settings.selection_regex({}, gpu=tasks.has_gpu() is None)
    out = asv("run", "-E", "existing", "--set-commit-hash", HEAD, "-a", "rounds=1", "--show-stderr", "-b", selection,
              env={settings.ROUNDS_ENV_VAR: "1", settings.CONCURRENT_ENV_VAR: "1"})
    seconds = time.perf_counter() - start
    assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]
    [run] = R.runs(asv.home / "results", "smoke")
    listed = json.loads((asv.home / "results" / "benchmarks.json").read_text())
    classes = [c for c, (measure, device, _) in settings.CLASSES.items()
               if measure == "time" and (device == "cpu" or tasks.has_gpu() is None)]
    chosen = {name for name in listed if name.count(".") == 2 and name.split(".")[1] in classes}
    assert {name.split(".")[1] for name in chosen} == set(classes)
    missing = {}
    for name in sorted(chosen):
        points = run.points(name)
        expected = prod(len(axis) for axis in listed[name]["params"])
        assert len(points) == expected, (name, len(points), expected)
        missing |= {(name, key): None for key, point in points.items() if point["value"] is None}
    assert not missing, sorted(missing)[:10]
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "quick-grid.json").write_text(json.dumps({"seconds": round(seconds), "benchmarks": len(chosen),
                                                            "points": sum(len(run.points(n)) for n in chosen)}))


def saved_values(results_dir, benchmark):
    run = max(R.runs(results_dir, "smoke"), key=lambda r: r.date)
    return {k: p["value"] for k, p in run.points(benchmark).items() if p["value"] is not None}


def test_subset_runs_keep_the_full_grid_and_every_earlier_value(tmp_path):
    """Two subset runs of one commit, as tasks.py makes them (measurement limited by environment
    variables, the same points selected with -b): the second keeps the first's values,
    benchmarks.json keeps every parameter, and the published dashboard lists the whole grid."""
    asv = Asv(tmp_path, results_dir=tmp_path / "results", env_dir=tmp_path / "env", html_dir=tmp_path / "html")
    for variant in ("numpy", "numba"):
        subset = {"variants": variant, "threads": "1", "dims": "2", "dtypes": "float32"}
        env = {settings.ROUNDS_ENV_VAR: "2", **settings.subset_environ(subset)}
        out = asv("run", "-E", "existing", "--set-commit-hash", HEAD, "-b", settings.selection_regex(subset, gpu=False),
                  env=env)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    values = saved_values(tmp_path / "results", R.STEADY)
    assert set(values) == {("numpy", "1", 2, "float32"), ("numba", "1", 2, "float32")}, values
    listed = json.loads((tmp_path / "results" / "benchmarks.json").read_text())
    params = listed["linreg.CpuFit.track_steady_state"]["params"]
    assert len(params[0]) >= 7 and params[1:] == [["'1'", "'all'"], ["2", "5", "10", "20", "50", "100"],
                                                  ["'float64'", "'float32'"]]
    out = asv("publish")
    assert out.returncode == 0, out.stdout + out.stderr
    index = json.loads((tmp_path / "html" / "index.json").read_text())
    assert index["benchmarks"]["linreg.CpuFit.track_steady_state"]["params"] == params


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """The committed results published to a temporary html dir, with the offline UI installed."""
    home = tmp_path_factory.mktemp("publish")
    asv = Asv(home, results_dir=ROOT / "results", env_dir=home / "env", html_dir=home / "html")
    out = asv("publish")
    assert out.returncode == 0, out.stdout + out.stderr
    subprocess.run([str(BIN / "asv-tachyon"), "install", str(home / "html")], check=True, capture_output=True)
    compact_dashboard(home / "html")
    return home / "html"


def test_each_committed_release_is_a_series_of_its_own(published):
    """asv publishes every environment's packages as filters: each release compared is a value."""
    found = upgrades(ROOT / "results")
    params = json.loads((published / "index.json").read_text())["params"]
    for framework, _, old, new, *_ in found:
        package = next(iter(FRAMEWORKS[framework]))
        assert {old, new} <= set(params[package]), (package, params[package])


@pytest.fixture(scope="module")
def server(published):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(published))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def chromium(*args, tmp_path):
    if CHROMIUM is None:
        if os.environ.get(settings.REQUIRE_BROWSER_ENV_VAR):
            pytest.fail(f"chromium is required ({settings.REQUIRE_BROWSER_ENV_VAR}) but not installed")
        pytest.skip("chromium not installed (apt-get install chromium)")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--window-size=1400,1000"]
    out = subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


# The first series a report's link selects (its first variant at d = 2, harness.report.SHOWN_POINT).
FIRST_SERIES = {R.STEADY: ("numpy", "1", 2, "float64"), R.GPU_STEADY: ("jax", 2, "float64"),
                R.COST_INSTRUCTIONS: ("numpy", 2, "float64")}


def committed_steady_values(machine="*", bench=R.STEADY):
    """Every committed value of the benchmark's first series."""
    values = []
    for name in MACHINES if machine == "*" else [machine]:
        values += [run.value(bench, FIRST_SERIES[bench]) for run in R.runs(ROOT / "results", name)]
    return [v for v in values if v is not None]


def shows_committed_latest(explore, machine="*", bench=R.STEADY):
    """The explore page's "Latest" box (the first series the link selects, e.g. numpy, 1 thread,
    d=2, float64) holds a value we committed for that machine."""
    shown = re.search(r'Latest</div><div class="v">([0-9.e+]+) ?(ms|instructions)', explore)
    if shown is None:
        return False
    if shown.group(2) == "ms":
        return any(shown.group(1) == f"{v * 1e3:.3f}" for v in committed_steady_values(machine, bench))
    return any(abs(float(shown.group(1)) / v - 1) < 1e-3 for v in committed_steady_values(machine, bench))


def test_dashboard_renders_offline_with_data(published, server, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    overview = chromium("--dump-dom", server + "/", tmp_path=tmp_path)
    names = json.loads((published / "index.json").read_text())["benchmarks"]
    assert names and all(f'data-bench="{name}"' in overview for name in names)
    # The view the report links to: asv-tachyon keeps each filter not in a link at a first value
    # that may be another machine's (the link sets them all; see harness.report.dashboard_url).
    # The run the report shows when asked for none (the committed run with the most values,
    # newest among equals): the one a user's first `tasks.py publish` links to.
    cpu = R.load_run(ROOT / "results")
    assert cpu.machine.startswith("cpu-") and cpu.points(R.STEADY), cpu.path
    url = f"{server}/{dashboard_url(cpu, ROOT / 'results')}"
    explore = chromium("--dump-dom", url, tmp_path=tmp_path)
    assert "<canvas" in explore and 'class="u-axis"' in explore, "no uPlot graph rendered"
    variants = cpu.axis(R.STEADY, 0)
    for variant in variants:
        assert f"variant='{variant}'" in explore
    shown = re.findall(r'class="param-chip on"[^>]*>.*?</span>(variant=[^<]*)</button>', explore)
    dims = cpu.axis(R.STEADY, 2)
    assert shown == [f"variant='numpy', threads='1', dim={d}, dtype='float64'" for d in dims], shown
    assert shows_committed_latest(explore, cpu.machine), "the graph shows no committed value"
    chromium(f"--screenshot={ARTIFACTS / 'dashboard.png'}", "--window-size=1400,4200", url, tmp_path=tmp_path)
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000


@pytest.mark.parametrize("machine", MACHINES)
def test_dashboard_link_shows_each_machines_own_data(machine, server, tmp_path):
    """The report's link opens the graph of its machine: every machine field set, data shown."""
    run = R.load_run(ROOT / "results", machine)
    bench = headline_bench(run)
    explore = chromium("--dump-dom", f"{server}/{dashboard_url(run, ROOT / 'results')}", tmp_path=tmp_path)
    assert shows_committed_latest(explore, machine, bench), "no committed data shown for " + machine


def test_report_renders_from_committed_results(published, server, tmp_path):
    run, out = write_report(ROOT / "results", published / "report")
    md = (out / "report.md").read_text()
    assert run.commit in md and "numpy 2.4.6" in md
    for threads in ("1", "all"):
        assert f"## Steady state, threads={threads}, float64" in md
    assert "| floor | " in md and "(one pass" in md and "× floor" in md and "cores" in md
    for framework, _, old, new, *_ in upgrades(ROOT / "results", run.machine):
        assert f"## Upgrade: {framework} {old} → {new}" in md
    page = chromium("--dump-dom", server + "/report/index.html", tmp_path=tmp_path)
    assert page.count("<table class=\"result\">") >= 10
    for name in ("time_vs_dim_threads-1_float64.png", "floor_multiple_threads-all_float32.png"):
        assert f'src="{name}"' in page and (out / name).read_bytes()[:4] == b"\x89PNG"
    chromium(f"--screenshot={ARTIFACTS / 'report.png'}", "--window-size=1400,3000", server + "/report/index.html",
             tmp_path=tmp_path)
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000
