"""Load a prediction file for one dataset store: the call every consumer of baseline predictions makes."""

from __future__ import annotations

import os

import numpy as np

from patchpose.dataset_format import DatasetStore
from patchpose.poses3d.files import read_predictions
from patchpose.poses3d.matching import align_to_store
from patchpose.poses3d.normalise import canonicalise

__all__ = ["load_for_store"]


def load_for_store(path: str | os.PathLike, store: DatasetStore, *, format: str = "auto") -> np.ndarray:
    """Poses (N, 17, 3) float64 mm, camera frame, root-relative, ``H36M`` order, row ``i`` = ``store`` row ``i``.

    The file must cover exactly ``store``'s frames (its split); it may be any valid prediction file, though
    the pipeline's consumers read the canonical ``results/<dataset>/baselines/<name>/{split}_poses_3d.npz``.
    A declared unit is trusted (a collapsed pose from a badly trained baseline is a result to evaluate, not a
    unit error); joint names are still mapped and the root subtracted.
    Raises ``PredictionFileError`` naming the file.
    """
    canonical, _ = canonicalise(read_predictions(path, format), trust_declared_unit=True)
    return align_to_store(canonical, {store.split: store}, store.split)
