"""Tiny, valid datasets in the common format (docs/data_format.md), for any test that needs a store.

The person is a T-pose-ish Human3.6M skeleton facing the camera about 4 m
away (camera frame: x right, y down, z forward, mm), jittered per frame. The
camera is a distortion-free pinhole (fx = fy = 1000 px, 1000 x 1000 image)
whose frame is the world frame (identity rotation, centre at the origin), so
``joints_2d`` is an exact projection mapped into a person-centred crop.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from patchpose.dataset_format import DatasetWriter
from patchpose.parts import NUM_PARTS

TINY_SUBJECTS = ("S1", "S9")
TINY_ACTIONS = ("Directions", "Walking", "Sitting Down")
TINY_CAMERA_ID = 54138969
TINY_IMAGE_SIZE = (1000, 1000)  # width, height px
TINY_INTRINSICS = (1000.0, 1000.0, 500.0, 500.0)  # fx, fy, cx, cy px

# (17, 3) mm relative to the pelvis, H36M joint order; the subject faces the camera, so their right is -x.
T_POSE_MM = np.array(
    [
        (0, 0, 0),  # pelvis
        (-130, 0, 0),  # right_hip
        (-130, 450, 0),  # right_knee
        (-130, 900, 0),  # right_ankle
        (130, 0, 0),  # left_hip
        (130, 450, 0),  # left_knee
        (130, 900, 0),  # left_ankle
        (0, -230, 0),  # spine
        (0, -480, 0),  # thorax
        (0, -600, -20),  # neck_nose
        (0, -715, 0),  # head
        (150, -480, 0),  # left_shoulder
        (430, -480, 0),  # left_elbow
        (680, -480, 0),  # left_wrist
        (-150, -480, 0),  # right_shoulder
        (-430, -480, 0),  # right_elbow
        (-680, -480, 0),  # right_wrist
    ],
    dtype=np.float64,
)


def make_tiny_batch(
    num_frames: int, frame_size: tuple[int, int], rng: np.random.Generator, with_part_labels: bool = True
) -> dict[str, np.ndarray]:
    """One batch of every per-frame field, already in the format's dtypes (so a round trip is exact).

    frame_size: (H, W) crop px. Frames and part labels are random pixels;
    ``frame_index`` counts from 0 (overwrite it to place a batch elsewhere).
    """
    height, width = frame_size
    pelvis = np.array([0.0, 0.0, 4000.0]) + rng.uniform(-300, 300, size=(num_frames, 1, 3))
    joints_3d = T_POSE_MM[None] + pelvis + rng.normal(0, 10, size=(num_frames, 17, 3))
    fx, fy, cx, cy = TINY_INTRINSICS
    image_px = np.stack(
        [fx * joints_3d[..., 0] / joints_3d[..., 2] + cx, fy * joints_3d[..., 1] / joints_3d[..., 2] + cy], -1
    )
    low, high = image_px.min(axis=1), image_px.max(axis=1)  # (N, 2) x, y
    scale = 1.2 * np.max((high - low) / np.array([width, height]), axis=1)  # original px per crop px
    crop_centre = np.array([(width - 1) / 2, (height - 1) / 2])
    crop_affine = np.zeros((num_frames, 2, 3))
    crop_affine[:, 0, 0] = crop_affine[:, 1, 1] = scale
    crop_affine[:, :, 2] = (low + high) / 2 - scale[:, None] * crop_centre
    joints_2d = (image_px - crop_affine[:, None, :, 2]) / scale[:, None, None]
    batch = {
        "frames": rng.integers(0, 256, size=(num_frames, height, width, 3), dtype=np.uint8),
        "joints_2d": joints_2d.astype(np.float32),
        "joints_3d": joints_3d.astype(np.float32),
        "crop_affine": crop_affine,
        "camera_intrinsics": np.tile(TINY_INTRINSICS, (num_frames, 1)),
        "camera_distortion": np.zeros((num_frames, 5)),
        "camera_rotation": np.tile(np.eye(3), (num_frames, 1, 1)),
        "camera_centre": np.zeros((num_frames, 3)),
        "image_size": np.tile(np.array(TINY_IMAGE_SIZE, dtype=np.int32), (num_frames, 1)),
        "subject": rng.integers(0, len(TINY_SUBJECTS), size=num_frames).astype(np.int16),
        "action": rng.integers(0, len(TINY_ACTIONS), size=num_frames).astype(np.int16),
        "subaction": rng.integers(1, 3, size=num_frames).astype(np.int16),
        "camera_id": np.full(num_frames, TINY_CAMERA_ID, dtype=np.int64),
        "frame_index": np.arange(num_frames, dtype=np.int32),
    }
    if with_part_labels:
        batch["part_labels"] = rng.integers(0, NUM_PARTS, size=(num_frames, height, width), dtype=np.uint8)
    return batch


def write_tiny_dataset(
    path: str | Path,
    num_frames: int = 5,
    frame_size: tuple[int, int] = (16, 16),
    *,
    with_part_labels: bool = True,
    seed: int = 0,
    source: str = "synthetic",
    split: str = "test",
    extra_attrs: dict | None = None,
) -> Path:
    """Write a valid tiny store at ``path`` in two batches (second half first); returns ``path``.

    The rows equal ``make_tiny_batch(num_frames, frame_size, np.random.default_rng(seed), with_part_labels)``.
    """
    batch = make_tiny_batch(num_frames, frame_size, np.random.default_rng(seed), with_part_labels)
    with DatasetWriter(
        path,
        num_frames=num_frames,
        frame_size=frame_size,
        has_part_labels=with_part_labels,
        source=source,
        split=split,
        subjects=TINY_SUBJECTS,
        actions=TINY_ACTIONS,
        extra_attrs=extra_attrs,
    ) as writer:
        middle = num_frames // 2
        for start, stop in ((middle, num_frames), (0, middle)):
            if stop > start:
                writer.write(start, {name: values[start:stop] for name, values in batch.items()})
    return Path(path)
