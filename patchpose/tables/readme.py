"""Table 1 and one figure of a run, put into the README between markers (not pasted by hand).

    python -m patchpose.tables.readme results/synthetic README.md docs/images

reads ``<results>/tables/table1.csv`` (the tidy CSV ``rules/tables.smk`` writes), renders it as a Markdown table
in the printed layout (actions as rows in the paper's order with Avg, one column per prediction file, the better
of each baseline's initial and refined value in bold, a † on a column refined by another updater than its own),
copies ``<results>/figures/per_action.png`` to ``<images>/results_per_action.png`` and replaces what lies
between ``<!-- table1:begin -->`` and ``<!-- table1:end -->`` in the README (the markers stay). Torch-free.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import pandas as pd

from patchpose.atomic import atomic_write_bytes
from patchpose.tables.layout import ACTION_COLUMNS, MODALITY_LABELS
from patchpose.tables.numbers import read_tidy
from patchpose.tables.render import DAGGER

__all__ = ["BEGIN", "END", "markdown_table1", "replace_block", "main"]

BEGIN, END = "<!-- table1:begin -->", "<!-- table1:end -->"
FIGURE = "results_per_action.png"


def _label(method: str, modality: str, updater: str) -> str:
    if modality == "initial":
        return f"`{method}`"
    mark = DAGGER if isinstance(updater, str) and updater not in ("", "own") else ""
    return f"`{method}` + {MODALITY_LABELS.get(modality, modality)}{mark}"


def markdown_table1(tidy: pd.DataFrame, decimals: int = 1) -> str:
    """Table 1's tidy rows as a Markdown table (actions as rows, files as columns, the better of each
    baseline's pair in bold at the printed precision; ties both bold)."""
    columns = list(dict.fromkeys(zip(tidy["method"], tidy["modality"], strict=True)))
    updater = {(m, d): u for m, d, u in zip(tidy["method"], tidy["modality"], tidy.get("updater", ""), strict=False)}
    value = {(m, d, a): v for m, d, a, v in zip(tidy["method"], tidy["modality"], tidy["action"], tidy["mpjpe_mm"],
                                                strict=True)}  # fmt: skip
    header = ["action", *(_label(m, d, updater.get((m, d), "")) for m, d in columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for action in ACTION_COLUMNS:
        printed = {column: round(float(value[(*column, action)]), decimals) for column in columns}
        cells = []
        for method, modality in columns:
            group = [printed[c] for c in columns if c[0] == method]
            text = f"{printed[(method, modality)]:.{decimals}f}"
            bold = len(group) > 1 and printed[(method, modality)] == min(group)
            cells.append(f"**{text}**" if bold else text)
        lines.append(f"| {action} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def replace_block(text: str, block: str, where: str) -> str:
    """``text`` with what lies between the markers replaced by ``block``; ValueError naming ``where`` unless
    each marker occurs once, in order."""
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise ValueError(f"{where}: needs one {BEGIN} line followed by one {END} line")
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n{block}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="results/<dataset> of a finished run")
    parser.add_argument("readme", type=Path, help="the README holding the markers")
    parser.add_argument("images", type=Path, help="where the figure is copied (committed with the README)")
    args = parser.parse_args(argv)
    table, figure = args.results / "tables" / "table1.csv", args.results / "figures" / "per_action.png"
    for path in (table, figure):
        if not path.is_file():
            print(f"patchpose.tables.readme: {path}: missing (run the pipeline first)", file=sys.stderr)
            return 1
    try:
        block = markdown_table1(read_tidy(table))
        text = replace_block(args.readme.read_text(encoding="utf-8"), block, str(args.readme))
    except (ValueError, KeyError) as error:
        print(f"patchpose.tables.readme: {error}", file=sys.stderr)
        return 1
    args.images.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(figure, args.images / FIGURE)
    atomic_write_bytes(args.readme, text.encode("utf-8"))
    print(f"{args.readme}: Table 1 from {table}; {args.images / FIGURE} from {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
