"""The "Spectral segmentation" dock widget.

Modules: ``widget`` (the dock widget itself). Names are imported on first
use, so importing a module of this package does not import napari, Qt or
magicgui unless that module does.
"""

from __future__ import annotations

import importlib

# Public name -> module of this package that defines it.
_EXPORTS = {
    "SpectralSegmentationWidget": "widget",
    "METADATA_KEY": "widget",
    "result_layer_name": "widget",
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
