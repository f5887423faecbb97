"""Reading ``.npy`` and ``.npz`` files in a worker's threads, one at a time.

numpy parses a file's header with ``ast.literal_eval``. CPython 3.11's AST
builder keeps its recursion depth in state the threads share, so two threads
parsing at once can fail with ``SystemError: AST constructor recursion depth
mismatch`` (python/cpython#106905, seen here while blocks' records were read
as the labels were written).
"""

from __future__ import annotations

import threading

import numpy as np

__all__ = ["load_array", "load_arrays"]

_HEADER_LOCK = threading.Lock()


def load_array(path) -> np.ndarray:
    """The array of a ``.npy`` file."""
    with _HEADER_LOCK:
        return np.load(path)


def load_arrays(path) -> dict:
    """Every array of a ``.npz`` file, by name."""
    with _HEADER_LOCK, np.load(path) as data:
        return {name: data[name] for name in data.files}
