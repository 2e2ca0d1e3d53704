"""Linear regression by batch gradient descent, in NumPy, Numba, JAX, TensorFlow and PyTorch.

Importing this package imports NumPy only; a framework is imported when its backend is first used.
"""
from .api import fit
from .errors import BackendUnavailable, DivergenceError
from .frameworks import FRAMEWORKS
from .problem import Problem, least_squares, make_problem, reference_fit
from .registry import BACKENDS, DEVICES, availability, backend_class, backends_on, get_backend

__all__ = [
    "BACKENDS", "DEVICES", "FRAMEWORKS", "BackendUnavailable", "DivergenceError", "Problem", "availability",
    "backend_class", "backends_on", "fit", "get_backend", "least_squares", "make_problem", "reference_fit",
]
