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
* The suffix is NOT a subaction index (S1's subaction 1 of Directions is "Directions 1" and subaction 2
  "Directions"; S1's SittingDown 1 is "SittingDown 2"). ``subaction`` is the release's own number, from the
  (action, subaction) -> file name table of its ``metadata.xml`` (see *Subactions* below).
* Base names are matched exactly after splitting off the suffix, never with ``startswith`` (``Sitting`` is a
  prefix of ``SittingDown``, ``Walking`` of ``WalkingDog``).
* ``_ALL`` videos (``Directions_ALL.54138969.mp4``) carry no poses and are skipped.

Sequence *keys* (Snakemake wildcards, intermediate file names) replace the space by ``_``:
``"Directions 1"`` -> ``"Directions_1"``; ``sequence_name_from_key`` inverts it.

*Subactions.* The release numbers each subject's two recordings of an action 1 and 2 in the ``<mapping>`` table
of ``metadata.xml``: rows (action id, subaction id), one column per subject holding the file name. Action ids
are 1 = ``_ALL`` (no poses) and 2..16 = the 15 actions (``action_id``: Directions 2 ... WalkTogether 16, the
``act_YY`` of MMPose / H36M-Toolbox names). That table, for the subjects with released poses, ships as
``patchpose/data/h36m_subactions.json`` (its sources are listed there), so ids never depend on whether a user
has ``metadata.xml``; ``patchpose.h36m.metadata`` checks a user's copy against it. File names are looked up by
(canonical action, suffix), so VideoPose3D's ``Photo 1`` for S1 is S1's ``TakingPhoto 1``; a name the table does
not list for its subject is an error naming the file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
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
    "subaction_table",
    "action_id",
    "action_of_id",
    "official_subaction",
    "assign_subactions",
]

CAMERA_IDS: tuple[int, ...] = (54138969, 55011271, 58860488, 60457274)
TRAIN_SUBJECTS: tuple[str, ...] = ("S1", "S5", "S6", "S7", "S8")
TEST_SUBJECTS: tuple[str, ...] = ("S9", "S11")
# release spelling -> canonical action name (S1's variants); every canonical name maps to itself.
ACTION_SPELLINGS: dict[str, str] = {"TakingPhoto": "Photo", "WalkingDog": "WalkDog", **{a: a for a in ACTIONS}}

SUBACTION_TABLE = "patchpose/data/h36m_subactions.json"  # package data (named so in messages)
_SEQUENCE_RE = re.compile(r"^(?P<base>[A-Za-z]+)(?: (?P<suffix>[0-9]))?$")


class H36MLayoutError(ValueError):
    """A release file that is missing, misnamed or malformed; the message starts with the file's path."""


@dataclass(frozen=True)
class Sequence:
    """One recorded sequence of one subject: its release name, canonical action and subaction."""

    subject: str
    name: str  # release spelling, e.g. "TakingPhoto 1"
    action: str  # canonical, e.g. "Photo"
    subaction: int  # 1-based, the release's own number (``official_subaction``)

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


@lru_cache(maxsize=1)
def _shipped() -> tuple[dict[str, int], dict[str, dict[str, tuple[str, str]]]]:
    """(canonical action -> metadata.xml action id, subject -> canonical action -> (subaction 1, 2) file names)."""
    data = json.loads(resources.files("patchpose").joinpath("data/h36m_subactions.json").read_text(encoding="utf-8"))
    ids = {action: int(data["action_ids"][action]) for action in ACTIONS}
    if sorted(ids.values()) != list(range(2, 2 + len(ACTIONS))):
        raise H36MLayoutError(f"{SUBACTION_TABLE}: action_ids must number the 15 actions 2..16, got {ids}")
    table = {}
    for subject, by_action in data["subjects"].items():
        table[subject] = {}
        for action in ACTIONS:
            names = tuple(by_action[action])
            actions = {canonical_action(name, SUBACTION_TABLE) for name in names}
            if len(names) != 2 or len(set(names)) != 2 or actions != {action}:
                raise H36MLayoutError(
                    f"{SUBACTION_TABLE}: {subject} {action}: expected two {action} files, got {names}"
                )
            table[subject][action] = names
    return ids, table


def subaction_table() -> dict[str, dict[str, tuple[str, str]]]:
    """Subject -> canonical action -> (file name of subaction 1, of subaction 2), as the release spells them."""
    return {subject: dict(by_action) for subject, by_action in _shipped()[1].items()}


def action_id(action: str) -> int:
    """metadata.xml's id (2..16) of a canonical action; MMPose / H36M-Toolbox ``act_YY``."""
    ids = _shipped()[0]
    if action not in ids:
        raise ValueError(f"unknown action {action!r}; known: {', '.join(ids)}")
    return ids[action]


def action_of_id(number: int) -> str:
    """Inverse of ``action_id``; ``ValueError`` for 1 (``_ALL``, no poses) and anything outside 2..16."""
    for action, value in _shipped()[0].items():
        if value == number:
            return action
    raise ValueError(f"Human3.6M action id {number!r} is not one of 2..16 (1 is _ALL, which has no poses)")


def official_subaction(subject: str, name: str, where: str = "<sequence name>") -> int:
    """The release's subaction (1 or 2) of sequence ``name`` of ``subject``, any spelling ("Photo 1" = S1's
    "TakingPhoto 1"). ``H36MLayoutError`` naming ``where`` (the file) when the table does not list it."""
    action, suffix = canonical_action(name, where), _split_name(name, where)[1]
    table = _shipped()[1]
    if subject not in table:
        raise H36MLayoutError(
            f"{where}: no subaction table for subject {subject}; {SUBACTION_TABLE} has {', '.join(table)}"
        )
    names = table[subject][action]
    for number, listed in enumerate(names, start=1):
        if _split_name(listed, SUBACTION_TABLE)[1] == suffix:
            return number
    raise H36MLayoutError(
        f"{where}: sequence {name!r} is not one of {subject}'s two {action} recordings in Human3.6M's subaction "
        f"table ({SUBACTION_TABLE}): subaction 1 is {names[0]!r}, subaction 2 is {names[1]!r}"
    )


def assign_subactions(subject: str, names: list[str], where: dict[str, str] | None = None) -> list[Sequence]:
    """Sequences of one subject, each with the release's subaction, sorted by (canonical action, subaction).

    ``where`` maps a name to the file it came from (for messages). Two names of one recording ("Photo 1" and
    S1's "TakingPhoto 1") are an error naming the second.
    """
    where = where or {}
    sequences, seen = [], {}
    for name in names:
        place = where.get(name, f"{subject}/{name}")
        sequence = Sequence(subject, name, canonical_action(name, place), official_subaction(subject, name, place))
        key = (sequence.action, sequence.subaction)
        if key in seen:
            recording = f"{subject} {sequence.action} subaction {sequence.subaction}"
            raise H36MLayoutError(f"{place}: {name!r} is the same recording as {seen[key]!r} ({recording})")
        seen[key] = name
        sequences.append(sequence)
    return sorted(sequences, key=lambda s: (ACTIONS.index(s.action), s.subaction))


def scan_pose_sequences(root: str | Path, subject: str) -> list[Sequence]:
    """The sequences of ``subject`` with a pose file (``D3_Positions/*.cdf``), ``_ALL`` excluded.

    Raises ``H36MLayoutError`` naming the directory when it is missing and naming a file whose name is not a
    known action or not in the subaction table (``official_subaction``).
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
