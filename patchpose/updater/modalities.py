"""The updater's input modalities as one frozen table: name -> patch store and channels.

A patch store (``patchpose.patches.store``) holds, per frame, P patches of 6 channels each: R, G, B of the
frame then R, G, B of the colour-coded segmentation S (``patchpose.patches.sampler.CHANNELS``). A modality
picks the store (its ``kind``: the 16 limb patches or the whole frame) and a contiguous run of those 6
channels; the network sees the picked channels of every patch stacked limb-major, (P x c, R, R):

============== ========= == ========== ===================================================================
name           kind      P  channels   what
============== ========= == ========== ===================================================================
rgb_seg        limbs     16 0-5 (6)    Concat(Crop(I), Crop(S)): 96 channels, the paper's input (§3.2)
rgb            limbs     16 0-2 (3)    Crop(I) alone: 48 channels (Table 3 "w/ cropped RGB")
seg            limbs     16 3-5 (3)    Crop(S) alone: 48 channels (Table 3 "w/ cropped Seg")
uncropped_rgb  uncropped 1  0-2 (3)    the whole RGB frame: 3 channels (Table 2's original-image input)
============== ========= == ========== ===================================================================

The limb patches come from the ``predicted`` store (boxes from the keypoints2d predictions) or, as an
oracle, the ``groundtruth`` one (``patch_source``); the frame from the ``uncropped`` store. Torch-free:
``select_channels`` works on numpy arrays and torch tensors alike, so the workflow can import this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType

from patchpose.patches.sampler import CHANNELS
from patchpose.skeleton import H36M

__all__ = [
    "Modality",
    "MODALITIES",
    "get_modality",
    "num_channels",
    "patch_source",
    "wildcard_constraint",
    "select_channels",
]

LIMB_SOURCES = ("predicted", "groundtruth")  # patches.stage.SOURCES: where the limb boxes' 2D joints come from


@dataclass(frozen=True)
class Modality:
    """One row of the table. kind: the patch store's ``kind`` ("limbs" or "uncropped"); num_patches: P, the
    store's patches per frame; channels: the store channels taken from every patch (a contiguous run of
    indices into ``CHANNELS``)."""

    name: str
    kind: str
    num_patches: int
    channels: tuple[int, ...]

    @property
    def channels_per_patch(self) -> int:
        return len(self.channels)

    @property
    def num_channels(self) -> int:
        """C = P x c, the network's input channels."""
        return self.num_patches * len(self.channels)


def _table(*rows: Modality) -> MappingProxyType:
    for row in rows:
        if row.channels != tuple(range(row.channels[0], row.channels[-1] + 1)) or row.channels[-1] >= len(CHANNELS):
            raise ValueError(f"modality {row.name!r}: channels {row.channels} are not a run of {CHANNELS}")
    return MappingProxyType({row.name: row for row in rows})


MODALITIES = _table(
    Modality("rgb_seg", "limbs", H36M.num_limbs, (0, 1, 2, 3, 4, 5)),
    Modality("rgb", "limbs", H36M.num_limbs, (0, 1, 2)),
    Modality("seg", "limbs", H36M.num_limbs, (3, 4, 5)),
    Modality("uncropped_rgb", "uncropped", 1, (0, 1, 2)),
)


def get_modality(name: str) -> Modality:
    """The table's row ``name``; ValueError naming the choices otherwise."""
    try:
        return MODALITIES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown modality {name!r}; choose one of {tuple(MODALITIES)}") from None


def num_channels(name: str) -> int:
    """The network's input channels for modality ``name`` (96, 48, 48, 3)."""
    return get_modality(name).num_channels


def patch_source(name: str, source2d: str = "predicted") -> str:
    """The patch store directory (``results/<dataset>/patches/<source>/{split}.zarr``) modality ``name`` reads:
    ``source2d`` (predicted or groundtruth) for the limb patches, ``uncropped`` for the whole frame."""
    if source2d not in LIMB_SOURCES:
        raise ValueError(f"unknown 2D source {source2d!r}; choose one of {LIMB_SOURCES}")
    return source2d if get_modality(name).kind == "limbs" else "uncropped"


def wildcard_constraint() -> str:
    """A regex matching exactly the modality names (for Snakemake's ``wildcard_constraints``)."""
    return "|".join(re.escape(name) for name in sorted(MODALITIES, key=len, reverse=True))


def select_channels(patches, name: str):
    """The network's channels of a batch of cached patches, limb-major.

    patches: (B, P, 6, R, R) (uint8 as cached; numpy array or torch tensor), P = the modality's patches.
    Returns (B, P x c, R, R) of the same type and dtype: channel ``p * c + j`` is channel
    ``channels[j]`` of patch ``p`` (for ``rgb_seg``: limb 0's R, G, B, S_R, S_G, S_B, then limb 1's, ...).
    """
    modality = get_modality(name)
    shape = tuple(patches.shape)
    if len(shape) != 5 or shape[1] != modality.num_patches or shape[2] != len(CHANNELS) or shape[3] != shape[4]:
        raise ValueError(f"modality {name!r} takes patches (B, {modality.num_patches}, {len(CHANNELS)}, R, R), "
                         f"got {shape}")  # fmt: skip
    picked = patches[:, :, modality.channels[0] : modality.channels[-1] + 1]
    return picked.reshape(shape[0], modality.num_channels, shape[3], shape[4])
