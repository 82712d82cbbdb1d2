"""How many poses each (subject, action) sequence of a split gets.

Training split: each subject has ``train_poses_per_subject`` poses; every rare
action gets ``round(fraction * total)`` of them and the other actions share the
rest equally (the first actions in canonical order take the remainder).
Test split: every action gets ``test_poses_per_action`` poses, so all actions
weigh equally in the test average.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from patchpose.actions import ACTIONS

__all__ = ["SequencePlan", "plan_split"]


@dataclass(frozen=True)
class SequencePlan:
    """One sequence to render: ``num_poses`` poses of ``action`` by ``subject`` (subaction is 1-based)."""

    subject: str
    action: str
    subaction: int
    num_poses: int


def _train_counts(total: int, rare: dict[str, float]) -> dict[str, int]:
    counts = {action: round(fraction * total) for action, fraction in rare.items()}
    common = [a for a in ACTIONS if a not in rare]
    remaining = total - sum(counts.values())
    if remaining < len(common):
        raise ValueError(
            f"train_poses_per_subject = {total} leaves {remaining} poses for {len(common)} common actions "
            "after the rare fractions; raise it or lower rare_actions"
        )
    base, extra = divmod(remaining, len(common))
    counts.update({action: base + (i < extra) for i, action in enumerate(common)})
    return counts


def plan_split(world: dict[str, Any], split: str) -> list[SequencePlan]:
    """Sequences of ``split`` ('train' | 'test') for the validated world parameters, in a fixed order."""
    if split == "train":
        counts = _train_counts(world["train_poses_per_subject"], world.get("rare_actions", {}))
        subjects = world["train_subjects"]
    elif split == "test":
        counts = dict.fromkeys(ACTIONS, world["test_poses_per_action"])
        subjects = world["test_subjects"]
    else:
        raise ValueError(f"unknown split {split!r}; known splits: train, test")
    return [
        SequencePlan(subject, action, 1, counts[action])
        for subject in subjects
        for action in ACTIONS
        if counts[action] > 0
    ]
