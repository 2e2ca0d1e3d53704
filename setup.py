"""Packaging for linreg_kernels.

The framework pins below are the reference CPU environment, in one place: the extras use them,
asv.conf.json's matrix repeats them (a test checks the two agree), and none of them admits a
CUDA build (an unpinned torch would pull several GB of CUDA wheels).
"""
from setuptools import find_packages, setup

REFERENCE_CPU_PINS = {
    "numpy": "numpy==2.4.6",
    "numba": "numba==0.68.1",
    "jax": "jax==0.10.2",
    "jaxlib": "jaxlib==0.10.2",
    "tensorflow": "tensorflow-cpu==2.21.0",
    "torch": "torch==2.13.0",
}

FRAMEWORK_EXTRAS = {
    "numba": [REFERENCE_CPU_PINS["numba"]],
    "jax": [REFERENCE_CPU_PINS["jax"], REFERENCE_CPU_PINS["jaxlib"]],
    "tensorflow": [REFERENCE_CPU_PINS["tensorflow"]],
    "torch": [REFERENCE_CPU_PINS["torch"]],
}

EXTRAS = {
    **FRAMEWORK_EXTRAS,
    "all": sorted({req for reqs in FRAMEWORK_EXTRAS.values() for req in reqs}),
    "test": ["pytest>=7", "pyflakes", "asv==0.6.6", "asv-runner==0.3.2", "virtualenv", "asv-tachyon"],
    "bench": ["asv==0.6.6", "asv-runner==0.3.2", "virtualenv", "asv-tachyon", "matplotlib"],
}

setup(
    name="linreg_kernels",
    version="0.1.0",
    description="Linear regression by batch gradient descent in NumPy, Numba, JAX, TensorFlow and PyTorch",
    packages=find_packages(include=["linreg_kernels", "linreg_kernels.*"]),
    python_requires=">=3.10",
    install_requires=["numpy>=1.24", "threadpoolctl>=3"],
    extras_require=EXTRAS,
)
