"""The engine (core) depends on numpy, scipy, scikit-learn and pyamg only."""

import subprocess
import sys

FORBIDDEN = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "dask", "distributed", "zarr")


def test_importing_and_running_core_loads_no_gui_dask_or_zarr_module():
    code = (
        "import sys\n"
        "import napari_spectral_seg.core as core\n"
        "from napari_spectral_seg.data import four_circles\n"
        "image, mask, _ = four_circles(size=30)\n"
        "core.segment(image, mask, n_clusters=2, random_state=0)\n"
        "core.segment(image, threshold='otsu', n_clusters='auto', random_state=0)\n"
        f"loaded = sorted(m for m in {FORBIDDEN!r} if m in sys.modules)\n"
        "print(','.join(loaded))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
