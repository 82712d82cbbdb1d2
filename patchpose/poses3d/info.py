"""``info.json`` of a baseline: which splits its predictions cover, for every later stage to read.

Written for every baseline kind (external files and the pipeline's own). The updater trains on a
baseline's training-split residuals where ``has_train_split`` is true and needs another source where not.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from patchpose.atomic import atomic_write_text
from patchpose.poses3d.files import read_predictions
from patchpose.poses3d.format import FORMAT_VERSION

__all__ = ["write_baseline_info", "read_baseline_info"]


def write_baseline_info(
    path: str | os.PathLike, *, name: str, kind: str, split_files: Mapping[str, str | os.PathLike]
) -> dict:
    """Write ``{name, kind, format_version, splits, has_train_split, files, frames}`` as JSON atomically.

    split_files: the canonical prediction file of each split the baseline has (``"test"`` always); each
    is read (so validated structurally) for its frame count. Returns the dict written.
    """
    if "test" not in split_files:
        raise ValueError(f"{path}: baseline {name!r} has no test-split predictions")
    splits = [split for split in ("train", "test") if split in split_files]
    info = {
        "name": name,
        "kind": kind,
        "format_version": FORMAT_VERSION,
        "splits": splits,
        "has_train_split": "train" in split_files,
        "files": {split: os.fspath(split_files[split]) for split in splits},
        "frames": {split: read_predictions(split_files[split]).num_frames for split in splits},
    }
    atomic_write_text(path, json.dumps(info, indent=2) + "\n")
    return info


def read_baseline_info(path: str | os.PathLike) -> dict:
    """The dict ``write_baseline_info`` wrote."""
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)
