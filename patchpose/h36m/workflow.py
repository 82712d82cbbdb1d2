"""Glue between ``rules/dataset_h36m.smk`` and the package: DAG-time listing, params, the two job bodies.

The config block is ``config["dataset"]["h36m"]`` (a dict, see docs/h36m.md); every function here takes it
as given and builds ``H36MSettings`` from it, so bad values fail with ``ValueError`` naming the key. The
params functions also take each split's resolved person box (``patchpose.person_box.split_boxes`` of
``dataset.person_box``; None: ground truth) and give a job only its own split's.
"""

from __future__ import annotations

from pathlib import Path

from patchpose.h36m.extract import H36MSettings, extract_sequence, list_sequences, split_of
from patchpose.h36m.layout import CAMERA_IDS, mask_path, pose_path, sequence_name_from_key, video_path
from patchpose.h36m.merge import merge_split
from patchpose.h36m.metadata import check_metadata

__all__ = [
    "sequence_keys",
    "sequence_dirs",
    "sequence_inputs",
    "settings_for_sequence",
    "settings_for_split",
    "release_metadata",
    "run_extract_sequence",
    "run_merge_split",
]

_TRAIN_ONLY, _TEST_ONLY = ("train_stride", "train_person_box"), ("test_every", "test_person_box")


def _subjects(settings: H36MSettings, split: str) -> tuple[str, ...]:
    if split not in ("train", "test"):
        raise ValueError(f"split must be train or test, got {split!r}")
    return settings.train_subjects if split == "train" else settings.test_subjects


def sequence_keys(block: dict, split: str) -> list[tuple[str, str]]:
    """``(subject, sequence key)`` of every sequence of ``split``, subjects in config order."""
    settings = H36MSettings.from_config(block)
    return [(s, q.key) for s in _subjects(settings, split) for q in list_sequences(settings, s)]


def sequence_dirs(block: dict, parent: str, split: str) -> list[str]:
    """Intermediate directories ``<parent>/<subject>/<key>`` of every sequence of ``split``, in protocol order."""
    return [f"{parent}/{subject}/{key}" for subject, key in sequence_keys(block, split)]


def sequence_inputs(block: dict, subject: str, key: str) -> list[str]:
    """Existing release files one sequence job reads (so Snakemake reruns it when one changes)."""
    settings = H36MSettings.from_config(block)
    root, name = Path(settings.root), sequence_name_from_key(key)
    files = [Path(settings.preprocessed_npz)] if settings.preprocessed_npz else [pose_path(root, subject, name)]
    for cid in CAMERA_IDS:
        files += [video_path(root, subject, name, cid), mask_path(root, subject, name, cid)]
    return [str(path) for path in files if path.exists()]


def _with_boxes(block: dict, boxes: dict[str, dict] | None) -> dict:
    """``block`` with the resolved person boxes as H36MSettings' ``train_person_box``, ``test_person_box``."""
    return block if boxes is None else {**block, "train_person_box": boxes["train"], "test_person_box": boxes["test"]}


def settings_for_sequence(block: dict, subject: str, boxes: dict[str, dict] | None = None) -> dict:
    """The settings a sequence job uses; the other split's sampling key and person box left out (so it does not
    rerun)."""
    settings = H36MSettings.from_config(_with_boxes(block, boxes))
    drop = _TEST_ONLY if split_of(settings, subject) == "train" else _TRAIN_ONLY
    return {k: v for k, v in settings.to_config().items() if k not in drop}


def settings_for_split(block: dict, split: str, boxes: dict[str, dict] | None = None) -> dict:
    """The settings a merge uses (its manifest records them); the other split's sampling key and box left out."""
    drop = _TEST_ONLY if split == "train" else _TRAIN_ONLY
    settings = H36MSettings.from_config(_with_boxes(block, boxes))
    return {k: v for k, v in settings.to_config().items() if k not in drop}


def release_metadata(settings: H36MSettings) -> dict | None:
    """Check ``<root>/metadata.xml`` against the shipped cameras if it exists; None when absent."""
    path = Path(settings.root) / "metadata.xml"
    return check_metadata(path) if path.exists() else None


def run_extract_sequence(settings: dict, subject: str, key: str, out_dir: str) -> dict:
    resolved = H36MSettings.from_config(settings)
    release_metadata(resolved)
    return extract_sequence(resolved, subject, key, out_dir)


def run_merge_split(settings: dict, split: str, sequence_dirs: list[str], store_path: str, manifest_path: str):
    resolved = H36MSettings.from_config(settings)
    metadata = release_metadata(resolved)
    return merge_split(sequence_dirs, split, store_path, manifest_path, settings, _subjects(resolved, split), metadata)
