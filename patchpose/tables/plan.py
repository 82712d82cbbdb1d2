"""Which prediction files each table shows: its columns, from the configured baselines and the updater plan.

A column is one prediction file of the test split: a baseline's own predictions (modality ``INITIAL``) or
its refinement by one updater variant (``patchpose.updater.variants``). The tables, like the updater jobs,
are derived from the config rather than a cross product (``updater_variants.planned_pairs`` gives the
pairs):

* ``table1`` (paper Table 1): every baseline, initial then refined by its Table 1 variant where it has one;
  the reference baselines (kind ``mean_pose``) last, unrefined;
* ``table2`` (Table 2): the ablation baseline refined from the uncropped frame and from cropped RGB patches;
* ``table3`` (Table 3): the ablation baseline, initial and refined from RGB, Seg and RGB+Seg patches;
* ``extended``: every baseline and every refinement planned (the controls too), grouped by baseline.

A table whose columns are not all planned is not built (``planned_tables``), and none is when nothing is
refined. Torch- and pandas-free, so ``rules/common.smk`` can call it.
"""

from __future__ import annotations

from dataclasses import dataclass

from patchpose.tables.layout import INITIAL
from patchpose.updater.variants import VARIANTS

__all__ = ["TABLES", "Column", "table_columns", "planned_tables", "bold_groups", "wildcard_constraint"]

TABLES = ("table1", "table2", "table3", "extended")
_TABLE2 = ("uncropped_rgb", "rgb")
_TABLE3 = (INITIAL, "rgb", "seg", "rgb_seg")


@dataclass(frozen=True)
class Column:
    """One prediction file of a table: ``baseline``'s own (``modality`` ``INITIAL``) or refined by the updater
    variant ``modality``."""

    baseline: str
    modality: str

    @property
    def refined(self) -> bool:
        return self.modality != INITIAL


def table_columns(
    table: str,
    *,
    baselines: list[str],
    references: list[str],
    pairs: list[tuple[str, str]],
    table1_pairs: list[tuple[str, str]],
    ablation_baseline: str | None,
) -> list[Column]:
    """The columns of ``table`` (one of ``TABLES``), in print order.

    baselines: every configured baseline (config order); references: those printed as the reference (kind
    ``mean_pose``); pairs: every planned (baseline, variant); table1_pairs: Table 1's; ablation_baseline: the
    baseline of Tables 2 and 3 (None: no ablations). ``[]`` when the table cannot be built (a pair missing).
    """
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; known: {', '.join(TABLES)}")
    unknown = [reference for reference in references if reference not in baselines]
    if unknown:
        raise ValueError(f"reference baselines {unknown} are not among the baselines {baselines}")
    planned = set(map(tuple, pairs))
    ordered = [name for name in baselines if name not in references] + list(references)
    if table == "table1":
        table1 = [tuple(pair) for pair in table1_pairs]
        return [
            Column(name, modality)
            for name in ordered
            for modality in (INITIAL, *(variant for baseline, variant in table1 if baseline == name))
        ]
    if table == "extended":
        order = list(VARIANTS)
        return [
            Column(name, modality)
            for name in ordered
            for modality in (INITIAL, *sorted({v for b, v in planned if b == name}, key=order.index))
        ]
    wanted = _TABLE2 if table == "table2" else _TABLE3
    if ablation_baseline is None or any(
        (ablation_baseline, modality) not in planned for modality in wanted if modality != INITIAL
    ):
        return []
    return [Column(ablation_baseline, modality) for modality in wanted]


def planned_tables(**plan) -> list[str]:
    """The tables that can be built from ``plan`` (``table_columns``' keyword arguments less ``table``): none
    when no baseline is refined, else Table 1, the extended table, and Tables 2 and 3 where their pairs are
    planned."""
    if not plan["pairs"]:
        return []
    return [table for table in TABLES if table_columns(table, **plan)]


def bold_groups(columns: list[Column]) -> list[list[int]]:
    """The positions of the columns compared with one another (the lowest error is bold): each baseline's
    columns, where it has more than one (Table 1: a baseline and its refinement; Tables 2, 3: all)."""
    groups: dict[str, list[int]] = {}
    for position, column in enumerate(columns):
        groups.setdefault(column.baseline, []).append(position)
    return [positions for positions in groups.values() if len(positions) > 1]


def wildcard_constraint() -> str:
    """Regex matching exactly the table names (for the ``{table}`` wildcard)."""
    return "|".join(TABLES)
