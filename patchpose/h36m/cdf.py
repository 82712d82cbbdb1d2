"""3D poses of one sequence: the release's D3_Positions CDF, or VideoPose3D's ``data_3d_h36m.npz``.

Both return the 17 joints of ``patchpose.skeleton.H36M`` (selected from the 32 raw joints with
``RAW32_TO_H36M17``) as float64 (F, 17, 3), world frame, millimetres.
"""

from __future__ import annotations

import zipfile
from functools import lru_cache
from pathlib import Path

import cdflib
import numpy as np

from patchpose.h36m.layout import ACTION_SPELLINGS, H36MLayoutError, Sequence, assign_subactions, canonical_action
from patchpose.skeleton import RAW32_TO_H36M17

__all__ = ["read_pose_cdf", "read_pose_npz", "npz_sequence_name", "npz_sequences", "scan_npz_sequences"]


def _select(raw: np.ndarray, where: str) -> np.ndarray:
    if not np.all(np.isfinite(raw)):
        raise H36MLayoutError(f"{where}: poses hold NaN or inf")
    if raw.shape[0] < 1:
        raise H36MLayoutError(f"{where}: no pose frames")
    return np.ascontiguousarray(raw[:, np.asarray(RAW32_TO_H36M17)], dtype=np.float64)


def read_pose_cdf(path: str | Path) -> np.ndarray:
    """``Pose`` of a D3_Positions CDF, shape (1, F, 96) on disk -> (F, 17, 3) float64 mm, world frame.

    Raises ``H36MLayoutError`` naming the file when it is missing, unreadable, lacks ``Pose`` or has another
    shape.
    """
    path = Path(path)
    if not path.is_file():
        raise H36MLayoutError(f"{path}: pose file not found")
    try:
        cdf = cdflib.CDF(str(path))
        variables = cdf.cdf_info().zVariables + cdf.cdf_info().rVariables
        if "Pose" not in variables:
            raise H36MLayoutError(f"{path}: no variable 'Pose' (has {variables})")
        pose = np.asarray(cdf.varget("Pose"))
    except H36MLayoutError:
        raise
    except Exception as error:  # cdflib raises assorted errors on damaged files
        raise H36MLayoutError(f"{path}: unreadable CDF ({type(error).__name__}: {error})") from error
    if pose.ndim != 3 or pose.shape[0] != 1 or pose.shape[2] != 96:
        raise H36MLayoutError(f"{path}: variable 'Pose' has shape {pose.shape}, expected (1, F, 96)")
    return _select(pose[0].reshape(-1, 32, 3), str(path))


def npz_sequence_name(release_name: str) -> str:
    """The key VideoPose3D uses for a release sequence: S1's spellings renamed ("TakingPhoto 1" -> "Photo 1")."""
    base, _, suffix = release_name.partition(" ")
    canonical = ACTION_SPELLINGS.get(base, base)
    return f"{canonical} {suffix}" if suffix else canonical


@lru_cache(maxsize=2)
def _load_npz(path: str) -> dict:
    try:
        with np.load(path, allow_pickle=True) as data:  # VideoPose3D pickles a dict of dicts
            if "positions_3d" not in data.files:
                raise H36MLayoutError(f"{path}: no array 'positions_3d' (has {data.files})")
            positions = data["positions_3d"].item()
    except H36MLayoutError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, AttributeError) as error:
        raise H36MLayoutError(f"{path}: unreadable preprocessed npz ({type(error).__name__}: {error})") from error
    if not isinstance(positions, dict):
        raise H36MLayoutError(f"{path}: 'positions_3d' is not a subject -> action -> array dict")
    return positions


def read_pose_npz(path: str | Path, subject: str, release_name: str) -> np.ndarray:
    """Poses of one sequence from VideoPose3D's ``data_3d_h36m.npz`` (F, 32, 3) metres -> (F, 17, 3) mm."""
    path = str(path)
    if not Path(path).is_file():
        raise H36MLayoutError(f"{path}: preprocessed pose file not found")
    positions = _load_npz(path)
    key = npz_sequence_name(release_name)
    canonical_action(key, path)
    if subject not in positions or key not in positions[subject]:
        raise H36MLayoutError(f"{path}: no poses for subject {subject} sequence {key!r}")
    raw = np.asarray(positions[subject][key], dtype=np.float64)
    if raw.ndim != 3 or raw.shape[1:] != (32, 3):
        raise H36MLayoutError(f"{path}: {subject}/{key} has shape {raw.shape}, expected (F, 32, 3) metres")
    return _select(raw * 1000.0, f"{path}: {subject}/{key}")


def npz_sequences(path: str | Path, subject: str) -> list[str]:
    """Sequence names (VideoPose3D spelling) the npz holds for ``subject``; [] if none."""
    positions = _load_npz(str(path))
    return sorted(positions.get(subject, {}))


def scan_npz_sequences(root: str | Path, npz_path: str | Path, subject: str) -> list[Sequence]:
    """Sequences of ``subject`` in the npz, named with the release's spelling where the subject's
    ``Videos`` directory shows it (S1's "TakingPhoto"), else with the npz's."""
    keys = npz_sequences(npz_path, subject)
    if not keys:
        raise H36MLayoutError(f"{npz_path}: no sequences for subject {subject}")
    release = {}
    videos = Path(root) / subject / "Videos"
    if videos.is_dir():
        for path in videos.glob("*.mp4"):
            name = path.name.split(".")[0]
            if "_ALL" not in name:
                release[npz_sequence_name(name)] = name
    names = [release.get(key, key) for key in keys]  # two keys of one recording: an error in assign_subactions
    where = {name: f"{npz_path}: {subject}/{key}" for name, key in zip(names, keys, strict=True)}
    return assign_subactions(subject, names, where)
