"""Reading images: whole, or one frame of a series; RGB(A) TIFFs, colour PNG/JPEG and the C axis of ImageJ and OME TIFFs as channels."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .common import InputError, first_line, tiff_warnings_off, why_missing

__all__ = [
    "INPUT_SUFFIXES",
    "READ_SUFFIXES",
    "check_not_special",
    "input_kind",
    "probe",
    "read_frame",
    "read_image",
    "tiff_channel_axis",
    "tiff_colour_axis",
]

READ_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".npy")
# What a frame reader does with each input suffix (``batch`` also reads zarr arrays).
_KIND = {".tif": "tif", ".tiff": "tif", ".png": "png", ".jpg": "png", ".jpeg": "png", ".npy": "npy", ".zarr": "zarr"}
INPUT_SUFFIXES = tuple(_KIND)


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
        The colour axis (alpha dropped) of a colour PNG/JPEG (-1) or an
        RGB(A) TIFF, or the channel axis (C) an ImageJ hyperstack or an
        OME-TIFF names (see :func:`tiff_channel_axis`), else None.

    Raises
    ------
    InputError
        Unsupported suffix, no such file, or the reader fails.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in READ_SUFFIXES:
        raise InputError(f"{path}: unsupported file type '{suffix}'; use one of {', '.join(READ_SUFFIXES)}.")
    if not path.exists():
        raise InputError(f"{path}: {why_missing(path)}.")
    check_not_special(path)
    try:
        channel_axis = colour = None
        if suffix == ".npy":
            image = np.load(path, allow_pickle=False)
        elif suffix in (".tif", ".tiff"):
            import tifffile

            with tiff_warnings_off(), tifffile.TiffFile(path) as tif:
                image, channel_axis, colour = tif.asarray(), tiff_channel_axis(tif), tiff_colour_axis(tif)
        else:
            import imageio.v3 as iio

            image = iio.imread(path)
            channel_axis = colour = -1 if image.ndim == 3 else None
    except IsADirectoryError as exc:
        raise InputError(f"{path}: is a folder, not an image file; pass a file (batch takes folders).") from exc
    except ValueError as exc:
        if suffix == ".npy" and "allow_pickle" in str(exc):
            # Loading Python objects would run code from the file: never done.
            raise InputError(
                f"{path}: holds Python objects, not numbers (an object array); save the image as a numeric "
                "array, e.g. np.save(path, image.astype(np.float32))."
            ) from exc
        raise InputError(f"{path}: cannot read it as an image ({type(exc).__name__}: {first_line(exc)}).") from exc
    except Exception as exc:  # any reader failure is a bad file for the user
        raise InputError(f"{path}: cannot read it as an image ({type(exc).__name__}: {first_line(exc)}).") from exc
    image = np.asarray(image)
    return (image if colour is None else _without_alpha(image, colour)), channel_axis


def check_not_special(path: str | os.PathLike) -> None:
    """Refuse a path that is neither a file nor a folder (a named pipe, a device): reading it may never end.

    Raises
    ------
    InputError
        ``path`` (or what its symlink points to) is a FIFO, socket or device.
    """
    path = Path(path)
    if path.exists() and not path.is_file() and not path.is_dir():
        raise InputError(f"{path}: is not a regular file (a named pipe or a device); pass an image file.")


def tiff_colour_axis(tif) -> int | None:
    """The colour axis of an RGB(A) TIFF, counted from the end (-1, or -3 for planar RGB); None for grey.

    Colour is photometric RGB with its samples last (the usual RGB TIFF),
    photometric RGB in separate planes for 8- and 16-bit integers, or uint8
    data whose last axis holds 3 or 4 values (RGB or RGBA without the tag).
    A float stack of 3 or 4 frames that tifffile stored as planar "RGB" by
    default is not colour.
    """
    import tifffile

    series = tif.series[0]
    axes, shape, dtype = series.axes, series.shape, series.dtype
    if series.keyframe.photometric == tifffile.PHOTOMETRIC.RGB and "S" in axes:
        if axes.endswith("S") or dtype in (np.uint8, np.uint16):
            return axes.index("S") - len(axes)
    if len(shape) >= 3 and shape[-1] in (3, 4) and dtype == np.uint8:
        return -1
    return None


def tiff_channel_axis(tif) -> int | None:
    """The axis of a TIFF holding channels, counted from the end: its colour axis, else the C axis its metadata names.

    An ImageJ hyperstack or an OME-TIFF names its axes (e.g. ``TZCYX``); a
    fluorescence channel axis C is then segmented as channels, as the
    colour of an RGB TIFF is (:func:`tiff_colour_axis`), never as frames.
    """
    colour = tiff_colour_axis(tif)
    if colour is not None:
        return colour
    axes = tif.series[0].axes
    if (tif.is_imagej or tif.is_ome) and "C" in axes:
        return axes.index("C") - len(axes)
    return None


def _without_alpha(image: np.ndarray, channel_axis: int) -> np.ndarray:
    """The first three channels (RGB) of a colour image: alpha and any extra samples dropped."""
    if image.shape[channel_axis] <= 3:
        return image
    return np.take(image, [0, 1, 2], axis=channel_axis)


def input_kind(path: str | os.PathLike) -> str:
    """How frames are read from ``path``: "tif", "png" (also JPEG), "npy" or "zarr".

    Raises
    ------
    InputError
        The suffix is not one of ``INPUT_SUFFIXES``.
    """
    path = Path(path)
    kind = _KIND.get(path.suffix.lower())
    if kind is None:
        raise InputError(f"{path}: unsupported file type '{path.suffix}'; use one of {', '.join(INPUT_SUFFIXES)}.")
    return kind


def _open_zarr_array(path):
    """The zarr array at ``path``; a group (an OME-Zarr) is refused naming the arrays it holds."""
    import zarr

    try:
        return zarr.open_array(str(path), mode="r")
    except Exception as exc:
        try:
            group = zarr.open_group(str(path), mode="r")
        except Exception:
            raise exc from None
    arrays = sorted(name for name, _ in group.arrays())
    levels = [d.get("path") for m in group.attrs.get("multiscales", []) for d in m.get("datasets", [])]
    missing = [level for level in levels if level not in arrays]
    gap = f" (its multiscale level(s) {', '.join(map(str, missing))} are missing)" if missing else ""
    hint = f"pass one of its arrays, e.g. {Path(path) / arrays[0]}" if arrays else "it holds no array"
    raise InputError(f"{path}: is a zarr group (e.g. an OME-Zarr), not an array{gap}; {hint}.")


def probe(path: str | os.PathLike, kind: str) -> tuple[tuple[int, ...], int | None]:
    """Shape of an input and its reader's channel axis, reading only its header."""
    if kind == "npy":
        return tuple(np.load(path, mmap_mode="r", allow_pickle=False).shape), None
    if kind == "tif":
        import tifffile

        with tiff_warnings_off(), tifffile.TiffFile(path) as tif:
            shape, channel_axis, colour = list(tif.series[0].shape), tiff_channel_axis(tif), tiff_colour_axis(tif)
        if colour is not None:  # alpha is dropped, as read_image does
            shape[colour] = min(shape[colour], 3)
        return tuple(shape), channel_axis
    if kind == "zarr":
        return tuple(_open_zarr_array(path).shape), None
    import imageio.v3 as iio

    shape = tuple(iio.improps(path).shape)
    if len(shape) == 3:  # colour: alpha is dropped, as read_image does
        return shape[:2] + (min(shape[2], 3),), -1
    return shape, None


def read_frame(path: str, kind: str, index: tuple[int, ...]) -> np.ndarray:
    """Read one frame of an input, touching as little of the file as the format allows.

    ``.npy`` and uncompressed ``.tif`` are memory-mapped, ``.zarr`` reads
    only the chunks of the frame; compressed TIFFs are read whole (tifffile
    cannot address one frame of them cheaply); PNG/JPEG are one frame. The
    alpha channel of an RGBA file is dropped, as :func:`read_image` does.
    """
    if kind == "zarr":
        array = _open_zarr_array(path)
        return np.asarray(array[index] if index else array[...])
    if kind == "npy":
        return np.array(np.load(path, mmap_mode="r", allow_pickle=False)[index])
    if kind == "tif":
        import tifffile

        with tiff_warnings_off():
            with tifffile.TiffFile(path) as tif:
                colour = tiff_colour_axis(tif)
            try:
                array = tifffile.memmap(path, mode="r")
            except Exception:  # compressed or tiled: no memory map, read it all
                array = tifffile.imread(path)
            frame = np.array(array[index])
        return frame if colour is None else _without_alpha(frame, colour)
    image, _ = read_image(path)
    return image
