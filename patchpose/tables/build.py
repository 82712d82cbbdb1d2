"""One table from its prediction files' per-frame errors to its three files: tidy CSV, LaTeX and HTML.

``build_table`` is the ``make_table`` rule's call. Its files (``results/<dataset>/tables/<table>.*``):

* ``<table>.csv``: the tidy numbers (``patchpose.tables.numbers``), 4 decimals;
* ``<table>.tex``: a ``table`` float for a plain ``article`` with ``booktabs`` (``\\usepackage{booktabs}``),
  written by pandas' ``Styler.to_latex``; ``\\input`` it;
* ``<table>.html``: a standalone page, the same Styler's HTML, and for Tables 1-3 the paper's relative gains
  beside this run's (``patchpose.tables.paper``); the Snakemake report shows it.

Every caption states what the table shows, the averaging convention (``layout.AVERAGING_CONVENTION``), the
bold rule and the marks.
"""

from __future__ import annotations

import html
import os

import numpy as np
import pandas as pd

from patchpose.atomic import atomic_write_text
from patchpose.evaluation.frame_errors import read_frame_errors
from patchpose.tables.layout import (
    AVERAGING_CONVENTION,
    BOLD_RULE,
    INITIAL,
    MODALITY_LABELS,
    OWN,
    updater_source_note,
)
from patchpose.tables.numbers import tidy_table, write_tidy
from patchpose.tables.paper import gains_beside_paper
from patchpose.tables.plan import Column, bold_groups
from patchpose.tables.render import (
    DAGGER,
    bold_cells,
    column_labels,
    extended_table,
    styled,
    to_html,
    to_latex,
    wide_table,
)

__all__ = ["TITLES", "caption", "render_table", "build_table"]

TITLES = {
    "table1": "Table 1. Refinement of every baseline (MPJPE, mm)",
    "table2": "Table 2. Cropped RGB patches vs the uncropped RGB frame (MPJPE, mm)",
    "table3": "Table 3. Patch input modality (MPJPE, mm)",
    "extended": "Extended table. Averages with 95% intervals, PA-MPJPE, and the controls (mm)",
}
_WHAT = {
    "table1": (
        "MPJPE (protocol 1, no Procrustes alignment) per action on the test split, each baseline before "
        "(initial) and after the patch-based refinement; lower is better."
    ),
    "table2": (
        "The ablation baseline refined from the whole (uncropped) RGB frame and from cropped RGB limb patches, "
        "no segmentation (the paper's Table 2)."
    ),
    "table3": (
        "The ablation baseline, initial and refined from cropped RGB, cropped Seg and both (the paper's Table 3)."
    ),
    "extended": (
        "Every prediction file: Avg of MPJPE and of PA-MPJPE (protocol 2, after a per-frame similarity "
        "Procrustes fit) with their intervals, and the refinement's improvement of MPJPE over its initial "
        "file (initial - refined, positive = better) with its paired interval. pose only: an updater that "
        "sees the initial pose but no image (a control); pose + boxes: one that also sees the limb boxes but "
        "no pixels (a control); RGB+Seg (cond.): the RGB+Seg updater conditioned on the initial pose (it also "
        "receives the initial orientations and limb boxes)."
    ),
}


def caption(
    table: str,
    columns: list[Column],
    *,
    dataset: str,
    resamples: int,
    confidence: float,
    references: list[str],
    updater_sources: dict[str, str],
) -> str:
    """The caption under ``table``: what it shows, the averaging convention, bold, intervals and marks."""
    parts = [f"{TITLES[table]}, dataset {dataset}.", _WHAT[table], AVERAGING_CONVENTION, BOLD_RULE]
    share = f"{confidence:.0%}"
    parts.append(
        f"Intervals: {share} percentile intervals of a stratified cluster bootstrap ({resamples} resamples of the "
        "frames' clusters within each action); "
        + ("shown here." if table == "extended" else "in the CSV and the extended table.")
    )
    shown = {column.baseline for column in columns}
    for reference in references:
        if reference in shown:
            parts.append(f"{reference}: the training subjects' mean pose, the reference a method has to beat.")
    if table in ("table1", "extended"):
        refined = sorted({column.baseline for column in columns if column.refined})
        for baseline in refined:
            source = updater_sources.get(baseline, OWN)
            if source != OWN:
                parts.append(f"{DAGGER if table == 'table1' else ''}{baseline}: {updater_source_note(source)}.")
    return " ".join(parts)


def render_table(
    table: str,
    tidy: pd.DataFrame,
    columns: list[Column],
    *,
    text: str,
    decimals: int,
    references: list[str],
    updater_sources: dict[str, str],
) -> tuple[str, str]:
    """(LaTeX, HTML table) of a tidy table, captioned ``text``."""
    labels = column_labels(table, columns, updater_sources, references)
    groups = bold_groups(columns)
    if table == "extended":
        frame = extended_table(tidy, columns, labels, decimals)
        numbers = frame[[("MPJPE", "Avg"), ("PA-MPJPE", "Avg")]]
        bold = np.zeros(frame.shape, dtype=bool)
        marks = bold_cells(numbers, groups, decimals, along="rows")
        bold[:, [0, 2]] = marks
        column_format = "l" + "rr" * 3
    else:
        frame = wide_table(tidy, columns, labels)
        bold = bold_cells(frame, groups, decimals)
        column_format = "l" + "r" * len(columns)
    hide = table == "extended"  # its rows' first level, the baseline, only keeps them apart
    latex = to_latex(
        styled(frame, bold, decimals, target="latex", uuid=table, hide_first_level=hide),
        text,
        f"tab:patchpose-{table}",
        column_format,
        compact=table == "extended" or len(columns) > 6,
    )
    page = to_html(styled(frame, bold, decimals, target="html", uuid=table, hide_first_level=hide), text)
    return latex, page


def _paper_section(table: str, ours: pd.DataFrame, decimals: int) -> str:
    gains = gains_beside_paper(table, ours)
    gains.index = gains.index.set_levels(
        [MODALITY_LABELS.get(value, value) for value in gains.index.levels[2]], level=2
    )
    bold = np.zeros(gains.shape, dtype=bool)
    styler = styled(gains, bold, decimals, target="html", uuid=f"{table}-paper")
    text = (
        "Relative gain of each refinement over its initial file, (initial - refined) / initial in percent "
        "(positive: the refinement lowers the error), per action and on Avg: the paper's (Human3.6M, its "
        "baselines; patchpose/data/paper_tables.csv) above this run's. Absolute errors are not comparable "
        "across datasets and baselines, relative gains are. The paper's Avg is its printed average column."
    )
    return f"<h2>Beside the paper</h2>\n{to_html(styler, text)}"


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n</head>\n<body>\n<h1>{html.escape(title)}</h1>\n{body}\n</body>\n</html>\n"
    )


def build_table(
    table: str,
    columns: list[Column],
    errors: list[str | os.PathLike],
    *,
    csv: str | os.PathLike,
    tex: str | os.PathLike,
    page: str | os.PathLike,
    dataset: str,
    resamples: int,
    confidence: float,
    seed: int,
    decimals: int,
    references: list[str],
    updater_sources: dict[str, str] | None = None,
    improvements: list[str | os.PathLike] | None = None,
    reference_errors: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Read each column's per-frame ``errors`` (and, for the extended table, each refined column's
    ``improvements`` table, in column order), compute the
    tidy table, render it and write ``csv``, ``tex`` and ``page`` (all atomic, after everything is computed).
    ``reference_errors``: Table 2's baseline's own per-frame errors, for the relative gains only (Table 2 has
    no initial column). Returns the tidy frame."""
    sources = dict(updater_sources or {})
    options = {"resamples": resamples, "confidence": confidence, "seed": seed}
    tidy = tidy_table(
        table,
        columns,
        [read_frame_errors(path) for path in errors],
        updater_sources=sources,
        improvements=improvements,
        **options,
    )
    text = caption(
        table,
        columns,
        dataset=dataset,
        resamples=resamples,
        confidence=confidence,
        references=references,
        updater_sources=sources,
    )
    latex, table_html = render_table(
        table, tidy, columns, text=text, decimals=decimals, references=references, updater_sources=sources
    )
    body = table_html
    if table != "extended":
        ours = tidy
        if reference_errors is not None:
            initial = Column(columns[0].baseline, INITIAL)
            reference = tidy_table("table2", [initial], [read_frame_errors(reference_errors)], **options)
            ours = pd.concat([reference, tidy], ignore_index=True)
        body += "\n" + _paper_section(table, ours[["method", "modality", "action", "mpjpe_mm"]], decimals)
    write_tidy(csv, tidy)
    atomic_write_text(tex, latex)
    atomic_write_text(page, _page(TITLES[table], body))
    return tidy
