"""How long the napari (Qt) event loop stalls while the widget works, case by case.

Run: `xvfb-run -a .venv/bin/python bench/ui_latency.py [--size 1024] [--big 4096] [--dask 8192]`

A QTimer ticks every 10 ms on the main thread; the largest gap between ticks
during a case is the longest the UI was frozen. One run measures, in one
viewer:

* ``run_<size>``: Run on a ``size``² four-circles image with its mask, until
  the result layer is there (the result arriving included);
* ``result_<big>``: Run on a ``big``² image whose mask is one small disc: the
  engine is quick, so the stall is the ``big``² labels arriving and the layer
  being made (and ``rerun_<big>``: the same again, the layer updated in place);
* ``napari_add_labels_<n>`` / ``napari_set_data_<n>``: napari's own cost of
  adding an equal Labels layer (same shape, dtype, scale) and of replacing its
  data, measured the same way beside them; ``plugin_share_ms`` is the result
  case's stall minus napari's;
* ``run_dask_<dask>``: Run on a ``dask``² dask layer (64 lazily computed
  chunks), until the engine has taken the job (the image read into shared
  memory by the worker thread); then
  ``cancel``: Cancel, until the widget is idle again, and whether the engine
  process is the same one (ready for the next Run, no new start-up);
* ``click_split``: a click-split of the segment nearest 60,000 pixels of the
  ``run_<size>`` result, until the edit is in the layer;
* ``napari_setitem``: napari's own cost of that edit, the same pixels set on the
  layer with ``data_setitem`` (the split's plugin share is its stall minus this);
* ``napari_repaint``: napari's own cost of one window repaint (its status bar
  text changed), what any visible change costs, a status line's included: the
  plugin share of ``run_dask_<dask>``, ``cancel`` and ``progress_auto`` is their stall minus this;
* ``progress_auto``: an auto-mode run (``n_clusters='auto'``) on ``--blobs``²
  touching blobs (about 10 s), measured while its progress arrives, up to the
  last tick before the result layer is there (a result arriving is the
  ``run_<size>`` and ``result_<big>`` cases'): the worst stall and how many
  times the status line changed (``status_changes``);
* ``next_run_after_cancel``: that run again, cancelled once the engine has
  taken it, then Run: the seconds from Cancel until the widget is idle
  (``cancel_s``) and from the new Run until the engine has taken its job
  (``seconds``), and whether it is the same engine process (``engine_kept``).

Every case is measured ``--repeat`` times (3) in the same viewer; the
median round's figures are reported per case, with each round's worst
stall. Prints and writes bench/results/ui_latency.json. A missing dependency (napari,
a Qt binding, this project) stops it with one line (exit code 2). A case that
raises or times out exits with code 1 without touching ui_latency.json: what
there is goes to bench/results/ui_latency-FAILED.json.tmp.
"""

from __future__ import annotations

import argparse
import json
import os
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
    import dask.array as da
    import napari
    import numpy as np
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication
except ImportError as _err:
    exit_missing(_err, __file__)

TIMEOUT = 600  # seconds for one case
TAIL = 0.3  # seconds measured after a case is done: the repaint it caused comes after
TARGET_MS = 100  # worst stall allowed per case
SHARE_TARGET_MS = 20  # the plugin's share beside napari's own layer creation


class StallMeter:
    """Ticks of a 10 ms QTimer on the main thread, with the widget's status and the thread's CPU time at each.

    The wall-clock gap between two ticks is the stall the user sees; the
    main thread's CPU time over the gap is the work the GUI thread did in
    it, which a loaded machine (other processes taking the cores) does not
    inflate. A gap with little CPU time was the thread waiting: for the
    cores, or for the GIL.
    """

    def __init__(self, widget):
        self._widget = widget
        self.ticks, self.statuses, self.cpu, self.marks = [], [], [], []
        self.mark = None  # optional: a callable noted at every tick (progress_auto: is the result layer there)
        self._timer = QTimer()
        self._timer.setInterval(10)
        self._timer.timeout.connect(self._tick)

    def _tick(self):
        self._note()

    def _note(self):
        self.ticks.append(time.perf_counter())
        self.cpu.append(time.thread_time())
        self.statuses.append(self._widget.status.value)
        self.marks.append(self.mark() if self.mark is not None else None)

    def measure(self, action, done, name: str) -> dict:
        """Start ticking, call ``action()``, process events until ``done()``; the case's figures."""
        self.ticks, self.statuses, self.cpu, self.marks = [], [], [], []
        settle(5)
        self._timer.start()
        self._note()
        started = self.ticks[0]
        action()
        while not done():
            if time.perf_counter() - started > TIMEOUT:
                self._timer.stop()
                raise TimeoutError(f"{name}: not done after {TIMEOUT} s (status: {self._widget.status.value})")
            QApplication.processEvents()
            time.sleep(0.002)
        done_at = time.perf_counter()
        while time.perf_counter() - done_at < TAIL:  # the repaints the case caused
            QApplication.processEvents()
            time.sleep(0.002)
        self._note()  # the last stretch counts too
        self._timer.stop()
        gaps = np.diff(self.ticks) * 1000
        busy = np.diff(self.cpu) * 1000
        worst = int(np.argmax(gaps))
        return dict(
            case=name,
            seconds=round(done_at - started, 2),
            max_stall_ms=round(float(gaps.max()), 1),
            max_busy_ms=round(float(busy.max()), 1),
            stalls_over_100ms=int(np.sum(gaps > 100)),
            worst_at=f"{self.ticks[worst] - started:.2f} s ({self.statuses[worst]} -> {self.statuses[worst + 1]})",
            status=self._widget.status.value,
        )


def settle(n: int = 10) -> None:
    for _ in range(n):
        QApplication.processEvents()
        time.sleep(0.005)


def run_case(meter, widget, name: str, result_name: str, viewer, *, fresh: bool = True) -> dict:
    """Run to the end: the result layer ``result_name`` is there and the widget idle.

    ``fresh``: the result layer of an earlier round is removed first, so the result makes a new layer.
    """
    if fresh and result_name in viewer.layers:
        viewer.layers.remove(result_name)
        settle()
    row = meter.measure(widget.start, lambda: not widget.running, name)
    if result_name not in viewer.layers:
        raise RuntimeError(f"{name}: the widget made no result layer (status: {widget.status.value})")
    return row


def napari_own(meter, viewer, like) -> list[dict]:
    """napari's own cost: add a Labels layer equal to ``like`` (shape, dtype, scale), then replace its data."""
    data = np.array(like.data)
    shape = "x".join(str(n) for n in data.shape)
    added = []

    def add():
        added.append(viewer.add_labels(data.copy(), name=f"napari {shape}", scale=like.scale))

    rows = [meter.measure(add, lambda: bool(added), f"napari_add_labels_{shape}")]
    fresh = data.copy()

    def replace():
        added[0].data = fresh

    rows.append(meter.measure(replace, lambda: added[0].data is fresh, f"napari_set_data_{shape}"))
    viewer.layers.remove(added[0])
    return rows


def pick(viewer, widget, image, mask, name: str):
    """Add ``image`` (and ``mask``) and point the widget at them."""
    layer = viewer.add_image(image, name=name)
    widget.image.value = layer
    if mask is None:
        widget.mask.value = None
    else:
        widget.mask.value = viewer.add_labels(mask.astype(np.uint8), name=f"{name} mask")
    settle()
    return layer


def result_cases(meter, viewer, widget, big: int) -> list[dict]:
    """A ``big``² result arriving (engine work kept small by a small mask), napari's own cost beside it."""
    image, _, _ = four_circles(size=big, seed=0)
    mask = np.zeros(image.shape, bool)
    centre = big // 2
    yy, xx = np.ogrid[:big, :big]
    mask |= (yy - centre) ** 2 + (xx - centre) ** 2 < (big // 40) ** 2
    pick(viewer, widget, image, mask, f"circles {big}")
    result = f"circles {big} spectral"
    rows = [run_case(meter, widget, f"result_{big}", result, viewer)]
    rows.append(run_case(meter, widget, f"rerun_{big}", result, viewer, fresh=False))
    rows += napari_own(meter, viewer, viewer.layers[result])
    return rows


def dask_and_cancel(meter, viewer, widget, size: int) -> list[dict]:
    """Run on a ``size``² dask layer until the engine segments it, then Cancel."""
    tile, _, _ = four_circles(size=size // 8, seed=0)
    lazy = da.block([[da.from_array(tile, chunks=tile.shape) for _ in range(8)] for _ in range(8)])
    lazy = lazy.map_blocks(lambda block: block * 1.0, dtype=tile.dtype)  # computed when read
    pick(viewer, widget, lazy, None, f"dask {size}")
    widget.auto_threshold.value = True
    settle(20)

    def handed_over():  # the engine has taken the job (a small image may be done already)
        return widget._engine.started_job_at is not None or not widget.running

    widget._engine.started_job_at = None  # the last job's
    row = meter.measure(widget.start, handed_over, f"run_dask_{size}")
    pid = widget._engine.pid
    cancel = meter.measure(widget.stop, lambda: not widget.running, "cancel")
    cancel["engine_kept"] = widget._engine.pid == pid
    return [row, cancel]


def click_split(meter, viewer, widget, result_name: str) -> dict:
    """Split the segment of ``result_name`` nearest 60,000 pixels by a click at one of its pixels."""
    layer = viewer.layers[result_name]
    counts = np.bincount(layer.data.ravel())
    counts[0] = 0
    label = int(np.argmin(np.abs(counts - 60_000) + (counts == 0) * 10**9))
    where = np.argwhere(layer.data == label)
    point = where[len(where) // 2]
    widget.click_mode.value = "split"
    settle()
    before = int(layer.data.max())

    def click():
        widget.split_at(layer.data_to_world(point), layer)

    unsplit = np.array(layer.data)
    row = meter.measure(click, lambda: not widget._clicks.busy, "click_split")
    row.update(segment_pixels=int(counts[label]), applied=int(layer.data.max()) == before + 1)
    widget.click_mode.value = "off"
    return [row, napari_setitem(meter, layer, unsplit)]


def napari_setitem(meter, layer, unedited) -> dict:
    """napari's own cost of an edit: the pixels that differ from ``unedited`` set again with ``data_setitem``."""
    changed = np.nonzero(np.asarray(layer.data) != unedited)
    values = np.asarray(layer.data)[changed]
    layer.undo()  # the edit being copied
    settle()
    row = meter.measure(lambda: layer.data_setitem(changed, values), lambda: True, "napari_setitem")
    row["pixels"] = len(values)
    return row


def _blobs_auto(viewer, widget, side: int):
    from napari_spectral_seg.data import touching_blobs

    image, _ = touching_blobs((side, side), n_objects=int(300 * (side / 1024) ** 2), seed=0)
    layer = pick(viewer, widget, image, None, f"blobs {side}")
    widget.auto_threshold.value = True
    widget.auto_segments.value = True
    settle(20)
    return layer


def progress_auto(meter, viewer, widget, side: int) -> list[dict]:
    """An auto run's progress arriving (until its result), then Cancel and the next Run's wait for the engine."""
    image = _blobs_auto(viewer, widget, side)
    result = f"{image.name} spectral"  # napari adds " [1]" to a later round's image name
    meter.mark = lambda: result in viewer.layers
    try:
        row = meter.measure(widget.start, lambda: not widget.running, "progress_auto")
    finally:
        meter.mark = None
    statuses = meter.statuses
    # Up to the last tick before the result layer is there: the result arriving (napari making
    # the layer) is the run_<size> and result_<big> cases' subject, measured beside napari's own.
    end = next((i for i, there in enumerate(meter.marks) if there), len(statuses))
    gaps = np.diff(meter.ticks[: max(end, 2)]) * 1000
    busy = np.diff(meter.cpu[: max(end, 2)]) * 1000
    changes = sum(a != b for a, b in zip(statuses[:end], statuses[1:end]))
    worst = int(np.argmax(gaps))
    row.update(
        max_stall_ms=round(float(gaps.max()), 1),
        max_busy_ms=round(float(busy.max()), 1),
        stalls_over_100ms=int(np.sum(gaps > 100)),
        status_changes=int(changes),
        worst_at=f"{meter.ticks[worst] - meter.ticks[0]:.2f} s ({statuses[worst]} -> {statuses[worst + 1]})",
        result_at=f"{meter.ticks[min(end, len(statuses) - 1)] - meter.ticks[0]:.2f} s",
    )
    return [row, next_run_after_cancel(meter, widget)]


def next_run_after_cancel(meter, widget) -> dict:
    """Run, Cancel once the engine has the job, Run again: how long until the engine has the new job."""
    engine = widget._engine

    def taken():
        return (engine.started_job_at is not None and widget.running and getattr(engine, "_busy", True)) or (
            not widget.running
        )

    engine.started_job_at = None
    widget.start()
    while not taken():
        QApplication.processEvents()
        time.sleep(0.002)
    pid = engine.pid
    cancelled = time.perf_counter()
    widget.stop()
    while widget.running:
        QApplication.processEvents()
        time.sleep(0.002)
    cancel_s = time.perf_counter() - cancelled
    engine.started_job_at = None
    row = meter.measure(widget.start, taken, "next_run_after_cancel")
    row.update(cancel_s=round(cancel_s, 3), engine_kept=engine.pid == pid)
    widget.stop()
    while widget.running:
        QApplication.processEvents()
        time.sleep(0.002)
    return row


def napari_repaint(meter, viewer) -> dict:
    """napari's own cost of one window repaint: its status bar shows a new text."""
    text = f"napari status at {time.perf_counter():.3f}"
    return meter.measure(lambda: setattr(viewer, "status", text), lambda: True, "napari_repaint")


def one_round(meter, viewer, widget, size: int, big: int, dask_size: int, blobs: int = 1448) -> list[dict]:
    """Every case once, in one viewer."""
    layers = [layer.name for layer in viewer.layers]
    for name in layers:
        viewer.layers.remove(name)
    image, mask, _ = four_circles(size=size, seed=0)
    pick(viewer, widget, image, mask, "circles")
    rows = [run_case(meter, widget, f"run_{size}", "circles spectral", viewer)]
    rows += napari_own(meter, viewer, viewer.layers["circles spectral"])
    rows += click_split(meter, viewer, widget, "circles spectral")
    rows += result_cases(meter, viewer, widget, big)
    rows += dask_and_cancel(meter, viewer, widget, dask_size)
    if blobs:
        rows += progress_auto(meter, viewer, widget, blobs)
    rows.append(napari_repaint(meter, viewer))
    return rows


def measure(
    size: int, solver: str = "auto", big: int = 4096, dask_size: int = 8192, repeat: int = 3, blobs: int = 1448
) -> dict:
    """Every case ``repeat`` times (the first round also pays the engine's start-up); medians per case."""
    load_before = [round(x, 2) for x in os.getloadavg()]
    viewer = napari.Viewer(show=True)
    _, widget = viewer.window.add_plugin_dock_widget("napari-spectral-seg", "Spectral segmentation")
    widget.eigen_solver.value = solver
    meter = StallMeter(widget)
    # Cases switch Otsu and the automatic count on: every round starts from the widget's defaults.
    defaults = {name: getattr(widget, name).value for name in ("auto_threshold", "auto_segments")}
    rounds = []
    try:
        for _ in range(repeat):
            for name, value in defaults.items():
                getattr(widget, name).value = value
            rounds.append(one_round(meter, viewer, widget, size, big, dask_size, blobs))
    finally:
        viewer.close()
    # The machine's load average (1, 5, 15 min) before and after: stalls in wall time follow it.
    load = dict(before=load_before, after=[round(x, 2) for x in os.getloadavg()])
    return summarise(
        median_rows(rounds), size=size, solver=solver, big=big, dask=dask_size, blobs=blobs, repeat=repeat, load=load
    )


def median_rows(rounds: list[list[dict]]) -> list[dict]:
    """One row per case: the median round's figures (by worst stall), with every round's worst stall."""
    rows = []
    for i in range(len(rounds[0])):
        same = sorted((r[i] for r in rounds), key=lambda row: row["max_stall_ms"])
        row = dict(same[len(same) // 2])
        row["max_stall_ms_each_round"] = [r[i]["max_stall_ms"] for r in rounds]
        rows.append(row)
    return rows


def summarise(rows: list[dict], **settings) -> dict:
    """The rows, the plugin's share beside napari's own layer creation, and the targets met.

    A result case's share is its worst stall minus napari's own for an
    equal layer (adding one for a new result layer, replacing the data for
    a re-run), in wall time and in GUI-thread CPU time; other cases' as
    :func:`_napari_counterpart` says.
    """
    by_case = {row["case"]: row for row in rows}
    for row in rows:
        own = by_case.get(_napari_counterpart(row["case"]))
        if own is None:
            continue
        for key, share in (("max_stall_ms", "plugin_share_ms"), ("max_busy_ms", "plugin_share_busy_ms")):
            row[f"napari_own_{key[4:]}"] = own[key]
            row[share] = round(max(row[key] - own[key], 0.0), 1)
    plugin = [r for r in rows if not r["case"].startswith("napari_")]

    def met(key: str, share: str) -> bool:
        return all(r[key] <= TARGET_MS or r.get(share, TARGET_MS + 1) <= SHARE_TARGET_MS for r in plugin)

    return dict(
        settings,
        target_ms=TARGET_MS,
        share_target_ms=SHARE_TARGET_MS,
        targets_met=met("max_stall_ms", "plugin_share_ms"),
        targets_met_gui_cpu=met("max_busy_ms", "plugin_share_busy_ms"),
        cases=rows,
    )


def _napari_counterpart(case: str) -> str | None:
    """The napari case measured beside a case: ``result_4096`` -> ``napari_add_labels_4096x4096``.

    A click-split's is napari's own edit of the same pixels; Cancel's and
    the dask Run's (no layer made), one window repaint.
    """
    if case == "click_split":
        return "napari_setitem"
    if case in ("cancel", "progress_auto", "next_run_after_cancel") or case.startswith("run_dask_"):
        return "napari_repaint"
    kind, _, side = case.rpartition("_")
    if kind not in ("run", "result", "rerun") or not side.isdigit():
        return None
    return f"napari_{'set_data' if kind == 'rerun' else 'add_labels'}_{side}x{side}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="four circles run to the end, and the click-split")
    parser.add_argument("--big", type=int, default=4096, help="side of the large result that arrives")
    parser.add_argument("--dask", type=int, default=8192, help="side of the dask layer (a multiple of 8)")
    parser.add_argument("--blobs", type=int, default=1448, help="side of the auto run's touching blobs (0: skip)")
    parser.add_argument("--solver", default="auto")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of every case (medians reported)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "ui_latency.json")
    args = parser.parse_args(argv)
    try:
        result = measure(
            args.size, args.solver, big=args.big, dask_size=args.dask, repeat=args.repeat, blobs=args.blobs
        )
        failures = []
    except Exception as exc:  # reported, and the run fails
        traceback.print_exc()
        result = dict(size=args.size, solver=args.solver, error=error_text(exc))
        failures = [result["error"]]
    print(json.dumps(result, indent=2))
    return save_results([args.out], result, failures, indent=2)


if __name__ == "__main__":
    sys.exit(main())
