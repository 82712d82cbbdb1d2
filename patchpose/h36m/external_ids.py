"""Human3.6M frame names of other tools -> our frame ids (to key an external prediction file by our ids).

Our id is ``"{subject}/{action}/{subaction}/{camera_id}/{frame_index:06d}"`` (docs/data_format.md) with the
release's own subaction number (``patchpose.h36m.layout.official_subaction``) and ``frame_index`` = the 0-based
video frame = pose row. The other tools' names, and how they map:

* **H36M-Toolbox** image names ``s_09_act_02_subact_01_ca_01_000001.jpg`` (in a folder named without the
  ``_000001``; also the ``file_name`` of the COCO-style Human3.6M annotations that carry ``action_idx``,
  ``subaction_idx``, ``cam_idx`` and a 0-based ``frame_idx``): subject 9; metadata.xml action id 2..16
  (``action_of_id``: 2 = Directions); subaction 1 or 2, already the release's number; camera 1..4 in
  ``CAMERA_IDS`` order (1 = 54138969); image number 1-based, so frame index = number - 1.
* **MMPose** (``tools/dataset_converters/preprocess_h36m.py``, ``Body3DH36MDataset``) image names
  ``S9/S9_Directions_1.54138969/S9_Directions_1.54138969_000001.jpg``: the release's file name with ``_`` for
  the space, the camera id, the 1-based image number.
* **VideoPose3D** arrays ``positions[subject][sequence][camera index][row]``: ``sequence`` is the release's file
  name with S1's ``TakingPhoto``/``WalkingDog`` renamed ``Photo``/``WalkDog``; camera index 0..3 in
  ``CAMERA_IDS`` order; ``row`` = frame index (0-based).

Every function raises ``ValueError`` naming the text it could not map.
"""

from __future__ import annotations

import re

from patchpose.dataset_format import frame_id
from patchpose.h36m.layout import (
    CAMERA_IDS,
    H36MLayoutError,
    action_of_id,
    canonical_action,
    official_subaction,
)

__all__ = ["frame_id_from_image_name", "videopose3d_frame_id"]

_TOOLBOX_RE = re.compile(r"(?:^|/)s_(\d{2})_act_(\d{2})_subact_(\d{2})_ca_(\d{2})_(\d{6})(?:\.jpg)?$")
_MMPOSE_RE = re.compile(r"(?:^|/)(S\d{1,2})_([A-Za-z]+(?:_\d)?)\.(\d{8})_(\d{6})(?:\.jpg)?$")


def _camera(value: int, first: int, text: str) -> int:
    if not first <= value < first + len(CAMERA_IDS):
        raise ValueError(f"{text!r}: camera {value} is outside {first}..{first + len(CAMERA_IDS) - 1}")
    return CAMERA_IDS[value - first]


def _frame(number: int, text: str) -> int:
    if number < 1:
        raise ValueError(f"{text!r}: image numbers start at 1, got {number}")
    return number - 1


def frame_id_from_image_name(text: str) -> str:
    """Our frame id of an H36M-Toolbox or an MMPose image name (module docstring).

    ``"s_11_act_02_subact_01_ca_01_000065.jpg"`` -> ``"S11/Directions/1/54138969/000064"``;
    ``"S11_Directions_1.54138969_000065.jpg"`` -> the same id (S11's subaction 1 of Directions is
    "Directions 1"). A leading folder path is allowed.
    """
    toolbox = _TOOLBOX_RE.search(text)
    if toolbox is not None:
        subject, action, subaction, camera, number = (int(v) for v in toolbox.groups())
        if subaction not in (1, 2):
            raise ValueError(f"{text!r}: subaction {subaction} is not 1 or 2")
        try:
            name = action_of_id(action)
        except ValueError as error:
            raise ValueError(f"{text!r}: {error}") from error
        return frame_id(f"S{subject}", name, subaction, _camera(camera, 1, text), _frame(number, text))
    mmpose = _MMPOSE_RE.search(text)
    if mmpose is not None:
        subject, sequence, camera, number = mmpose.groups()
        if int(camera) not in CAMERA_IDS:
            raise ValueError(f"{text!r}: camera id {camera} is not one of {', '.join(map(str, CAMERA_IDS))}")
        return videopose3d_frame_id(
            subject, sequence.replace("_", " "), CAMERA_IDS.index(int(camera)), _frame(int(number), text)
        )
    raise ValueError(
        f"{text!r}: not an H36M-Toolbox name 's_SS_act_AA_subact_BB_ca_CC_NNNNNN.jpg' or an MMPose name "
        "'S9_<sequence>.<camera id>_NNNNNN.jpg'"
    )


def videopose3d_frame_id(subject: str, sequence: str, camera_index: int, row: int) -> str:
    """Our frame id of row ``row`` of VideoPose3D's ``[subject][sequence][camera_index]`` array (module
    docstring); ``sequence`` may use either spelling (S1's "Photo 1" or "TakingPhoto 1")."""
    where = f"{subject}/{sequence}"
    try:
        action, subaction = canonical_action(sequence, where), official_subaction(subject, sequence, where)
    except H36MLayoutError as error:
        raise ValueError(str(error)) from error
    if not isinstance(row, int) or row < 0:
        raise ValueError(f"{where}: row {row!r} must be an integer >= 0")
    return frame_id(subject, action, subaction, _camera(camera_index, 0, where), row)
