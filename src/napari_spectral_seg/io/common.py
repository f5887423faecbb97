"""What every part of the file reading and writing shares: the errors a user can fix, the metadata keys."""

from __future__ import annotations

from contextlib import contextmanager

__all__ = [
    "INPUT_IDENTITY_KEY",
    "METADATA_KEY",
    "TABLE_RECORD_KEY",
    "InputError",
    "ParameterFileError",
    "first_line",
    "tiff_warnings_off",
    "why_missing",
]

# The key the parameters are stored under: in a result layer's metadata, a
# saved parameter file and a zarr output's attributes.
METADATA_KEY = "spectral_seg"
# Where an output keeps the identity of the input it was made from (batch):
# a zarr attribute, or this private tag of a TIFF (JSON text). Not in the
# parameters, so they stay exactly what ``segment()`` records.
INPUT_IDENTITY_KEY = "spectral_seg_input"
# The record of the measurement table batch writes next to an output, kept apart from the parameters.
TABLE_RECORD_KEY = "spectral_seg_measurements"


class InputError(ValueError):
    """A file that cannot be read or written as asked; the message names it and the fix."""


class ParameterFileError(InputError):
    """A parameter file that cannot be read or is not an object of parameters."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def why_missing(path) -> str:
    """Why ``path`` cannot be opened when it does not exist: no such file, or a symbolic link to nothing."""
    import errno
    import os

    if not os.path.islink(path):
        return "no such file"
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic link that leads back to itself (a loop of links); point it at the image file"
    return f"a symbolic link to {os.readlink(path)}, which does not exist; point it at the image file"


@contextmanager
def tiff_warnings_off():
    """tifffile's log messages off while a TIFF is read: a damaged file fails with one error of ours instead.

    tifffile logs each damaged page it skips ("invalid page offset"), once
    per reader, so a batch printed the same line 16 times before its own.
    """
    import logging

    # A filter of this call's own, not the logger's level: reads that overlap
    # in threads each remove only theirs, so none leaves the logger silenced.
    quiet = logging.Filter()
    quiet.filter = lambda record: record.levelno >= logging.CRITICAL  # it logs damaged pages as errors
    logger = logging.getLogger("tifffile")
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)
