"""The segmentation flags of ``segment`` and ``batch``, built from the parameters' declaration.

One flag per parameter that declares one (:meth:`SegmentationParams.specs()
<napari_spectral_seg.core.params.SegmentationParams.specs>`), with its help
and its default. ``none`` is accepted wherever the parameter takes None (the
help and our own messages offer it: ``--threshold none``, ``--seed none``).
A value that does not parse is refused in one line that names the flag and
gives an example, never with argparse's usage text.
"""

from __future__ import annotations

import argparse
import typing

from .core.params import ParameterSpec, SegmentationParams

__all__ = ["OneLineParser", "add_segmentation_arguments", "flag_specs", "given_flags", "segment_parameters"]


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (the usage is in ``--help``), exit code 2."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _NoneGiven:
    """The value of a flag given as ``none`` (a flag left out is None: "not given")."""

    def __repr__(self) -> str:
        return "none"


NONE_GIVEN = _NoneGiven()


def _threshold(text: str):
    if text.lower() in ("otsu", "auto"):
        return text.lower()
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is neither a number nor 'otsu', 'auto' or 'none'") from None


def _auto_or(number, what: str):
    """A parser of 'auto' or a ``number`` (int or float); ``what`` ends the message for anything else."""

    def parse(text: str):
        if text.lower() == "auto":
            return "auto"
        try:
            return number(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is neither {what}") from None

    return parse


_n_clusters = _auto_or(int, "a whole number nor 'auto'")
_min_size = _auto_or(int, "a whole number of pixels nor 'auto'")
_low_threshold = _auto_or(float, "a number nor 'auto' or 'none'")


def _spacing(text: str):
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not comma-separated numbers, e.g. 4,1,1") from None


def _sigma(text: str):
    if text.lower() == "auto":
        return "auto"
    values = _spacing(text)
    return values[0] if len(values) == 1 else values


# Parameters whose text is not one number: parsed by their own function;
# the others by the first type of their annotation (int, float or str).
_PARSERS = {
    "threshold": _threshold,
    "n_clusters": _n_clusters,
    "spacing": _spacing,
    "sigma": _sigma,
    "min_size": _min_size,
    "low_threshold": _low_threshold,
}
_KIND_WORDS = {int: "a whole number", float: "a number"}


def flag_specs() -> list[ParameterSpec]:
    """The parameters that have a command-line flag, in declaration order."""
    return [spec for spec in SegmentationParams.specs() if spec.flag is not None]


def _accepts_none(spec: ParameterSpec) -> bool:
    try:
        SegmentationParams(**{spec.name: None})
    except (TypeError, ValueError):
        return False
    return True


def _typed(spec: ParameterSpec):
    """The parser of a one-number flag: its annotation's type, refusing text with an example."""
    hint = typing.get_type_hints(SegmentationParams)[spec.name]
    kind = next(kind for kind in typing.get_args(hint) or (hint,) if kind is not type(None))
    if kind not in _KIND_WORDS:
        return kind
    example = f"e.g. {spec.flag} {_shown(spec.default)}" if spec.default is not None else "e.g. 0.5"

    def parse(text: str):
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not {_KIND_WORDS[kind]}; {example}") from None

    return parse


def _parser(spec: ParameterSpec):
    parse = _PARSERS.get(spec.name) or _typed(spec)
    if not _accepts_none(spec):
        return parse

    def parse_or_none(text: str):
        return NONE_GIVEN if text.strip().lower() == "none" else parse(text)

    return parse_or_none


def _shown(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def _help(spec: ParameterSpec, with_mask: bool) -> str:
    """The flag's help: the parameter's, with the command's default where it does not say it."""
    text = spec.help + (f"; {spec.applies_text}" if spec.applies_text else "")
    if "default" not in text:
        default = _shown(spec.default)
        text += f" (default: {default})"
    return text.replace("%", "%%")


def add_segmentation_arguments(parser: argparse.ArgumentParser, *, with_mask: bool) -> None:
    """One flag per parameter that declares one; unset flags are None ("not given")."""
    for spec in flag_specs():
        flag = spec.flag
        parser.add_argument(
            flag,
            dest=spec.name,
            type=_parser(spec),
            default=None,
            metavar=flag.lstrip("-").replace("-", "_").upper(),
            help=_help(spec, with_mask),
        )


def given_flags(args) -> dict:
    """The segmentation flags given on the command line, by parameter name."""
    given = {spec.name: getattr(args, spec.name) for spec in flag_specs() if getattr(args, spec.name) is not None}
    return {name: None if value is NONE_GIVEN else value for name, value in given.items()}


def segment_parameters(args, *, has_mask: bool, channel_axis: int | None) -> SegmentationParams:
    """``segment``'s parameters: the defaults, then the flags."""
    return SegmentationParams(**{**given_flags(args), "channel_axis": channel_axis})
