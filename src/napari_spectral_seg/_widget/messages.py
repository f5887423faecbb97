"""The core's messages in the words of the dock widget.

The library's errors name keyword arguments (``n_clusters=900``, ``pass
threshold=None``); a widget user sees fields ("segments", "threshold").
:func:`for_widget` rewrites a message with the field labels, from one
mapping built from the parameters' ``gui`` labels (:data:`FIELD_LABELS`),
and :func:`headline` gives its first sentence for a notification, short
enough not to be cut off and keeping the fix; the full text goes to the status line's tooltip.
"""

from __future__ import annotations

import re

from ..core.params import SegmentationParams

__all__ = ["FIELD_LABELS", "for_widget", "headline"]

# Parameter -> the label of its field; those without a field by what sets them.
FIELD_LABELS = {
    **{spec.name: spec.gui["label"] for spec in SegmentationParams.specs() if spec.gui is not None},
    "seeds": "seed points",
    "spacing": "the image layer's scale",
    "channel_axis": "the image layer's channels",
}
# Whole phrases that say what to do in the library's terms.
_PHRASES = (
    ("pass threshold=None", "untick 'Otsu threshold' and set 'threshold' below the image minimum"),
    ("threshold='otsu'", "'Otsu threshold'"),
    ("n_clusters='auto'", "'Auto: decide per object'"),
    ("draw or pass a mask", "draw a mask"),
    ("eigen_solver='multilevel'", "'eigen solver' multilevel"),
    # NaN pixels: the library's fix names numpy and keywords; the widget's is a layer to pick.
    (
        "replace them first, e.g. np.nan_to_num(image), or leave them out with a mask "
        "(mask=, segment's --mask, a mask layer)",
        "replace them, or pick a 'mask' layer that leaves them out",
    ),
    (
        "replace them first, e.g. np.nan_to_num(image), or leave them out of the mask",
        "replace them, or leave them out of the 'mask' layer",
    ),
    # A blockwise run's local cluster lost its workers: the fix is a field and the button, not a flag.
    (
        "check the free memory or try fewer --workers, then re-run the same command to resume",
        "check the free memory or lower 'workers', then Run blockwise again to resume",
    ),
    ("try a smaller --block-size", "try a smaller 'block size'"),
    # The memory guard's refusal: the widget can also segment the image's file blockwise.
    ("of memory is available; ", "of memory is available; use 'Run blockwise' (Large images) on the image's file; "),
)
_NAMES = "|".join(map(re.escape, FIELD_LABELS))
# A quoted phrase (left as it is), a name=value, or a bare parameter name.
_TOKEN = re.compile(
    r"(?P<quoted>'[^']*')"
    r"|\b(?P<assigned>" + _NAMES + r")=(?P<value>\([^)]*\)|\[[^\]]*\]|'[^']*'|[^\s,;:)]+)"
    r"|\b(?P<name>" + _NAMES + r")\b"
)


def _field_words(match: re.Match) -> str:
    if match.group("quoted"):
        return match.group("quoted")
    if match.group("assigned"):
        return f"'{FIELD_LABELS[match.group('assigned')]}' {match.group('value').strip(chr(39))}"
    name = match.group("name")
    return name if FIELD_LABELS[name] == name else f"'{FIELD_LABELS[name]}'"


HEADLINE_LENGTH = 110


def for_widget(message: str) -> str:
    """``message`` with parameter names replaced by the widget's field labels."""
    for phrase, words in _PHRASES:
        message = message.replace(phrase, words)
    return _TOKEN.sub(_field_words, message)


_LEAST_PROBLEM = 40  # characters of what is wrong kept before the fix in a cut headline


def headline(message: str, limit: int = HEADLINE_LENGTH) -> str:
    """The first sentence of ``message`` in at most ``limit`` characters, keeping what to do.

    A sentence too long loses its middle clauses: the first says what is
    wrong, the last what to do about it (``mask is empty: ...; lower the
    'threshold'``). When those two do not fit either, the first is cut short
    and the last kept whole (if it leaves the first ``_LEAST_PROBLEM`` characters).
    """
    first = re.split(r"(?<!e\.g\.)(?<!i\.e\.)(?<=\.)\s", message, maxsplit=1)[0]  # "e.g." ends no sentence
    if len(first) <= limit:
        return first
    clauses = re.split(r";\s+", first.rstrip("."))
    if len(clauses) == 1:
        return _cut(first, limit)
    short = f"{clauses[0]}; {clauses[-1]}"
    if len(short) <= limit:
        return short
    if len(clauses[-1]) <= limit - _LEAST_PROBLEM:  # what to do fits: shorten what is wrong instead
        return f"{_cut(clauses[0], limit - len(clauses[-1]) - 2)}; {clauses[-1]}"
    # Neither fits: both shortened, what to do never dropped (the full text is in the tooltip).
    problem = _cut(clauses[0], max(_LEAST_PROBLEM, limit // 2))
    return f"{problem}; {_cut(clauses[-1], limit - len(problem) - 2)}"


def _cut(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters, cut at a word with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"
