"""Regenerate the README's screenshots: `xvfb-run -a python docs/make_screenshots.py`.

docs/screenshot.png comes from `napari-spectral-seg demo --screenshot`; this
script makes docs/point_and_click.png: four clicked points, one segment each.
"""

from pathlib import Path

import napari
import numpy as np
from qtpy.QtWidgets import QApplication

HERE = Path(__file__).parent


def point_and_click(path):
    viewer = napari.Viewer(title="napari-spectral-seg: point and click")
    viewer.window.resize(1400, 850)
    viewer.open_sample("napari-spectral-seg", "four_circles")
    _, widget = viewer.window.add_plugin_dock_widget("napari-spectral-seg", "Spectral segmentation")
    points = viewer.add_points(np.array([(67, 58), (28, 24), (24, 70), (40, 50)]), name="clicks",
                               size=4, face_color="yellow")
    widget.mask.value = viewer.layers["four circles mask"]
    widget.seeds.value = points
    widget.start()
    widget.wait(300)
    widget.click_mode.value = "split"
    viewer.layers.selection.active = viewer.layers["four circles spectral"]
    for _ in range(20):
        QApplication.processEvents()
    viewer.screenshot(str(path), canvas_only=False)
    viewer.close()


if __name__ == "__main__":
    point_and_click(HERE / "point_and_click.png")
    print("wrote", HERE / "point_and_click.png")
