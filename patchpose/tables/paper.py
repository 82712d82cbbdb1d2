"""The paper's own Tables 1-3 (``patchpose/data/paper_tables.csv``, cited in its header) and their relative
gains beside the pipeline's.

A refinement's relative gain in an action (or ``Avg``) is ``(initial - refined) / initial`` in percent: positive
when the refinement lowers the error. The paper's Table 2 has no initial row; its method's initial errors
are taken from its other tables (the same method, ``[31]``). The pipeline's gains come from its tidy tables
(``patchpose.tables.numbers``); absolute errors are not comparable (another dataset and other baselines),
relative gains say whether the refinement helps as much.
"""

from __future__ import annotations

import io
from importlib import resources

import pandas as pd

from patchpose.tables.layout import ACTION_COLUMNS, INITIAL

__all__ = ["PAPER_TABLES", "PAPER_COLUMNS", "read_paper_tables", "relative_gains", "gains_beside_paper"]

PAPER_TABLES = "patchpose/data/paper_tables.csv"  # package data (named so in messages)
PAPER_COLUMNS = ("table", "method", "modality", "action", "mpjpe_mm", "bold")


def read_paper_tables() -> pd.DataFrame:
    """The paper's tables as printed: one row per (table, method, modality, action), ``PAPER_COLUMNS``."""
    text = resources.files("patchpose").joinpath("data/paper_tables.csv").read_text(encoding="utf-8")
    frame = pd.read_csv(io.StringIO(text), comment="#")
    if tuple(frame.columns) != PAPER_COLUMNS or frame.isna().any().any():
        raise ValueError(f"{PAPER_TABLES}: expected the complete columns {', '.join(PAPER_COLUMNS)}")
    return frame


def relative_gains(rows: pd.DataFrame, table_rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """Relative gains (%) of the refined rows of ``table_rows`` (default: every row of ``rows``) over the
    initial rows of the same method in ``rows``: one row per (method, modality), ``ACTION_COLUMNS`` as
    columns (NaN where an action or the initial row is missing). Both frames: columns method, modality,
    action, mpjpe_mm."""
    table_rows = rows if table_rows is None else table_rows
    initial = (
        rows[rows["modality"] == INITIAL]
        .drop_duplicates(["method", "action"])
        .set_index(["method", "action"])["mpjpe_mm"]
    )
    refined = table_rows[table_rows["modality"] != INITIAL]
    records = {}
    for (method, modality), group in refined.groupby(["method", "modality"], sort=False):
        values = group.set_index("action")["mpjpe_mm"]
        gains = []
        for action in ACTION_COLUMNS:
            before, after = initial.get((method, action)), values.get(action)
            gains.append(100.0 * (before - after) / before if before is not None and after is not None else None)
        records[(method, modality)] = gains
    frame = pd.DataFrame.from_dict(records, orient="index", columns=list(ACTION_COLUMNS), dtype=float)
    frame.index = pd.MultiIndex.from_tuples(list(records), names=["method", "modality"])
    return frame


def gains_beside_paper(table: str, ours: pd.DataFrame) -> pd.DataFrame:
    """The paper's relative gains of ``table`` (``table1``..``table3``) above the pipeline's (``ours``: the
    tidy rows of the same table), indexed (source, method, modality) with source ``paper`` or ``this run``."""
    paper = read_paper_tables()
    blocks = {
        "paper": relative_gains(paper, paper[paper["table"] == table]),
        "this run": relative_gains(ours),
    }
    return pd.concat(blocks, names=["source"])
