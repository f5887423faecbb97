"""Print (or, with --write, put into README.md) the table of parameters built from SegmentationParams.

The README's table between ``<!-- parameters:start -->`` and ``<!-- parameters:end -->`` is this
script's output; ``tests/test_readme.py`` checks that they agree, so the table never drifts from
the one declaration in ``core/params.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from napari_spectral_seg.core.params import SegmentationParams

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- parameters:start -->", "<!-- parameters:end -->"


def _shown(value) -> str:
    return "none" if value is None else f"`{value!r}`" if isinstance(value, str) else f"`{value}`"


def parameter_table() -> str:
    """The Markdown table: one row per parameter, in declaration order."""
    rows = [
        "| parameter | default (library, widget, `segment` command, `batch`) | flag | widget field | applies |",
        "|---|---|---|---|---|",
    ]
    for spec in SegmentationParams.specs():
        flag = spec.flag
        field = spec.gui["label"] if spec.gui else "from the layer" if spec.name in ("spacing", "channel_axis") else "-"
        if spec.name == "seeds":
            field = "seed points (a Points layer)"
        rows.append(
            f"| `{spec.name}` | {_shown(spec.default)} | {f'`{flag}`' if flag else '-'} | {field} "
            f"| {spec.applies_text or 'always'} |"
        )
    return "\n".join(rows)


def readme_table(text: str) -> str:
    """The table currently in the README text."""
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def main(argv) -> int:
    table = parameter_table()
    if "--write" in argv:
        text = README.read_text()
        before, rest = text.split(START, 1)
        README.write_text(f"{before}{START}\n{table}\n{END}{rest.split(END, 1)[1]}")
    else:
        print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
