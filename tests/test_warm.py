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
