"""The README's two commands: `python3 tasks.py bench` and `python3 tasks.py test`.

Standard library only, so it runs on a fresh machine with nothing but Python: each task creates
(or reuses) the virtual environment .venv with every framework installed, then runs.
"""
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
STAMP = VENV / ".installed-from"
CPU_BACKENDS = "numpy,numba,jax,tensorflow,torch"
HTML = ROOT / "html"
RESULTS = ROOT / "results"


def cpu_model():
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_name(model, cores):
    """asv machine name for a CPU type, e.g. cpu-2core-intel-xeon: results are committed per
    name, so machines of one type share a history and a different CPU never joins it."""
    words = re.sub(r"\((r|tm)\)|@.*$|\b(processor|cpu)\b", " ", model.lower())
    return f"cpu-{cores}core-" + "-".join(re.findall(r"[a-z0-9]+", words))


def machine_info():
    """What asv records about this machine. asv makes every field a dashboard filter and a key of
    each series, so the values are the stable ones: kernel major.minor, RAM in GiB (the exact
    kernel build and byte count differ between machines of one type and would split its history)."""
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 0
    model, cores = cpu_model(), os.cpu_count()
    kernel = ".".join(platform.release().split(".")[:2])
    return {"machine": os.environ.get("LINREG_ASV_MACHINE") or machine_name(model, cores),
            "os": f"{platform.system()} {kernel}", "arch": platform.machine(),
            "cpu": model, "num_cpu": str(cores), "ram": f"{round(ram / 2**30)} GiB"}


def sh(*cmd, **kwargs):
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], cwd=ROOT, **kwargs)


def ensure_venv():
    """Create .venv and install the package with every extra; reinstall when setup.py changes."""
    digest = hashlib.sha256((ROOT / "setup.py").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == digest and PY.exists():
        return
    if not PY.exists():
        sh(sys.executable, "-m", "venv", VENV, check=True)
    sh(PY, "-m", "pip", "install", "--quiet", "-e", ".[all,test,bench]", check=True)
    STAMP.write_text(digest)


def ensure_chromium():
    """The dashboard tests drive headless Chromium; Debian's package, where we may install it."""
    if shutil.which("chromium") or not shutil.which("apt-get") or os.geteuid() != 0:
        return
    sh("apt-get", "update", "-qq", check=True)
    sh("apt-get", "install", "-y", "-qq", "chromium", check=True, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def test(args):
    ensure_venv()
    ensure_chromium()
    env = dict(os.environ)
    # This command installs all five frameworks, so a backend that cannot run is a failure.
    env.setdefault("LINREG_REQUIRE_BACKENDS", CPU_BACKENDS)
    if os.environ.get("CI"):
        env.setdefault("LINREG_REQUIRE_BROWSER", "1")  # in CI a missing browser fails, never skips
    return sh(PY, "-m", "pytest", "-rs", "tests", *args, env=env).returncode


def asv(*args, **kwargs):
    return sh(VENV / "bin" / "asv", *args, **kwargs)


def ensure_machine():
    """Describe this machine to asv under its name, refusing a name whose committed results were
    measured on another CPU: one series must be one kind of hardware.

    Written to ~/.asv-machine.json directly: `asv machine --machine NAME --yes` (asv 0.6) stores
    only the name, dropping every field equal to its default, and the results would say nothing
    about the hardware.
    """
    info = machine_info()
    committed = RESULTS / info["machine"] / "machine.json"
    if committed.exists():
        recorded = json.loads(committed.read_text()).get("cpu")
        if recorded and recorded != info["cpu"]:
            sys.exit(f"results/{info['machine']}/ was measured on a {recorded!r} CPU, this one is "
                     f"{info['cpu']!r}: set LINREG_ASV_MACHINE to another name")
    path = Path.home() / ".asv-machine.json"
    known = json.loads(path.read_text()) if path.exists() else {"version": 1}
    known[info["machine"]] = info
    path.write_text(json.dumps(known, indent=4))
    return info["machine"]


def publish(args=()):
    """Results dir -> html/: asv's data, an offline UI over it (asv-tachyon) and the report."""
    ensure_venv()
    asv("publish", check=True)
    sh(VENV / "bin" / "asv-tachyon", "install", HTML, check=True, stdout=subprocess.DEVNULL)
    sh(PY, "-m", "linreg_kernels.report", "--out", HTML / "report", *args, check=True)
    print("\nto browse it: python3 -m http.server -d html 8080, then open http://localhost:8080/ "
          "(dashboard) and http://localhost:8080/report/ (comparison report)")
    return 0


def bench(args):
    """The whole CPU grid for the checked-out commit, results saved, html/ published.

    Extra arguments go to `asv run`, e.g. `-b time_steady_state` for a subset.
    """
    ensure_venv()
    machine = ensure_machine()
    code = asv("run", "HEAD^!", "--machine", machine, "--show-stderr", *args).returncode
    publish(["--machine", machine])
    if code:
        print(f"asv run exited {code}: some benchmarks failed (see above)", file=sys.stderr)
    return code


def versions(args):
    """Compare releases of one framework, e.g. `python3 tasks.py versions jax 0.10.1 0.10.2`
    (arguments after `--` go to asv run)."""
    ensure_venv()
    machine = ensure_machine()
    code = sh(PY, "-m", "linreg_kernels.versions", "--machine", machine, *args).returncode
    publish()
    return code


def machine(args):
    """Register this machine with asv and print its name, for `asv run --machine ...`."""
    print(ensure_machine())
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
