"""The dock widget attacked by hand: a real napari window, the widget's own controls clicked.

Run: `xvfb-run -a .venv/bin/python bench/gui_attacks.py [--out DIR] [--only NAME ...]`

Each attack opens a viewer with the dock widget from the manifest, does what a
user would (buttons clicked with the mouse, values typed into the fields, the
save dialog filled in), and records what the window showed: the status line,
its tooltip, the notifications, the layers, the longest stall of the event
loop (a 10 ms timer's largest gap), and a grab of the window as
``DIR/NAME.png``. Prints and writes ``DIR/gui_attacks.json``; the verdicts
are a reader's (look at the pictures), not the script's.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path

import napari
import numpy as np
from napari.utils.notifications import notification_manager
from qtpy.QtCore import QPoint, Qt, QTimer
from qtpy.QtTest import QTest
from qtpy.QtWidgets import QApplication, QCheckBox, QFileDialog, QLineEdit

from napari_spectral_seg.data import four_circles

PLUGIN = "napari-spectral-seg"


# ---------------------------------------------------------------- the hands
def pump(seconds: float = 0.2) -> None:
    """Let the event loop run for ``seconds`` (what a user waiting sees)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        QApplication.processEvents()
        time.sleep(0.005)


def until(condition, timeout: float = 120.0) -> bool:
    """Pump events until ``condition()``; whether it came within ``timeout`` seconds."""
    end = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > end:
            return False
        QApplication.processEvents()
        time.sleep(0.005)
    return True


def click(widget) -> None:
    """A left click on a magicgui widget's Qt control: a checkbox's box, a button's middle."""
    native = widget.native
    at = QPoint(9, native.height() // 2) if isinstance(native, QCheckBox) else native.rect().center()
    QTest.mouseClick(native, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at)
    pump(0.05)


def type_into(widget, text: str) -> None:
    """Select the field's text, type ``text`` and press Enter, as on a keyboard."""
    edit = widget.native.findChild(QLineEdit) or widget.native
    edit.setFocus()
    edit.selectAll()
    QTest.keyClicks(edit, text)
    QTest.keyClick(edit, Qt.Key.Key_Return)
    pump(0.05)


def choose(widget, text: str) -> None:
    """Pick the entry ``text`` of a combo box by its index, as a click in its list does."""
    index = widget.native.findText(text)
    if index < 0:
        raise ValueError(
            f"{widget.name} has no entry {text!r}: {[widget.native.itemText(i) for i in range(widget.native.count())]}"
        )
    widget.native.setCurrentIndex(index)
    pump(0.05)


class GapMeter:
    """The longest pause of the event loop while it runs: a 10 ms timer's largest gap, in ms."""

    def __init__(self):
        self.ticks, self.cpu = [], []
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self._tick()
        self.timer.start()

    def _tick(self):
        self.ticks.append(time.perf_counter())
        self.cpu.append(time.thread_time())

    def longest_ms(self) -> tuple[float, float]:
        """The longest gap in wall time and the GUI thread's CPU time over it, in ms."""
        self.timer.stop()
        self._tick()
        gaps = np.diff(self.ticks)
        worst = int(np.argmax(gaps))
        return round(float(gaps[worst]) * 1000, 1), round(float(np.diff(self.cpu)[worst]) * 1000, 1)


class Session:
    """One viewer with the dock widget, and what it showed."""

    def __init__(self, out: Path, name: str):
        self.out, self.name = out, name
        self.seen = len(notification_manager.records)
        self.viewer = napari.Viewer(show=True, title=f"attack: {name}")
        self.viewer.window._qt_window.resize(1400, 900)
        _, self.widget = self.viewer.window.add_plugin_dock_widget(PLUGIN, "Spectral segmentation")
        until(lambda: self.widget._engine.state == "idle", 60)
        pump(0.3)

    def add_image(self, image, **kwargs):
        layer = self.viewer.add_image(image, **kwargs)
        pump(0.2)
        choose(self.widget.image, layer.name)
        return layer

    def run(self, timeout: float = 120.0) -> bool:
        click(self.widget.run)
        return until(lambda: not self.widget.running, timeout)

    def notifications(self) -> list[str]:
        return [str(n.message) for n in notification_manager.records[self.seen :]]

    def shot(self, suffix: str = "") -> str:
        pump(0.4)  # the notification's slide-in
        name = f"{self.name}{suffix}.png"
        self.viewer.window._qt_window.grab().save(str(self.out / name))
        return name

    def record(self, **extra) -> dict:
        widget = self.widget
        return dict(
            attack=self.name,
            status=widget.status.value,
            tooltip=widget.status.tooltip,
            notifications=self.notifications(),
            layers=[
                f"{layer.name} ({type(layer).__name__}, {layer.data.dtype}, {layer.data.shape})"
                for layer in self.viewer.layers
            ],
            **extra,
        )

    def close(self) -> None:
        if self.widget.running and not self.widget._closed:
            self.widget.stop()
            until(lambda: not self.widget.running, 30)
        self.viewer.close()
        pump(0.2)


def circles(session, size=100):
    image, mask, _ = four_circles(size=size, seed=0)
    layer = session.add_image(image, name="circles")
    session.viewer.add_labels(mask.astype(np.uint8), name="circles mask")
    pump(0.2)
    choose(session.widget.mask, "circles mask")
    return layer


def busy_engine(session) -> bool:
    """A run that takes seconds (exact solver on 400²), the engine working on it."""
    circles(session, 400)
    choose(session.widget.eigen_solver, "arpack")
    click(session.widget.run)
    engine = session.widget._engine
    return until(lambda: engine.state == "running" and engine.started_job_at is not None, 60)


# ---------------------------------------------------------------- the attacks
def save_to_missing_folder(s: Session) -> dict:
    circles(s)
    target = s.out / "no such folder" / "params.json"

    def fill_dialog():
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, QFileDialog):
            QTimer.singleShot(50, fill_dialog)
            return
        name_field = dialog.findChild(QLineEdit)
        name_field.setText(str(target))
        QTest.keyClick(name_field, Qt.Key.Key_Return)

    QTimer.singleShot(100, fill_dialog)
    click(s.widget.save_params)  # the dialog's own event loop runs until fill_dialog accepts it
    pump(0.3)
    return s.record(shot=s.shot(), written=target.exists(), folder_made=target.parent.exists())


def cancel_frozen_engine(s: Session) -> dict:
    started = busy_engine(s)
    pid = s.widget._engine.pid
    os.kill(pid, signal.SIGSTOP)
    meter = GapMeter()
    click(s.widget.cancel)
    idle = until(lambda: not s.widget.running, 15)
    pump(1.0)
    stall = meter.longest_ms()
    shot = s.shot()
    again = s.run(120)
    return s.record(
        shot=shot,
        engine_was_running=started,
        idle_after_cancel=idle,
        longest_stall_ms=stall,
        next_run_done=again,
        next_status=s.widget.status.value,
        shot_next=s.shot("-next"),
    )


def close_during_run(s: Session) -> dict:
    started = busy_engine(s)
    engine = s.widget._engine
    pid = engine.pid
    import cProfile
    import pstats

    meter = GapMeter()
    profile = cProfile.Profile()
    began = time.perf_counter()
    profile.runcall(s.viewer.close)
    closing = round((time.perf_counter() - began) * 1000, 1)
    stats = pstats.Stats(profile).stats
    spent = {
        f"{func[0].rsplit('/', 1)[-1]}:{func[2]}": round(row[3] * 1000, 1)
        for func, row in stats.items()
        if func[2] in ("_on_destroyed", "collect", "close") or "napari_spectral_seg" in func[0] and row[3] > 0.02
    }
    pump(0.5)
    stall = meter.longest_ms()
    gone = until(lambda: not _alive(pid), 10)
    return dict(
        attack=s.name,
        engine_was_running=started,
        close_ms=closing,
        longest_stall_ms=stall,
        profiled_ms=spent,
        engine_gone=gone,
        notifications=s.notifications(),
    )


def _alive(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return done != pid


def remove_image_during_run(s: Session) -> dict:
    started = busy_engine(s)
    engine = s.widget._engine
    s.viewer.layers.selection.active = s.viewer.layers["circles"]
    removed = time.perf_counter()
    s.viewer.layers.remove("circles")  # the layer list's delete button does this
    stopped = until(lambda: not s.widget.running, 30)
    stopped_s = round(time.perf_counter() - removed, 2)
    engine_idle = until(lambda: engine.state == "idle", 30)
    return s.record(
        shot=s.shot(), engine_was_running=started, stopped=stopped, stopped_after_s=stopped_s, engine_idle=engine_idle
    )


def canvas_click(s: Session, layer, data_point) -> None:
    """A mouse press and release on the canvas over ``data_point`` of ``layer`` (the view centred on it)."""
    s.viewer.camera.center = tuple(layer.data_to_world(data_point))
    pump(0.2)
    canvas = s.viewer.window._qt_viewer.canvas.native
    centre = canvas.rect().center()
    QTest.mouseClick(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, centre)


def second_click_during_split(s: Session) -> dict:
    circles(s, 300)
    s.run()
    result = s.viewer.layers["circles spectral"]
    s.viewer.layers.selection.active = result
    choose(s.widget.click_mode, "split")
    labels = np.array(result.data)
    counts = np.bincount(labels.ravel())
    counts[0] = 0
    label = int(np.argmax(counts))
    point = np.argwhere(labels == label)[counts[label] // 2]
    s.viewer.camera.center = tuple(result.data_to_world(point))
    pump(0.3)
    canvas = s.viewer.window._qt_viewer.canvas.native
    for _ in range(2):  # the second before the first is back
        QTest.mouseClick(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, canvas.rect().center())
    shot_during = s.shot("-during")
    status_during = s.widget.status.value
    until(lambda: not s.widget._clicks.busy, 60)
    pump(0.3)
    return s.record(
        shot_during=shot_during,
        status_during=status_during,
        shot=s.shot(),
        labels_before=int(labels.max()),
        labels_after=int(result.data.max()),
    )


def empty_mask_message(s: Session) -> dict:
    """Otsu unticked and a threshold above the image: nothing to segment."""
    s.add_image(four_circles(size=100, seed=0)[0], name="circles")
    click(s.widget.auto_threshold)
    type_into(s.widget.threshold, "50")
    s.run()
    return s.record(shot=s.shot(), threshold=s.widget.threshold.value)


def too_many_segments(s: Session) -> dict:
    circles(s)
    type_into(s.widget.n_clusters, "99999")  # above the field's maximum
    typed = s.widget.n_clusters.value
    s.run()
    return s.record(shot=s.shot(), field_value=typed)


def memory_refusal_auto_solver(s: Session) -> dict:
    """The whole of a 300² image (no threshold) in 5000 segments, the solver left on auto."""
    s.add_image(four_circles(size=300, seed=0)[0], name="circles")
    click(s.widget.auto_threshold)
    type_into(s.widget.threshold, "-100")
    type_into(s.widget.n_clusters, "5000")
    s.run()
    shot = s.shot()
    from napari._qt.dialogs.qt_notification import NapariQtNotification

    toasts = [
        w
        for w in QApplication.topLevelWidgets() + s.viewer.window._qt_window.findChildren(NapariQtNotification)
        if isinstance(w, NapariQtNotification)
    ]
    if toasts:
        toasts[-1].expand_button.click()
        pump(0.5)
    return s.record(shot=shot, shot_expanded=s.shot("-expanded"), solver_field=s.widget.eigen_solver.value)


def negative_sigma(s: Session) -> dict:
    circles(s)
    click(s.widget.auto_sigma)
    type_into(s.widget.sigma, "-3")
    typed = s.widget.sigma.value
    s.run()
    return s.record(shot=s.shot(), field_value=typed)


def nan_image(s: Session) -> dict:
    image = four_circles(size=100, seed=0)[0].copy()
    image[40:50, 40:50] = np.nan
    s.add_image(image, name="nan")
    s.run()
    return s.record(shot=s.shot())


def int64_labels_mask(s: Session) -> dict:
    image, mask, _ = four_circles(size=100, seed=0)
    s.add_image(image, name="circles")
    s.viewer.add_labels(mask.astype(np.int64) * (2**40), name="int64 mask")
    pump(0.2)
    choose(s.widget.mask, "int64 mask")
    s.run()
    return s.record(shot=s.shot())


def two_pixel_image(s: Session) -> dict:
    s.add_image(np.array([[0.0, 1.0]]), name="two pixels")
    s.run()
    return s.record(shot=s.shot())


def rgb_layer(s: Session) -> dict:
    image = four_circles(size=100, seed=0)[0]
    rgb = np.stack([image, image * 0.5, 1 - image], axis=-1)
    rgb = np.clip((rgb - rgb.min()) / np.ptp(rgb) * 255, 0, 255).astype(np.uint8)
    layer = s.add_image(rgb, name="rgb", rgb=True)
    s.run()
    result = s.viewer.layers["rgb spectral"] if "rgb spectral" in s.viewer.layers else None
    return s.record(
        shot=s.shot(),
        rgb=layer.rgb,
        dims=s.widget.dims.value,
        result_shape=None if result is None else result.data.shape,
    )


def movie_all_frames(s: Session) -> dict:
    frames = np.stack([four_circles(size=80, seed=k)[0] * (1 + k) for k in range(3)])
    s.add_image(frames, name="movie", axis_labels=("t", "y", "x"))
    dims, frames_enabled = s.widget.dims.value, s.widget.frames.enabled
    choose(s.widget.frames, "all frames")
    s.run()
    layer = s.viewer.layers["movie spectral"]
    recorded = layer.metadata["spectral_seg"]
    per_frame = recorded.get("per_frame", {})
    return s.record(
        shot=s.shot(),
        dims=dims,
        frames_enabled=frames_enabled,
        per_frame_keys=list(per_frame),
        n_segments=recorded["n_segments"],
        per_frame_counts=[r["n_segments"] for r in per_frame.values()],
        threshold_used=recorded["threshold_used"],
        max_per_frame=[int(f.max()) for f in layer.data],
    )


def undo_after_two_runs(s: Session) -> dict:
    circles(s)
    s.run()
    result = s.viewer.layers["circles spectral"]
    first = np.array(result.data)
    type_into(s.widget.n_clusters, "2")
    s.run()
    second = np.array(result.data)
    s.viewer.layers.selection.active = result
    canvas = s.viewer.window._qt_viewer.canvas.native
    canvas.setFocus()
    QTest.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    pump(0.3)
    after_one = np.array(result.data)
    QTest.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    pump(0.3)
    after_two = np.array(result.data)
    return s.record(
        shot=s.shot(),
        first_max=int(first.max()),
        second_max=int(second.max()),
        undo_once_is_first=bool(np.array_equal(after_one, first)),
        undo_twice_max=int(after_two.max()),
        metadata_n_clusters_after_undo=result.metadata["spectral_seg"].get("n_clusters"),
    )


ATTACKS = {
    "save_missing_folder": save_to_missing_folder,
    "cancel_frozen_engine": cancel_frozen_engine,
    "close_during_run": close_during_run,
    "remove_image_during_run": remove_image_during_run,
    "second_split_click": second_click_during_split,
    "empty_mask_message": empty_mask_message,
    "too_many_segments": too_many_segments,
    "memory_refusal_auto_solver": memory_refusal_auto_solver,
    "negative_sigma": negative_sigma,
    "nan_image": nan_image,
    "int64_labels_mask": int64_labels_mask,
    "two_pixel_image": two_pixel_image,
    "rgb_layer": rgb_layer,
    "movie_all_frames": movie_all_frames,
    "undo_after_two_runs": undo_after_two_runs,
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/gui_attacks"))
    parser.add_argument("--only", nargs="*", help="attacks to run (default: all)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.only or ATTACKS:
        session = Session(args.out, name)
        try:
            rows.append(ATTACKS[name](session))
        except Exception as exc:  # the next attack still runs
            rows.append(dict(attack=name, error=f"{type(exc).__name__}: {exc}", trace=traceback.format_exc()))
        finally:
            if not session.widget._closed:
                session.close()
        print(json.dumps(rows[-1], indent=1, default=str), flush=True)
    path = args.out / "gui_attacks.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    previous.update({row["attack"]: row for row in rows})
    path.write_text(json.dumps(previous, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
