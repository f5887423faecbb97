"""Command line: ``napari-spectral-seg demo`` and ``napari-spectral-seg segment``.

Errors are one line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from .core.params import DEFAULT_EDGE_LEVEL

PROG = "napari-spectral-seg"
READ_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".npy")
WRITE_SUFFIXES = (".tif", ".tiff", ".npy")


class CliError(Exception):
    """A user error: printed as one line, exit code 2."""


# ---------------------------------------------------------------- files
def read_image(path: str | os.PathLike) -> tuple[np.ndarray, int | None]:
    """Read an image file.

    Parameters
    ----------
    path : path-like
        ``.tif``/``.tiff``, ``.png``/``.jpg`` or ``.npy``.

    Returns
    -------
    image : ndarray
    channel_axis : int or None
        -1 for colour PNG/JPEG (alpha dropped), else None.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in READ_SUFFIXES:
        raise CliError(f"{path}: unsupported file type '{suffix}'; use one of {', '.join(READ_SUFFIXES)}.")
    if not path.exists():
        raise CliError(f"{path}: no such file.")
    try:
        if suffix == ".npy":
            image = np.load(path, allow_pickle=False)
        elif suffix in (".tif", ".tiff"):
            import tifffile

            image = tifffile.imread(path)
        else:
            import imageio.v3 as iio

            image = iio.imread(path)
    except Exception as exc:  # any reader failure is a bad file for the user
        raise CliError(f"{path}: cannot read it as an image ({type(exc).__name__}: {exc}).") from exc
    channel_axis = None
    if suffix in (".png", ".jpg", ".jpeg") and image.ndim == 3:
        image = image[..., :3]
        channel_axis = -1
    return np.asarray(image), channel_axis


def check_output_path(path: str | os.PathLike) -> Path:
    """Refuse an output path that cannot be written, before any work is done."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITE_SUFFIXES:
        raise CliError(f"{path}: cannot write '{suffix}'; the output must end in .tif or .npy.")
    if not path.parent.is_dir():
        raise CliError(f"{path.parent}: output directory does not exist; create it first.")
    if not os.access(path.parent, os.W_OK):
        raise CliError(f"{path.parent}: output directory is not writable.")
    return path


def write_labels(path: str | os.PathLike, labels: np.ndarray, parameters: dict) -> None:
    """Write labels atomically (temporary file, then rename) with the parameters.

    ``.tif`` files carry the parameters as JSON in the image description;
    ``.npy`` files get a sidecar ``<name>.json``. A failed or interrupted
    write leaves no file behind.
    """
    path = check_output_path(path)
    suffix = path.suffix.lower()
    text = json.dumps(parameters, default=str)
    tmp = path.with_name(f".{path.name}.partial{suffix}")
    try:
        if suffix == ".npy":
            np.save(tmp, labels)
        else:
            import tifffile

            tifffile.imwrite(tmp, labels, description=text, metadata=None)
        os.replace(tmp, path)
        if suffix == ".npy":
            path.with_name(path.name + ".json").write_text(text)
    except OSError as exc:
        raise CliError(f"{path}: cannot write it ({exc.strerror or exc}).") from exc
    finally:
        if tmp.exists():
            tmp.unlink()


# ---------------------------------------------------------------- commands
def _threshold(text: str):
    if text.lower() == "otsu":
        return "otsu"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is neither a number nor 'otsu'") from None


def _n_clusters(text: str):
    if text.lower() == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is neither a whole number nor 'auto'") from None


def _sigma(text: str):
    values = _spacing(text)
    return values[0] if len(values) == 1 else values


# Defaults of `segment`'s flags (those of segment()); batch passes None for
# "not given", so a --params file can fill them in.
SEGMENT_DEFAULTS = dict(
    threshold=None,
    n_clusters=4,
    beta=1.0,
    eigen_solver="auto",
    min_size=0,
    spacing=None,
    sigma=None,
    sensitivity=None,
    edge_level=DEFAULT_EDGE_LEVEL,
    seed=0,
)


def add_segmentation_arguments(parser: argparse.ArgumentParser, defaults: dict) -> None:
    """The segmentation flags shared by ``segment`` and ``batch``."""
    d = defaults
    parser.add_argument(
        "--threshold",
        type=_threshold,
        default=d["threshold"],
        help="segment pixels above VALUE, or 'otsu'; default: the whole image (or the mask)",
    )
    parser.add_argument(
        "--n-clusters",
        type=_n_clusters,
        default=d["n_clusters"],
        help="number of segments, or 'auto' to decide per object (default 4)",
    )
    parser.add_argument("--beta", type=float, default=d["beta"], help="edge sensitivity (default 1, the seed example)")
    parser.add_argument("--eigen-solver", default=d["eigen_solver"], help="auto, multilevel, arpack, lobpcg or amg")
    parser.add_argument(
        "--min-size", type=int, default=d["min_size"], help="drop mask pieces smaller than this (pixels)"
    )
    parser.add_argument("--spacing", type=_spacing, default=d["spacing"], help="pixel size per axis, e.g. 4,1,1")
    parser.add_argument(
        "--sigma",
        type=_sigma,
        default=d["sigma"],
        help="Gaussian pre-smoothing in pixels (one number, or one per axis)",
    )
    parser.add_argument(
        "--sensitivity",
        type=float,
        default=d["sensitivity"],
        help="with --n-clusters auto: 0..1, larger splits more (default 0.85)",
    )
    parser.add_argument(
        "--edge-level",
        type=float,
        default=d["edge_level"],
        help="with --n-clusters auto and --threshold: draw each object's edge where its signal "
        "has fallen to this fraction of its own brightness above background, 0..<1 "
        f"(default {DEFAULT_EDGE_LEVEL}; 0 keeps the threshold's edges)",
    )
    parser.add_argument("--seed", type=int, default=d["seed"], help="random seed (default 0)")


def _spacing(text: str):
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not comma-separated numbers, e.g. 4,1,1") from None


def cmd_segment(args) -> int:
    from .core import iter_segment, run_to_end

    check_output_path(args.output)  # before the work, not after
    image, channel_axis = read_image(args.input)
    mask = None
    if args.mask:
        mask, _ = read_image(args.mask)
    steps = iter_segment(
        image,
        mask,
        threshold=args.threshold,
        n_clusters=args.n_clusters,
        beta=args.beta,
        eigen_solver=args.eigen_solver,
        random_state=args.seed,
        spacing=args.spacing,
        channel_axis=channel_axis,
        min_size=args.min_size,
        sigma=args.sigma,
        sensitivity=args.sensitivity,
        edge_level=args.edge_level,
    )
    try:
        result = run_to_end(steps)
    except (ValueError, TypeError, MemoryError) as exc:
        raise CliError(str(exc)) from exc
    parameters = dict(result.parameters, input=str(args.input), seconds=result.seconds)
    write_labels(args.output, result.labels, parameters)
    print(
        f"{args.output}: {int(result.labels.max())} segments, "
        f"{result.seconds['total']:.2f} s (seed {result.parameters['random_state']})"
    )
    return 0


def cmd_demo(args) -> int:
    if args.headless:
        return _demo_headless(args.headless)
    return _demo_gui(args.screenshot)


def _demo_headless(output) -> int:
    from sklearn.metrics import adjusted_rand_score

    from .core import iter_segment, run_to_end
    from .data import four_circles

    image, mask, truth = four_circles(seed=0)
    result = run_to_end(iter_segment(image, mask, n_clusters=4, random_state=0))
    inside = truth > 0
    ari = adjusted_rand_score(truth[inside], result.labels[inside])
    write_labels(output, result.labels, dict(result.parameters, sample="four circles", ari=ari))
    print(
        f"{output}: {int(result.labels.max())} segments of the four circles sample, "
        f"adjusted Rand index {ari:.3f} against the true circles, {result.seconds['total']:.2f} s"
    )
    return 0


def save_window_screenshot(viewer, path) -> None:
    """Save a PNG of the whole napari window, image fitted to the canvas, then close the viewer."""
    from qtpy.QtWidgets import QApplication

    for _ in range(20):  # let the canvas draw the new layers
        QApplication.processEvents()
    viewer.reset_view()  # fit the image to the canvas at its final size
    for _ in range(5):
        QApplication.processEvents()
    viewer.screenshot(str(path), canvas_only=False)
    viewer.close()


def _demo_gui(screenshot) -> int:
    import napari

    viewer = napari.Viewer(title="napari-spectral-seg demo", show=True)
    viewer.open_sample(PROG, "four_circles")
    _, widget = viewer.window.add_plugin_dock_widget(PROG, "Spectral segmentation")
    widget.image.value = viewer.layers["four circles"]
    widget.mask.value = viewer.layers["four circles mask"]
    if screenshot is None:
        napari.run()
        return 0
    viewer.window.resize(1400, 850)
    widget.start()
    widget.wait(timeout=300)
    result_name = "four circles spectral"
    if result_name not in viewer.layers:
        raise CliError(f"the demo segmentation did not produce '{result_name}' ({widget.status.value}).")
    status = widget.status.value  # read before the window (and the widget) closes
    save_window_screenshot(viewer, screenshot)
    print(f"{screenshot}: screenshot of the viewer ({status})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Spectral-clustering segmentation of images.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="open napari with the sample image and the widget docked")
    group = demo.add_mutually_exclusive_group()
    group.add_argument(
        "--screenshot", metavar="FILE.png", help="run the segmentation once, save a PNG of the whole window and exit"
    )
    group.add_argument(
        "--headless", metavar="OUT.tif", help="no window: segment the sample and write the labels to OUT (.tif or .npy)"
    )
    demo.set_defaults(func=cmd_demo)

    seg = sub.add_parser("segment", help="segment an image file and write the labels")
    seg.add_argument("input", help="image file (.tif, .png, .jpg, .npy), 2D or 3D")
    seg.add_argument("-o", "--output", required=True, help="labels file to write (.tif or .npy)")
    seg.add_argument("--mask", help="mask file of the same shape (nonzero = segment)")
    add_segmentation_arguments(seg, SEGMENT_DEFAULTS)
    seg.set_defaults(func=cmd_segment)

    from .batch import add_batch_arguments, cmd_batch  # here: batch imports this module

    batch = sub.add_parser("batch", help="segment many images and time-series frames on a dask cluster")
    add_batch_arguments(batch)
    batch.set_defaults(func=cmd_batch)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``napari-spectral-seg`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CliError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; no output written.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    # Run as ``python -m napari_spectral_seg.cli``, this file is __main__ and
    # batch imports a second copy of it, whose CliError this copy's main()
    # would not catch: use the package's module.
    from napari_spectral_seg.cli import main as package_main

    sys.exit(package_main())
