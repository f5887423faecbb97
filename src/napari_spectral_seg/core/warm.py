"""What the first segmentation of a process pays, paid before it.

In a fresh process the first :func:`~napari_spectral_seg.segment` call at
1600 x 1600 took about 0.3-0.4 s longer than the next ones (``bench/cold_start.py``
and a profile of the two calls): importing pyamg (~0.2 s; the multilevel
solver imports it on first use, and its package imports scipy.io and its
gallery), threadpoolctl's scan of the loaded native libraries (~60 ms, on the
first one-thread section of each kind), and first calls into compiled code
and scikit-learn's input checks. Nothing here runs at import: ``import
napari_spectral_seg`` stays as quick as it was (the napari widget imports
the core in napari's own process).

:func:`prepare` pays the imports and the scans (the command line calls it
before it reads the image); :func:`warm_up` also segments a tiny image along
the paths a real run takes (the widget's engine process does that when it
starts, in the background).

:func:`prepare` also changes how the process gets memory (what was left
of the first call's extra time was the kernel handing out fresh pages):

* glibc's malloc keeps freed large blocks (:func:`keep_freed_memory`, see
  ``_heap``): with the heap kept, the first call reuses its own freed
  temporaries and later calls fault nothing (in any other process, a run
  on ``_heap.KEEP_MIN_PIXELS`` pixels or more keeps it for its own length);
* numpy stops asking for transparent huge pages (:func:`skip_huge_pages`):
  where the kernel's THP setting is ``madvise`` with ``defrag=madvise``, each
  fresh 2 MiB page may wait for the kernel to compact memory, which cost
  the first call far more than the few percent 4 KiB pages cost warm calls
  (figures: the README's *Cold start*).
"""

from __future__ import annotations

import numpy as np

from ._heap import keep_freed_memory
from ._threads import single_threaded

__all__ = ["keep_freed_memory", "prepare", "skip_huge_pages", "warm_up"]

# The one-thread sections of the pipeline, by (scope, user_api): see _threads.
_SECTIONS = (("eigen", "blas"), ("auto", "blas"), ("labels", None), ("seeds", None))


def skip_huge_pages() -> bool:
    """Stop numpy's ``madvise(MADV_HUGEPAGE)`` on its large arrays (process-wide); False if it cannot."""
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray
    setter = getattr(multiarray, "_set_madvise_hugepage", None)  # numpy's switch, also NUMPY_MADVISE_HUGEPAGE=0
    if setter is None:
        return False
    setter(False)
    return True


def prepare() -> None:
    """Tune the memory, import pyamg and scan the thread pools now, not in the first segmentation.

    Process-wide: for the command line and the engine process, not napari's own.
    """
    keep_freed_memory()
    skip_huge_pages()
    import pyamg  # noqa: F401 - the import is the point
    import sklearn.cluster  # noqa: F401 - scikit-learn's OpenMP runtime is in the labels scan

    for scope, user_api in _SECTIONS:
        with single_threaded(scope, user_api):
            pass


def warm_up() -> None:
    """:func:`prepare`, then segment a tiny image through the multilevel solver and auto mode.

    Takes about 0.1-0.2 s; the results are thrown away.
    """
    from .pipeline import segment

    prepare()
    yy, xx = np.mgrid[:64, :64]
    image = ((yy - 20) ** 2 + (xx - 20) ** 2 < 150) + ((yy - 42) ** 2 + (xx - 44) ** 2 < 150) * 0.6
    mask = image > 0
    segment(image, mask, n_clusters=2, eigen_solver="multilevel", random_state=0)
    segment(image, threshold="otsu", n_clusters="auto", random_state=0)
