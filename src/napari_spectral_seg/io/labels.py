"""Writing labels atomically with the parameters that made them; what an output stores; an input's identity."""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from .common import INPUT_IDENTITY_KEY, METADATA_KEY, TABLE_RECORD_KEY, InputError
from .voxels import VoxelSize, tiff_arguments

__all__ = [
    "LABELS_FILE_KEY",
    "WRITE_SUFFIXES",
    "check_output_path",
    "check_written_by_us",
    "file_identity",
    "is_inside",
    "listing_digest",
    "same_content",
    "same_file",
    "stored_input_identity",
    "stored_table_record",
    "stored_parameters",
    "write_labels",
    "written_by_us",
]

WRITE_SUFFIXES = (".tif", ".tiff", ".npy")
_IDENTITY_TAG = 65111
# Likewise the record of the measurement table batch writes next to an output
# (napari_spectral_seg.tables.table_record).
_TABLE_TAG = 65112
# Keys every set of parameters this package records holds: how an output
# written by ``segment``, ``batch`` or the widget is told from another file.
_OUR_KEYS = frozenset({"threshold", "n_clusters", "beta", "eigen_solver", "random_state"})
# The key of an ``.npy`` sidecar that identifies the labels file it was written with (size and hash):
# a file saved over ours, beside our sidecar, is then not taken as ours.
LABELS_FILE_KEY = "labels_file"


def check_output_path(path: str | os.PathLike) -> Path:
    """Refuse an output path that cannot be written, before any work is done.

    Raises
    ------
    InputError
        Not ``.tif``/``.npy``, a folder, or its directory is missing or not writable.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITE_SUFFIXES:
        raise InputError(f"{path}: cannot write '{suffix}'; the output must end in .tif or .npy.")
    # Its temporary name (longer than its lock's) must fit the longest name the directory takes.
    longest = len(os.fsencode(_partial(path).name))
    try:
        name_max = os.pathconf(path.parent if path.parent.is_dir() else ".", "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    if longest > name_max:
        raise InputError(
            f"{path}: the file name is too long ({len(os.fsencode(path.name))} bytes; with the temporary "
            f"name it is written under, at most {name_max - longest + len(os.fsencode(path.name))} here); "
            "give a shorter -o name."
        )
    try:
        if path.is_dir():
            raise InputError(f"{path}: is a folder; give the output a file name, e.g. {path / 'labels.tif'}.")
        if not path.parent.is_dir():
            raise InputError(f"{path.parent}: output directory does not exist; create it first.")
    except OSError as exc:  # e.g. a path too long as a whole
        raise InputError(f"{path}: cannot write there ({exc.strerror}); give another -o path.") from None
    if not os.access(path.parent, os.W_OK):
        raise InputError(f"{path.parent}: output directory is not writable.")
    return path


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file: the same path spelt differently, a symlink or a hard link."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False


def is_inside(path: str | os.PathLike, folder: str | os.PathLike) -> bool:
    """Whether ``path`` lies below ``folder`` (a zarr store, say), under any spelling; not ``folder`` itself."""
    path, folder = Path(os.path.realpath(path)), Path(os.path.realpath(folder))
    return path != folder and path.is_relative_to(folder)


def _partial(path: Path) -> Path:
    """The temporary name a file is written under before it is renamed into place (hidden, same directory)."""
    return path.with_name(f".{path.name}.partial{path.suffix}")


def _write_text(path: Path, text: str) -> None:
    """Write ``text`` and flush it to disk (a rename that follows never exposes an empty file)."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_labels(
    path: str | os.PathLike,
    labels: np.ndarray,
    parameters: dict,
    *,
    input_identity: dict | None = None,
    table_record: dict | None = None,
    voxel_size: VoxelSize | None = None,
) -> None:
    """Write labels atomically (temporary files, then rename) with the parameters.

    ``.tif`` files carry the parameters as JSON in the image description
    (and ``input_identity``, from :func:`file_identity`, and
    ``table_record``, the measurement table's, each in a private tag);
    with a ``voxel_size`` (for the labels' trailing axes, z first) they are
    an ImageJ hyperstack at that scale with the parameters in its ``Info``
    (:func:`~napari_spectral_seg.io.voxels.tiff_arguments`); the voxel size
    is not stored in an ``.npy`` file;
    ``.npy`` files get a sidecar ``<name>.json``, which also holds the
    size and hash of the ``.npy`` it describes (``"labels_file"``). Everything is written and
    flushed under hidden temporary names first (``.<name>.partial.<suffix>``),
    then renamed: the sidecar, then the labels. A failed or interrupted
    write (a full disk, Ctrl-C, SIGTERM from the command line) removes the
    temporary files and leaves an earlier output as it was: never a
    half-written file, an empty sidecar or a new sidecar without its labels.

    Raises
    ------
    InputError
        The path is refused by :func:`check_output_path`, or writing fails.
    """
    path = check_output_path(path)
    suffix = path.suffix.lower()
    text = json.dumps(parameters, default=str)
    tmp = _partial(path)
    sidecar = path.with_name(path.name + ".json") if suffix == ".npy" else None
    temporaries = [tmp] + ([_partial(sidecar)] if sidecar else [])
    try:
        if sidecar is not None:
            if input_identity is not None or table_record is not None:
                raise InputError(f"{path}: the input's identity is stored in TIFF outputs only.")
            with open(tmp, "wb") as fh:
                np.save(fh, labels)
                fh.flush()
                os.fsync(fh.fileno())
            described = dict(parameters, **{LABELS_FILE_KEY: _bytes_identity(tmp)})
            _write_text(temporaries[1], json.dumps(described, default=str))
            _replace_sidecar_then_labels(temporaries[1], sidecar, tmp, path)
        else:
            import tifffile

            private = ((_IDENTITY_TAG, input_identity), (_TABLE_TAG, table_record))
            extratags = [(tag, "s", 0, json.dumps(value), True) for tag, value in private if value is not None]
            labels, arguments = tiff_arguments(labels, text, voxel_size)
            tifffile.imwrite(tmp, labels, extratags=extratags, **arguments)
            _sync(tmp)
            os.replace(tmp, path)
    except OSError as exc:
        raise InputError(f"{path}: cannot write it ({_write_failure(exc)}).") from exc
    finally:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)


def _replace_sidecar_then_labels(sidecar_tmp: Path, sidecar: Path, labels_tmp: Path, path: Path) -> None:
    """Rename the new sidecar, then the labels, into place.

    Whatever stops it between the two (an error, Ctrl-C, SIGTERM turned into an exception), the
    earlier sidecar comes back beside the earlier labels: a new sidecar beside old labels would
    describe another file, and our own output would be refused as saved over ours.
    """
    previous = sidecar.with_name(f".{sidecar.name}.previous")
    had_previous = os.path.lexists(sidecar)
    moved_aside = new_in_place = False
    try:
        if had_previous:
            os.replace(sidecar, previous)
            moved_aside = True
        os.replace(sidecar_tmp, sidecar)
        new_in_place = True
        os.replace(labels_tmp, path)
    except BaseException:
        if moved_aside:
            os.replace(previous, sidecar)
        elif new_in_place:
            sidecar.unlink(missing_ok=True)  # no sidecar without its labels
        raise
    if moved_aside:
        previous.unlink(missing_ok=True)


def _write_failure(exc: OSError) -> str:
    """Why a write failed, in words; a full disk says so (numpy reports it as a short write, no errno)."""
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        return f"{reason}; free some space or write elsewhere"
    if exc.errno is None and "requested and" in reason:
        return f"only part of it could be written, {reason}: is the disk full? Free some space or write elsewhere"
    return reason


def stored_parameters(output: str | os.PathLike) -> dict | None:
    """The parameters stored in a labels output, or None if there are none or it is unreadable.

    A TIFF's description (or its ImageJ ``Info``), a zarr array's
    attribute, an ``.npy`` file's sidecar.
    """
    output = Path(output)
    try:
        suffix = output.suffix.lower()
        if suffix == ".zarr":
            import zarr

            return dict(zarr.open_array(str(output), mode="r").attrs[METADATA_KEY])
        if suffix == ".npy":
            stored = json.loads(output.with_name(output.name + ".json").read_text())
            if isinstance(stored, dict):
                stored.pop(LABELS_FILE_KEY, None)  # what the sidecar says of the file, not a parameter
            return stored
        import tifffile

        with tifffile.TiffFile(output) as tif:
            if tif.is_imagej and "Info" in (tif.imagej_metadata or {}):
                return json.loads(tif.imagej_metadata["Info"])
            return json.loads(tif.pages[0].description)
    except Exception:
        return None


def written_by_us(stored) -> bool:
    """Whether ``stored`` (from :func:`stored_parameters`) is what this package records with its results."""
    return isinstance(stored, dict) and _OUR_KEYS <= stored.keys()


def check_written_by_us(output: str | os.PathLike, instead: str, error=InputError) -> dict | None:
    """Refuse to replace what this package did not write at ``output``; the parameters stored there, if any.

    What is ours: a TIFF whose description (or ImageJ ``Info``) holds our
    parameters; an ``.npy`` file whose sidecar does and describes that very
    file (its size and hash; a sidecar of an earlier version, which records
    neither, an ``.npy`` of integers) (the file or its sidecar alone, of
    another's, is refused: both are replaced); a zarr array with them in
    its attributes (``batch``), or a zarr group with a ``labels/*`` image
    holding them (blockwise). Nothing at ``output`` is not refused.

    Raises
    ------
    error
        ``"<path> exists and was not written by napari-spectral-seg; pass
        --overwrite or <instead>"`` (``instead``: e.g. ``"another -o"``).
    """
    output = Path(output)
    sidecar = output.with_name(output.name + ".json") if output.suffix.lower() == ".npy" else None
    found = [path for path in (output, sidecar) if path is not None and os.path.lexists(path)]
    if not found:
        return None
    stored = stored_parameters(output)
    if output.suffix.lower() == ".zarr" and _our_labels_group(output):
        return stored
    if written_by_us(stored):
        if sidecar is None or found == [sidecar] or _sidecar_describes(output, sidecar):
            return stored
        raise error(
            f"{output} exists and was not written by napari-spectral-seg (its {sidecar.name} describes another "
            f"file: this one was saved over ours); pass --overwrite or {instead}"
        )
    if sidecar is not None and found == [output]:
        raise error(
            f"{output} exists without its {sidecar.name} (another program's file, or a write of ours that"
            f" was interrupted); pass --overwrite or {instead}"
        )
    raise error(f"{found[0]} exists and was not written by napari-spectral-seg; pass --overwrite or {instead}")


def _bytes_identity(path: Path) -> dict:
    """A file's size and BLAKE2b hash (what an ``.npy`` sidecar records of its labels file)."""
    identity = file_identity(path)
    return {"size": identity["size"], "blake2b": identity["blake2b"]}


def _sidecar_describes(output: Path, sidecar: Path) -> bool:
    """Whether our ``sidecar`` was written with the ``.npy`` now at ``output`` (same size and hash).

    A sidecar of an earlier version records no file: the ``.npy`` is taken
    as ours when it holds integers, as labels do (a user's image saved over
    it is usually float).
    """
    try:
        described = json.loads(sidecar.read_text()).get(LABELS_FILE_KEY)
        if described is None:
            return np.issubdtype(np.load(output, mmap_mode="r").dtype, np.integer)  # reads the header only
        return same_content(described, _bytes_identity(output))
    except (OSError, ValueError, AttributeError, TypeError):
        return False


def _our_labels_group(path: Path) -> bool:
    """Whether ``path`` is a zarr group holding a labels image this package wrote (a blockwise output)."""
    try:
        import zarr

        labels = zarr.open_group(str(path), mode="r")["labels"]
        return any(_holds_our_parameters(image) for _, image in labels.groups())
    except Exception:
        return False


def is_our_labels_image(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a labels image (a zarr group, ``labels/<name>``) this package wrote."""
    try:
        import zarr

        return _holds_our_parameters(zarr.open_group(str(path), mode="r"))
    except Exception:  # not a zarr group, unreadable: not ours to judge as ours
        return False


def _holds_our_parameters(group) -> bool:
    return written_by_us(dict(group.attrs).get(METADATA_KEY))


def stored_input_identity(output: str | os.PathLike) -> dict | None:
    """The input identity stored with a batch output (:func:`write_labels`), or None."""
    return _stored_private(output, INPUT_IDENTITY_KEY, _IDENTITY_TAG)


def stored_table_record(output: str | os.PathLike) -> dict | None:
    """The record of the measurement table stored with a batch output (:func:`write_labels`), or None."""
    return _stored_private(output, TABLE_RECORD_KEY, _TABLE_TAG)


def _stored_private(output: str | os.PathLike, zarr_key: str, tiff_tag: int) -> dict | None:
    """What an output keeps apart from its parameters: a zarr attribute, or a private TIFF tag's JSON."""
    output = Path(output)
    try:
        if output.suffix.lower() == ".zarr":
            import zarr

            return dict(zarr.open_array(str(output), mode="r").attrs[zarr_key])
        import tifffile

        with tifffile.TiffFile(output) as tif:
            tag = tif.pages[0].tags.get(tiff_tag)
            return None if tag is None else json.loads(tag.value)
    except Exception:
        return None


def file_identity(path: str | os.PathLike) -> dict:
    """What identifies an input's content: its size, modification time and a BLAKE2b hash of its bytes.

    For a directory (a zarr store) the hash covers every file's relative
    path and bytes, and ``"listing"`` is :func:`listing_digest` of its
    files as they were before each was read (a folder keeps its time when
    a chunk inside is rewritten). Reading is done in blocks of 4 MiB;
    hashlib releases the GIL, so identities of several files can be
    computed in threads.

    Raises
    ------
    OSError
        The file cannot be read.
    """
    path = Path(path)
    digest = hashlib.blake2b(digest_size=16)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    size, stats = 0, []
    for file in files:
        if path.is_dir():
            stats.append(_file_stat(path, file))
            digest.update(str(file.relative_to(path)).encode("utf-8", "surrogateescape") + b"\0")
        with open(file, "rb") as fh:
            while block := fh.read(4 << 20):
                digest.update(block)
                size += len(block)
    stat = path.stat()
    identity = {"size": size, "mtime_ns": stat.st_mtime_ns, "blake2b": digest.hexdigest()}
    if path.is_dir():
        identity["listing"] = _digest_of(stats)
    return identity


def _file_stat(root: Path, file: Path) -> tuple:
    stat = file.stat()
    return (str(file.relative_to(root)), stat.st_size, stat.st_mtime_ns)


def _digest_of(stats: list) -> str:
    return hashlib.blake2b(repr(sorted(stats)).encode("utf-8", "surrogateescape"), digest_size=16).hexdigest()


def listing_digest(path: str | os.PathLike) -> str:
    """A digest of a directory's files: their relative paths, sizes and modification times (no byte is read).

    Equal digests mean no file was added, removed or written since; a
    different one is then settled by hashing the bytes (a file rewritten
    with the same bytes, or touched, is the same content).
    """
    path = Path(path)
    return _digest_of([_file_stat(path, file) for file in path.rglob("*") if file.is_file()])


def same_content(identity: dict | None, other: dict | None) -> bool:
    """Whether two :func:`file_identity` results describe the same content (size and hash; times may differ)."""
    if not identity or not other:
        return False
    return (identity.get("size"), identity.get("blake2b")) == (other.get("size"), other.get("blake2b"))
