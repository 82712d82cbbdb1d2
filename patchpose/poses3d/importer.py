"""Import one split of an external baseline's prediction file into the pipeline's canonical form.

Canonical form: ``results/<dataset>/baselines/<name>/{split}_poses_3d.npz`` in the prediction format with
unit mm, ``H36M`` joint order, root-relative poses and exactly the split's frames in the store's row order,
plus ``{split}_import.json``: what was found and done (unit, scale, joint names, root offset, ...).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence

from patchpose.atomic import atomic_write_text
from patchpose.dataset_format import open_dataset
from patchpose.poses3d.files import file_format, read_predictions, write_predictions
from patchpose.poses3d.joint_order_check import check_joint_order
from patchpose.poses3d.matching import align_to_store
from patchpose.poses3d.normalise import canonicalise

__all__ = ["import_external_split"]

LOG = logging.getLogger(__name__)

_HINTS = {
    "test": "; to use them as the baseline's training-split predictions, set its train_file to this same file",
    "train": "; a train_file holds training frames only unless it is the baseline's file itself",
}


def import_external_split(
    *,
    name: str,
    split: str,
    source: str | os.PathLike,
    stores: Mapping[str, str | os.PathLike],
    output: str | os.PathLike,
    report: str | os.PathLike,
    format: str = "auto",
    unit: str = "auto",
    joint_names: str | Sequence[str] | None = None,
    file_holds_both_splits: bool = False,
) -> dict:
    """Validate ``source`` for ``split`` and write the canonical predictions ``output`` and ``report`` (JSON).

    stores: the dataset's store paths by split (``"train"``, ``"test"``). unit / joint_names / format: the
    baseline's config (``"auto"`` / ``None``: what the file declares). file_holds_both_splits: the same file
    serves the train and the test split, so the other split's frames in it are expected. Raises
    ``PredictionFileError`` naming ``source`` on any problem (nothing is written then). Returns the report.
    """
    container = file_format(source, format)
    raw = read_predictions(source, container)
    canonical, found = canonicalise(raw, unit=unit, joint_names=joint_names)
    opened = {split_name: open_dataset(path) for split_name, path in stores.items()}
    poses = align_to_store(
        canonical, opened, split, other_splits_allowed=file_holds_both_splits, other_split_hint=_HINTS[split]
    )
    store = opened[split]
    order = check_joint_order(source, poses, store.joints_3d)
    write_predictions(output, poses, store.frame_ids(), split=split, method=name)
    summary = {
        "name": name,
        "split": split,
        "source": os.fspath(source),
        "format": container,
        "file_method": raw.method,
        "file_split": raw.split,
        "file_frames": raw.num_frames,
        "frames": store.num_frames,
        **found,
        **order,
    }
    atomic_write_text(report, json.dumps(summary, indent=2) + "\n")
    LOG.info(
        "%s: %s split of %s imported (%d frames, unit %s, root offset up to %.1f mm)",
        name, split, source, store.num_frames, found["unit"], found["root_offset_max_mm"],
    )  # fmt: skip
    return summary
