"""Regenerate the README's screenshots: `xvfb-run -a .venv/bin/python docs/make_screenshots.py`.

docs/screenshot.png comes from `napari-spectral-seg demo --screenshot`; this
script makes docs/point_and_click.png (four clicked points, one segment each)
and, if the `stardist` wheel is installed (`.venv/bin/pip install --no-deps
stardist==0.9.2`, for its real nuclei image), docs/auto_nuclei.png (automatic
segment count on real fluorescence nuclei).

A missing dependency stops it with one line (exit code 2); a segmentation that
fails raises before its picture is saved, so the old picture stays.
"""

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "bench"))

from _bench_support import exit_missing  # noqa: E402

try:  # this project first: napari takes seconds to import
    from napari_spectral_seg.cli import save_window_screenshot
except ImportError as _err:
    exit_missing(_err, __file__)
try:
    import napari
    import numpy as np
    import tifffile
except ImportError as _err:
    exit_missing(_err, __file__)


def save_atomic(viewer, path):
    """:func:`save_window_screenshot` to a temporary name, then renamed: a failed save keeps the old file."""
    tmp = path.with_name(f".{path.stem}-partial{path.suffix}")
    try:
        save_window_screenshot(viewer, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def point_and_click(path):
    viewer = napari.Viewer(title="napari-spectral-seg: point and click")
    viewer.window.resize(1400, 850)
    viewer.open_sample("napari-spectral-seg", "four_circles")
    _, widget = viewer.window.add_plugin_dock_widget("napari-spectral-seg", "Spectral segmentation")
    points = viewer.add_points(
        np.array([(67, 58), (28, 24), (24, 70), (40, 50)]), name="clicks", size=4, face_color="yellow"
    )
    widget.mask.value = viewer.layers["four circles mask"]
    widget.seeds.value = points
    widget.start()
    widget.wait(300)
    widget.click_mode.value = "split"
    viewer.layers.selection.active = viewer.layers["four circles spectral"]
    save_atomic(viewer, path)


def auto_nuclei(path):
    import importlib.util

    spec = importlib.util.find_spec("stardist")
    if spec is None:
        print("stardist not installed: skipping", path)
        return False
    image = tifffile.imread(Path(spec.origin).parent / "data" / "images" / "img2d.tif")
    viewer = napari.Viewer(title="napari-spectral-seg: automatic segment count")
    viewer.window.resize(1400, 950)
    viewer.add_image(image, name="nuclei", colormap="gray")
    _, widget = viewer.window.add_plugin_dock_widget("napari-spectral-seg", "Spectral segmentation")
    widget.auto_segments.value = True
    widget.auto_sigma.value = True  # smoothing and min size chosen from the image
    widget.auto_min_size.value = True
    widget.start()
    widget.wait(300)
    viewer.layers["nuclei spectral"].contour = 2
    save_atomic(viewer, path)
    return True


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    point_and_click(HERE / "point_and_click.png")
    print("wrote", HERE / "point_and_click.png")
    if auto_nuclei(HERE / "auto_nuclei.png"):
        print("wrote", HERE / "auto_nuclei.png")
