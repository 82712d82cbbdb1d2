"""Body-part label set, its fixed colour palette, and the limb -> part map.

Part ids are what the dataset's ``part_labels`` hold and what the
segmentation stage predicts: 0 is background (scene, clutter and occluding
objects such as the chair), 1..14 are body parts with left and right distinct.
The palette encodes a part map to 3 channels, as the paper's colour-coded
segmentation ``S`` (the expected palette colour under the part probabilities).
"""

from __future__ import annotations

import numpy as np

from patchpose.skeleton import H36M

__all__ = [
    "PART_NAMES",
    "NUM_PARTS",
    "PALETTE",
    "LIMB_PART",
    "encode_probabilities",
    "encode_labels",
    "part_class_weights",
]

PART_NAMES: tuple[str, ...] = (
    "background",
    "head",
    "torso",
    "left_upper_arm",
    "left_lower_arm",
    "left_hand",
    "right_upper_arm",
    "right_lower_arm",
    "right_hand",
    "left_upper_leg",
    "left_lower_leg",
    "left_foot",
    "right_upper_leg",
    "right_lower_leg",
    "right_foot",
)
NUM_PARTS = len(PART_NAMES)

# (15, 3) uint8 RGB. Background black; left parts warm, right parts cool, so
# the encoding separates left from right even where RGB does not.
PALETTE = np.array(
    [
        (0, 0, 0),  # background
        (255, 255, 255),  # head
        (128, 128, 128),  # torso
        (255, 0, 0),  # left_upper_arm
        (255, 128, 0),  # left_lower_arm
        (255, 255, 0),  # left_hand
        (0, 0, 255),  # right_upper_arm
        (0, 128, 255),  # right_lower_arm
        (0, 255, 255),  # right_hand
        (255, 0, 255),  # left_upper_leg
        (128, 0, 64),  # left_lower_leg
        (255, 128, 192),  # left_foot
        (0, 255, 0),  # right_upper_leg
        (0, 128, 64),  # right_lower_leg
        (128, 255, 128),  # right_foot
    ],
    dtype=np.uint8,
)
PALETTE.setflags(write=False)


def _limb_part(limb_name: str) -> int:
    parent, child = limb_name.split("->")
    side = "left" if child.startswith("left") else "right"
    if child.endswith(("_knee",)):
        return PART_NAMES.index(f"{side}_upper_leg")
    if child.endswith("_ankle"):
        return PART_NAMES.index(f"{side}_lower_leg")
    if child.endswith("_elbow"):
        return PART_NAMES.index(f"{side}_upper_arm")
    if child.endswith("_wrist"):
        return PART_NAMES.index(f"{side}_lower_arm")
    if child in ("neck_nose", "head"):
        return PART_NAMES.index("head")
    return PART_NAMES.index("torso")  # hips, spine, thorax, shoulders


# (16,) part id whose pixels make up each limb of ``H36M.limbs``.
LIMB_PART = np.array([_limb_part(name) for name in H36M.limb_names], dtype=np.int64)
LIMB_PART.setflags(write=False)


def encode_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """Colour-encode part probabilities: ``sum_k p_k * PALETTE[k]``.

    probabilities: (..., NUM_PARTS) float, each row summing to 1.
    Returns (..., 3) float32 in [0, 255].
    """
    probabilities = np.asarray(probabilities)
    assert probabilities.shape[-1] == NUM_PARTS, f"last axis must be {NUM_PARTS} parts, got {probabilities.shape}"
    return (probabilities.astype(np.float32) @ PALETTE.astype(np.float32)).astype(np.float32)


def _check_part_ids(labels: np.ndarray) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_PARTS):
        raise ValueError(f"part ids must lie in [0, {NUM_PARTS - 1}], got [{labels.min()}, {labels.max()}]")


def encode_labels(labels: np.ndarray) -> np.ndarray:
    """Colour-encode an integer part map (..., ) -> (..., 3) uint8 palette colours."""
    labels = np.asarray(labels)
    _check_part_ids(labels)
    return PALETTE[labels]


def part_class_weights(labels: np.ndarray, power: float) -> np.ndarray:
    """Per-part weights of a cross-entropy, from the part frequencies of ``labels`` (int part map, any shape).

    Part ``k`` gets ``f_k ** -power``, with ``f_k = (n_k + 1) / (n + NUM_PARTS)`` its pixel frequency (one
    pseudo-count per part, so an absent part gets a finite weight), scaled so that the pixel-weighted mean
    weight ``sum_k f_k w_k`` is 1. ``power`` 0: every part weighs 1 (the plain cross-entropy); 1: every
    part's pixels weigh as much in total as any other part's; 0.5 (inverse square root), in between.
    Background fills most of a frame and the forearms and hands a few pixels, so an unweighted loss is
    lowest for a network that barely segments them. Returns (NUM_PARTS,) float32.
    """
    labels = np.asarray(labels)
    if not 0.0 <= power <= 1.0:
        raise ValueError(f"power must lie in [0, 1], got {power}")
    _check_part_ids(labels)
    counts = np.bincount(labels.astype(np.int64).ravel(), minlength=NUM_PARTS).astype(np.float64)
    frequency = (counts + 1.0) / (counts.sum() + NUM_PARTS)
    weights = frequency**-power
    return (weights / (frequency * weights).sum()).astype(np.float32)
