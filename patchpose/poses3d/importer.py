"""Import one split of an external baseline's prediction file into the pipeline's canonical form.

Canonical form: ``results/<dataset>/baselines/<name>/{split}_poses_3d.npz`` in the prediction format with
unit mm, ``H36M`` joint order, root-relative poses and exactly the split's frames in the store's row order,
plus ``{split}_import.json``: what was found and done (unit, scale, joint names, root offset, ...).

``import_problems`` runs the same checks without writing anything and lists every problem rather than the
first (``patchpose validate-predictions``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence

import numpy as np

from patchpose.atomic import atomic_write_text
from patchpose.dataset_format import open_dataset
from patchpose.poses3d.errors import PredictionFileError
from patchpose.poses3d.files import file_format, read_prediction_fields, read_predictions, write_predictions
from patchpose.poses3d.format import SPLIT_VALUES, Predictions, structure_problems
from patchpose.poses3d.joint_order_check import check_joint_order
from patchpose.poses3d.matching import align_to_store, alignment_problems
from patchpose.poses3d.normalise import canonicalise
from patchpose.poses3d.units import UNITS
from patchpose.skeleton import H36M

__all__ = ["import_external_split", "import_problems"]

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


def import_problems(
    *,
    split: str,
    source: str | os.PathLike,
    stores: Mapping[str, str | os.PathLike],
    format: str = "auto",
    unit: str = "auto",
    joint_names: str | Sequence[str] | None = None,
    file_holds_both_splits: bool = False,
) -> tuple[list[PredictionFileError], list[str]]:
    """``(problems, skipped)``: every problem ``import_external_split`` (same arguments, no outputs) would refuse
    ``source`` for, and the checks that could not run because a problem they depend on was found.

    The checks and their order are the import's, so ``problems[0]`` is the error the import raises and no
    problem means the import succeeds: the file can be read; its structure (``structure_problems``); the joint
    order and the unit (``canonicalise``), on the frames whose poses are finite; the frame ids against the
    dataset (``alignment_problems``); the declared joint order against the ground truth
    (``check_joint_order``) on the split's frames the file covers with finite poses. Nothing is written.
    """
    path = os.fspath(source)
    try:
        fields = read_prediction_fields(source, file_format(source, format))
    except PredictionFileError as error:
        return [error], ["every other check (the file cannot be read)"]
    problems = structure_problems(path, **fields)
    skipped = []
    poses, ids, names = (np.asarray(fields[key]) for key in ("poses_3d", "frame_ids", "joint_names"))
    ids_usable = ids.ndim == 1 and ids.dtype.kind == "U"
    paired = (
        ids_usable
        and poses.dtype.kind in "fiu"
        and poses.shape[1:] == (H36M.num_joints, 3)
        and 0 < poses.shape[0] == ids.shape[0]
    )
    names_usable = fields["joint_names"] is None or (names.shape == (H36M.num_joints,) and names.dtype.kind == "U")
    canonical = None
    pose_checks = "the joint order, the unit and the joint order against the ground truth"
    if not (paired and names_usable):
        skipped.append(f"{pose_checks} (they need 17 named joints per frame, one frame id per pose)")
    else:
        finite = np.isfinite(poses).all(axis=(1, 2))
        record = Predictions(
            path,
            poses[finite].astype(np.float64),
            tuple(str(i) for i in ids[finite]),
            None if fields["joint_names"] is None else tuple(str(n) for n in names),
            unit=fields.get("unit") if fields.get("unit") in UNITS else None,
            split=fields.get("split") if fields.get("split") in SPLIT_VALUES else None,
        )
        if not finite.any():
            skipped.append(f"{pose_checks} (no frame has finite poses)")
        else:
            try:
                canonical, _ = canonicalise(record, unit=unit, joint_names=joint_names)
            except PredictionFileError as error:
                problems.append(error)
                skipped.append("the joint order against the ground truth (it needs a known joint order and unit)")
    opened = {split_name: open_dataset(store) for split_name, store in stores.items()}
    if ids_usable:
        declared_split = fields.get("split") if fields.get("split") in SPLIT_VALUES else None
        problems += alignment_problems(
            path,
            tuple(str(i) for i in ids),
            declared_split,
            opened,
            split,
            other_splits_allowed=file_holds_both_splits,
            other_split_hint=_HINTS[split],
        )
    else:
        skipped.append("the frame ids against the dataset (frame_ids is not a flat array of strings)")
    if canonical is not None:
        store = opened[split]
        row_of = {frame: row for row, frame in enumerate(canonical.frame_ids)}
        covered = [(row, row_of[frame]) for row, frame in enumerate(store.frame_ids()) if frame in row_of]
        if covered:
            store_rows, file_rows = (np.array(rows, dtype=np.int64) for rows in zip(*covered, strict=True))
            try:
                check_joint_order(source, canonical.poses_3d[file_rows], store.joints_3d[store_rows])
            except PredictionFileError as error:
                problems.append(error)
        else:
            skipped.append(f"the joint order against the ground truth (no {split}-split frame with finite poses)")
    return problems, skipped
