"""Labels written into the input's own OME-Zarr: ``IMAGE.zarr/labels/<name>`` beside the image.

Asked for by passing the input itself as the output (``segment IMAGE.zarr -o
IMAGE.zarr --labels-name NAME``, ``segment_blockwise(image, image, name=...)``).
The image's arrays and its other labels are never written to:

1. the run works in ``.IMAGE.zarr.labels-NAME.partial`` beside the input (its
   resume state and block records, as for any output), a zarr group of the
   input's zarr format, whose ``labels`` group starts with the input's
   ``labels`` attributes (NAME left out);
2. ome-zarr-py writes ``labels/NAME`` there, in the input's OME-Zarr version,
   and appends NAME to that ``labels`` list;
3. ``labels/NAME`` is renamed into the input (an existing one, replaced with
   ``overwrite``, is first moved aside), then the ``labels`` group's metadata
   file is renamed over the input's: each step is one atomic rename, and the
   list never names a labels image that is not there.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from ..io.labels import is_our_labels_image

__all__ = ["labels_partial", "move_into_input", "open_partial_group", "writes_into_input"]

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
# The file holding a zarr group's attributes, per zarr format.
_GROUP_METADATA = {2: ".zattrs", 3: "zarr.json"}


def _same_path(a, b) -> bool:
    return Path(a).resolve() == Path(b).resolve()


def writes_into_input(source, output, name: str, overwrite: bool, error) -> bool:
    """Whether ``output`` is the input itself (labels into its ``labels/`` group); checks that this can be done.

    Raises ``error`` (a message naming the flag to change) for an input that
    is not an OME-Zarr image, a name that is not a plain folder name, or an
    existing ``labels/<name>`` without ``overwrite``.
    """
    if not _same_path(output, source.path):
        return False
    if source.kind != "ome-zarr":
        raise error(
            f"-o {output} is the input, a {source.kind} {'file' if source.kind == 'tif' else 'array'}: labels go "
            "into the input only for an OME-Zarr image (its labels/ group); pass another -o OUTPUT.zarr."
        )
    if not _NAME.fullmatch(name or ""):
        raise error(
            f"--labels-name {name!r}: a labels image is a folder of labels/; use letters, digits, '_', '-' or '.' "
            "(not first), e.g. --labels-name nuclei."
        )
    existing = Path(source.path) / "labels" / name
    if existing.exists() and not overwrite:
        whose = (
            "labels napari-spectral-seg wrote"
            if is_our_labels_image(existing)
            else "not written by napari-spectral-seg"
        )
        raise error(
            f"{existing} exists ({whose}); pass --overwrite (overwrite=True) to replace it, or another "
            f"--labels-name (name=), e.g. --labels-name {name}_2, to keep it beside the new labels."
        )
    return True


def labels_partial(source, name: str) -> Path:
    """The working store of a run writing ``labels/<name>`` into the input: beside it, hidden."""
    image = Path(source.path).resolve()
    return image.with_name(f".{image.name}.labels-{name}.partial")


def _zarr_format(path) -> int:
    import zarr

    return int(zarr.open_group(str(path), mode="r").metadata.zarr_format)


def open_partial_group(partial: Path, source=None, name: str = ""):
    """The zarr group the labels image is written into, without a half-written ``labels`` from an interrupt.

    With ``source`` (labels into the input): of the input's zarr format, its
    ``labels`` group holding the input's ``labels`` attributes without
    ``name`` (ome-zarr-py appends ``name`` when it writes it).
    """
    import zarr

    if source is None:
        group = zarr.open_group(str(partial), mode="a")
        if "labels" in group:
            del group["labels"]
        return group
    from ome_zarr.writer import add_metadata, get_metadata

    zarr_format = _zarr_format(source.path)
    group = zarr.open_group(str(partial), mode="a", zarr_format=zarr_format)
    if "labels" in group:
        del group["labels"]
    labels = group.create_group("labels")
    image = zarr.open_group(str(source.path), mode="r")
    if "labels" in image:
        existing = image["labels"]
        labels.attrs.update(dict(existing.attrs))
        names = [n for n in get_metadata(existing).get("labels", []) if n != name]
        add_metadata(labels, {"labels": names})
    return group


def move_into_input(partial: Path, source, name: str) -> Path:
    """Rename the written ``labels/<name>`` and the ``labels`` list into the input; the labels image's path."""
    image_labels = Path(source.path) / "labels"
    written = partial / "labels"
    if not image_labels.exists():
        os.replace(written, image_labels)  # the whole labels group, list and image at once
        return image_labels / name
    target = image_labels / name
    old = image_labels / f".{name}.old"
    if old.exists():
        shutil.rmtree(old)
    if target.exists():  # overwrite was checked before the run
        os.replace(target, old)
    os.replace(written / name, target)
    metadata = _GROUP_METADATA[_zarr_format(source.path)]
    os.replace(written / metadata, image_labels / metadata)
    if old.exists():
        shutil.rmtree(old)
    return target
