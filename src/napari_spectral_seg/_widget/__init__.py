"""The "Spectral segmentation" dock widget.

Modules:

* ``widget``: :class:`SpectralSegmentationWidget`, the dock widget, composing
* ``form``: the parameter fields, built from ``SegmentationParams.specs()``;
* ``layers``: napari layers <-> arrays (no Qt): what a run reads, where its labels go;
* ``clicks``: click-to-split / merge on the result;
* ``engine``: the engine host, the pipeline in a child process.

Names are imported on first use: the engine's child process runs ``python -m
napari_spectral_seg._widget.engine``, which imports this package, and must
start without napari, Qt or magicgui.
"""

from __future__ import annotations

import importlib

# Public name -> module of this package that defines it.
_EXPORTS = {
    "SpectralSegmentationWidget": "widget",
    "METADATA_KEY": "layers",
    "result_layer_name": "layers",
    "_result_status": "widget",
}

__all__ = ["METADATA_KEY", "SpectralSegmentationWidget", "result_layer_name"]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
