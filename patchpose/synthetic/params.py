"""Which synthetic-world keys shape which split.

The dataset rule puts only these keys in a split's ``params:``, so changing a
key that affects the training split alone (e.g. ``rare_actions``) rerenders the
training store and its dependents, never the test store. The same holds for the
split's person box (``dataset.person_box.<split>``, ``patchpose.person_box``).
"""

from __future__ import annotations

from typing import Any

from patchpose.person_box import GROUND_TRUTH, check_box

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
    "depth_falloff",
    "clutter",
    "placement_radius_mm",
    "outfits",
    "front_print",
)
# Keys that shape one split only.
SPLIT_KEYS = {
    "train": ("train_subjects", "train_poses_per_subject", "rare_actions"),
    "test": ("test_subjects", "test_poses_per_action"),
}


def world_params_for_split(world: dict[str, Any], split: str, boxes: dict[str, dict] | None = None) -> dict[str, Any]:
    """The subset of the validated ``dataset.synthetic`` config that ``split`` depends on, plus
    ``person_box``: the split's resolved person box from ``boxes`` (``patchpose.person_box.split_boxes``, one
    per split; None: ground truth for both, the config's default)."""
    if split not in SPLIT_KEYS:
        raise ValueError(f"unknown split {split!r}; known splits: {', '.join(SPLIT_KEYS)}")
    keys = SHARED_KEYS + SPLIT_KEYS[split]
    missing = [k for k in keys if k not in world]
    if missing:
        raise ValueError(f"dataset.synthetic is missing {', '.join(missing)} (validate the config first)")
    box = dict(GROUND_TRUTH) if boxes is None else check_box(boxes[split], f"dataset.person_box.{split}")
    return {**{key: world[key] for key in keys}, "person_box": box}
