"""Background-subtraction masks of the release (``MySegmentsMat/ground_truth_bs/<Seq>.<cam>.mat``).

The files are MATLAB v7.3 (HDF5). Variable ``Masks`` is a cell array (HDF5 object references, shape (F, 1)
or (1, F)) of per-frame masks; MATLAB stores column-major, so h5py reads each mask as (W, H) and it is
transposed to (H, W). Non-zero = person. Masks are read one frame at a time (bounded memory).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from patchpose.h36m.layout import H36MLayoutError

__all__ = ["MaskReader"]


class MaskReader:
    """Random access to one mask file's frames. ``size`` = (W, H) px of the camera image."""

    def __init__(self, path: str | Path, size: tuple[int, int]):
        self.path, self.size = Path(path), (int(size[0]), int(size[1]))
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as error:
            raise H36MLayoutError(f"{self.path}: unreadable mask file (MATLAB v7.3/HDF5 expected: {error})") from error
        if "Masks" not in self._file or self._file["Masks"].dtype != h5py.ref_dtype:
            self.close()
            raise H36MLayoutError(f"{self.path}: no cell array 'Masks' of per-frame masks")
        self._refs = np.asarray(self._file["Masks"][()]).reshape(-1)

    def __len__(self) -> int:
        return self._refs.size

    def read(self, index: int) -> np.ndarray:
        """(H, W) bool foreground mask of frame ``index``."""
        if not 0 <= index < self._refs.size:
            raise H36MLayoutError(f"{self.path}: no mask for frame {index} (file holds {self._refs.size})")
        try:
            mask = np.asarray(self._file[self._refs[index]][()])
        except (OSError, KeyError, ValueError) as error:
            raise H36MLayoutError(f"{self.path}: mask of frame {index} unreadable ({error})") from error
        if mask.shape != self.size:
            raise H36MLayoutError(
                f"{self.path}: mask of frame {index} is {mask.shape} (W, H on disk), expected {self.size}"
            )
        return mask.T != 0

    def close(self) -> None:
        self._file.close()
