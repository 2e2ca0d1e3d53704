"""Linear regression by batch gradient descent, in NumPy, Numba, JAX, TensorFlow and PyTorch.

Importing this package imports NumPy only; a framework is imported when its backend is first used.
"""
from .api import fit
from .errors import BackendUnavailable, DivergenceError
from .problem import Problem, least_squares, make_problem, reference_fit
from .registry import BACKENDS, DEVICES, availability, backend_class, get_backend

__all__ = [
    "BACKENDS", "DEVICES", "BackendUnavailable", "DivergenceError", "Problem", "availability",
    "backend_class", "fit", "get_backend", "least_squares", "make_problem", "reference_fit",
]
