"""The library's messages in the words of the command line.

The library's errors name keyword arguments (``pass threshold=None``,
``lower n_clusters``); ``segment``'s parameters come from its flags, so its
messages name those (``pass --threshold none``, ``lower --n-clusters``). The
flags are the parameters' own (:meth:`SegmentationParams.specs`). Not for
errors of a parameter file, which names the parameters as its keys do.
"""

from __future__ import annotations

import re

from .core.params import SegmentationParams

__all__ = ["FLAGS", "for_command_line"]

# Parameter -> its flag.
FLAGS = {spec.name: spec.flag for spec in SegmentationParams.specs() if spec.flag is not None}
# Whole phrases that say what to do in the library's terms.
_PHRASES = (("draw or pass a mask", "pass --mask"),)
_NAMES = "|".join(map(re.escape, sorted(FLAGS, key=len, reverse=True)))
# A name=value, or a bare parameter name with an underscore (plain words such
# as "threshold" read well as they are).
_TOKEN = re.compile(
    r"(?<![\w'-])(?P<assigned>" + _NAMES + r")=(?P<value>\([^)]*\)|'[^']*'|[^\s,;:)]+)"
    r"|(?<![\w'-])(?P<name>" + "|".join(re.escape(name) for name in FLAGS if "_" in name) + r")\b"
)


def _shown(value: str) -> str:
    value = value.strip("'")
    if value == "None":
        return "none"
    if value.startswith("("):
        return value.strip("()").replace(" ", "")
    return value


def _flag_words(match: re.Match) -> str:
    if match.group("assigned"):
        value = match.group("value")
        end = "." if value.endswith(".") else ""  # the sentence's full stop, not the value's
        return f"{FLAGS[match.group('assigned')]} {_shown(value.removesuffix('.'))}{end}"
    return FLAGS[match.group("name")]


def for_command_line(message: str) -> str:
    """``message`` with keyword arguments replaced by ``segment``'s flags."""
    for phrase, words in _PHRASES:
        message = message.replace(phrase, words)
    return _TOKEN.sub(_flag_words, message)
