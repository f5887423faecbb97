"""How long the napari (Qt) event loop stalls while the widget segments an image.

Run: `xvfb-run -a python bench/ui_latency.py [--size 1024]`

A QTimer ticks every 10 ms on the main thread; the largest gap between ticks
while the worker runs is the longest the UI was frozen. Prints and writes
bench/results/ui_latency.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def measure(size: int, solver: str = "auto") -> dict:
    import napari
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication

    from napari_spectral_seg.data import four_circles

    viewer = napari.Viewer(show=True)
    image, mask, _ = four_circles(size=size, seed=0)
    viewer.add_image(image, name="circles")
    viewer.add_labels(mask.astype(np.uint8), name="mask")
    _, widget = viewer.window.add_plugin_dock_widget("napari-spectral-seg", "Spectral segmentation")
    widget.image.value = viewer.layers["circles"]
    widget.mask.value = viewer.layers["mask"]
    widget.eigen_solver.value = solver

    ticks, statuses = [], []
    timer = QTimer()
    timer.setInterval(10)

    def tick():
        ticks.append(time.perf_counter())
        statuses.append(widget.status.value)

    timer.timeout.connect(tick)
    for _ in range(10):
        QApplication.processEvents()
    timer.start()
    started = time.perf_counter()
    widget.start()
    while widget.running:
        QApplication.processEvents()
        time.sleep(0.002)
    elapsed = time.perf_counter() - started
    timer.stop()
    gaps = np.diff(ticks) * 1000 if len(ticks) > 1 else np.array([elapsed * 1000])
    status = widget.status.value
    worst = np.argsort(gaps)[::-1][:5]
    where = [f"{gaps[i]:.0f} ms at {ticks[i] - started:.2f} s ({statuses[i]} -> {statuses[i + 1]})" for i in worst]
    viewer.close()
    return dict(
        size=size,
        pixels=int(mask.sum()),
        solver=solver,
        seconds=round(elapsed, 2),
        max_stall_ms=round(float(gaps.max()), 1),
        p99_stall_ms=round(float(np.percentile(gaps, 99)), 1),
        stalls_over_100ms=int(np.sum(gaps > 100)),
        status=status,
        worst_stalls=where,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--solver", default="auto")
    args = parser.parse_args()
    result = measure(args.size, args.solver)
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "results" / "ui_latency.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
