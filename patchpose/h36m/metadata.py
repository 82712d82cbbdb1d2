"""Check the release's ``metadata.xml`` (if the user has it) against the shipped camera numbers.

What is checked (``check_metadata``), and why only this:

* ``<dbcameras><index2id>``: the four camera ids (child elements or one bracketed list), in order, must be
  54138969, 55011271, 58860488, 60457274 — the order the ``w0`` vector and ``patchpose/data/h36m_cameras.json`` use.
* ``<w0>``: a bracketed list of numbers. Its first 6 x 4 x 11 = 264 numbers are per (camera, subject)
  extrinsics as Euler angles + translation; they are NOT checked (their angle convention is not documented
  in the release, and ``h36m_cameras.json`` stores quaternions). The 4 x 9 numbers after them are the
  intrinsics of camera ``c`` at offset ``264 + 9 c``: ``fx, fy, cx, cy, k1, k2, k3, p1, p2`` (p in the
  metadata order the shipped cameras also use). Each must agree with the shipped camera to 1e-6 relative
  (absolute 1e-9 for the distortion terms).

Any disagreement, a missing element or an unparsable number raises ``H36MLayoutError`` naming the file.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from patchpose.camera import h36m_camera
from patchpose.h36m.layout import CAMERA_IDS, H36MLayoutError

__all__ = ["EXTRINSICS_COUNT", "INTRINSICS_PER_CAMERA", "check_metadata", "intrinsics_vector"]

EXTRINSICS_COUNT = 6 * 4 * 11
INTRINSICS_PER_CAMERA = 9


def intrinsics_vector(camera_id: int) -> np.ndarray:
    """(9,) ``fx, fy, cx, cy, k1, k2, k3, p1, p2`` of the shipped camera (same for every subject)."""
    camera = h36m_camera("S1", str(camera_id))
    return np.concatenate([camera.intrinsics, camera.distortion])


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
    return {"path": str(path), "checked": ["camera ids", "intrinsics fx fy cx cy k1 k2 k3 p1 p2"], "agrees": True}
