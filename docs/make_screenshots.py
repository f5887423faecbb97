"""Regenerate the README's screenshots: `xvfb-run -a python docs/make_screenshots.py`.

docs/screenshot.png comes from `napari-spectral-seg demo --screenshot`; this
script makes docs/point_and_click.png (four clicked points, one segment each)
and, if the `stardist` wheel is installed (`pip install --no-deps
stardist==0.9.2`, for its real nuclei image), docs/auto_nuclei.png (automatic
segment count on real fluorescence nuclei).
"""

from pathlib import Path

import napari
import numpy as np

from napari_spectral_seg.cli import save_window_screenshot

HERE = Path(__file__).parent


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
    save_window_screenshot(viewer, path)


def auto_nuclei(path):
    import importlib.util

    import tifffile

    spec = importlib.util.find_spec("stardist")
    if spec is None:
        print("stardist not installed: skipping", path)
        return
    image = tifffile.imread(Path(spec.origin).parent / "data" / "images" / "img2d.tif")
    viewer = napari.Viewer(title="napari-spectral-seg: automatic segment count")
    viewer.window.resize(1400, 950)
    viewer.add_image(image, name="nuclei", colormap="gray")
    _, widget = viewer.window.add_plugin_dock_widget("napari-spectral-seg", "Spectral segmentation")
    widget.auto_segments.value = True
    widget.sigma.value = 1.0
    widget.min_size.value = 30
    widget.start()
    widget.wait(300)
    viewer.layers["nuclei spectral"].contour = 2
    save_window_screenshot(viewer, path)


if __name__ == "__main__":
    point_and_click(HERE / "point_and_click.png")
    print("wrote", HERE / "point_and_click.png")
    auto_nuclei(HERE / "auto_nuclei.png")
    print("wrote", HERE / "auto_nuclei.png")
