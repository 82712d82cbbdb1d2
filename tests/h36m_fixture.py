"""A tiny fake Human3.6M release tree, written the way the real one is laid out (for tests/test_h36m_*.py).

``build_release(root)`` writes, with the real file names and quirks:

* S1 (train): ``TakingPhoto`` and ``WalkingDog 1`` (S1's spellings), ``Sitting 1`` and ``SittingDown``
  (prefix quirk), a ``Directions_ALL`` video with no poses; ``TakingPhoto`` videos have 2 extra frames;
  ``Sitting 1`` has background masks (MATLAB v7.3 / HDF5) whose foreground is the image's left half.
* S11 (test): ``Directions`` (camera 54138969's video truncated: corrupt) and ``Directions 1``; the latter's
  videos have 1 extra frame.
* ``metadata.xml`` with the shipped camera ids and intrinsics and the ``<mapping>`` table laid out like the
  real file (``write_metadata``): S11's subaction 1 of Directions is "Directions 1", S1's SittingDown 2 is
  "SittingDown" and Photo 2 "TakingPhoto", so the frame ids differ from a rank-by-suffix numbering.

Poses (CDF ``Pose`` (1, F, 96), world mm, written with cdflib) are a standing figure walking and turning
around the capture volume's centre. Every video frame is a flat colour that encodes the frame index and
the camera, at the camera's real resolution (1000 x 1002 or 1000 x 1000): ``frame_colour``.
Returns the truth: ``{(subject, name): {"poses17": (F, 17, 3) world mm, "raw": (F, 32, 3), "extra": int}}``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import h5py
import numpy as np
from cdflib import cdfwrite

from patchpose.camera import h36m_camera
from patchpose.h36m.layout import CAMERA_IDS, action_of_id, mask_path, pose_path, subaction_table, video_path
from patchpose.h36m.metadata import EXTRINSICS_COUNT, intrinsics_vector
from patchpose.skeleton import RAW32_TO_H36M17

# (subject, release name, poses, extra video frames, with masks)
SEQUENCES = (
    ("S1", "TakingPhoto", 12, 2, False),
    ("S1", "WalkingDog 1", 8, 0, False),
    ("S1", "Sitting 1", 6, 0, True),
    ("S1", "SittingDown", 7, 0, False),
    ("S11", "Directions", 66, 0, False),
    ("S11", "Directions 1", 65, 1, False),
)
CORRUPT = ("S11", "Directions", 54138969)

# A standing figure, 17 joints, metres-free: mm relative to the pelvis, world z up.
_STAND = np.array(
    [
        (0, 0, 0), (-130, 0, 0), (-130, 0, -440), (-130, 0, -880), (130, 0, 0), (130, 0, -440), (130, 0, -880),
        (0, 0, 230), (0, 0, 480), (0, -40, 580), (0, 0, 700), (170, 0, 460), (190, 0, 180), (200, 0, -60),
        (-170, 0, 460), (-190, 0, 180), (-200, 0, -60),
    ],
    dtype=np.float64,
)  # fmt: skip


def frame_colour(camera_id: int, index: int) -> np.ndarray:
    """RGB uint8 (3,) colour of frame ``index`` of camera ``camera_id``'s videos."""
    return np.array([20 + 3 * (index % 70), 40 + 50 * CAMERA_IDS.index(camera_id), 128], dtype=np.uint8)


def make_poses(num: int, seed: int) -> np.ndarray:
    """(num, 32, 3) raw world poses, mm: the standing figure turning and walking; unused joints at the pelvis."""
    rng = np.random.default_rng(seed)
    start, heading = rng.uniform(-300, 300, size=2), rng.uniform(0, 2 * np.pi)
    raw = np.zeros((num, 32, 3))
    for i in range(num):
        angle = heading + 0.05 * i
        c, s = np.cos(angle), np.sin(angle)
        turn = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
        root = np.array([*(start + 10 * i * np.array([c, s])), 920.0])
        joints = _STAND @ turn.T + root
        raw[i] = joints[0]
        raw[i, list(RAW32_TO_H36M17)] = joints
    return raw


def write_cdf(path: Path, array: np.ndarray) -> None:
    """Write ``array`` as the CDF variable ``Pose`` (any shape; the release's is (1, F, 96))."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cdfwrite.CDF(str(path), cdf_spec={"Compressed": False}, delete=True)
    spec = {"Variable": "Pose", "Data_Type": cdfwrite.CDF.CDF_FLOAT, "Num_Elements": 1, "Rec_Vary": True}
    writer.write_var({**spec, "Dim_Sizes": list(array.shape[1:])}, var_data=array.astype(np.float32))
    writer.close()


def write_video(path: Path, camera_id: int, num: int, size: tuple[int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 50, size)
    for i in range(num):
        writer.write(np.ascontiguousarray(np.broadcast_to(frame_colour(camera_id, i)[::-1], (size[1], size[0], 3))))
    writer.release()


def write_masks(path: Path, num: int, size: tuple[int, int]) -> None:
    """MATLAB v7.3-style ``Masks`` cell array: foreground = the left half (x < W/2) of each frame."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mask = np.zeros((size[1], size[0]), np.uint8)
    mask[:, : size[0] // 2] = 1
    with h5py.File(path, "w") as handle:
        group = handle.create_group("#refs#")
        refs = [group.create_dataset(f"m{i}", data=mask.T).ref for i in range(num)]
        handle.create_dataset("Masks", data=np.array(refs, dtype=h5py.ref_dtype).reshape(-1, 1))


XML_SUBJECTS = tuple(f"S{i}" for i in range(1, 12))  # the real table has a column for each of S1 ... S11


def mapping_rows(overrides: dict | None = None) -> list[list[str]]:
    """The ``<mapping>`` rows: a header (two labels, then S1 ... S11), then ``action id, subaction id, names``
    for action ids 1..16 x subactions 1, 2. Names: the shipped table for the subjects with poses; placeholders
    for ``_ALL`` and for S2, S3, S4, S10 (never compared). ``overrides[(subject, action, subaction)] = name``."""
    table, overrides = subaction_table(), overrides or {}
    rows = [["action", "subaction", *XML_SUBJECTS]]
    for number in range(1, 17):
        action = action_of_id(number) if number > 1 else "_ALL"
        for subaction in (1, 2):
            names = []
            for subject in XML_SUBJECTS:
                if number == 1:
                    name = "_ALL 1" if subaction == 1 else "_ALL"
                elif subject in table:
                    name = table[subject][action][subaction - 1]
                else:
                    name = f"{action} {subaction}"
                names.append(overrides.get((subject, action, subaction), name))
            rows.append([str(number), str(subaction), *names])
    return rows


def write_metadata(path: Path, change: float = 0.0, rows: list[list[str]] | None = None) -> None:
    """``metadata.xml`` with the shipped ids and intrinsics (``change`` is added to camera 0's fx) and the
    ``<mapping>`` table ``rows`` (default ``mapping_rows()``; ``[]`` leaves the table out)."""
    root = ET.Element("metadata")
    dbcameras = ET.SubElement(root, "dbcameras")
    index2id = ET.SubElement(dbcameras, "index2id")
    for cid in CAMERA_IDS:
        ET.SubElement(index2id, "item").text = str(cid)
    values = np.concatenate([np.zeros(EXTRINSICS_COUNT), *[intrinsics_vector(c) for c in CAMERA_IDS]])
    values[EXTRINSICS_COUNT] += change
    ET.SubElement(root, "w0").text = "[" + " ".join(repr(float(v)) for v in values) + "]"
    rows = mapping_rows() if rows is None else rows
    if rows:
        mapping = ET.SubElement(root, "mapping")
        for cells in rows:
            row = ET.SubElement(mapping, "tr")
            for text in cells:
                ET.SubElement(row, "td").text = text
    ET.ElementTree(root).write(path)


def build_release(root: str | Path) -> dict:
    root = Path(root)
    truth = {}
    for seed, (subject, name, num, extra, masks) in enumerate(SEQUENCES):
        raw = make_poses(num, seed)
        write_cdf(pose_path(root, subject, name), raw.reshape(1, num, 96))
        for cid in CAMERA_IDS:
            camera = h36m_camera(subject, str(cid))
            size = (camera.res_w, camera.res_h)
            path = video_path(root, subject, name, cid)
            if (subject, name, cid) == CORRUPT:
                write_video(path, cid, 10, size)
                path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
            else:
                write_video(path, cid, num + extra, size)
            if masks:
                write_masks(mask_path(root, subject, name, cid), num, size)
        truth[(subject, name)] = {"raw": raw, "poses17": raw[:, list(RAW32_TO_H36M17)], "extra": extra}
    (root / "S1" / "Videos" / "Directions_ALL.54138969.mp4").write_bytes(b"not a video, never opened")
    write_metadata(root / "metadata.xml")
    return truth
