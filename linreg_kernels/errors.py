class BackendUnavailable(RuntimeError):
    """A backend's framework is not installed, or the requested device is absent."""


class DivergenceError(ArithmeticError):
    """Gradient descent ended with non-finite weights."""
