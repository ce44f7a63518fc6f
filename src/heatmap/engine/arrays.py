"""Checks of arrays the engine takes over from outside (a restored state), so a wrong
shape is refused instead of broadcast into the engine's own arrays."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def require_array(name: str, array: np.ndarray, dtype: npt.DTypeLike,
                  shape: tuple[int, ...]) -> None:
    """Raise ValueError unless ``array`` has exactly ``shape`` and ``dtype``.

    Parameters
    ----------
    name : str
        What the error calls the array.
    array : ndarray
    dtype : numpy dtype, e.g. ``np.float64``
        Compared as numpy compares dtypes (byte order included).
    shape : tuple of int
    """
    if array.shape != shape or array.dtype != np.dtype(dtype):
        raise ValueError(f"{name} is {array.dtype} {list(array.shape)}, expected "
                         f"{np.dtype(dtype)} {list(shape)}")
