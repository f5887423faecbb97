"""Every segmentation parameter, declared once.

:class:`SegmentationParams` is the one home of the parameters of
:func:`napari_spectral_seg.segment`: each field carries its default, its
check, a help text and the rule that says when it applies. The widget's
fields, the command line's flags, the parameter files of ``batch`` and the
metadata recorded with every result are built from it, so a new parameter is
declared here and used where it acts, nowhere else.

One set of defaults serves the library, the widget, the ``segment`` command
and ``batch``: a user who sets nothing gets objects on a background (Otsu's
threshold unless a mask is given), smoothing and the smallest piece chosen
from the image itself in auto mode (``"auto"``, the chosen values recorded)
and a result a re-run reproduces (seed 0).

Checks that need the image (``spacing``, ``sigma`` per axis, ``seeds``,
``channel_axis``) run when the image is known: :func:`check_spacing`,
:func:`check_sigma` and the pipeline's image checks.
"""

from __future__ import annotations

import dataclasses
import difflib
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .image_checks import check_sigma, check_spacing
from .memory import TIME_LIMIT_SECONDS

__all__ = [
    "DEFAULT_EDGE_LEVEL",
    "DEFAULT_SENSITIVITY",
    "EIGEN_SOLVERS",
    "LABEL_METHODS",
    "NOT_RECORDED",
    "PER_IMAGE",
    "ParameterSpec",
    "SegmentationParams",
    "check_random_state",
    "check_sigma",
    "check_spacing",
    "is_integer",
]

EIGEN_SOLVERS = ("auto", "arpack", "lobpcg", "amg", "multilevel")
LABEL_METHODS = ("kmeans", "cluster_qr")
POLARITIES = ("auto", "bright", "dark")
BACKGROUNDS = ("auto", "flat")
# Split threshold on the pass/hill ratio of auto mode: single objects score
# close to 1, touching pairs well below; irregular real outlines go down to
# about this value, which is why it is not higher.
DEFAULT_SENSITIVITY = 0.85
# Where auto mode draws an object's edge, as a fraction of the way from the
# background to the object's own brightness (see core/edges.py).
DEFAULT_EDGE_LEVEL = 0.4
# Parameters that describe one image (its points, its axes), not a recipe:
# a parameter file for many images leaves out ``seeds``.
PER_IMAGE = ("seeds",)
# Parameters that decide whether a run starts, not what it gives: left out
# of the parameters recorded with a result and of what makes a batch output
# stale, so that lifting a limit never redoes work already done.
NOT_RECORDED = ("time_limit",)

_UNSET = object()
# Names users reach for that mean another parameter (parameter files, batch).
_ALIASES = {"seed": "random_state", "random_seed": "random_state", "n_segments": "n_clusters"}


def is_integer(value) -> bool:
    """Whether ``value`` is a whole number (and not a bool)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


# ---------------------------------------------------------------- checks (today's messages, word for word)
def _check_threshold(value, params):
    if value is None:
        return
    if isinstance(value, str):
        if value.lower() not in ("otsu", "auto"):
            raise ValueError(
                f"threshold={value!r} is not understood; pass a number, 'otsu' or 'auto', or no threshold:"
                " None (null in a parameter file, none on the command line)."
            )
    elif not _is_real(value) or not np.isfinite(value):
        raise ValueError(f"threshold={value!r} must be a finite number, 'otsu' or 'auto'.")


def _check_n_clusters(value, params):
    if isinstance(value, str):
        if value != "auto":
            raise ValueError(f"n_clusters={value!r} is not understood; pass a whole number or 'auto'.")
    elif not is_integer(value):
        raise TypeError(f"n_clusters={value!r} must be a whole number, e.g. n_clusters=4, or 'auto'.")
    elif value < 1:
        raise ValueError(f"n_clusters={value} must be at least 1.")


def _check_beta(value, params):
    if not _is_real(value) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"beta={value!r} must be a positive finite number; 1.0 is the seed example's value.")


def _check_choice(choices):
    def check(value, params, name):
        if not isinstance(value, str) or value not in choices:
            raise ValueError(f"{name}={value!r} is unknown; use one of {', '.join(choices)}.")

    return check


def _check_min_size(value, params):
    if value == "auto":
        return
    if not is_integer(value) or value < 0:
        raise ValueError(f"min_size={value!r} must be a whole number of pixels >= 0, or 'auto'.")


def _check_random_state(value, params):
    if value is None:
        return
    if not is_integer(value):
        raise TypeError(f"random_state={value!r} must be an integer seed or None.")
    if value < 0:
        raise ValueError(f"random_state={value} must be a non-negative integer seed or None.")


def _check_channel_axis(value, params):
    if value is not None and not is_integer(value):
        raise TypeError(f"channel_axis={value!r} must be an integer axis index (e.g. -1) or None.")


def _check_seeds(value, params):
    # The shape against the image is checked when the image is known (seeds.check_seeds).
    if value is None:
        return
    message = (
        f"seeds={_short(value)} must be a list of points, each a list of pixel coordinates, "
        "e.g. seeds=[(10, 20), (30, 40)]"
    )
    try:
        np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(message + "; some points have a different number of coordinates or are not numbers.") from None


def _check_low_threshold(value, params):
    if value is None or value == "auto":
        return
    if not _is_real(value) or not np.isfinite(value):
        raise ValueError(
            f"low_threshold={value!r} must be a finite number (in the image's units, below the threshold), "
            "'auto' (from the image's background and noise) or None (no dim objects below the threshold)."
        )


def _check_time_limit(value, params):
    if value is None:
        return
    if not _is_real(value) or not np.isfinite(value) or value <= 0:
        raise ValueError(
            f"time_limit={value!r} must be a positive number of seconds, or None for no limit"
            " (null in a parameter file, none on the command line)."
        )


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_sensitivity(value, params):
    if params.n_clusters != "auto":
        if value is not None:
            raise ValueError(
                f"sensitivity={value!r} only applies with n_clusters='auto'; drop it or pass n_clusters='auto'."
            )
        return
    if value is None:
        return
    if not _is_real(value) or not (np.isfinite(value) and 0 <= value <= 1):
        raise ValueError(
            f"sensitivity={value!r} must be a number in [0, 1]; larger splits more, {DEFAULT_SENSITIVITY} is the default."
        )


def _check_edge_level(value, params):
    if value is None:
        return
    if not _is_real(value) or not (np.isfinite(value) and 0 <= value < 1):
        raise ValueError(
            f"edge_level={value!r} must be a number in [0, 1): the fraction of the way from the "
            f"background to each object's brightness where its edge is drawn ({DEFAULT_EDGE_LEVEL} is "
            "the default; 0 keeps the threshold's edges)."
        )


def check_random_state(random_state) -> int:
    """The integer seed to use: ``random_state`` itself, or a fresh one if None."""
    _check_random_state(random_state, None)
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0] & 0x7FFFFFFF)
    return int(random_state)


# ---------------------------------------------------------------- when a parameter applies
def _auto(params) -> bool:
    return params.n_clusters == "auto" and params.seeds is None


def _auto_with_threshold(params) -> bool:
    return _auto(params) and params.threshold is not None


# ---------------------------------------------------------------- the declaration
@dataclass(frozen=True)
class ParameterSpec:
    """What is declared about one parameter.

    Attributes
    ----------
    name : str
        The keyword of :func:`napari_spectral_seg.segment`.
    default : object
        The library's default.
    help : str
        One line for tooltips and ``--help``.
    check : callable
        ``check(value, params)`` raises TypeError/ValueError naming the
        parameter and the fix; image-dependent checks run in the pipeline.
    applies : callable
        ``applies(params)``: whether the parameter acts on this run; where
        it does not, the recorded value is None.
    applies_text : str
        The same rule in words ("" when it always applies).
    flag : str or None
        The command-line flag (None: not a flag).
    gui : dict
        Hints for the widget: label, min, max, step, or None for no field.
    """

    name: str
    default: Any
    help: str
    check: Callable
    applies: Callable
    applies_text: str
    flag: str | None
    gui: dict | None
    record: Callable


def _param(
    default,
    *,
    help: str,
    check: Callable,
    applies: Callable | None = None,
    applies_text: str = "",
    flag: str | None | object = _UNSET,
    gui: dict | None = None,
    record: Callable | None = None,
):
    """A dataclass field that carries its :class:`ParameterSpec` in ``metadata``.

    ``record(value)`` gives the value as recorded with a result (JSON types).
    """
    spec = dict(
        default=default,
        help=help,
        check=check,
        applies=applies or (lambda params: True),
        applies_text=applies_text,
        flag=flag,
        gui=gui,
        record=record or (lambda value: value),
    )
    return field(default=default, metadata={"spec": spec})


def _as_tuple(value):
    """A 1D list or array of numbers as a tuple of floats (comparable, hashable); anything else as given."""
    try:
        if isinstance(value, (list, np.ndarray)) and np.ndim(value) == 1:
            return tuple(float(v) for v in value)
    except (TypeError, ValueError):  # ragged or not numbers: the parameter's own check says so
        pass
    return value


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.shape(a) == np.shape(b) and bool(np.array_equal(a, b))
    return a == b


@dataclass(frozen=True, eq=False)
class SegmentationParams:
    """The parameters of one segmentation, checked when created.

    See :func:`napari_spectral_seg.segment` for what each does. Values are
    kept as given; :meth:`used` gives the values a run acts on (None where a
    parameter does not apply).

    Raises
    ------
    TypeError, ValueError
        An invalid value, with a message naming the parameter and the fix.
    """

    threshold: float | str | None = _param(
        "auto",
        help=(
            "segment the pixels brighter than this number, or 'otsu' for Otsu's threshold (inside the mask "
            "when one is given); 'auto': Otsu's without a mask, none with one; none: the whole image (or the mask)"
        ),
        check=_check_threshold,
        gui=dict(label="threshold"),
    )
    n_clusters: int | str = _param(
        4,
        help="number of segments, or 'auto' to decide per object",
        check=_check_n_clusters,
        gui=dict(label="segments", min=1, max=10_000),
        record=lambda v: v if v == "auto" else int(v),
    )
    beta: float = _param(
        1.0,
        help="edge sensitivity: weights are exp(-beta * gradient / std); 1 is the scikit-learn example",
        check=_check_beta,
        gui=dict(label="beta", min=0.001, max=1e4, step=0.1),
        record=float,
    )
    eigen_solver: str = _param(
        "auto",
        help="auto (exact on small pieces, multilevel above), multilevel, arpack, lobpcg or amg",
        check=lambda v, p: _check_choice(EIGEN_SOLVERS)(v, p, "eigen_solver"),
        gui=dict(label="eigen solver", choices=EIGEN_SOLVERS),
    )
    random_state: int | None = _param(
        0,
        help="random seed: the same seed gives the same labels; none: a fresh seed each run (recorded)",
        check=_check_random_state,
        flag="--seed",
        gui=dict(label="seed", min=0, max=2**31 - 1),
    )
    spacing: tuple | None = _param(
        None,
        help="pixel (voxel) size per spatial axis, e.g. 4,1,1 for a z step of 4 xy pixels",
        check=lambda v, p: None,  # needs the number of spatial axes: check_spacing
        record=lambda v: None if v is None else [float(s) for s in v],
    )
    channel_axis: int | None = _param(
        None,
        help="axis holding channels (RGB or fluorescence channels)",
        check=_check_channel_axis,
        flag=None,
    )
    min_size: int | str = _param(
        "auto",
        help=(
            "pieces of the mask smaller than this many pixels are left out; 'auto': a tenth of the typical "
            "object where a threshold makes the mask, 0 inside a given mask"
        ),
        check=_check_min_size,
        gui=dict(label="min size (px)", min=0, max=10**9, whole=True),
        record=lambda v: v if v == "auto" else int(v),
    )
    assign_labels: str = _param(
        "kmeans",
        help="how the embedding becomes labels: kmeans or cluster_qr",
        check=lambda v, p: _check_choice(LABEL_METHODS)(v, p, "assign_labels"),
        flag=None,
    )
    seeds: Any = _param(
        None,
        help="points in pixel coordinates, one per wanted segment",
        check=_check_seeds,  # the shape against the image: seeds.check_seeds
        flag=None,
    )
    sigma: float | str | tuple | None = _param(
        "auto",
        help=(
            "Gaussian smoothing before the mask and the graph, in pixels (0: none); 'auto': in auto mode "
            "from the image's noise and its typical object size, none with a fixed number of segments"
        ),
        check=lambda v, p: None,  # needs the number of spatial axes: check_sigma
        record=lambda v: v if v is None or np.isscalar(v) else [float(x) for x in v],
        gui=dict(label="smoothing σ (px)", min=0.0, max=100.0, step=0.5),
    )
    sensitivity: float | None = _param(
        None,
        help=f"0..1: larger values split more readily ({DEFAULT_SENSITIVITY} when not set)",
        check=_check_sensitivity,
        applies=_auto,
        applies_text="in auto mode only (n_clusters 'auto')",
        gui=dict(label="sensitivity", min=0.0, max=1.0, step=0.05),
    )
    edge_level: float | None = _param(
        DEFAULT_EDGE_LEVEL,
        help=(
            "each object's outline is drawn where its signal above background has fallen to this fraction "
            "of its own brightness, 0..<1; outlines move at most 3 px; 0 keeps the threshold's edges"
        ),
        check=_check_edge_level,
        applies=_auto_with_threshold,
        applies_text="in auto mode with a threshold only (not with a mask)",
        gui=dict(label="edge level", min=0.0, max=0.95, step=0.05),
    )

    low_threshold: float | str | None = _param(
        "auto",
        help=(
            "auto mode: dim objects below the threshold are found down to this level, each standing out "
            "of the noise on its own; 'auto': the background plus 5 noise deviations (recorded as "
            "low_threshold_used), with an automatic threshold only; none: only the threshold's objects"
        ),
        check=_check_low_threshold,
        applies=_auto_with_threshold,
        applies_text="in auto mode with a threshold only (not with a mask)",
        gui=dict(label="dim objects down to"),
    )

    polarity: str = _param(
        "auto",
        help="objects brighter (bright) or darker (dark) than their background; auto: dark only where clear",
        check=lambda v, p: _check_choice(POLARITIES)(v, p, "polarity"),
        gui=dict(label="objects are", choices=POLARITIES),
    )
    background: str = _param(
        "auto",
        help="auto: subtract a background that varies across the field (uneven illumination); flat: never",
        check=lambda v, p: _check_choice(BACKGROUNDS)(v, p, "background"),
        gui=dict(label="background", choices=BACKGROUNDS),
    )
    time_limit: float | None = _param(
        TIME_LIMIT_SECONDS,
        help=(
            "refuse at once a run whose eigenvectors and k-means are estimated to take more than this many "
            "seconds of one CPU core; none: no limit (runs that do not fit in memory are still refused)"
        ),
        check=_check_time_limit,
        applies=lambda params: not _auto(params),
        applies_text="with a number of segments or seed points (auto mode has no time limit)",
        record=lambda v: None if v is None else float(v),
    )

    def __post_init__(self):
        for name in ("spacing", "sigma"):
            object.__setattr__(self, name, _as_tuple(getattr(self, name)))
        for spec in self.specs():
            spec.check(getattr(self, spec.name), self)

    def __eq__(self, other) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(_same(getattr(self, name), getattr(other, name)) for name in self.names())

    __hash__ = object.__hash__

    # ------------------------------------------------------------ the declaration, read back
    @classmethod
    def specs(cls) -> tuple[ParameterSpec, ...]:
        """Every parameter's :class:`ParameterSpec`, in declaration order."""
        specs = []
        for f in dataclasses.fields(cls):
            spec = dict(f.metadata["spec"])
            if spec["flag"] is _UNSET:  # the usual flag: --name-with-dashes
                spec["flag"] = "--" + f.name.replace("_", "-")
            specs.append(ParameterSpec(name=f.name, **spec))
        return tuple(specs)

    @classmethod
    def spec(cls, name: str) -> ParameterSpec:
        """One parameter's :class:`ParameterSpec`."""
        return next(s for s in cls.specs() if s.name == name)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_mapping(cls, values: Mapping, *, base: SegmentationParams | None = None, ignore=()) -> SegmentationParams:
        """Parameters from a mapping (a parameter file), over ``base`` (default: the library's defaults).

        A key that is not a parameter raises ValueError naming the closest
        parameter, unless it is in ``ignore`` (informational keys).
        """
        names = cls.names()
        for key in values:
            if key not in names and key not in ignore:
                close = (
                    [_ALIASES[key]] if key in _ALIASES else difflib.get_close_matches(str(key), names, n=1, cutoff=0.6)
                )
                hint = f"; did you mean '{close[0]}'?" if close else f"; parameters are {', '.join(names)}."
                raise ValueError(f"unknown parameter '{key}'{hint}")
        chosen = {key: values[key] for key in names if key in values}
        if chosen.get("spacing") is not None and isinstance(chosen["spacing"], list):
            chosen["spacing"] = tuple(chosen["spacing"])
        return dataclasses.replace(base, **chosen) if base is not None else cls(**chosen)

    def replace(self, **changes) -> SegmentationParams:
        """A copy with ``changes`` (checked again)."""
        return dataclasses.replace(self, **changes)

    def as_kwargs(self) -> dict:
        """The values as given, as keyword arguments of :func:`napari_spectral_seg.segment`."""
        return {name: getattr(self, name) for name in self.names()}

    # ------------------------------------------------------------ what a run acts on
    def applies(self, name: str) -> bool:
        """Whether parameter ``name`` acts on a run with these parameters."""
        return self.spec(name).applies(self)

    def used_sensitivity(self) -> float | None:
        """The sensitivity a run uses: the given one, the default in auto mode, else None."""
        if self.n_clusters != "auto":
            return None
        return DEFAULT_SENSITIVITY if self.sensitivity is None else float(self.sensitivity)

    def record(self, *, random_state: int, seeds=None) -> dict:
        """The parameters as recorded with a result: every parameter but :data:`NOT_RECORDED`, as used.

        ``random_state`` is the seed actually used (drawn when None was
        given) and ``seeds`` the seed points as pixel indices; parameters
        that do not apply to this run are recorded as None.
        """
        recorded = {
            spec.name: spec.record(getattr(self, spec.name)) for spec in self.specs() if spec.name not in NOT_RECORDED
        }
        recorded.update(
            random_state=int(random_state),
            seeds=None if seeds is None else np.asarray(seeds).tolist(),
            sensitivity=self.used_sensitivity(),
            edge_level=self.used_edge_level(),
            low_threshold=recorded["low_threshold"] if self.applies("low_threshold") else None,
        )
        return recorded

    def used_edge_level(self) -> float | None:
        """The edge level a run uses: None where it does not apply or is 0."""
        if not self.applies("edge_level") or self.edge_level is None or self.edge_level == 0:
            return None
        return float(self.edge_level)
