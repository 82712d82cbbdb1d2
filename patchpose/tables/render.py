"""A tidy table printed: a wide frame, the bold cells, and pandas' Styler writing LaTeX (booktabs) and HTML.

Tables 1-3 are printed with the actions as rows (the paper's 15 names in its order, then ``Avg``) and the
prediction files as columns, two header levels: the baseline, then ``initial`` or ``+ <modality>``. The paper
prints the actions as columns in two halves; one booktabs tabular of 16 number columns does not fit an
article's text width, a few method columns do. The extended table has a row per file and the averages of
MPJPE and PA-MPJPE with their intervals, and the paired improvement, as columns.

Nothing is formatted by hand: the numbers go through ``Styler.format`` (``decimals``), bold through a CSS
``font-weight: bold`` that ``Styler.to_latex(convert_css=True)`` turns into ``\\bfseries``, labels through the
Styler's LaTeX escape. The caption states the table, the averaging convention and the marks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler

from patchpose.tables.layout import (
    ACTION_COLUMNS,
    AVG,
    MODALITY_LABELS,
    OWN,
    latex_escape,
)
from patchpose.tables.plan import Column

__all__ = [
    "DAGGER",
    "column_labels",
    "wide_table",
    "extended_table",
    "bold_cells",
    "styled",
    "to_latex",
    "to_html",
]

DAGGER = "†"  # marks a column refined by an updater other than its own
_BOLD = "font-weight: bold"
_HTML_STYLES = [
    {"selector": "", "props": "border-collapse: collapse; font-family: sans-serif; font-size: 0.9em; margin: 1em 0;"},
    {"selector": "caption", "props": "caption-side: bottom; text-align: left; padding-top: 0.6em; max-width: 60em;"},
    {"selector": "th, td", "props": "padding: 0.2em 0.6em; text-align: right;"},
    {"selector": "thead th", "props": "border-bottom: 1px solid #444; text-align: center;"},
    {"selector": "tbody th", "props": "text-align: left;"},
]


def column_labels(table: str, columns: list[Column], updater_sources: dict[str, str], references: list[str]):
    """The two header levels of each column: (baseline, ``initial`` or ``+ <modality>``), with ``DAGGER``
    after a Table 1 column refined by an updater that is not its own, and ``(reference)`` on a reference."""
    labels = []
    for column in columns:
        if not column.refined:
            bottom = "reference" if column.baseline in references else "initial"
        else:
            name = "cropped RGB" if (table == "table2" and column.modality == "rgb") else None
            bottom = "+ " + (name or MODALITY_LABELS.get(column.modality, column.modality))
            if table == "table1" and updater_sources.get(column.baseline, OWN) != OWN:
                bottom += DAGGER
        labels.append((column.baseline, bottom))
    return labels


def wide_table(tidy: pd.DataFrame, columns: list[Column], labels) -> pd.DataFrame:
    """MPJPE (mm) with the printed actions (``ACTION_COLUMNS``) as rows and ``columns`` (labelled ``labels``,
    two levels) as columns; an action a column lacks is NaN."""
    values = tidy.set_index(["method", "modality", "action"])["mpjpe_mm"]
    data = {
        label: [values.get((column.baseline, column.modality, action), np.nan) for action in ACTION_COLUMNS]
        for column, label in zip(columns, labels, strict=True)
    }
    frame = pd.DataFrame(data, index=pd.Index(ACTION_COLUMNS))
    frame.columns = pd.MultiIndex.from_tuples(list(data))
    return frame


def _interval(low: float, high: float, decimals: int) -> str:
    if not (np.isfinite(low) and np.isfinite(high)):
        return ""
    return f"[{low:.{decimals}f}, {high:.{decimals}f}]"


def extended_table(tidy: pd.DataFrame, columns: list[Column], labels, decimals: int) -> pd.DataFrame:
    """One row per column (labelled ``labels``): its ``Avg`` MPJPE and PA-MPJPE with their intervals and, for
    a refined file, the paired improvement of MPJPE over its baseline with its interval (mm)."""
    rows = tidy[tidy["action"] == AVG].set_index(["method", "modality"])
    data = []
    for column in columns:
        row = rows.loc[(column.baseline, column.modality)]
        data.append(
            [
                row["mpjpe_mm"],
                _interval(row["ci_low"], row["ci_high"], decimals),
                row["pa_mpjpe_mm"],
                _interval(row["pa_ci_low"], row["pa_ci_high"], decimals),
                row["improvement_mm"],
                _interval(row["improvement_ci_low"], row["improvement_ci_high"], decimals),
            ]
        )
    header = pd.MultiIndex.from_tuples(
        [
            ("MPJPE", AVG),
            ("MPJPE", "95% CI"),
            ("PA-MPJPE", AVG),
            ("PA-MPJPE", "95% CI"),
            ("improvement", "MPJPE"),
            ("improvement", "95% CI"),
        ]
    )
    # one printed label per row, as the paper's Table 1: the baseline on its initial row, "+ <modality>" on
    # its refinements; the baseline is kept as a hidden first level so that every row stays unique
    rows = [(top, top + (" (reference)" if bottom == "reference" else "") if bottom in ("initial", "reference")
             else bottom) for top, bottom in labels]  # fmt: skip
    return pd.DataFrame(data, index=pd.MultiIndex.from_tuples(rows), columns=header)


def bold_cells(values: pd.DataFrame, groups: list[list[int]], decimals: int, *, along: str = "columns") -> np.ndarray:
    """(rows, columns) bool: the lowest value of each group at the printed precision (``decimals``), all of
    them on a tie; NaN never. ``groups``: positions compared with one another, of columns within each row
    (``along="columns"``, Tables 1-3) or of rows within each column (``along="rows"``, the extended table)."""
    numbers = values.to_numpy(dtype=np.float64).round(decimals)
    if along == "rows":
        return bold_cells(pd.DataFrame(numbers.T), groups, decimals).T
    bold = np.zeros(numbers.shape, dtype=bool)
    for group in groups:
        block = numbers[:, group]
        with np.errstate(invalid="ignore"):
            best = np.nanmin(np.where(np.isnan(block), np.inf, block), axis=1, keepdims=True)
        bold[:, group] = np.isfinite(block) & (block == best)
    return bold


def styled(
    frame: pd.DataFrame, bold: np.ndarray, decimals: int, *, target: str, uuid: str, hide_first_level: bool = False
) -> Styler:
    """A Styler of ``frame`` for ``target`` ``"latex"`` or ``"html"``: numbers to ``decimals`` (NaN as "--"),
    ``bold`` cells bold, labels escaped for the target; ``hide_first_level``: the first level of the row
    labels is not printed (it only keeps the rows apart)."""
    if target not in ("latex", "html"):
        raise ValueError(f"target must be latex or html, got {target!r}")
    escape = latex_escape if target == "latex" else None
    styler = Styler(frame, uuid=uuid, cell_ids=False)
    numeric = [key for key in frame.columns if pd.api.types.is_numeric_dtype(frame[key])]
    text = [key for key in frame.columns if key not in numeric]
    styler = styler.format(precision=decimals, na_rep="--", subset=numeric)
    styler = styler.format(escape or (lambda value: value), subset=text)
    for axis in (0, 1):
        styler = styler.format_index(escape or (lambda value: value), axis=axis, level=None)
    if hide_first_level:
        styler = styler.hide(level=0, axis=0)
    css = np.where(bold, _BOLD, "")
    return styler.apply(lambda _: pd.DataFrame(css, index=frame.index, columns=frame.columns), axis=None)


def to_latex(styler: Styler, caption: str, label: str, column_format: str, *, compact: bool = False) -> str:
    """LaTeX of ``styler``: a ``table`` float with booktabs rules, ``caption`` (plain text, escaped here) above
    a tabular of ``column_format``, labelled ``label``; ``compact``: footnote-size type and narrower column
    gaps, so that a wide table still fits an article's text width."""
    if compact:
        styler = styler.set_table_styles(
            [{"selector": "footnotesize", "props": ":;"}, {"selector": "setlength", "props": r":{\tabcolsep}{3pt};"}]
        )
    return styler.to_latex(
        caption=latex_escape(caption),
        label=label,
        hrules=True,
        position_float="centering",
        column_format=column_format,
        multicol_align="c",
        multirow_align="naive",
        convert_css=True,
    )


def to_html(styler: Styler, caption: str) -> str:
    """An HTML table (with its style block) of ``styler``, ``caption`` below it."""
    return styler.set_caption(caption).set_table_styles(_HTML_STYLES).to_html(doctype_html=False)
