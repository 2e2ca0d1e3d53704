"""Each framework's pip packages at the reference versions the committed results use, declared once.

setup.py builds its extras from this table (one extra per framework, plus "all"), a test checks
asv.conf.json's matrix against it, and the version comparison moves a framework's packages
together. It imports nothing, so setup.py can read it before anything is installed.
Every pin is exact: an unpinned torch would pull several GB of CUDA wheels.
"""

FRAMEWORKS = {
    "numpy": {"numpy": "2.4.6"},
    "numba": {"numba": "0.68.1"},
    "jax": {"jax": "0.10.2", "jaxlib": "0.10.2"},
    "tensorflow": {"tensorflow-cpu": "2.21.0"},
    "torch": {"torch": "2.13.0"},
}


def requirements(framework):
    """pip requirement strings for one framework, e.g. ['jax==0.10.2', 'jaxlib==0.10.2']."""
    return [f"{package}=={version}" for package, version in FRAMEWORKS[framework].items()]


def installed():
    """{package: version} of the packages above that are installed in this Python, pinned or not."""
    import importlib.metadata

    out = {}
    for package in (p for packages in FRAMEWORKS.values() for p in packages):
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out

