"""The README's two commands: `python3 tasks.py bench` and `python3 tasks.py test`.

Standard library only, so it runs on a fresh machine with nothing but Python: each task creates
(or reuses) the virtual environment .venv with every framework installed, then runs.
"""
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
STAMP = VENV / ".installed-from"
CPU_BACKENDS = "numpy,numba,jax,tensorflow,torch"


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


def test(args):
    ensure_venv()
    env = dict(os.environ)
    # This command installs all five frameworks, so a backend that cannot run is a failure.
    env.setdefault("LINREG_REQUIRE_BACKENDS", CPU_BACKENDS)
    return sh(PY, "-m", "pytest", "-rs", "tests", *args, env=env).returncode


def main(argv):
    tasks = {"test": test}
    if not argv or argv[0] not in tasks:
        print(f"usage: python3 tasks.py {{{'|'.join(tasks)}}} [extra args]", file=sys.stderr)
        return 2
    start = time.perf_counter()
    code = tasks[argv[0]](argv[1:])
    print(f"tasks.py {argv[0]}: exit {code} after {time.perf_counter() - start:.0f} s")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
