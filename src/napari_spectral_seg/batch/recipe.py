"""What a batch computes: one :class:`SegmentationParams` and the frame size, and how it is recorded."""

from __future__ import annotations

import json
from collections.abc import Mapping

from ..core.params import NOT_RECORDED, PER_IMAGE, SegmentationParams, check_sigma, check_spacing, is_integer

__all__ = ["check_recipe", "frame_ndim", "recorded_parameters", "resolve_parameters"]


def resolve_parameters(
    file_params: Mapping | None = None, flags: Mapping | None = None
) -> tuple[SegmentationParams, int]:
    """Tool defaults, overridden by the parameter file, overridden by command-line flags.

    Parameters
    ----------
    file_params : mapping, optional
        From :func:`napari_spectral_seg.io.load_parameters`; may hold
        ``spatial_ndim``.
    flags : mapping, optional
        Flag values by parameter name (and ``spatial_ndim``); ``None`` means
        "not given".

    Returns
    -------
    params : SegmentationParams
        Validated; ``spacing`` as floats.
    spatial_ndim : int
        Axes of a frame (without channels): given, else ``len(spacing)``, else 2.

    Raises
    ------
    ValueError, TypeError
        An invalid value, naming the parameter; also the checks that need
        the frame's axes (``spacing``, ``sigma``, ``channel_axis``), so that
        nothing is found per input once a cluster runs.
    """
    given = dict(file_params or {})
    given.update({key: value for key, value in (flags or {}).items() if value is not None})
    spatial_ndim = given.pop("spatial_ndim", None)
    params = SegmentationParams.from_mapping(given, base=SegmentationParams())
    spatial_ndim = _spatial_ndim(spatial_ndim, params.spacing)
    if params.spacing is not None:
        params = params.replace(spacing=tuple(float(v) for v in check_spacing(params.spacing, spatial_ndim)))
    _check_frame_parameters(params, spatial_ndim)
    return params, spatial_ndim


def _check_frame_parameters(params: SegmentationParams, spatial_ndim: int) -> None:
    """The checks of ``sigma`` and ``channel_axis`` that need a frame's number of axes."""
    if params.sigma != "auto":  # chosen per image
        check_sigma(params.sigma, spatial_ndim)
    axis = params.channel_axis
    if axis is not None and not -(spatial_ndim + 1) <= axis <= spatial_ndim:
        raise ValueError(
            f"channel_axis={axis} is out of range for frames of {spatial_ndim} spatial axes plus a channel axis; "
            f"use -1 (channels last) or 0..{spatial_ndim}."
        )


def frame_ndim(given, spacing) -> int:
    """The number of spatial axes of a frame: ``given``, else ``len(spacing)``, else 2 (``batch`` and ``segment``).

    Raises
    ------
    ValueError
        Not 2 or 3, or ``spacing`` has another length.
    """
    return _spatial_ndim(given, spacing)


def _spatial_ndim(given, spacing) -> int:
    """The frame size: ``given``, else the length of ``spacing``, else 2; checked against ``spacing``."""
    if isinstance(spacing, (str, bytes)):  # text has a length, but not a count of axes
        check_spacing(spacing, 2 if given is None else given)
    if spacing is not None:
        try:
            n_spacing = len(spacing)
        except TypeError:
            n_spacing = None
        if n_spacing not in (2, 3):
            raise ValueError(f"spacing={spacing!r} must be 2 or 3 positive numbers, one per spatial axis.")
    if given is None:
        given = 2 if spacing is None else n_spacing
    if not is_integer(given) or given not in (2, 3):
        raise ValueError(f"spatial_ndim={given!r} must be 2 or 3.")
    if spacing is not None and n_spacing != given:
        raise ValueError(f"spacing has {n_spacing} values but frames have spatial_ndim={given} axes.")
    return int(given)


def check_recipe(params: SegmentationParams, spatial_ndim: int) -> None:
    """Refuse a recipe that cannot run, before any input is read.

    Raises
    ------
    TypeError
        ``params`` is not a :class:`SegmentationParams`.
    ValueError
        ``spatial_ndim`` is not 2 or 3, or ``spacing``, ``sigma`` or
        ``channel_axis`` does not fit it.
    """
    if not isinstance(params, SegmentationParams):
        raise TypeError(
            f"params must be a SegmentationParams (e.g. from resolve_parameters), not {type(params).__name__}."
        )
    _spatial_ndim(spatial_ndim, params.spacing)
    check_spacing(params.spacing, spatial_ndim)
    _check_frame_parameters(params, spatial_ndim)


def recorded_parameters(params: SegmentationParams, spatial_ndim: int) -> dict:
    """What decides an output's content, as stored in it (JSON-normalised, for comparison).

    Every parameter but the per-image ones and those that only decide
    whether a run starts (``time_limit``), and ``spatial_ndim``. The
    values as given, except ``edge_level``: the one a run uses (None
    where it does not apply or is 0), as :func:`napari_spectral_seg.segment`
    records it.
    """
    skipped = PER_IMAGE + NOT_RECORDED
    values = {name: getattr(params, name) for name in SegmentationParams.names() if name not in skipped}
    values["edge_level"] = params.used_edge_level()
    return json.loads(json.dumps(dict(values, spatial_ndim=spatial_ndim), default=str))
