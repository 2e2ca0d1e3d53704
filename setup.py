"""Packaging for linreg_kernels: the kernels, the problem, the registry and fit(); nothing that
measures them (benchmarks/ and harness/ stay in the repository)."""
import runpy
from pathlib import Path

from setuptools import find_packages, setup

frameworks = runpy.run_path(str(Path(__file__).parent / "linreg_kernels" / "frameworks.py"))
FRAMEWORK_EXTRAS = {name: frameworks["requirements"](name) for name in frameworks["FRAMEWORKS"]}
HARNESS = ["asv==0.6.6", "asv-runner==0.3.2", "virtualenv", "asv-tachyon", "matplotlib"]

setup(
    name="linreg_kernels",
    version="0.2.0",
    description="Linear regression by batch gradient descent in NumPy, Numba, JAX, TensorFlow and PyTorch",
    packages=find_packages(include=["linreg_kernels", "linreg_kernels.*"]),
    python_requires=">=3.10",
    install_requires=["numpy>=1.24", "threadpoolctl>=3"],
    extras_require={
        **FRAMEWORK_EXTRAS,
        "all": sorted({req for reqs in FRAMEWORK_EXTRAS.values() for req in reqs}),
        "bench": HARNESS,
        "test": [*HARNESS, "pytest>=7", "pytest-xdist", "pyflakes"],
    },
)
