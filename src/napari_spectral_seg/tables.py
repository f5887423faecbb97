"""Measurement tables as CSV files: written atomically, read back, checked.

A table is what :mod:`napari_spectral_seg.core.measure` returns (column
name -> 1-D array). The widget's "Save measurements...", ``segment
--measure`` and ``batch`` write it with :func:`write_table`; ``batch``
records :func:`table_record` with the labels so a re-run knows whether the
table next to them is still the one it wrote.
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

import numpy as np

from .io import InputError

__all__ = [
    "write_measurements",
    "TableError",
    "check_table_path",
    "check_table_written_by_us",
    "matches_record",
    "read_table",
    "table_record",
    "table_text",
    "write_table",
]


class TableError(InputError):
    """A table that cannot be written (the message names the file and why)."""


def check_table_path(path: str | os.PathLike) -> Path:
    """Refuse a table path that cannot be written, before any work is done.

    Raises
    ------
    TableError
        It does not end in ``.csv``, is a folder, or its folder is missing or not writable.
    """
    path = Path(path)
    if path.suffix.lower() != ".csv":
        raise TableError(f"{path}: a measurement table is written as CSV; give a name ending in .csv.")
    if path.is_dir():
        raise TableError(f"{path}: is a folder; give the table a file name, e.g. {path / 'measurements.csv'}.")
    if not path.parent.is_dir():
        raise TableError(f"{path.parent}: the folder for the measurement table does not exist; create it first.")
    if not os.access(path.parent, os.W_OK):
        raise TableError(f"{path.parent}: the folder for the measurement table is not writable.")
    return path


# Columns every table of core.measure has, whatever the image (an empty table too), and the form of
# every column it can write: a header with all of the first and only the second is ours.
_OUR_COLUMNS = frozenset({"label", "n_pixels", "equivalent_diameter"})
_OUR_COLUMN = re.compile(
    r"label|area|volume|n_pixels|equivalent_diameter|centroid_[zyx]|bbox_(min|max)_[zyx]"
    r"|(mean|max|integrated)_intensity(_c\d+)?|frame(_\d+)?"
)


def check_table_written_by_us(path: str | os.PathLike, instead: str) -> None:
    """Refuse to replace a file at ``path`` that is not a measurement table this package wrote.

    Ours: a CSV file whose header names our columns (``label``, ``n_pixels``,
    ``equivalent_diameter``...) and no other: a table with a column added by hand is the
    user's. Nothing at ``path`` is not refused.

    Raises
    ------
    TableError
        ``"<path> exists and was not written by napari-spectral-seg; pass
        --overwrite or <instead>"``.
    """
    path = Path(path)
    if not os.path.lexists(path):
        return
    header = []
    if path.is_file():  # never open a named pipe: it might not answer
        try:
            with open(path, encoding="utf-8", newline="") as fh:
                header = next(csv.reader([fh.readline()]), [])
        except (OSError, UnicodeDecodeError, csv.Error):
            header = []
    if not _OUR_COLUMNS <= set(header) or not all(_OUR_COLUMN.fullmatch(name) for name in header):
        raise TableError(f"{path} exists and was not written by napari-spectral-seg; pass --overwrite or {instead}")


def _cell(value) -> str:
    if isinstance(value, (float, np.floating)):
        return repr(float(value))  # every digit: a table read back equals the one written
    return str(value)


def table_text(table: dict) -> str:
    """The CSV text of a table: a header line of column names, then one line per row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    names = list(table)
    writer.writerow(names)
    columns = [np.asarray(table[name]).tolist() for name in names]
    for row in zip(*columns):
        writer.writerow([_cell(value) for value in row])
    return out.getvalue()


def write_table(path: str | os.PathLike, table: dict) -> Path:
    """Write a table as CSV atomically: to a hidden temporary file in the same folder, then renamed.

    A failed write leaves an earlier file as it was and no temporary behind.

    Raises
    ------
    TableError
        The path is refused by :func:`check_table_path`, or writing fails.
    """
    path = check_table_path(path)
    temporary = path.with_name(f".{path.name}.partial")
    try:
        with open(temporary, "w", encoding="utf-8", newline="") as fh:
            fh.write(table_text(table))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        raise TableError(f"{path}: cannot write the measurement table ({exc.strerror or exc}).") from exc
    finally:
        temporary.unlink(missing_ok=True)
    return path


def read_table(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A CSV table as written by :func:`write_table`: integer columns as int64, others as float64."""
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    names, body = rows[0], rows[1:]
    table = {}
    for i, name in enumerate(names):
        values = [row[i] for row in body]
        try:
            table[name] = np.array([int(v) for v in values], dtype=np.int64)
        except ValueError:
            table[name] = np.array([float(v) for v in values], dtype=np.float64)
    return table


def table_record(path: str | os.PathLike, table: dict) -> dict:
    """What a labels output records of the table written next to it: its file name, rows and hash."""
    import hashlib

    text = table_text(table).encode("utf-8")
    return {
        "file": Path(path).name,
        "rows": len(next(iter(table.values()))) if table else 0,
        "blake2b": hashlib.blake2b(text, digest_size=16).hexdigest(),
    }


def matches_record(folder: str | os.PathLike, record) -> bool:
    """Whether the table a labels output records (:func:`table_record`) is in ``folder``, unchanged."""
    import hashlib

    if not isinstance(record, dict) or not record.get("file"):
        return False
    try:
        data = (Path(folder) / record["file"]).read_bytes()
    except OSError:
        return False
    return hashlib.blake2b(data, digest_size=16).hexdigest() == record.get("blake2b")


def write_measurements(path, labels, image, params, spatial_ndim: int) -> int:
    """The per-object table of ``labels`` (a ``frame`` column for stacks) written as CSV; the number of rows."""
    from .core.measure import measure_frames, table_length  # scikit-image, only when a table is asked for

    table = measure_frames(
        labels, image, spatial_ndim=spatial_ndim, spacing=params.spacing, channel_axis=params.channel_axis
    )
    write_table(path, table)
    return table_length(table)
