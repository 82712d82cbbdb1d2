"""The person box of each split: where every frame's crop is laid (docs/data_format.md, "Where ground truth
enters").

Config ``dataset.person_box.{train,test}``, for both dataset kinds:

* ``kind: groundtruth`` (the default; the usual Human3.6M practice): the square crop around the frame's
  ground-truth projected joints, side ``crop_margin`` x their bounding box's larger side
  (``crop_geometry.person_crop_affine``);
* ``kind: jittered``: that crop, of side S px and centre c, with its centre moved to ``c + centre_sigma * S *
  (n_x, n_y)`` and its side scaled by ``exp(scale_sigma * n_s)``, ``n_x, n_y, n_s`` standard normal, then
  clamped so that every joint stays inside the crop (``crop_geometry.jittered_person_crop_affine``: the side
  is at least the joints' larger box side, the centre is moved the least distance that keeps them inside).
  ``centre_sigma`` is in units of the ground-truth crop side, ``scale_sigma`` in natural-log units of the side
  (about the relative change of the side, for small values).

Resolved box (what a dataset job's ``params`` hold, ``split_boxes``): ``{"kind": "groundtruth"}``, or
``{"kind": "jittered", "centre_sigma", "scale_sigma", "seed"}`` (the master seed). A split's jobs see only
their own split's box, so changing the training box never reruns the test split, and a ground-truth box
holds neither sizes nor seed, so changing those never reruns it.

Draws: frame ``names`` (its identity: subject, sequence, camera, frame) has its own stream
``rng.stream(seed, "person_box", *names)`` giving ``(n_x, n_y, n_s)``, so a frame's box depends only on the
seed, the sizes and the frame, never on which other frames are extracted, their order, or the frame's other
random draws (light, background, noise).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from patchpose.crop_geometry import jittered_person_crop_affine, person_crop_affine
from patchpose.rng import stream

__all__ = ["GROUND_TRUTH", "KINDS", "SPLITS", "check_box", "split_boxes", "frame_draws", "box_affines"]

GROUND_TRUTH = {"kind": "groundtruth"}
KINDS = ("groundtruth", "jittered")
SPLITS = ("train", "test")
_JITTERED_KEYS = ("kind", "centre_sigma", "scale_sigma", "seed")


def check_box(box, where: str) -> dict:
    """A resolved box (see the module docstring), checked; ``ValueError`` naming ``where`` and the problem."""
    if not isinstance(box, dict) or box.get("kind") not in KINDS:
        kind = box.get("kind") if isinstance(box, dict) else box
        raise ValueError(f"{where}: person box kind must be one of {', '.join(KINDS)}, got {kind!r}")
    expected = ("kind",) if box["kind"] == "groundtruth" else _JITTERED_KEYS
    if set(box) != set(expected):
        raise ValueError(f"{where}: a {box['kind']} person box has exactly the keys {', '.join(expected)}, got "
                         f"{', '.join(sorted(box))}")  # fmt: skip
    if box["kind"] == "jittered":
        for key in ("centre_sigma", "scale_sigma"):
            value = box[key]
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not (number and math.isfinite(value) and value >= 0):
                raise ValueError(f"{where}: person box {key} must be a finite number >= 0, got {value!r}")
        seed = box["seed"]
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"{where}: person box seed must be an integer >= 0, got {seed!r}")
    return box


def split_boxes(person_box: dict, seed: int) -> dict[str, dict]:
    """Each split's resolved box from the validated ``dataset.person_box`` block and the master ``seed``."""
    boxes = {}
    for split in SPLITS:
        block = person_box[split]
        if block["kind"] == "groundtruth":
            boxes[split] = dict(GROUND_TRUTH)
        else:
            boxes[split] = {"kind": "jittered", "centre_sigma": block["centre_sigma"],
                            "scale_sigma": block["scale_sigma"], "seed": seed}  # fmt: skip
        check_box(boxes[split], f"dataset.person_box.{split}")
    return boxes


def frame_draws(seed: int, frame_names: Sequence[tuple[str | int, ...]]) -> np.ndarray:
    """(N, 3) float64 standard-normal ``(n_x, n_y, n_s)`` of each frame, from its own stream."""
    draws = np.empty((len(frame_names), 3))
    for row, names in enumerate(frame_names):
        draws[row] = stream(seed, "person_box", *names).standard_normal(3)
    return draws


def box_affines(
    joints_px: np.ndarray,
    box: dict,
    margin: float,
    frame_size: int,
    frame_names: Sequence[tuple[str | int, ...]],
) -> np.ndarray:
    """(N, 2, 3) float64 crop px -> original px of frames with projected joints ``joints_px`` (N, J, 2)
    original px, under the resolved ``box``; ``frame_names`` (N tuples of str | int >= 0) name each frame's
    stream (used by ``jittered`` only). ``groundtruth`` is ``person_crop_affine`` itself, untouched."""
    check_box(box, "person box")
    if len(frame_names) != len(joints_px):
        raise ValueError(f"{len(frame_names)} frame names for {len(joints_px)} frames")
    if box["kind"] == "groundtruth":
        return person_crop_affine(joints_px, margin, frame_size)
    draws = frame_draws(box["seed"], frame_names)
    centre_noise, log_scale_noise = box["centre_sigma"] * draws[:, :2], box["scale_sigma"] * draws[:, 2]
    return jittered_person_crop_affine(joints_px, margin, frame_size, centre_noise, log_scale_noise)
