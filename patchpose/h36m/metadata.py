"""Check the release's ``metadata.xml`` (if the user has it) against the shipped cameras and subaction table.

What is checked (``check_metadata``), and why only this:

* ``<dbcameras><index2id>``: the four camera ids (child elements or one bracketed list), in order, must be
  54138969, 55011271, 58860488, 60457274 — the order the ``w0`` vector and ``patchpose/data/h36m_cameras.json`` use.
* ``<w0>``: a bracketed list of numbers. Its first 6 x 4 x 11 = 264 numbers are per (camera, subject)
  extrinsics as Euler angles + translation; they are NOT checked (their angle convention is not documented
  in the release, and ``h36m_cameras.json`` stores quaternions). The 4 x 9 numbers after them are the
  intrinsics of camera ``c`` at offset ``264 + 9 c``: ``fx, fy, cx, cy, k1, k2, k3, p1, p2`` (p in the
  metadata order the shipped cameras also use). Each must agree with the shipped camera to 1e-6 relative
  (absolute 1e-9 for the distortion terms).
* ``<mapping>`` (``read_mapping``): the (action, subaction) -> file name table, laid out as every public reader
  (h36m-fetch, MMPose's ``preprocess_h36m.py``, H36M-Toolbox) reads it: a header row of two labels then one
  cell per subject (S1 ... S11), then 32 rows ``action id, subaction id, <one file name per subject>`` for action
  ids 1..16 (1 = ``_ALL``, skipped) and subactions 1, 2; later rows are not read. For every subject of the
  shipped table (``patchpose/data/h36m_subactions.json``) each file name must equal the shipped one, so the
  frame ids (which take their subaction from the shipped table) are the release's own numbers.

Any disagreement, a missing element or an unparsable number raises ``H36MLayoutError`` naming the file.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from patchpose.camera import h36m_camera
from patchpose.h36m.layout import (
    CAMERA_IDS,
    SUBACTION_TABLE,
    H36MLayoutError,
    action_of_id,
    subaction_table,
)

__all__ = [
    "EXTRINSICS_COUNT",
    "INTRINSICS_PER_CAMERA",
    "MAPPING_ROWS",
    "check_metadata",
    "check_mapping",
    "intrinsics_vector",
    "read_mapping",
]

EXTRINSICS_COUNT = 6 * 4 * 11
INTRINSICS_PER_CAMERA = 9
MAPPING_ROWS = 16 * 2  # (action id 1..16) x (subaction 1, 2), after the header row


def intrinsics_vector(camera_id: int) -> np.ndarray:
    """(9,) ``fx, fy, cx, cy, k1, k2, k3, p1, p2`` of the shipped camera (same for every subject)."""
    camera = h36m_camera("S1", str(camera_id))
    return np.concatenate([camera.intrinsics, camera.distortion])


def read_mapping(root: ET.Element, path: str | Path) -> dict[str, dict[str, tuple[str, str]]]:
    """The ``<mapping>`` table of a parsed metadata.xml: subject -> canonical action -> (file name of subaction 1,
    of subaction 2), ``_ALL`` left out. ``H36MLayoutError`` naming ``path`` when it is missing or malformed."""
    element = root.find("mapping")
    if element is None:
        raise H36MLayoutError(f"{path}: no <mapping> table (action id, subaction id -> file name per subject)")
    rows = [[(cell.text or "").strip() for cell in row] for row in element]
    if len(rows) < 1 + MAPPING_ROWS:
        raise H36MLayoutError(f"{path}: <mapping> has {len(rows)} rows, expected a header and {MAPPING_ROWS} more")
    subjects = rows[0][2:]
    found: dict[str, dict[str, list]] = {subject: {} for subject in subjects}
    for number, row in enumerate(rows[1 : 1 + MAPPING_ROWS], start=1):
        if len(row) != len(rows[0]):
            raise H36MLayoutError(f"{path}: <mapping> row {number} has {len(row)} cells, its header {len(rows[0])}")
        where = f"{path}: <mapping> row {number}"
        try:
            action, subaction = int(row[0]), int(row[1])
        except ValueError as error:
            raise H36MLayoutError(f"{where} starts with {row[:2]}, not an action id and a subaction id") from error
        if not 1 <= action <= 16 or subaction not in (1, 2):
            raise H36MLayoutError(f"{where}: action {action}, subaction {subaction} is outside 1..16 x 1..2")
        if action == 1:  # _ALL: no poses
            continue
        for subject, name in zip(subjects, row[2:], strict=True):
            found[subject].setdefault(action_of_id(action), [None, None])[subaction - 1] = name
    return {s: {a: tuple(names) for a, names in by_action.items()} for s, by_action in found.items()}


def check_mapping(found: dict[str, dict[str, tuple[str, str]]], path: str | Path) -> None:
    """``H36MLayoutError`` naming ``path`` unless ``found`` (``read_mapping``) lists, for every subject of the
    shipped table, the shipped file name of every (action, subaction)."""
    for subject, by_action in subaction_table().items():
        if subject not in found:
            raise H36MLayoutError(f"{path}: <mapping> has no column for subject {subject} (has {', '.join(found)})")
        for action, shipped in by_action.items():
            given = found[subject].get(action, (None, None))
            for subaction, (name, expected) in enumerate(zip(given, shipped, strict=True), start=1):
                if name != expected:
                    raise H36MLayoutError(
                        f"{path}: <mapping> gives {subject} {action} subaction {subaction} as {name!r}; "
                        f"{SUBACTION_TABLE} (which numbers the frame ids) has {expected!r}"
                    )


def check_metadata(path: str | Path) -> dict:
    """Parse and check ``metadata.xml``; returns a summary for the manifest. See the module docstring."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as error:
        raise H36MLayoutError(f"{path}: unreadable metadata.xml ({error})") from error
    ids_element = root.find("dbcameras/index2id")
    if ids_element is None:
        raise H36MLayoutError(f"{path}: no <dbcameras><index2id> element")
    texts = [child.text or "" for child in ids_element] if len(ids_element) else [ids_element.text or ""]
    ids = [int(v) for text in texts for v in re.findall(r"[0-9]+", text)]
    if tuple(ids) != CAMERA_IDS:
        raise H36MLayoutError(f"{path}: camera ids {ids} differ from the expected {list(CAMERA_IDS)}")
    w0 = root.find("w0")
    if w0 is None or not w0.text:
        raise H36MLayoutError(f"{path}: no <w0> camera vector")
    try:
        values = np.array([float(v) for v in w0.text.strip().strip("[]").split()])
    except ValueError as error:
        raise H36MLayoutError(f"{path}: <w0> holds a non-number ({error})") from error
    needed = EXTRINSICS_COUNT + INTRINSICS_PER_CAMERA * len(CAMERA_IDS)
    if values.size < needed:
        raise H36MLayoutError(f"{path}: <w0> has {values.size} numbers, expected at least {needed}")
    names = ("fx", "fy", "cx", "cy", "k1", "k2", "k3", "p1", "p2")
    for index, camera_id in enumerate(CAMERA_IDS):
        start = EXTRINSICS_COUNT + INTRINSICS_PER_CAMERA * index
        found, shipped = values[start : start + INTRINSICS_PER_CAMERA], intrinsics_vector(camera_id)
        tolerance = np.r_[1e-6 * np.abs(shipped[:4]), np.full(5, 1e-9)]
        bad = np.flatnonzero(np.abs(found - shipped) > tolerance)
        if bad.size:
            j = int(bad[0])
            raise H36MLayoutError(
                f"{path}: camera {camera_id} {names[j]} = {found[j]!r} disagrees with the shipped "
                f"patchpose/data/h36m_cameras.json value {shipped[j]!r}"
            )
    check_mapping(read_mapping(root, path), path)
    checked = ["camera ids", "intrinsics fx fy cx cy k1 k2 k3 p1 p2", "subaction mapping"]
    return {"path": str(path), "checked": checked, "agrees": True}
