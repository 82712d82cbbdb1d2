"""The settings keypoints2d's fold models are trained with, read off a validated config: one function that the
rule's params (rules/common.smk) and ``benchmarks/keypoints2d_fold.py`` share. No stage script imports this
module, so it is not part of any stage's code digest."""

from __future__ import annotations

import copy

__all__ = ["PART_HEAD_KEYS", "fold_settings"]

# The keys that shape only the part head, per block of keypoints2d's settings.
PART_HEAD_KEYS = {
    "model": ("part_head_channels", "part_head_skip_channels"),
    "training": ("part_loss_weight", "part_class_weight_power", "part_dice_weight"),
}


def fold_settings(config: dict) -> dict:
    """keypoints2d's model/training/augment (copies); without the part head's keys when the segmentation has a
    network of its own (segmentation.network: refinenet), so they then shape nothing."""
    settings = {key: copy.deepcopy(config["keypoints2d"][key]) for key in ("model", "training", "augment")}
    if config["segmentation"]["network"] != "keypoints2d":
        for block, keys in PART_HEAD_KEYS.items():
            settings[block] = {key: value for key, value in settings[block].items() if key not in keys}
    return settings
