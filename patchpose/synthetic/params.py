"""Which synthetic-world keys shape which split.

The dataset rule puts only these keys in a split's ``params:``, so changing a
key that affects the training split alone (e.g. ``rare_actions``) rerenders the
training store and its dependents, never the test store.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SHARED_KEYS", "SPLIT_KEYS", "world_params_for_split"]

# Keys that shape both splits.
SHARED_KEYS = (
    "cameras",
    "frame_size",
    "pose_spacing_frames",
    "crop_margin",
    "dim_light_fraction",
    "noise_sigma",
    "texture_cue",
    "shading_cue",
    "clutter",
    "placement_radius_mm",
)
# Keys that shape one split only.
SPLIT_KEYS = {
    "train": ("train_subjects", "train_poses_per_subject", "rare_actions"),
    "test": ("test_subjects", "test_poses_per_action"),
}


def world_params_for_split(world: dict[str, Any], split: str) -> dict[str, Any]:
    """The subset of the validated ``dataset.synthetic`` config that ``split`` depends on."""
    if split not in SPLIT_KEYS:
        raise ValueError(f"unknown split {split!r}; known splits: {', '.join(SPLIT_KEYS)}")
    keys = SHARED_KEYS + SPLIT_KEYS[split]
    missing = [k for k in keys if k not in world]
    if missing:
        raise ValueError(f"dataset.synthetic is missing {', '.join(missing)} (validate the config first)")
    return {key: world[key] for key in keys}
