"""Match a prediction file's frames to a dataset split: ids in the dataset, none repeated, the split complete.

A file is read for one split (``"train"`` or ``"test"``) against the dataset's stores; ids of the other
split are refused unless the caller says the file holds both. The result is in the store's row order,
so row ``i`` of the returned poses belongs to row ``i`` of the store.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from patchpose.dataset_format import DatasetStore
from patchpose.poses3d.errors import PredictionFileError, preview
from patchpose.poses3d.format import Predictions, frame_id_problems, split_covers

__all__ = ["align_to_store", "alignment_problems"]


def alignment_problems(
    path: str,
    frame_ids,
    declared_split: str | None,
    stores: Mapping[str, DatasetStore],
    split: str,
    *,
    other_splits_allowed: bool = False,
    other_split_hint: str = "",
) -> list[PredictionFileError]:
    """Every problem ``align_to_store`` looks for, in the order it looks (it raises the first one).

    frame_ids: the file's N ids; declared_split: the file's ``split`` or ``None``; the rest as ``align_to_store``.
    """
    problems = frame_id_problems(path, frame_ids)

    def refuse(problem: str) -> None:
        problems.append(PredictionFileError(path, problem))

    if not split_covers(declared_split, split):
        refuse(f"the file declares split {declared_split!r} but is read for the {split} split")
    ids = np.asarray(frame_ids, dtype=str)
    membership = {name: np.isin(ids, store.frame_ids()) for name, store in stores.items()}
    in_none = ~np.logical_or.reduce(list(membership.values()))
    if in_none.any():
        where = ", ".join(str(store.path) for store in stores.values())
        refuse(f"{int(in_none.sum())} frame ids are not in the dataset ({where}): {preview(ids[in_none])}")
    for other, inside in membership.items():
        if other == split or not inside.any():
            continue
        if not split_covers(declared_split, other):
            refuse(
                f"the file declares split {declared_split!r} but holds {int(inside.sum())} frames of the "
                f"{other} split ({preview(ids[inside], 3)})"
            )
        elif not other_splits_allowed:
            refuse(
                f"holds {int(inside.sum())} frames of the {other} split ({preview(ids[inside], 3)}) but is read "
                f"for the {split} split only{other_split_hint}"
            )
    store_ids = np.asarray(stores[split].frame_ids(), dtype=str)
    missing = store_ids[~np.isin(store_ids, ids)]
    if missing.size:
        complete = "every test frame needs a prediction" if split == "test" else "give all of them or none"
        refuse(f"is missing {missing.size} of {store_ids.size} {split}-split frames ({complete}): {preview(missing)}")
    return problems


def align_to_store(
    predictions: Predictions,
    stores: Mapping[str, DatasetStore],
    split: str,
    *,
    other_splits_allowed: bool = False,
    other_split_hint: str = "",
) -> np.ndarray:
    """``predictions.poses_3d`` rows for every frame of ``stores[split]``, in its row order: (M, J, 3).

    stores: the dataset's stores by split (at least ``split``; give the others so that their ids are
    recognised). ``PredictionFileError`` naming the file when an id is not canonical or repeats, an id is
    in no store, the file holds frames of another split (unless ``other_splits_allowed``; the message
    ends with ``other_split_hint``), the file's declared ``split`` excludes ``split`` or is contradicted by
    its ids, or frames of ``split`` are missing (the first of ``alignment_problems``).
    """
    problems = alignment_problems(
        predictions.path,
        predictions.frame_ids,
        predictions.split,
        stores,
        split,
        other_splits_allowed=other_splits_allowed,
        other_split_hint=other_split_hint,
    )
    if problems:
        raise problems[0]
    row_of = {frame: row for row, frame in enumerate(predictions.frame_ids)}
    store_ids = stores[split].frame_ids()
    return predictions.poses_3d[np.array([row_of[frame] for frame in store_ids], dtype=np.int64)]
