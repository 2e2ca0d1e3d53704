"""Framework upgrades (harness/versions.py): the comparison's environments, what an uninstallable
release is told, and the verdicts read back from result files, planted changes in copies of
committed runs."""
import json
import shutil
from pathlib import Path

import pytest

from harness import results as R
from harness import versions as V
from harness.report import write_report

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = json.loads((ROOT / "asv.conf.json").read_text())["matrix"]["req"]
FAKE_COMMIT = "feedface" * 5


def test_a_comparison_varies_only_that_framework_beside_its_control_and_the_harness(tmp_path):
    req = V.matrix(ROOT, "jax", ["0.10.1", "0.10.2"])
    assert set(req) == {*V.HARNESS_PACKAGES, "numpy", "jax", "jaxlib"}
    for package, pins in req.items():
        assert pins == (["0.10.1", "0.10.2"] if package in ("jax", "jaxlib") else REFERENCE[package]), package
    assert set(V.matrix(ROOT, "numpy", ["2.3.5", "2.4.6"])) == {*V.HARNESS_PACKAGES, "numpy", "numba"}
    shutil.copy(ROOT / "asv.conf.json", tmp_path)  # not ROOT: a comparison running there reads its own config
    conf = json.loads(V.write_config(tmp_path, "jax", ["0.10.1", "0.10.2"]).read_text())
    assert conf["matrix"] == {"req": req} and len(conf["exclude"]) == 2  # jax 0.10.1 with jaxlib 0.10.2, and back


def test_a_pin_moves_another_package_for_every_release():
    req = V.matrix(ROOT, "tensorflow", ["2.19.1", "2.21.0"], ["numpy==2.1.3"])
    assert req["numpy"] == ["2.1.3"]
    envs = V.environments("tensorflow", req)
    assert {v: e["tensorflow-cpu"] for v, e in envs.items()} == {"2.19.1": "2.19.1", "2.21.0": "2.21.0"}
    assert all(e["numpy"] == "2.1.3" for e in envs.values())


@pytest.mark.parametrize("framework, versions, pins, message", [
    ("cupy", ["1", "2"], [], "unknown framework 'cupy'"),
    ("jax", ["0.10.2"], [], "at least two different versions"),
    ("jax", ["0.10.2; rm -rf /", "0.10.1"], [], "not a version number"),
    ("jax", ["0.10.1", "0.10.2"], ["jax==0.9.2"], "--pin 'jax==0.9.2'"),
    ("jax", ["0.10.1", "0.10.2"], ["torch==2.12.0"], "--pin 'torch==2.12.0'"),
])
def test_a_bad_request_is_refused_with_what_was_wrong(framework, versions, pins, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        V.matrix(ROOT, framework, versions, pins)


@pytest.mark.slow
@pytest.mark.parametrize("packages, message", [
    ({"numpy": "2.4.6", "numba": "9.9.9"}, "No matching distribution found for numba==9.9.9"),
    ({"numpy": "2.4.6", "tensorflow-cpu": "2.19.1"}, "conflicting dependencies"),
    ({"numba": "0.55.0"}, "numba 0.55.0 requires Python >=3.7,<3.11"),
    ({"numpy": "2.4.6", "torch": "2.12.0"}, "is a CUDA build (pip would install nvidia-"),
], ids=["unknown release", "conflict", "no wheel for this Python", "CUDA build"])
def test_a_release_pip_cannot_install_is_named_before_anything_is_built(packages, message):
    assert message in V.install_problem(packages)


def test_the_selection_picks_only_the_comparisons_variants():
    import re

    cost, time = V.selection("cost", ["numba", "numpy"]), V.selection("time", ["numba", "numpy"])
    assert re.search(cost, "linreg.CpuCost.track_instructions('numba', 2, 'float64')")
    assert not re.search(cost, "linreg.CpuCost.track_instructions('numba-parallel', 2, 'float64')")
    assert re.search(time, "linreg.CpuFit.track_steady_state('numpy', '1', 2, 'float64')")
    assert not re.search(time, "linreg.CpuCost.track_instructions('numpy', 2, 'float64')")


# --- verdicts, from copies of committed runs with planted changes ------------------------------

def lean_copy(source, target_dir, version, scale, numpy=REFERENCE["numpy"][0]):
    """`source` as a run of FAKE_COMMIT in numba's comparison environment at `version`, every value
    (and its interval and samples) of a variant multiplied by scale.get(variant, 1)."""
    data = json.loads(Path(source).read_text())
    columns = data["result_columns"]
    data["commit_hash"], data["env_name"] = FAKE_COMMIT, f"lean-numba{version}-numpy{numpy}"
    data["requirements"] = {p: REFERENCE[p][0] for p in V.HARNESS_PACKAGES} | {"numpy": numpy, "numba": version}
    for entry in data["results"].values():
        keys = R._keys(entry[columns.index("params")])
        for name in ("result", "stats_ci_99_a", "stats_ci_99_b", "samples"):
            values = entry[columns.index(name)] if len(entry) > columns.index(name) else None
            for i, key in enumerate(keys if values else []):
                factor = scale.get(key[0], 1) if isinstance(key[0], str) else 1
                if values[i] is not None:
                    values[i] = [s * factor for s in values[i]] if isinstance(values[i], list) else values[i] * factor
    target = Path(target_dir) / f"{FAKE_COMMIT[:8]}-{data['env_name']}.json"
    target.write_text(json.dumps(data))


@pytest.fixture
def planted(tmp_path):
    """The committed results and a numba comparison at FAKE_COMMIT: 0.68.1's numba kernels 5%
    fewer instructions and five times as fast; the numpy control slower by the clock only."""
    results = tmp_path / "results"
    shutil.copytree(ROOT / "results", results)
    cost = R.cost_run(results)
    timing = R.load_run(results, "cpu-2core-amd-epyc-family-25-model-1-avx2")
    for version, cost_scale, time_scale in (("0.67.0", {}, {}),
                                            ("0.68.1", {"numba": 0.95, "numba-parallel": 0.95},
                                             {"numba": 0.2, "numba-parallel": 0.2, "numpy": 5.0})):
        lean_copy(cost.path, cost.path.parent, version, cost_scale)
        lean_copy(timing.path, timing.path.parent, version, time_scale)
    return results, cost.machine, timing.machine


def test_an_upgrade_is_found_in_the_results_and_judged_by_cost_and_by_time(planted):
    results, _, machine = planted
    [(framework, commit, old, new, table, runs, timed)] = [u for u in V.upgrades(results, machine)
                                                           if u.commit == FAKE_COMMIT]
    assert (framework, old, new, list(runs), timed) == ("numba", "0.67.0", "0.68.1", ["0.67.0", "0.68.1"], machine)
    own = [r for r in table if not r["control"]]
    control = [r for r in table if r["control"]]
    assert {r["variant"] for r in own} == {"numba", "numba-parallel"} and {r["variant"] for r in control} == {"numpy"}
    assert len(own) == 24 and len(control) == 12
    assert all(r["cost"] == "changed" and r["instructions"][1] / r["instructions"][0] == pytest.approx(0.95)
               for r in own)
    assert all(r["cost"] == "same" for r in control)
    assert all(v == "faster" for r in own for *_, v in r["time"].values())
    assert all(V.disagrees(r) for r in control if any(v == "slower" for *_, v in r["time"].values()))
    assert not any(V.disagrees(r) for r in own)
    line = V.headline(framework, old, new, table)
    assert "instructions per step -5.0% at d=100" in line and "cost changed at 24 of 24 points" in line
    assert "control (12 points): instructions +0.00% to +0.00%" in V.control_spread(table)


def test_numbas_releases_and_numpys_are_told_apart_though_their_environments_hold_the_same_packages(planted):
    results, cost_machine, _ = planted
    lean_copy(R.cost_run(results).path, results / cost_machine, "0.68.1", {}, numpy="2.3.5")
    found = {(u.framework, u.old, u.new) for u in V.upgrades(results) if u.commit == FAKE_COMMIT}
    assert found == {("numba", "0.67.0", "0.68.1"), ("numpy", "2.3.5", REFERENCE["numpy"][0])}


def test_without_timings_of_those_environments_the_time_is_not_measured(planted):
    results, _, machine = planted
    for path in (results / machine).glob(f"{FAKE_COMMIT[:8]}-*.json"):
        path.unlink()
    [upgrade] = [u for u in V.upgrades(results, machine) if u.commit == FAKE_COMMIT]
    assert upgrade.time_machine is None and all(r["time"] == {} for r in upgrade.rows)
    assert "time not measured" in V.headline("numba", "0.67.0", "0.68.1", upgrade.rows)


def test_the_timings_of_another_machine_are_shown_and_named(planted):
    results, _, machine = planted
    [upgrade] = [u for u in V.upgrades(results, "gpu-nvidia-h200-cpu-16core-intel-xeon") if u.commit == FAKE_COMMIT]
    assert upgrade.time_machine == machine and all(r["time"] for r in upgrade.rows)


def test_the_report_has_a_table_per_upgrade_with_its_headline(planted, tmp_path):
    results, _, machine = planted
    _, out = write_report(results, tmp_path / "report", machine=machine)
    md = (out / "report.md").read_text()
    assert "## Upgrade: numba 0.67.0 → 0.68.1" in md
    assert "numba 0.67.0 → 0.68.1: instructions per step -5.0% at d=100" in md
    assert "| numpy d=100 float64 (control) |" in md and "DISAGREE" in md
    page = (out / "index.html").read_text()
    assert "Framework releases compared, on the dashboard" in page
    assert ">numba 0.67.0</a>" in page and ">numba 0.68.1</a>" in page
    assert "| torch | not compared: only torch 2.13.0's CPU build" in md
