"""Table 1, every refinement's gain, the claims and one figure of a run, put into the README between markers (not
pasted by hand).

    python -m patchpose.tables.readme results/synthetic README.md docs/images

reads ``<results>/tables/table1.csv`` (the tidy CSV ``rules/tables.smk`` writes), renders it as a Markdown table
in the printed layout (actions as rows in the paper's order with Avg, one column per prediction file, the better
of each baseline's initial and refined value in bold, a † on a column refined by another updater than its own)
and replaces what lies between ``<!-- table1:begin -->`` and ``<!-- table1:end -->`` in the README (the markers
stay); renders every ``<results>/refined/<baseline>/<variant>/improvement.csv`` (initial -> refined, the gain with
its interval and relative) and ``<results>/claims.json`` (each claim's figure and whether it holds,
``patchpose.tables.claims``) into what lies between ``<!-- results:begin -->`` and ``<!-- results:end -->``;
copies ``<results>/figures/per_action.png`` to ``<images>/results_per_action.png``. Torch-free.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import pandas as pd

from patchpose.atomic import atomic_write_bytes
from patchpose.evaluation.refinement import read_improvement
from patchpose.metrics import MEAN_OF_ACTION_MEANS_LABEL
from patchpose.tables.claims import claim_rows, read_claims
from patchpose.tables.layout import ACTION_COLUMNS, MODALITY_LABELS
from patchpose.tables.numbers import read_tidy
from patchpose.tables.render import DAGGER

__all__ = ["BEGIN", "END", "RESULTS_BEGIN", "RESULTS_END", "markdown_table1", "markdown_results", "replace_block",
           "main"]  # fmt: skip

BEGIN, END = "<!-- table1:begin -->", "<!-- table1:end -->"
RESULTS_BEGIN, RESULTS_END = "<!-- results:begin -->", "<!-- results:end -->"
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


def markdown_results(results: Path) -> str:
    """Every refinement of the run (``refined/<baseline>/<variant>/improvement.csv``: initial -> refined, the gain
    with its interval and relative, the mean of the action means) and every claim of its ``claims.json``
    (figure, verdict) as two Markdown tables and a count. ValueError naming the file when one is missing or
    not what it should be."""
    files = sorted((results / "refined").glob("*/*/improvement.csv"))
    if not files:
        raise ValueError(f"{results / 'refined'}: no <baseline>/<variant>/improvement.csv (run the pipeline first)")
    order = {modality: index for index, modality in enumerate(MODALITY_LABELS)}
    files.sort(key=lambda path: (path.parent.parent.name, order.get(path.parent.name, len(order)), path.parent.name))
    lines = ["| baseline | updater | MPJPE, initial → refined | gain [95% interval] (relative) |", "|---|---|---|---|"]
    for path in files:
        rows = read_improvement(path)
        if MEAN_OF_ACTION_MEANS_LABEL not in rows:
            raise ValueError(f"{path}: no {MEAN_OF_ACTION_MEANS_LABEL!r} row")
        row = rows[MEAN_OF_ACTION_MEANS_LABEL]
        variant = path.parent.name
        lines.append(
            f"| `{path.parent.parent.name}` | {MODALITY_LABELS.get(variant, variant)} (`{variant}`) | "
            f"{row['initial_mm']:.1f} → {row['refined_mm']:.1f} | {row['improvement_mm']:+.1f} "
            f"[{row['ci_low_mm']:+.1f}, {row['ci_high_mm']:+.1f}] ({row['relative_improvement']:+.1%}) |"
        )
    rows = claim_rows(read_claims(results / "claims.json"), relative=True)
    lines += ["", "| claim (`claims.json`) | figure | holds |", "|---|---|---|"]
    lines += [f"| {name} | {figure} | {'yes' if holds else '**no**'} |" for name, (figure, holds) in rows.items()]
    claims = {name: holds for name, (_, holds) in rows.items() if " / " not in name}
    count = f"{sum(claims.values())} of {len(claims)} claims hold."
    lines += ["", f"{count} A paired claim's figure is the improvement in mm with its interval and relative to what it "
              "improves on; a rare claim's the rarest decile's relative gain beside the commonest's, then the "
              "difference in percentage points with its interval (not part of the verdict); a row named `claim / part` "
              "is one part of a claim."]  # fmt: skip
    return "\n".join(lines) + "\n"


def replace_block(text: str, block: str, where: str, begin: str = BEGIN, end: str = END) -> str:
    """``text`` with what lies between the markers ``begin`` and ``end`` replaced by ``block``; ValueError naming
    ``where`` unless each marker occurs once, in order."""
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise ValueError(f"{where}: needs one {begin} line followed by one {end} line")
    head, rest = text.split(begin)
    _, tail = rest.split(end)
    return f"{head}{begin}\n{block}{end}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="results/<dataset> of a finished run")
    parser.add_argument("readme", type=Path, help="the README holding the markers")
    parser.add_argument("images", type=Path, help="where the figure is copied (committed with the README)")
    args = parser.parse_args(argv)
    table, figure = args.results / "tables" / "table1.csv", args.results / "figures" / "per_action.png"
    for path in (table, figure, args.results / "claims.json"):
        if not path.is_file():
            print(f"patchpose.tables.readme: {path}: missing (run the pipeline first)", file=sys.stderr)
            return 1
    try:
        text = args.readme.read_text(encoding="utf-8")
        text = replace_block(text, markdown_table1(read_tidy(table)), str(args.readme))
        text = replace_block(text, markdown_results(args.results), str(args.readme), RESULTS_BEGIN, RESULTS_END)
    except (ValueError, KeyError) as error:
        print(f"patchpose.tables.readme: {error}", file=sys.stderr)
        return 1
    args.images.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(figure, args.images / FIGURE)
    atomic_write_bytes(args.readme, text.encode("utf-8"))
    print(
        f"{args.readme}: Table 1 from {table}, the refinements and claims from {args.results}; "
        f"{args.images / FIGURE} from {figure}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
