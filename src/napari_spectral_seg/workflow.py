"""``spectral_segmentation``: an ``ImageData -> LabelsData`` function for napari, magicgui and napari-workflows.

Its parameters are the segmentation parameters that have a widget field in
:class:`~napari_spectral_seg.core.params.SegmentationParams`, in declaration
order and with their defaults, so they can be given by position (as
napari-workflows does) or by name, and magicgui builds a form from the
signature. The signature is built from the declaration, not written out.
Parameters that take a word or a number (``threshold``: "auto", "otsu" or a number;
``n_clusters``, ``sigma``, ``min_size``: "auto" or a number) are text.

numpy only at import; napari is never imported here (the annotations are the
strings napari resolves).
"""

from __future__ import annotations

import inspect

import numpy as np

from .core.params import DEFAULT_SENSITIVITY, SegmentationParams
from .core.pipeline import segment

__all__ = ["spectral_segmentation"]

# Parameters whose value is a word ("otsu", "auto") or a number: text fields.
_WORD_OR_NUMBER = {
    "threshold": ("auto", "otsu"),
    "n_clusters": ("auto",),
    "sigma": ("auto",),
    "min_size": ("auto",),
}


def _field_specs():
    return [spec for spec in SegmentationParams.specs() if spec.gui is not None]


def _annotation_and_default(spec):
    default = spec.default
    if spec.name in _WORD_OR_NUMBER:
        return str, "" if default is None else str(default)
    if spec.name == "sensitivity":
        return float, DEFAULT_SENSITIVITY
    if default is None:
        return float, 0.0
    return type(default), default


def _signature() -> inspect.Signature:
    parameters = [
        inspect.Parameter("image", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation="napari.types.ImageData")
    ]
    for spec in _field_specs():
        annotation, default = _annotation_and_default(spec)
        parameters.append(
            inspect.Parameter(
                spec.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=annotation
            )
        )
    return inspect.Signature(parameters, return_annotation="napari.types.LabelsData")


_SIGNATURE = _signature()


def _from_text(name: str, text: str):
    """A word-or-number field's value: the word, a number, or None for an empty field."""
    text = str(text).strip()
    if text == "":
        return None
    if text.lower() in _WORD_OR_NUMBER[name]:
        return text.lower()
    try:
        number = float(text)
    except ValueError:
        words = " or ".join(f"'{word}'" for word in _WORD_OR_NUMBER[name])
        raise ValueError(f"{name}={text!r} is neither a number nor {words}.") from None
    return int(number) if name in ("n_clusters", "min_size") and number.is_integer() else number


def spectral_segmentation(*args, **kwargs) -> np.ndarray:
    """Segment an image by spectral clustering; a napari ``ImageData -> LabelsData`` function.

    Parameters
    ----------
    image : ndarray
        2D or 3D image.
    threshold, n_clusters, beta, eigen_solver, random_state, min_size, sigma, sensitivity, edge_level
        As in :func:`napari_spectral_seg.segment`, with the same defaults.
        ``sensitivity`` is used in auto mode only, ``edge_level`` in auto mode
        with a threshold only.

    Returns
    -------
    ndarray of int32
        Labels, 0 background.
    """
    bound = _SIGNATURE.bind(*args, **kwargs)
    bound.apply_defaults()
    values = dict(bound.arguments)
    image = np.asarray(values.pop("image"))
    for name in _WORD_OR_NUMBER:
        values[name] = _from_text(name, values[name])
    if values["n_clusters"] != "auto":
        values["sensitivity"] = None
    if values["sigma"] == 0:
        values["sigma"] = None
    return segment(image, **values)


spectral_segmentation.__signature__ = _SIGNATURE
