"""Per-sequence intermediates of one split -> the split's dataset store + the protocol manifest (JSON).

Rows are concatenated in the order of the ``sequence_dirs`` given (the rule passes subjects in protocol
order, then canonical action order, then subaction), each intermediate's rows unchanged (camera, then frame
index). ``subjects`` = the split's subjects that have rows, in protocol order; ``actions`` = all 15
``patchpose.actions.ACTIONS`` (the same indices in both splits). Images are copied in batches, so memory is
bounded by the batch, not the split.

The manifest (``build_manifest``) holds, per subject / action / sequence / camera, the kept frame indices,
their count and a SHA-256 of the camera's frame-id list; per subject and action and overall counts; the
SHA-256 of the split's whole frame-id list (``frame_list_sha256``: for the test split, the checksum of the
test frame list); and every dropped item with its reason.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from patchpose.actions import ACTIONS
from patchpose.atomic import atomic_write_text
from patchpose.dataset_format import DatasetWriter, frame_id, open_dataset
from patchpose.h36m.layout import CAMERA_IDS

__all__ = ["merge_split", "build_manifest", "sha256_lines"]

log = logging.getLogger("patchpose.h36m.merge")
_FIELDS_SMALL = (
    "joints_2d",
    "joints_3d",
    "crop_affine",
    "camera_intrinsics",
    "camera_distortion",
    "camera_rotation",
    "camera_centre",
    "image_size",
    "subaction",
    "camera_id",
    "frame_index",
)


def sha256_lines(lines: list[str]) -> str:
    return hashlib.sha256("".join(f"{line}\n" for line in lines).encode()).hexdigest()


def _records(sequence_dirs: list[Path], split: str) -> list[dict]:
    records = []
    for directory in sequence_dirs:
        path = Path(directory) / "sequence.json"
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ValueError(f"{path}: unreadable sequence record ({error})") from error
        if record.get("split") != split:
            raise ValueError(f"{path}: sequence of split {record.get('split')!r} given to the {split} merge")
        has_store = (Path(directory) / "frames.zarr").exists()
        if has_store != (record["num_rows"] > 0):
            raise ValueError(f"{directory}: frames.zarr presence disagrees with num_rows={record['num_rows']}")
        records.append({**record, "_dir": str(directory)})
    return records


def build_manifest(records: list[dict], split: str, settings: dict, metadata: dict | None) -> dict:
    subjects, dropped, totals = {}, [], {"frames": 0, "sequences": 0, "cameras_kept": 0, "dropped_items": 0}
    all_ids, per_subject, per_action = [], {}, {}
    for record in records:
        subject, action = record["subject"], record["action"]
        cameras = {}
        for cid in CAMERA_IDS:
            entry = record["cameras"].get(str(cid))
            if entry is None:
                continue
            ids = [frame_id(subject, action, record["subaction"], cid, i) for i in entry["frames"]]
            all_ids += ids
            cameras[str(cid)] = {**entry, "frame_ids_sha256": sha256_lines(ids)}
            totals["cameras_kept"] += 1
        subjects.setdefault(subject, {}).setdefault(action, {})[record["sequence"]] = {
            "subaction": record["subaction"],
            "num_poses": record["num_poses"],
            "num_frames": record["num_rows"],
            "cameras": cameras,
        }
        per_subject[subject] = per_subject.get(subject, 0) + record["num_rows"]
        per_action[action] = per_action.get(action, 0) + record["num_rows"]
        for item in record["dropped"]:
            dropped.append({"subject": subject, "sequence": record["sequence"], **item})
        totals["frames"] += record["num_rows"]
        totals["sequences"] += 1
    totals["dropped_items"] = len(dropped)
    return {
        "split": split,
        "source": "h36m",
        "protocol": {
            "kept_frames": f"frame_index % {settings['train_stride']} == 0"
            if split == "train"
            else f"frame_index % {settings['test_every']} == 0",
            "per": "video (subject, sequence, camera)",
        },
        "settings": settings,
        "metadata_xml": metadata,
        "totals": totals,
        "frames_per_subject": per_subject,
        "frames_per_action": per_action,
        "frame_list_sha256": sha256_lines(all_ids),
        "subjects": subjects,
        "dropped": dropped,
    }


def merge_split(
    sequence_dirs,
    split: str,
    store_path,
    manifest_path,
    settings: dict,
    subject_order,
    metadata: dict | None = None,
    batch: int = 32,
) -> dict:
    """Concatenate the intermediates into ``store_path`` (atomic) and write ``manifest_path`` (atomic)."""
    records = _records([Path(d) for d in sequence_dirs], split)
    total = sum(r["num_rows"] for r in records)
    if total == 0:
        raise ValueError(f"{store_path}: no frames kept in split {split} (every sequence dropped?)")
    present = {r["subject"] for r in records if r["num_rows"]}
    subjects = [s for s in subject_order if s in present]
    manifest = build_manifest(records, split, settings, metadata)
    with DatasetWriter(
        store_path,
        num_frames=total,
        frame_size=(settings["frame_size"],) * 2,
        has_part_labels=True,
        source="h36m",
        split=split,
        subjects=subjects,
        actions=list(ACTIONS),
        extra_attrs={"manifest": Path(manifest_path).name, "frame_list_sha256": manifest["frame_list_sha256"]},
    ) as writer:
        start = 0
        for record in records:
            if not record["num_rows"]:
                continue
            source = open_dataset(Path(record["_dir"]) / "frames.zarr")
            subject, action = subjects.index(record["subject"]), ACTIONS.index(record["action"])
            for lo in range(0, source.num_frames, batch):
                rows = np.arange(lo, min(lo + batch, source.num_frames))
                chunk = {name: getattr(source, name)[rows] for name in _FIELDS_SMALL}
                chunk.update(
                    frames=source.read_frames(rows),
                    part_labels=source.read_part_labels(rows),
                    subject=np.full(rows.size, subject, np.int16),
                    action=np.full(rows.size, action, np.int16),
                )
                writer.write(start + lo, chunk)
            start += source.num_frames
    atomic_write_text(manifest_path, json.dumps(manifest, indent=1) + "\n")
    totals = manifest["totals"]
    message = (
        f"h36m {split}: {totals['frames']} frames from {totals['sequences']} sequences "
        f"({totals['cameras_kept']} videos), {totals['dropped_items']} dropped items; "
        f"frame list sha256 {manifest['frame_list_sha256'][:16]}"
    )
    log.info(message)
    print(message)
    return manifest
