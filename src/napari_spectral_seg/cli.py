"""Command line: ``napari-spectral-seg demo``, ``segment`` and ``batch``.

The segmentation flags of ``segment`` and ``batch`` are built from
:meth:`SegmentationParams.specs() <napari_spectral_seg.core.params.SegmentationParams.specs>`
(:mod:`.cli_flags`): one flag per parameter that declares one, with its help
and its default (the same as the library's and the widget's). With ``--mask`` the default threshold
(``auto``) is none, like in the widget.

``segment`` takes ``--spatial-ndim`` and ``--channel-axis`` besides the
parameters' flags (``channel_axis`` has no flag of its own: ``batch`` reads it
from a parameter file): an image with more axes than a frame is a stack,
segmented frame by frame, and an RGB(A) TIFF or a colour PNG/JPEG uses its
channels unless ``--channel-axis`` says otherwise.

Errors are one line on stderr and a non-zero exit code, never a traceback;
so is Ctrl-C, and SIGTERM, which removes temporary files like Ctrl-C does
(exit code 143). Output that the console cannot encode (a non-ASCII path on
an ASCII terminal) is printed with backslash escapes. Nothing imports this
module: it is the entry point.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import signal
import sys
import time
import warnings

from .batch import BatchError, BatchInterrupted, load_parameters, resolve_parameters, run_batch
from .batch.lock import output_file_lock
from .batch.recipe import frame_ndim
from .batch.task import segmentation_steps
from .cli_flags import OneLineParser, add_segmentation_arguments, given_flags, segment_parameters
from .core.frames import iter_segment_frames
from .core.params import SegmentationParams, check_random_state
from .core.progress import run_to_end
from .core.warm import prepare
from .flag_words import for_command_line
from .io import (
    InputError,
    check_output_path,
    check_written_by_us,
    is_inside,
    read_image,
    read_voxel_size,
    same_file,
    spacing_and_voxel_size,
    write_labels,
)
from .tables import check_table_path, check_table_written_by_us, write_measurements

PROG = "napari-spectral-seg"
# Tool defaults that change when a mask is given: the mask is the region to
# segment, so no threshold is applied unless one is asked for (as in the widget).
# The exit code of a run stopped by SIGTERM (128 + 15), as a shell reports it.
TERMINATED = 143


class CliError(Exception):
    """A user error: printed as one line, exit code 2."""


# ---------------------------------------------------------------- commands
def cmd_segment(args) -> int:
    if args.block_size is not None or str(args.output).lower().endswith(".zarr"):
        return _segment_blockwise(args)
    for flag, value in (("--workers", args.workers), ("--scheduler", args.scheduler), ("--level", args.level)):
        if value is not None:
            raise CliError(f"{flag} applies to a blockwise run only: pass --block-size N and -o OUTPUT.zarr.")
    check_output_path(args.output)  # before the work, not after
    if args.measure:
        check_table_path(args.measure)
    _refuse_to_replace_an_input(args)
    if not args.overwrite:  # a re-run replaces our own output; another's file only when asked to
        check_written_by_us(args.output, "another -o")
        if args.measure:
            check_table_written_by_us(args.measure, "another --measure file")
    with output_file_lock(args.output):  # a second run writing this -o at once is refused, not silently replaced
        return _segment_in_memory(args)


def _segment_in_memory(args) -> int:
    prepare()  # what the first segmentation of a process would pay (core/warm.py)
    image, channel_axis = read_image(args.input)
    if args.channel_axis is not None:
        channel_axis = args.channel_axis
    mask = read_image(args.mask)[0] if args.mask else None
    try:
        params = segment_parameters(args, has_mask=mask is not None, channel_axis=channel_axis)
        params, spatial_ndim, voxel = _with_voxel_size(args, params, image.ndim - (channel_axis is not None))
        if channel_axis is not None and not -image.ndim <= channel_axis < image.ndim:
            raise ValueError(f"--channel-axis {channel_axis} is out of range for an image of shape {image.shape}.")
        n_leading = image.ndim - (channel_axis is not None) - spatial_ndim
        if n_leading < 0:
            n_axes = image.ndim - (channel_axis is not None)
            fix = "pass --spatial-ndim 2" if n_axes == 2 else "segment takes 2D and 3D images"
            raise ValueError(
                f"{args.input}: image of shape {image.shape} has {n_axes} axes "
                f"besides channels, fewer than --spatial-ndim {spatial_ndim}; {fix}."
            )
        if n_leading:
            labels, parameters, seconds = _segment_stack(image, mask, params, spatial_ndim)
        else:
            result = run_to_end(segmentation_steps(image, mask, params))
            labels, parameters, seconds = result.labels, result.parameters, result.seconds
    except (ValueError, TypeError, MemoryError) as exc:
        raise CliError(for_command_line(str(exc))) from exc
    parameters = dict(parameters, input=str(args.input), seconds=seconds)
    if voxel is not None:
        parameters["voxel_size"] = voxel.record()
    write_labels(args.output, labels, parameters, voxel_size=voxel)
    frames = f"{parameters['frames']} frames, " if n_leading else ""
    print(
        f"{args.output}: {frames}{int(parameters.get('n_segments') or labels.max())} segments, "
        f"{seconds['total']:.2f} s (seed {parameters['random_state']})"
    )
    if args.measure:
        n_objects = write_measurements(args.measure, labels, image, params, spatial_ndim)
        print(f"{args.measure}: measurements of {n_objects} objects")
    return 0


def _segment_blockwise(args) -> int:
    """``segment INPUT -o OUT.zarr --block-size N``: blockwise on a dask cluster (napari_spectral_seg.blockwise)."""
    _require(("distributed", "zarr", "ome_zarr"), "batch", "blockwise segmentation")
    from .blockwise import BlockwiseError, SourceError, segment_blockwise

    if args.mask:
        raise CliError("--mask is not supported with --block-size; pass a threshold (--threshold otsu or a number).")
    if args.channel_axis is not None:
        raise CliError("--channel-axis is not supported with --block-size: write one channel as an image of its own.")
    if args.workers is not None and args.workers < 1:
        raise CliError(f"--workers {args.workers}: need at least 1.")
    # -o the input itself adds labels/NAME to an OME-Zarr image (blockwise.into), or is refused there.
    try:
        params = segment_parameters(args, has_mask=False, channel_axis=None)
        summary = segment_blockwise(
            args.input,
            args.output,
            block_size=1024 if args.block_size is None else args.block_size,
            params=params,
            workers=args.workers,
            scheduler=args.scheduler,
            level=args.level or 0,
            name=args.labels_name,
            overlap=args.overlap,
            overwrite=args.overwrite,
            progress=_block_progress if sys.stderr.isatty() else None,
            report=_report,
        )
    except KeyboardInterrupt as exc:  # its message, if any, says the labels were complete
        message = str(exc) or "interrupted; finished blocks are kept: run the same command again to resume."
        raise BatchInterrupted(message) from None
    except (BlockwiseError, SourceError, ValueError, TypeError) as exc:
        raise CliError(str(exc)) from exc
    print(
        f"{summary['labels']}: {summary['n_labels']} segments, {summary['blocks']} blocks "
        f"({summary['skipped_blocks']} without foreground, {summary['resumed_blocks']} done before), "
        f"{summary['seconds']:.1f} s (seed {summary['parameters']['random_state']})"
    )
    from .blockwise.notes import dim_cut_notes

    for note in dim_cut_notes(summary, "a larger --block-size"):
        print(f"note: {note.text}", file=sys.stderr)
    return 0


def _report(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _block_progress(done: int, total: int) -> None:
    print(f"\r{done} of {total} blocks segmented", end="\n" if done == total else "", file=sys.stderr, flush=True)


def _require(modules, extra: str, what: str) -> None:
    """Refuse a command whose optional packages are not installed, naming the extra that brings them."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise CliError(
            f"{what} needs {', '.join(missing)}, not installed here; "
            f"install it with: pip install 'napari-spectral-seg[{extra}]'"
        )


def _refuse_to_replace_an_input(args) -> None:
    """``-o`` must not be the image or the mask, under any spelling (symlink, hard link, ``./``), nor inside one."""
    for what, path in (("the input image", args.input), ("the --mask file", args.mask)):
        if path and same_file(args.output, path):
            raise CliError(
                f"-o {args.output} is {what} ({path}); writing the labels there would replace it: pass another -o file."
            )
        if path and is_inside(args.output, path):
            raise CliError(f"-o {args.output} is inside {what} ({path}): pass an -o outside it.")


def _with_voxel_size(args, params: SegmentationParams, n_axes: int):
    """The input's voxel size as ``spacing`` (unless ``--spacing`` is given), the frame size, and the voxel size to write.

    A TIFF with a z step (ImageJ ``spacing``, OME ``PhysicalSizeZ``) of three
    or more axes is a volume unless ``--spatial-ndim`` says otherwise; the
    output carries the sizes used (``--spacing``'s, in the file's unit).
    """
    voxel = read_voxel_size(args.input)
    given = args.spatial_ndim
    if given is None and params.spacing is None and voxel is not None and voxel.has_z and n_axes >= 3:
        given = 3
    spatial_ndim = frame_ndim(given, params.spacing)
    spacing, voxel = spacing_and_voxel_size(voxel, params.spacing, spatial_ndim)
    return params.replace(spacing=spacing), spatial_ndim, voxel


def _segment_stack(image, mask, params: SegmentationParams, spatial_ndim: int):
    """Every frame of a stack on its own (core.frames): the labels and the parameters recorded with them."""
    seed = check_random_state(params.random_state)
    kwargs = {k: v for k, v in params.as_kwargs().items() if k not in ("channel_axis", "random_state")}
    started = time.perf_counter()
    steps = iter_segment_frames(
        image, mask, spatial_ndim=spatial_ndim, channel_axis=params.channel_axis, random_state=seed, **kwargs
    )
    labels = run_to_end(steps)
    frames = labels.reshape((-1,) + labels.shape[labels.ndim - spatial_ndim :])
    parameters = dict(
        params.record(random_state=seed),
        spatial_ndim=spatial_ndim,
        threshold_used=None,  # each frame had its own
        frames=len(frames),
        n_segments=int(sum(int(frame.max()) for frame in frames)),
    )
    return labels, parameters, {"total": time.perf_counter() - started}


def cmd_batch(args) -> int:
    """Run ``napari-spectral-seg batch``; returns the exit code."""
    _require(("distributed", "zarr", "tqdm"), "batch", "batch")
    if args.workers is not None and args.workers < 1:
        raise CliError(f"--workers {args.workers}: need at least 1.")
    file_params = load_parameters(args.params) if args.params else {}
    # Merged here, not as resolve_parameters' flags (where None is "not given"): a flag
    # given as "none" (--threshold none) is None and must override the file and the default.
    flags = given_flags(args)
    frames = {"spatial_ndim": args.spatial_ndim}
    try:
        params, spatial_ndim = resolve_parameters({**file_params, **flags}, frames)
    except (ValueError, TypeError) as exc:
        raise CliError(_blame(args.params, flags, frames, exc)) from exc
    code, _ = run_batch(
        args.inputs,
        args.out,
        params,
        spatial_ndim,
        scheduler=args.scheduler,
        workers=args.workers,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    return code


def _blame(params_file, flags: dict, frames: dict, exc: Exception) -> str:
    """A parameter error, naming the parameter file when its values (not the flags) are the cause."""
    if params_file:
        try:
            resolve_parameters(flags, frames)
        except (ValueError, TypeError):
            return str(exc)  # the flags alone are wrong
        return f"{params_file}: {exc}"
    return str(exc)


def cmd_demo(args) -> int:
    if args.overwrite and not args.headless:
        raise CliError("--overwrite applies to --headless OUT only; pass --headless OUT.tif --overwrite, or drop it.")
    if args.headless:
        check_output_path(args.headless)  # before the work, as segment -o
        if not args.overwrite:
            check_written_by_us(args.headless, "another OUT file")
        return _demo_headless(args.headless)
    return _demo_gui(args.screenshot)


def _demo_headless(output) -> int:
    from sklearn.metrics import adjusted_rand_score

    from .core import iter_segment
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
    _require(("napari", "magicgui", "qtpy"), "all", "the demo window")
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


# ---------------------------------------------------------------- parser
def _add_demo(sub) -> None:
    demo = sub.add_parser("demo", help="open napari with the sample image and the widget docked")
    group = demo.add_mutually_exclusive_group()
    group.add_argument(
        "--screenshot", metavar="FILE.png", help="run the segmentation once, save a PNG of the whole window and exit"
    )
    group.add_argument(
        "--headless", metavar="OUT.tif", help="no window: segment the sample and write the labels to OUT (.tif or .npy)"
    )
    demo.add_argument(
        "--overwrite",
        action="store_true",
        help="with --headless: replace an existing OUT that napari-spectral-seg did not write (its own is replaced anyway)",
    )
    demo.set_defaults(func=cmd_demo)


def _add_segment(sub) -> None:
    seg = sub.add_parser("segment", help="segment an image file and write the labels")
    seg.add_argument(
        "input",
        help="image file (.tif, .png, .jpg, .npy): 2D, 3D, or a stack of them (see --spatial-ndim); blockwise also "
        "a zarr array or an OME-Zarr image",
    )
    seg.add_argument("-o", "--output", required=True, help="labels file to write (.tif or .npy; .zarr: blockwise)")
    seg.add_argument("--mask", help="mask file of the same shape (nonzero = segment)")
    seg.add_argument(
        "--measure",
        metavar="TABLE.csv",
        help="also write a table of every object (size in units of --spacing, centroid, intensity, "
        "bounding box; a frame column for stacks) as CSV",
    )
    seg.add_argument(
        "--spatial-ndim",
        type=int,
        choices=(2, 3),
        default=None,
        help="axes of one frame; leading axes beyond are a stack, segmented frame by frame "
        "(default: len(spacing), else 2)",
    )
    seg.add_argument(
        "--channel-axis",
        type=int,
        default=None,
        metavar="N",
        help="axis of the image holding channels (default: the colour axis of an RGB TIFF or a colour PNG/JPEG, "
        "else none)",
    )
    add_segmentation_arguments(seg, with_mask=True)
    blockwise = seg.add_argument_group(
        "blockwise (images larger than memory; -o OUTPUT.zarr, an OME-Zarr labels image at OUTPUT.zarr/labels/spectral)"
    )
    blockwise.add_argument(
        "--block-size",
        type=int,
        default=None,
        metavar="N",
        help="pixels per axis of a block (default 1024 for a .zarr -o)",
    )
    blockwise.add_argument(
        "--overlap",
        type=int,
        default=None,
        metavar="PX",
        help="pixels read around each block (default: six typical object sides (square roots of the typical area) plus the smoothing's reach)",
    )
    blockwise.add_argument(
        "--level", type=int, default=None, metavar="L", help="OME-Zarr input: resolution level (default 0)"
    )
    blockwise.add_argument(
        "--scheduler", metavar="ADDRESS", help="submit to a running dask scheduler, e.g. tcp://host:8786"
    )
    blockwise.add_argument(
        "--workers", type=int, default=None, help="without --scheduler: local worker processes (default: CPU count)"
    )
    blockwise.add_argument(
        "--labels-name",
        default="spectral",
        metavar="NAME",
        help="the labels image's name, OUTPUT.zarr/labels/NAME (default spectral); -o the OME-Zarr input itself "
        "writes IMAGE.zarr/labels/NAME beside its image",
    )
    blockwise.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing -o that napari-spectral-seg did not write (without it, refused; its own .tif or "
        ".npy is replaced anyway), or an existing OUTPUT.zarr (or the input's labels/NAME)",
    )
    seg.set_defaults(func=cmd_segment)


def _add_batch(sub) -> None:
    batch = sub.add_parser("batch", help="segment many images and time-series frames on a dask cluster")
    batch.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="image files or glob patterns (.tif, .png, .jpg, .npy, .zarr); quote globs",
    )
    batch.add_argument(
        "--out", required=True, metavar="DIR", help="output directory: DIR/<stem>_labels.tif (or .zarr for zarr inputs)"
    )
    batch.add_argument(
        "--params", metavar="FILE", help="JSON/YAML parameter file (as the widget saves it); flags override it"
    )
    batch.add_argument(
        "--spatial-ndim",
        type=int,
        choices=(2, 3),
        default=None,
        help="axes of one frame; leading axes beyond are a time series (default: len(spacing), else 2)",
    )
    add_segmentation_arguments(batch, with_mask=False)
    batch.add_argument(
        "--scheduler", metavar="ADDRESS", help="submit to a running dask scheduler, e.g. tcp://host:8786"
    )
    batch.add_argument(
        "--workers", type=int, default=None, help="without --scheduler: local worker processes (default: CPU count)"
    )
    batch.add_argument("--overwrite", action="store_true", help="redo inputs whose output is complete")
    batch.add_argument("--no-progress", action="store_true", help="no progress bar")
    batch.set_defaults(func=cmd_batch)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description="Spectral-clustering segmentation of images.")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_demo(sub)
    _add_segment(sub)
    _add_batch(sub)
    return parser


def _safe_console() -> None:
    """Print what the console cannot encode with backslash escapes rather than fail after the work is done.

    A warning is one line naming the command, in the flags' words, not
    Python's file, line and source.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError, OSError):
            stream.reconfigure(errors="backslashreplace")

    shown = set()  # a stack's frames warn one after the other: each message once

    def show(message, category, filename, lineno, file=None, line=None):
        if str(message) not in shown:
            shown.add(str(message))
            print(f"{PROG}: warning: {for_command_line(str(message))}", file=file or sys.stderr)

    warnings.showwarning = show


@contextlib.contextmanager
def _sigterm_interrupts(enabled: bool = True):
    """SIGTERM raises KeyboardInterrupt in the main thread, so cleanup (``finally``) runs as for Ctrl-C.

    Yields a dict whose ``"terminated"`` says whether it happened. A second
    SIGTERM is ignored, so that the cleanup is not cut short. Not
    ``enabled`` (napari's window, whose Qt event loop would hold the
    signal back): SIGTERM keeps its default, ending the process.
    """
    state = {"terminated": False}
    if not enabled:
        yield state
        return

    def interrupt(signum, frame):
        state["terminated"] = True
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        previous = None
    try:
        yield state
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def main(argv=None) -> int:
    """Entry point of the ``napari-spectral-seg`` command."""
    _safe_console()
    args = build_parser().parse_args(argv)
    gui = args.command == "demo" and not args.headless
    with _sigterm_interrupts(enabled=not gui) as state:
        try:
            return args.func(args)
        except (CliError, InputError, BatchError) as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return 2
        except BatchInterrupted as exc:
            print(f"{PROG}: {_stopped(exc, state)}", file=sys.stderr)
            return _interrupted_exit(TERMINATED if state["terminated"] else 130)
        except KeyboardInterrupt:
            print(f"{PROG}: {_stopped('interrupted; no output written.', state)}", file=sys.stderr)
            return _interrupted_exit(TERMINATED if state["terminated"] else 130)


def _interrupted_exit(code: int) -> int:
    """``code``; at once, without the interpreter's shutdown, while an interrupted native step still runs.

    A native call (an eigen-solve in its helper thread) cannot be stopped,
    and finalising the interpreter under it can crash the process; the
    output was already removed, so nothing is lost by skipping the shutdown.
    """
    from .core.progress import steps_running

    if steps_running():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _stopped(message, state: dict) -> str:
    text = str(message)
    return text.replace("interrupted", "terminated (SIGTERM)", 1) if state["terminated"] else text


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
