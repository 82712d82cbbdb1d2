"""One Human3.6M sequence -> a per-sequence intermediate directory, written atomically.

The intermediate ``<out>/`` (built by ``patchpose.atomic.atomic_directory``, so it exists whole or not at
all) holds

* ``sequence.json``: what was kept and dropped, per camera (see ``docs/h36m.md``);
* ``frames.zarr``: the kept frames in the common dataset format (absent when nothing is kept), rows ordered
  by camera (``CAMERA_IDS`` order) then frame index, ``subjects = [subject]``, ``actions = [action]``.

Per camera and kept frame ``i`` (pose ``i``, video frame ``i``): the 17 joints are moved into the camera frame
(``X_cam = R (X_world - C)``, mm), projected with the camera's distortion, the split's person box is cut
(``patchpose.person_box``: by default the ground-truth square of side ``crop_margin`` x the joints' box,
``person_crop_affine``; or that square jittered, with draws named (subject, sequence key, camera, frame index))
and resampled to ``frame_size``², and pseudo part labels are drawn (``pseudo_labels``). Kept frames:
``i % train_stride == 0`` for training subjects, ``i % test_every == 0`` for test subjects.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from patchpose.atomic import atomic_directory
from patchpose.camera import h36m_camera, project, world_to_camera
from patchpose.crop_geometry import apply_affine, invert_affine, warp_crop
from patchpose.dataset_format import DatasetWriter
from patchpose.h36m.cdf import read_pose_cdf, read_pose_npz, scan_npz_sequences
from patchpose.h36m.layout import (
    CAMERA_IDS,
    TEST_SUBJECTS,
    TRAIN_SUBJECTS,
    H36MLayoutError,
    Sequence,
    mask_path,
    pose_path,
    relative,
    scan_pose_sequences,
    video_path,
)
from patchpose.h36m.masks import MaskReader
from patchpose.h36m.pseudo_labels import DEFAULT_WIDTHS_MM, pseudo_part_labels
from patchpose.h36m.video import VideoStats, iter_video_frames
from patchpose.person_box import GROUND_TRUTH, box_affines, check_box

__all__ = ["H36MSettings", "split_of", "list_sequences", "kept_frames", "extract_sequence"]

log = logging.getLogger("patchpose.h36m.extract")
_BATCH = 16


@dataclass(frozen=True)
class H36MSettings:
    """The ``dataset.h36m`` config block (see docs/h36m.md for meanings, bounds and defaults), plus each split's
    resolved person box (``patchpose.person_box.split_boxes``; default: ground truth)."""

    root: str
    frame_size: int = 256
    crop_margin: float = 1.25
    train_stride: int = 5
    test_every: int = 64
    train_subjects: tuple[str, ...] = TRAIN_SUBJECTS
    test_subjects: tuple[str, ...] = TEST_SUBJECTS
    corrupt_videos: tuple[str, ...] = ("S11/Videos/Directions.54138969.mp4",)
    corrupt_video_policy: str = "drop_camera"
    expected_absent: tuple[str, ...] = ()
    preprocessed_npz: str | None = None
    pseudo_label_widths_mm: dict = field(default_factory=dict)
    train_person_box: dict = field(default_factory=lambda: dict(GROUND_TRUTH))
    test_person_box: dict = field(default_factory=lambda: dict(GROUND_TRUTH))

    @classmethod
    def from_config(cls, block: dict) -> H36MSettings:
        known = set(cls.__dataclass_fields__)
        unknown = set(block) - known
        if unknown:
            raise ValueError(f"dataset.h36m: unknown keys {sorted(unknown)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in block.items()}
        if not values.get("root"):
            raise ValueError("dataset.h36m.root: path of the unpacked Human3.6M release is required")
        settings = cls(**values)
        if not Path(settings.root).is_dir():
            raise ValueError(f"dataset.h36m.root = {settings.root!r}: not a directory")
        for key, low in (("frame_size", 32), ("train_stride", 1), ("test_every", 1), ("crop_margin", 1)):
            if not getattr(settings, key) >= low:
                raise ValueError(f"dataset.h36m.{key} = {getattr(settings, key)!r} must be >= {low}")
        if settings.corrupt_video_policy not in ("drop_camera", "drop_sequence"):
            raise ValueError(
                f"dataset.h36m.corrupt_video_policy must be drop_camera or drop_sequence, got "
                f"{settings.corrupt_video_policy!r}"
            )
        if set(settings.train_subjects) & set(settings.test_subjects):
            raise ValueError("dataset.h36m: a subject is in both train_subjects and test_subjects")
        unknown_widths = set(settings.pseudo_label_widths_mm) - set(DEFAULT_WIDTHS_MM)
        if unknown_widths:
            raise ValueError(
                f"dataset.h36m.pseudo_label_widths_mm: unknown parts {sorted(unknown_widths)}; "
                f"known: {sorted(DEFAULT_WIDTHS_MM)}"
            )
        for split in ("train", "test"):
            check_box(settings.person_box(split), f"dataset.person_box.{split}")
        return settings

    def person_box(self, split: str) -> dict:
        """The resolved person box of ``split``."""
        return self.train_person_box if split == "train" else self.test_person_box

    def to_config(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}


def split_of(settings: H36MSettings, subject: str) -> str:
    if subject in settings.train_subjects:
        return "train"
    if subject in settings.test_subjects:
        return "test"
    raise ValueError(f"subject {subject} is in neither train_subjects nor test_subjects")


def list_sequences(settings: H36MSettings, subject: str) -> list[Sequence]:
    """The subject's sequences, from the pose CDFs or (``preprocessed_npz``) from the npz."""
    if settings.preprocessed_npz:
        return scan_npz_sequences(settings.root, settings.preprocessed_npz, subject)
    return scan_pose_sequences(settings.root, subject)


def kept_frames(settings: H36MSettings, subject: str, num_poses: int) -> np.ndarray:
    step = settings.train_stride if split_of(settings, subject) == "train" else settings.test_every
    return np.arange(0, num_poses, step, dtype=np.int64)


def _find_sequence(settings: H36MSettings, subject: str, key: str) -> Sequence:
    for sequence in list_sequences(settings, subject):
        if sequence.key == key:
            return sequence
    raise H36MLayoutError(f"{Path(settings.root) / subject}: no sequence with key {key!r}")


def _camera_rows(settings, subject, camera_id, poses, wanted, video, masks, stats, person_box, key):
    """Yield the batch rows (dicts of per-frame arrays) of one camera, decoding its video as it goes; the crops
    are ``person_box`` (resolved) with draws named (subject, sequence ``key``, camera, frame index)."""
    camera = h36m_camera(subject, str(camera_id))
    joints_cam = world_to_camera(poses[wanted], camera.rotation, camera.centre)
    if np.any(joints_cam[..., 2] <= 0):
        raise H36MLayoutError(f"{video}: a joint lies behind camera {camera_id} (wrong subject or pose units?)")
    joints_px = project(joints_cam, camera.intrinsics, camera.distortion)
    names = [(subject, key, int(camera_id), int(index)) for index in wanted]
    affines = box_affines(joints_px, person_box, settings.crop_margin, settings.frame_size, names)
    joints_2d = apply_affine(invert_affine(affines), joints_px)
    focal = (camera.fx + camera.fy) / 2
    size = (camera.res_w, camera.res_h)
    for row, (index, rgb) in enumerate(iter_video_frames(video, len(poses), wanted, size, stats)):
        mask = masks.read(index) if masks is not None else None
        yield {
            "frames": warp_crop(rgb, affines[row], settings.frame_size, cv2.INTER_AREA),
            "part_labels": pseudo_part_labels(
                joints_2d[row],
                joints_cam[row, :, 2],
                focal,
                affines[row],
                settings.frame_size,
                settings.pseudo_label_widths_mm,
                mask,
            ),
            "joints_2d": joints_2d[row],
            "joints_3d": joints_cam[row],
            "crop_affine": affines[row],
            "camera_intrinsics": camera.intrinsics,
            "camera_distortion": camera.distortion,
            "camera_rotation": camera.rotation,
            "camera_centre": camera.centre,
            "image_size": np.array(size),
            "frame_index": index,
        }


def extract_sequence(settings: H36MSettings, subject: str, key: str, out_dir: str | Path) -> dict:
    """Extract sequence ``key`` of ``subject`` into ``out_dir`` (atomic); returns the sequence record."""
    root = Path(settings.root)
    sequence = _find_sequence(settings, subject, key)
    split = split_of(settings, subject)
    expected_absent, corrupt = set(settings.expected_absent), set(settings.corrupt_videos)
    record = {
        "subject": subject,
        "sequence": sequence.name,
        "key": key,
        "action": sequence.action,
        "subaction": sequence.subaction,
        "split": split,
        "pose_source": "preprocessed_npz" if settings.preprocessed_npz else "cdf",
        "num_poses": 0,
        "num_rows": 0,
        "cameras": {},
        "dropped": [],
    }

    def drop(what, path, reason):
        record["dropped"].append({"what": what, "path": path, "reason": reason})
        log.warning("%s %s: dropped %s (%s): %s", subject, sequence.name, what, path, reason)

    if settings.preprocessed_npz:
        poses = read_pose_npz(settings.preprocessed_npz, subject, sequence.name)
    else:
        cdf = pose_path(root, subject, sequence.name)
        if not cdf.exists() and relative(root, cdf) in expected_absent:
            poses = None
            drop("sequence", relative(root, cdf), "pose file listed in expected_absent")
        else:
            poses = read_pose_cdf(cdf)
    videos = {cid: video_path(root, subject, sequence.name, cid) for cid in CAMERA_IDS}
    corrupt_here = [relative(root, v) for v in videos.values() if relative(root, v) in corrupt]
    if poses is not None and corrupt_here and settings.corrupt_video_policy == "drop_sequence":
        drop("sequence", corrupt_here[0], "known corrupt video, corrupt_video_policy=drop_sequence (all cameras)")
        poses = None
    plan = []  # (camera id, wanted frames, video, mask path or None)
    if poses is not None:
        record["num_poses"] = len(poses)
        wanted = kept_frames(settings, subject, len(poses))
        for cid, video in videos.items():
            rel = relative(root, video)
            if rel in corrupt:
                drop(f"camera {cid}", rel, "known corrupt video, corrupt_video_policy=drop_camera")
            elif not video.exists() and rel in expected_absent:
                drop(f"camera {cid}", rel, "video listed in expected_absent")
            elif not video.exists():
                hint = (
                    " (the preprocessed npz holds no images: frames need the release's videos)"
                    if settings.preprocessed_npz
                    else ""
                )
                raise H36MLayoutError(f"{video}: video not found{hint}")
            else:
                mask = mask_path(root, subject, sequence.name, cid)
                plan.append((cid, wanted, video, mask if mask.exists() else None))
    total = sum(len(w) for _, w, _, _ in plan)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with atomic_directory(out_dir) as temporary:
        if total:
            _write_frames(settings, subject, sequence, split, poses, plan, record, temporary / "frames.zarr", total)
        record["num_rows"] = total
        (temporary / "sequence.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    log.info("%s %s: %d rows from %d cameras", subject, sequence.name, total, len(plan))
    return record


def _write_frames(settings, subject, sequence, split, poses, plan, record, store, total):
    with DatasetWriter(
        store,
        num_frames=total,
        frame_size=(settings.frame_size,) * 2,
        has_part_labels=True,
        source="h36m",
        split=split,
        subjects=[subject],
        actions=[sequence.action],
    ) as writer:
        start, pending = 0, []

        def flush():
            nonlocal start, pending
            if pending:
                batch = {name: np.stack([row[name] for row in pending]) for name in pending[0]}
                count = len(pending)
                batch.update(
                    subject=np.zeros(count, np.int16),
                    action=np.zeros(count, np.int16),
                    subaction=np.full(count, sequence.subaction, np.int16),
                    camera_id=np.asarray(batch.pop("camera_id")),
                    frame_index=batch["frame_index"].astype(np.int32),
                )
                writer.write(start, batch)
                start, pending = start + count, []

        for cid, wanted, video, mask in plan:
            stats = VideoStats()
            masks = MaskReader(mask, settings_size(subject, cid)) if mask is not None else None
            try:
                box = settings.person_box(split)
                for row in _camera_rows(settings, subject, cid, poses, wanted, video, masks, stats, box, sequence.key):
                    pending.append({**row, "camera_id": np.int64(cid)})
                    if len(pending) == _BATCH:
                        flush()
            finally:
                if masks is not None:
                    masks.close()
            record["cameras"][str(cid)] = {
                "video": relative(Path(settings.root), video),
                "frames": wanted.tolist(),
                "num_kept": len(wanted),
                "video_frames": stats.video_frames,
                "extra_frames_dropped": stats.extra_frames,
                "background_mask": mask is not None,
            }
            if stats.extra_frames:
                log.info("%s: %d extra video frames beyond the %d poses dropped", video, stats.extra_frames, len(poses))
        flush()


def settings_size(subject: str, camera_id: int) -> tuple[int, int]:
    camera = h36m_camera(subject, str(camera_id))
    return camera.res_w, camera.res_h
