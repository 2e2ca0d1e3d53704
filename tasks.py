"""The README's two commands: `python3 tasks.py bench` and `python3 tasks.py test`.

Standard library only, so it runs on a fresh machine with nothing but Python: each task creates
(or reuses) the virtual environment .venv with every framework installed, then runs.
"""
import hashlib
import json
import os
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
# Results are committed per asv machine name; one name per machine type keeps them together.
MACHINE = os.environ.get("LINREG_ASV_MACHINE", "cpu-2core-avx512")
HTML = ROOT / "html"


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
    """asv refuses to run until the machine is described once per HOME (~/.asv-machine.json)."""
    path = Path.home() / ".asv-machine.json"
    known = json.loads(path.read_text()) if path.exists() else {}
    if MACHINE not in known:
        asv("machine", "--machine", MACHINE, "--yes", check=True, stdout=subprocess.DEVNULL)


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
    ensure_machine()
    code = asv("run", "HEAD^!", "--machine", MACHINE, "--show-stderr", *args).returncode
    publish()
    if code:
        print(f"asv run exited {code}: some benchmarks failed (see above)", file=sys.stderr)
    return code


def versions(args):
    """Compare releases of one framework, e.g. `python3 tasks.py versions jax 0.10.1 0.10.2`
    (arguments after `--` go to asv run)."""
    ensure_venv()
    ensure_machine()
    code = sh(PY, "-m", "linreg_kernels.versions", "--machine", MACHINE, *args).returncode
    publish()
    return code


def main(argv):
    tasks = {"bench": bench, "test": test, "publish": publish, "versions": versions}
    if not argv or argv[0] not in tasks:
        print(f"usage: python3 tasks.py {{{'|'.join(tasks)}}} [extra args]", file=sys.stderr)
        return 2
    start = time.perf_counter()
    code = tasks[argv[0]](argv[1:])
    print(f"tasks.py {argv[0]}: exit {code} after {time.perf_counter() - start:.0f} s")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
