"""core/warm.py: what prepare() changes in the process (the command line's and the engine's, never napari's)."""

import subprocess
import sys

CHECK = """
import numpy as np
from numpy._core import multiarray
from napari_spectral_seg.core.warm import keep_freed_memory, prepare, skip_huge_pages
assert multiarray._get_madvise_hugepage()  # numpy's default
prepare()
assert not multiarray._get_madvise_hugepage()
kept = keep_freed_memory()
assert kept in (True, False) and skip_huge_pages()
np.ones(50_000_000, dtype=np.uint8).sum()  # a large block from the kept heap works as before
print("ok", kept)
"""


def test_prepare_tunes_the_memory_of_its_own_process():
    import os
    import platform

    env = dict(os.environ, NUMPY_MADVISE_HUGEPAGE="1")
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.startswith("ok")
    if platform.libc_ver()[0] == "glibc":
        assert done.stdout.split()[1] == "True"


def test_a_run_turns_numpy_huge_page_advice_off_only_while_its_steps_run():
    from numpy._core import multiarray

    from napari_spectral_seg.core._pages import ordinary_pages
    from napari_spectral_seg.core.pipeline import iter_segment
    from napari_spectral_seg.data import four_circles

    previous = multiarray._set_madvise_hugepage(True)
    try:
        with ordinary_pages():
            with ordinary_pages():  # nested (or another thread's) section: one shared setting
                assert multiarray._set_madvise_hugepage(False) is False
            assert multiarray._set_madvise_hugepage(False) is False  # still off until the last section ends
        assert multiarray._set_madvise_hugepage(True) is True  # put back
        image, mask, _ = four_circles(40, seed=0)
        steps = iter_segment(image, mask, n_clusters=2)
        next(steps)
        assert multiarray._set_madvise_hugepage(True) is True  # on again while the run is suspended
        steps.close()
    finally:
        multiarray._set_madvise_hugepage(previous)


HEAP_CHECK = """
import resource
import numpy as np
import napari_spectral_seg.core._heap as heap
from napari_spectral_seg.core.pipeline import iter_segment
from napari_spectral_seg.data import four_circles

heap.KEEP_MIN_PIXELS = 0  # a tiny image stands in for a large run

def faults_of_a_fresh_block():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    np.ones(50_000_000, dtype=np.uint8).sum()  # 50 MB: its own mmap under glibc's defaults
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

np.ones(50_000_000, dtype=np.uint8).sum()
image, mask, _ = four_circles(40, seed=0)
steps = iter_segment(image, mask, n_clusters=2)
next(steps)
faults_of_a_fresh_block()  # the first one grows the heap
during = faults_of_a_fresh_block()
steps.close()
after = faults_of_a_fresh_block()
print("ok", during, after)
"""


def test_a_run_keeps_freed_blocks_in_the_heap_until_it_ends():
    import os
    import platform

    if platform.libc_ver()[0] != "glibc":
        import pytest

        pytest.skip("mallopt is glibc's")
    env = dict(os.environ, NUMPY_MADVISE_HUGEPAGE="0")  # 4 KiB pages: one fault per page
    done = subprocess.run([sys.executable, "-c", HEAP_CHECK], capture_output=True, text=True, env=env, check=True)
    word, during, after = done.stdout.split()
    pages = 50_000_000 // 4096
    # Reused from the kept heap while the run is open; its own mmap again once it ended.
    assert word == "ok" and int(during) < pages // 10 and int(after) > pages // 2
