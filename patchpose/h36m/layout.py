"""The Human3.6M release tree: file names, canonical action names and the protocol's subjects.

Layout, per subject ``S1 … S11`` as unpacked from the per-subject archives, under one root::

    <root>/metadata.xml                                         (optional)
    <root>/S9/MyPoseFeatures/D3_Positions/<Seq>.cdf             variable Pose (1, F, 96), world frame, mm
    <root>/S9/Videos/<Seq>.<camera id>.mp4                      50 fps, 1000 x 1002 (or 1000 x 1000)
    <root>/S9/MySegmentsMat/ground_truth_bs/<Seq>.<camera id>.mat   (optional) background masks

A sequence name ``<Seq>`` is an action base name plus an optional suffix ``" 1"``, ``" 2"`` or ``" 3"``
("Directions", "Directions 1", "Sitting 2"). Quirks handled here:

* S1 spells ``TakingPhoto`` and ``WalkingDog`` where the others spell ``Photo`` and ``WalkDog``
  (``ACTION_SPELLINGS``).
* The suffix is NOT a subaction index (S1 has "Directions 1" with no "Directions 2"; some subjects have
  " 2" and " 3" but not " 1"). ``subaction`` is the 1-based rank of the sequence name among the subject's
  sequences of the same canonical action, names sorted by ``(suffix number, name)`` with "no suffix" = 0.
* Base names are matched exactly after splitting off the suffix, never with ``startswith`` (``Sitting`` is a
  prefix of ``SittingDown``, ``Walking`` of ``WalkingDog``).
* ``_ALL`` videos (``Directions_ALL.54138969.mp4``) carry no poses and are skipped.

Sequence *keys* (Snakemake wildcards, intermediate file names) replace the space by ``_``:
``"Directions 1"`` -> ``"Directions_1"``; ``sequence_name_from_key`` inverts it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from patchpose.actions import ACTIONS

__all__ = [
    "CAMERA_IDS",
    "TRAIN_SUBJECTS",
    "TEST_SUBJECTS",
    "ACTION_SPELLINGS",
    "H36MLayoutError",
    "Sequence",
    "canonical_action",
    "sequence_key",
    "sequence_name_from_key",
    "pose_path",
    "video_path",
    "mask_path",
    "relative",
    "scan_pose_sequences",
    "assign_subactions",
]

CAMERA_IDS: tuple[int, ...] = (54138969, 55011271, 58860488, 60457274)
TRAIN_SUBJECTS: tuple[str, ...] = ("S1", "S5", "S6", "S7", "S8")
TEST_SUBJECTS: tuple[str, ...] = ("S9", "S11")
# release spelling -> canonical action name (S1's variants); every canonical name maps to itself.
ACTION_SPELLINGS: dict[str, str] = {"TakingPhoto": "Photo", "WalkingDog": "WalkDog", **{a: a for a in ACTIONS}}

_SEQUENCE_RE = re.compile(r"^(?P<base>[A-Za-z]+)(?: (?P<suffix>[0-9]))?$")


class H36MLayoutError(ValueError):
    """A release file that is missing, misnamed or malformed; the message starts with the file's path."""


@dataclass(frozen=True)
class Sequence:
    """One recorded sequence of one subject: its release name, canonical action and subaction."""

    subject: str
    name: str  # release spelling, e.g. "TakingPhoto 1"
    action: str  # canonical, e.g. "Photo"
    subaction: int  # 1-based, see the module docstring

    @property
    def key(self) -> str:
        return sequence_key(self.name)


def _split_name(name: str, where: str) -> tuple[str, int]:
    match = _SEQUENCE_RE.match(name)
    if match is None:
        raise H36MLayoutError(f"{where}: sequence name {name!r} is not '<Action>' or '<Action> <digit>'")
    return match["base"], int(match["suffix"] or 0)


def canonical_action(name: str, where: str = "<sequence name>") -> str:
    """Canonical action of a release sequence name ("WalkingDog 1" -> "WalkDog"); ``H36MLayoutError`` naming
    ``where`` (the file) for an unknown action."""
    base, _ = _split_name(name, where)
    if base not in ACTION_SPELLINGS:
        raise H36MLayoutError(
            f"{where}: unknown action {base!r} in sequence name {name!r}; known: {', '.join(sorted(ACTION_SPELLINGS))}"
        )
    return ACTION_SPELLINGS[base]


def sequence_key(name: str) -> str:
    """File-name-safe key of a sequence name: spaces -> ``_`` ("Directions 1" -> "Directions_1")."""
    return name.replace(" ", "_")


def sequence_name_from_key(key: str) -> str:
    return key.replace("_", " ")


def pose_path(root: Path, subject: str, name: str) -> Path:
    return Path(root) / subject / "MyPoseFeatures" / "D3_Positions" / f"{name}.cdf"


def video_path(root: Path, subject: str, name: str, camera_id: int) -> Path:
    return Path(root) / subject / "Videos" / f"{name}.{camera_id}.mp4"


def mask_path(root: Path, subject: str, name: str, camera_id: int) -> Path:
    return Path(root) / subject / "MySegmentsMat" / "ground_truth_bs" / f"{name}.{camera_id}.mat"


def relative(root: Path, path: Path) -> str:
    """``path`` relative to the release root, '/'-separated (the form config's expected absences use)."""
    return Path(path).relative_to(Path(root)).as_posix()


def assign_subactions(subject: str, names: list[str], where: dict[str, str] | None = None) -> list[Sequence]:
    """Sequences of one subject, sorted by (canonical action, suffix, name), each with its subaction."""
    where = where or {}
    parsed = []
    for name in names:
        place = where.get(name, f"{subject}/{name}")
        action = canonical_action(name, place)
        parsed.append((ACTIONS.index(action), _split_name(name, place)[1], name, action))
    parsed.sort()
    sequences, counter = [], {}
    for _, _, name, action in parsed:
        counter[action] = counter.get(action, 0) + 1
        sequences.append(Sequence(subject, name, action, counter[action]))
    return sequences


def scan_pose_sequences(root: str | Path, subject: str) -> list[Sequence]:
    """The sequences of ``subject`` with a pose file (``D3_Positions/*.cdf``), ``_ALL`` excluded.

    Raises ``H36MLayoutError`` naming the directory when it is missing and naming a file whose name is not a
    known action.
    """
    directory = Path(root) / subject / "MyPoseFeatures" / "D3_Positions"
    if not directory.is_dir():
        raise H36MLayoutError(f"{directory}: pose directory of subject {subject} not found (is root right?)")
    names, where = [], {}
    for path in sorted(directory.iterdir()):
        if path.suffix != ".cdf" or "_ALL" in path.stem:
            continue
        names.append(path.stem)
        where[path.stem] = str(path)
    if not names:
        raise H36MLayoutError(f"{directory}: no pose files (*.cdf) for subject {subject}")
    return assign_subactions(subject, names, where)
