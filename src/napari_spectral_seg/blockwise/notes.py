"""What a finished blockwise run tells the user about blocks whose result may differ from in memory.

One wording for the command line and the widget; each names its own way to
ask for larger blocks (``--block-size`` or the widget's "block size" field).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["DimCutNote", "dim_cut_notes"]


class DimCutNote(NamedTuple):
    """A note on some blocks: a few words for a status line, and the whole text."""

    status: str
    text: str


def dim_cut_notes(summary: dict, larger_blocks: str = "a larger block size") -> list[DimCutNote]:
    """The notes of a run summary's ``basin_cut_blocks`` and ``candidate_cut_blocks``, in that order.

    Parameters
    ----------
    summary : dict
        What :func:`~.run.segment_blockwise` returned.
    larger_blocks : str
        How the reader asks for larger blocks, e.g. ``"a larger --block-size"``.

    Returns
    -------
    list of DimCutNote
        One per kind of block found, none when every dim-object basin fitted an overlap.
    """
    notes = []
    if kept := summary.get("basin_cut_blocks") or []:
        notes.append(
            DimCutNote(
                f"{len(kept)} block(s) may differ from in memory",
                f"A kept dim object may differ from a run in memory ({len(kept)} block(s): {_shown(kept)}): "
                f"its surroundings reach past the largest overlap; {larger_blocks} avoids it.",
            )
        )
    if dropped := summary.get("candidate_cut_blocks") or []:
        notes.append(
            DimCutNote(
                f"{len(dropped)} block(s) may miss a dim object",
                f"A dim object near a block side may be missing ({len(dropped)} block(s): {_shown(dropped)}): "
                f"its surroundings reach past the largest overlap; {larger_blocks} avoids it.",
            )
        )
    return notes


def _shown(keys) -> str:
    """The first three block keys, with ``...`` when there are more."""
    return ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")
