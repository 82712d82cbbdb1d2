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
from patchpose.poses3d.format import Predictions, check_frame_ids, split_covers

__all__ = ["align_to_store"]


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
    its ids, or frames of ``split`` are missing.
    """
    path = predictions.path
    check_frame_ids(path, predictions.frame_ids)
    if not split_covers(predictions.split, split):
        raise PredictionFileError(
            path, f"the file declares split {predictions.split!r} but is read for the {split} split"
        )
    ids = np.asarray(predictions.frame_ids, dtype=str)
    membership = {name: np.isin(ids, store.frame_ids()) for name, store in stores.items()}
    in_none = ~np.logical_or.reduce(list(membership.values()))
    if in_none.any():
        where = ", ".join(str(store.path) for store in stores.values())
        raise PredictionFileError(
            path, f"{int(in_none.sum())} frame ids are not in the dataset ({where}): {preview(ids[in_none])}"
        )
    for other, inside in membership.items():
        if other == split or not inside.any():
            continue
        if not split_covers(predictions.split, other):
            raise PredictionFileError(
                path,
                f"the file declares split {predictions.split!r} but holds {int(inside.sum())} frames of the "
                f"{other} split ({preview(ids[inside], 3)})",
            )
        if not other_splits_allowed:
            raise PredictionFileError(
                path,
                f"holds {int(inside.sum())} frames of the {other} split ({preview(ids[inside], 3)}) but is read "
                f"for the {split} split only{other_split_hint}",
            )
    store_ids = np.asarray(stores[split].frame_ids(), dtype=str)
    row_of = {frame: row for row, frame in enumerate(predictions.frame_ids)}
    missing = [frame for frame in store_ids if frame not in row_of]
    if missing:
        complete = "every test frame needs a prediction" if split == "test" else "give all of them or none"
        raise PredictionFileError(
            path, f"is missing {len(missing)} of {store_ids.size} {split}-split frames ({complete}): {preview(missing)}"
        )
    return predictions.poses_3d[np.array([row_of[frame] for frame in store_ids], dtype=np.int64)]
