"""The numbers of a table, tidy: one row per (column, action) from the columns' per-frame error files.

Each column's error per action and on average comes with a percentile interval from the stratified cluster
bootstrap of ``patchpose.evaluation.bootstrap`` applied to the column's own per-frame errors (clusters: a
pose's views on the synthetic world, a sequence on Human3.6M; resampled within each action). These are the
intervals of one method's error; the intervals of a refinement's improvement, paired frame by frame, are
those of ``improvement.csv`` (the extended table shows both).

The tidy CSV (``TIDY_COLUMNS``; 4 decimals, mm): ``method`` (the baseline), ``modality`` (``initial`` or the
updater variant that refined it), ``action`` (the paper's names, ``layout.ACTION_COLUMNS``, then
``Avg (frames)``), ``mpjpe_mm`` and its interval ``ci_low``, ``ci_high``, ``n_frames``. Table 1 adds
``updater`` (the updater source of a refined column, empty for an initial one); the extended table adds
``pa_mpjpe_mm``, ``pa_ci_low``, ``pa_ci_high`` and, for refined columns, ``improvement_mm``,
``improvement_ci_low``, ``improvement_ci_high`` (initial - refined MPJPE with its paired interval).
"""

from __future__ import annotations

import io
import os

import numpy as np
import pandas as pd

from patchpose.atomic import atomic_write_text
from patchpose.evaluation.bootstrap import paired_bootstrap
from patchpose.evaluation.frame_errors import FrameErrors, check_paired
from patchpose.evaluation.groups import cluster_ids
from patchpose.evaluation.refinement import read_improvement
from patchpose.tables.layout import ACTION_COLUMNS, AVG_FRAMES, OWN, paper_action
from patchpose.tables.plan import Column

__all__ = [
    "TIDY_COLUMNS",
    "TABLE1_COLUMNS",
    "EXTENDED_COLUMNS",
    "TableInputError",
    "column_intervals",
    "tidy_table",
    "write_tidy",
    "read_tidy",
]

TIDY_COLUMNS = ("method", "modality", "action", "mpjpe_mm", "ci_low", "ci_high", "n_frames")
TABLE1_COLUMNS = (*TIDY_COLUMNS, "updater")
_PA = ("pa_mpjpe_mm", "pa_ci_low", "pa_ci_high")
_IMPROVEMENT = ("improvement_mm", "improvement_ci_low", "improvement_ci_high")
EXTENDED_COLUMNS = (*TIDY_COLUMNS, *_PA, *_IMPROVEMENT)
ACTION_ORDER = (*ACTION_COLUMNS, AVG_FRAMES)


class TableInputError(ValueError):
    """An input a table cannot use; the message names the file and the problem."""


def column_intervals(
    errors: FrameErrors, metric: str, *, resamples: int, confidence: float, seed: int, stream_names=()
) -> pd.DataFrame:
    """One column's error in ``metric`` per action and on average, with its bootstrap interval.

    Returns a frame indexed by the printed action label (``layout.paper_action``; paper order, the averages
    last) with columns ``estimate``, ``low``, ``high`` (mm) and ``frames``.
    """
    clusters = cluster_ids(
        errors.source, errors.subject, errors.action, errors.subaction, errors.frame_index, where=errors.origin
    )
    intervals = paired_bootstrap(
        errors.metric(metric),
        errors.action,
        clusters,
        resamples=resamples,
        seed=seed,
        stream_names=stream_names,
        confidence=confidence,
        metric=metric,
    )
    frame = pd.DataFrame(
        {
            "estimate": [row["improvement_mm"] for row in intervals.rows],  # here: the error itself
            "low": [row["ci_low_mm"] for row in intervals.rows],
            "high": [row["ci_high_mm"] for row in intervals.rows],
            "frames": [row["frames"] for row in intervals.rows],
        },
        index=pd.Index([paper_action(row["action"]) for row in intervals.rows], name="action"),
    )
    order = [label for label in ACTION_ORDER if label in frame.index]
    return frame.loc[order + [label for label in frame.index if label not in ACTION_ORDER]]


def _improvements(path: str | os.PathLike) -> pd.DataFrame:
    try:
        rows = read_improvement(path)
    except (OSError, ValueError, KeyError) as error:
        raise TableInputError(f"{path}: not a readable improvement table: {error}") from None
    return pd.DataFrame(
        {
            "improvement_mm": [row["improvement_mm"] for row in rows.values()],
            "improvement_ci_low": [row["ci_low_mm"] for row in rows.values()],
            "improvement_ci_high": [row["ci_high_mm"] for row in rows.values()],
        },
        index=pd.Index([paper_action(label) for label in rows], name="action"),
    )


def tidy_table(
    table: str,
    columns: list[Column],
    errors: list[FrameErrors],
    *,
    resamples: int,
    confidence: float,
    seed: int,
    updater_sources: dict[str, str] | None = None,
    improvements: list[str | os.PathLike] | None = None,
) -> pd.DataFrame:
    """The tidy frame of ``table`` (module docstring): ``columns`` with their per-frame ``errors`` (one per
    column, all of the same frames: ``TableInputError`` naming the file otherwise); ``updater_sources``
    {baseline: source} (Table 1; missing baselines: ``"own"``); ``improvements``: the ``improvement.csv`` of
    each refined column, in column order (the extended table)."""
    if len(columns) != len(errors) or not columns:
        raise TableInputError(f"{table}: {len(columns)} columns but {len(errors)} per-frame error files")
    for other in errors[1:]:
        try:
            check_paired(errors[0], other)
        except ValueError as error:
            raise TableInputError(f"{table}: the columns must hold the same test frames: {error}") from None
    metrics = ("mpjpe_mm", "pa_mpjpe_mm") if table == "extended" else ("mpjpe_mm",)
    refined = [column for column in columns if column.refined]
    if table == "extended" and len(improvements or []) != len(refined):
        raise TableInputError(
            f"{table}: {len(refined)} refined columns but {len(improvements or [])} improvement tables"
        )
    improvement_of = dict(zip(refined, improvements or [], strict=False))
    parts = []
    for column, table_errors in zip(columns, errors, strict=True):
        blocks = []
        for metric in metrics:
            names = ("tables", column.baseline, column.modality, metric)
            found = column_intervals(
                table_errors, metric, resamples=resamples, confidence=confidence, seed=seed, stream_names=names
            )
            prefix = "" if metric == "mpjpe_mm" else "pa_"
            blocks.append(
                found.rename(
                    columns={"estimate": f"{prefix}mpjpe_mm", "low": f"{prefix}ci_low", "high": f"{prefix}ci_high"}
                ).drop(columns=[] if metric == "mpjpe_mm" else ["frames"])
            )
        part = pd.concat(blocks, axis=1).rename(columns={"frames": "n_frames"})
        part.insert(0, "modality", column.modality)
        part.insert(0, "method", column.baseline)
        if table == "table1":
            sources = updater_sources or {}
            part["updater"] = sources.get(column.baseline, OWN) if column.refined else ""
        if table == "extended":
            if column.refined:
                part = part.join(_improvements(improvement_of[column]), how="left")
            else:
                for key in _IMPROVEMENT:
                    part[key] = np.nan
        parts.append(part.reset_index())
    wanted = TABLE1_COLUMNS if table == "table1" else EXTENDED_COLUMNS if table == "extended" else TIDY_COLUMNS
    return pd.concat(parts, ignore_index=True)[list(wanted)]


def write_tidy(path: str | os.PathLike, frame: pd.DataFrame) -> None:
    """Write a tidy table as CSV atomically, errors with 4 decimals (mm)."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, float_format="%.4f", lineterminator="\n")
    atomic_write_text(path, buffer.getvalue())


def read_tidy(path: str | os.PathLike) -> pd.DataFrame:
    """A tidy table written by ``write_tidy``; ``TableInputError`` naming ``path`` when it is not one."""
    try:
        frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
    except (OSError, ValueError) as error:
        raise TableInputError(f"{path}: not a readable table: {error}") from None
    missing = [column for column in TIDY_COLUMNS if column not in frame.columns]
    if missing or frame.empty:
        raise TableInputError(f"{path}: not a tidy table (missing columns {missing} or no rows)")
    frame["modality"] = frame["modality"].astype(str)
    frame["method"] = frame["method"].astype(str)
    return frame
