"""What the benchmark scripts share: one line for a missing dependency, result files that only
a run that succeeded replaces.

A script imports what it needs inside ``try`` and hands an ``ImportError`` to
:func:`exit_missing`, which prints one line (the missing package and the README's install
command) and exits with :data:`EXIT_MISSING`. Results go through :func:`save_results`: when
every case succeeded it replaces the result files atomically (temporary file in the same
folder, then ``os.replace``); when a case failed it leaves them alone, writes what there is to
``<name>-FAILED.json.tmp`` next to them (``bench/results/*.tmp`` is git-ignored), says so and
returns :data:`EXIT_FAILED`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path

INSTALL = '.venv/bin/pip install -e ".[test,bench]"'
EXIT_FAILED = 1
EXIT_MISSING = 2

# import name -> what to install, where the two differ
PACKAGES = {
    "napari_spectral_seg": "napari-spectral-seg (this project)",
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "yaml": "pyyaml",
    "PyQt6": "napari[pyqt6]",
    "napari_segment_blobs_and_things_with_membranes": "napari-segment-blobs-and-things-with-membranes",
}


def missing_message(err: ImportError, script: str) -> str:
    """The one line printed for ``err``, raised while ``script`` imported what it needs."""
    name = err.name or ""
    top = name.split(".")[0]
    loaded = sys.modules.get(top)
    if not isinstance(err, ModuleNotFoundError) or not name:
        # A name missing from an importable module, or e.g. "no Qt bindings could be found".
        return f"{script}: {err} (install the benchmark dependencies from the repository root: {INSTALL})"
    if loaded is not None and name != top:
        return (
            f"{script}: the imported {top} ({getattr(loaded, '__file__', '?')}) has no module {name}; "
            f"is it this checkout's code? (from the repository root: {INSTALL})"
        )
    package = PACKAGES.get(top, top)
    return f"{script}: cannot import {top}: package {package} is missing; from the repository root run: {INSTALL}"


def exit_missing(err: ImportError, script: str) -> None:
    """Print :func:`missing_message` to stderr and exit with :data:`EXIT_MISSING`."""
    print(missing_message(err, os.path.relpath(script)), file=sys.stderr)
    sys.exit(EXIT_MISSING)


def require(names, script: str) -> None:
    """Exit through :func:`exit_missing` if a top-level module in ``names`` is not installed.

    It is looked up, not imported, for what a script imports lazily inside a timed region:
    importing it here would move its import time out of the figures.
    """
    for name in names:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            exit_missing(ModuleNotFoundError(f"No module named {name!r}", name=name), script)


def write_atomic(path, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    A write that fails part-way leaves the old file as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def failed_path(path) -> Path:
    """Where the results of a failed run go instead of ``path``: ``<stem>-FAILED<suffix>.tmp``."""
    path = Path(path)
    return path.with_name(f"{path.stem}-FAILED{path.suffix}.tmp")


def save_results(paths, payload, failures, indent: int, failed_to=None) -> int:
    """Write ``payload`` as JSON to every path in ``paths`` if ``failures`` is empty; return the exit code.

    ``failures`` lists one short description per case that failed. With any, the files in
    ``paths`` are not touched: the payload goes to :func:`failed_path` of ``failed_to`` (default:
    the first path), the failures are printed to stderr, and :data:`EXIT_FAILED` is returned.
    """
    paths = [Path(p) for p in paths]
    text = json.dumps(payload, indent=indent)  # before any file is opened: a payload JSON cannot hold fails here
    if not failures:
        for path in paths:
            write_atomic(path, text)
        return 0
    failed = write_atomic(failed_path(failed_to or paths[0]), text)
    print(f"\n{len(failures)} case(s) failed:", file=sys.stderr)
    for line in failures:
        print(f"  {line}", file=sys.stderr)
    kept = f"results NOT saved to {', '.join(str(p) for p in paths)} (left unchanged); " if paths else ""
    print(f"{kept}this run's rows are in {failed}", file=sys.stderr)
    return EXIT_FAILED


def error_text(exc: BaseException) -> str:
    """``Type: message`` of an exception, on one line."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
