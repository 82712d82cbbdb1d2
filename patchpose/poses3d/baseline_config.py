"""What a baseline's config block (``baselines.<name>``) means for the workflow, decided at DAG time.

A baseline has test-split predictions always and training-split ones when it can: the pipeline's own
baselines (kinds ``lifting``, ``integral3d`` and ``mean_pose``, all k-fold over the training subjects) always,
an external one when ``train_file`` is set (``train_file`` may be ``file`` itself when one file holds both
splits). Nothing here reads the files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["baseline_splits", "external_source", "file_holds_both_splits"]


def baseline_splits(settings: Mapping) -> tuple[str, ...]:
    """``("train", "test")`` or ``("test",)``: the splits whose predictions the baseline will have (every kind
    but ``external`` predicts both)."""
    if settings["kind"] == "external" and not settings.get("train_file"):
        return ("test",)
    return ("train", "test")


def external_source(name: str, settings: Mapping, split: str) -> str:
    """The file an external baseline's ``split`` predictions are read from; ``ValueError`` if it has none."""
    if split == "test":
        return settings["file"]
    if split == "train" and settings.get("train_file"):
        return settings["train_file"]
    raise ValueError(
        f"baseline {name!r} has no {split}-split predictions: set baselines.{name}.train_file (it may be the same "
        "path as file when that file holds both splits)"
    )


def file_holds_both_splits(settings: Mapping) -> bool:
    """Whether ``train_file`` and ``file`` are one file (so each holds the other split's frames too)."""
    train_file = settings.get("train_file")
    return bool(train_file) and os.path.abspath(train_file) == os.path.abspath(settings["file"])
