"""tasks.py's asv machine naming: one results directory per CPU type, never two types in one."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import tasks  # noqa: E402


@pytest.mark.parametrize("model, name", [
    ("Intel(R) Xeon(R) Processor", "cpu-2core-intel-xeon"),
    ("AMD EPYC", "cpu-2core-amd-epyc"),
    ("AMD EPYC 7B13 64-Core Processor", "cpu-2core-amd-epyc-7b13-64-core"),
    ("Intel(R) Core(TM) i5-2520M CPU @ 2.50GHz", "cpu-2core-intel-core-i5-2520m"),
])
def test_machine_name_comes_from_the_cpu_model(model, name):
    assert tasks.machine_name(model, 2) == name


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(tasks, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(tasks, "cpu_model", lambda: "Test CPU 9000")
    return tmp_path


def test_ensure_machine_records_every_field_and_keeps_other_machines(sandbox):
    (sandbox / ".asv-machine.json").write_text(json.dumps({"version": 1, "other": {"machine": "other"}}))
    name = tasks.ensure_machine()
    saved = json.loads((sandbox / ".asv-machine.json").read_text())
    assert name == tasks.machine_name("Test CPU 9000", tasks.os.cpu_count())
    assert saved["other"] == {"machine": "other"} and saved["version"] == 1
    assert saved[name]["cpu"] == "Test CPU 9000"
    assert set(saved[name]) == {"machine", "os", "arch", "cpu", "num_cpu", "ram"} and all(saved[name].values())


def test_ensure_machine_refuses_a_name_measured_on_another_cpu(sandbox, monkeypatch):
    monkeypatch.setenv("LINREG_ASV_MACHINE", "shared-name")
    (sandbox / "results" / "shared-name").mkdir(parents=True)
    (sandbox / "results" / "shared-name" / "machine.json").write_text(json.dumps({"cpu": "Other CPU 1"}))
    with pytest.raises(SystemExit, match="'Other CPU 1' CPU, this one is 'Test CPU 9000'"):
        tasks.ensure_machine()
    assert not (sandbox / ".asv-machine.json").exists()


@pytest.mark.parametrize("machine_dir", sorted(p.parent.name for p in (ROOT / "results").glob("*/machine.json")))
def test_committed_results_carry_their_machines_fields(machine_dir):
    """...with the machine's fields as machine.json has them: asv keys each series by all of them,
    so one differing field (a kernel build, say) would split the machine's history."""
    info = json.loads((ROOT / "results" / machine_dir / "machine.json").read_text())
    assert info["machine"] == machine_dir and info.get("cpu"), "machine.json must say which CPU"
    fields = {k: v for k, v in info.items() if k != "version"}
    for path in (ROOT / "results" / machine_dir).glob("*-env-*.json"):
        params = json.loads(path.read_text())["params"]
        assert {k: params.get(k) for k in fields} == fields, path.name


def test_code_has_no_undefined_names_or_unused_imports():
    """pyflakes over everything, tasks.py included: its bench/publish paths run in no other test."""
    out = subprocess.run([sys.executable, "-m", "pyflakes", "tasks.py", "linreg_kernels", "benchmarks", "tests"],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
