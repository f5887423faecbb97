"""How long the napari (Qt) event loop stalls while the widget segments an image.

Run: `xvfb-run -a .venv/bin/python bench/ui_latency.py [--size 1024]`

A QTimer ticks every 10 ms on the main thread; the largest gap between ticks
while the worker runs is the longest the UI was frozen. Prints and writes
bench/results/ui_latency.json.

A missing dependency (napari, a Qt binding, this project) stops it with one
line (exit code 2). A run that raises, times out or ends without a result
layer exits with code 1 without touching ui_latency.json: what there is goes
to bench/results/ui_latency-FAILED.json.tmp.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

from _bench_support import error_text, exit_missing, save_results

try:  # this project first: napari takes seconds to import
    from napari_spectral_seg.data import four_circles
except ImportError as _err:
    exit_missing(_err, __file__)
try:
    import napari
    import numpy as np
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication
except ImportError as _err:
    exit_missing(_err, __file__)

TIMEOUT = 600  # seconds for one segmentation


def measure(size: int, solver: str = "auto") -> dict:
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
    while widget.running and time.perf_counter() - started < TIMEOUT:
        QApplication.processEvents()
        time.sleep(0.002)
    elapsed = time.perf_counter() - started
    timer.stop()
    if widget.running:
        widget.stop()
        raise TimeoutError(f"the widget was still running after {TIMEOUT} s (status: {widget.status.value})")
    results = [layer for layer in viewer.layers if isinstance(layer, napari.layers.Labels) and layer.name != "mask"]
    if not results:
        raise RuntimeError(f"the widget made no result layer (status: {widget.status.value})")
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--solver", default="auto")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "ui_latency.json")
    args = parser.parse_args(argv)
    try:
        result = measure(args.size, args.solver)
        failures = []
    except Exception as exc:  # reported, and the run fails
        traceback.print_exc()
        result = dict(size=args.size, solver=args.solver, error=error_text(exc))
        failures = [result["error"]]
    print(json.dumps(result, indent=2))
    return save_results([args.out], result, failures, indent=2)


if __name__ == "__main__":
    sys.exit(main())
