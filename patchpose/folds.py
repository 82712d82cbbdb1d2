"""Subject folds: k-fold prediction for the training split.

Later stages train on 2D keypoints and segmentations *predicted* for the
training split, so those must carry the errors a test subject's predictions
carry. The training subjects are split into ``k`` folds; the model of fold
``f`` is trained on every other fold and predicts only fold ``f``'s frames, so
no training frame is ever predicted by a model that saw its subject. Test
frames (subjects no model saw) are shared out among the ``k`` models
(frame ``i`` -> model ``i % k``), so both splits are predicted by models of
one kind, each trained on (k-1)/k of the training subjects.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["FoldError", "assign_folds", "training_mask", "predicting_fold", "check_no_leak"]


class FoldError(ValueError):
    """A fold count that the training subjects cannot support."""


def assign_folds(subjects: Sequence[str], k: int) -> dict[str, int]:
    """Fold id per training subject, round-robin in the given order (deterministic).

    subjects: the training split's subject names (e.g. the store's ``subjects``), unique.
    k: number of folds, 2 <= k <= len(subjects).
    """
    subjects = list(subjects)
    if len(set(subjects)) != len(subjects):
        raise FoldError(f"subjects must be unique, got {subjects}")
    if not 2 <= k <= len(subjects):
        raise FoldError(
            f"folds.k = {k} needs 2 <= k <= the number of training subjects ({len(subjects)}: {', '.join(subjects)})"
        )
    return {subject: index % k for index, subject in enumerate(subjects)}


def training_mask(frame_subjects: Sequence[str], assignment: dict[str, int], fold: int) -> np.ndarray:
    """(N,) bool: frames the model of ``fold`` trains on (every subject outside the fold)."""
    folds = _frame_folds(frame_subjects, assignment)
    return folds != fold


def predicting_fold(split: str, frame_subjects: Sequence[str], assignment: dict[str, int]) -> np.ndarray:
    """(N,) int: which fold's model predicts each frame of ``split``.

    train: the fold that holds the frame's subject (its model never saw the subject);
    test: frame ``i`` -> ``i % k``.
    """
    k = max(assignment.values()) + 1
    if split == "train":
        return _frame_folds(frame_subjects, assignment)
    if split == "test":
        seen = sorted(set(frame_subjects) & set(assignment))
        if seen:
            raise FoldError(f"test subjects {seen} are training subjects; the folds would leak them")
        return np.arange(len(frame_subjects)) % k
    raise FoldError(f"unknown split {split!r}; expected 'train' or 'test'")


def _frame_folds(frame_subjects: Sequence[str], assignment: dict[str, int]) -> np.ndarray:
    unknown = sorted(set(frame_subjects) - set(assignment))
    if unknown:
        raise FoldError(f"subjects {unknown} have no fold; folds cover {sorted(assignment)}")
    return np.array([assignment[s] for s in frame_subjects], dtype=np.int64)


def check_no_leak(path, payload: dict, fold: int, subjects) -> None:
    """Refuse to predict ``subjects`` with the model file ``path`` (``payload``: its ``fold`` and
    ``trained_subjects``) if it is not fold ``fold``'s model or trained on any of them."""
    if payload["fold"] != fold:
        raise FoldError(f"{path}: holds fold {payload['fold']}'s model, expected fold {fold}")
    leaked = sorted(set(subjects) & set(payload["trained_subjects"]))
    if leaked:
        raise FoldError(f"{path}: fold {fold}'s model trained on {leaked}; it must not predict them")
