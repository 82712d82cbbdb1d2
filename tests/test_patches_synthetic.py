"""Patches of rendered synthetic frames: each limb's patch is centred on that limb's own body part."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from patchpose.config import validate_config
from patchpose.dataset_format import open_dataset
from patchpose.parts import LIMB_PART, PALETTE, PART_NAMES
from patchpose.patches.contact_sheet import write_contact_sheet
from patchpose.patches.geometry import LimbPatchGeometry
from patchpose.patches.stage import write_limb_patches
from patchpose.patches.store import open_patch_store
from patchpose.skeleton import H36M
from patchpose.synthetic.params import world_params_for_split
from patchpose.synthetic.split import render_split
from tests.conftest import default_config
from tests.patches_factory import write_label_segmentation

CACHE = 64
CENTRE = slice(CACHE // 2 - 4, CACHE // 2 + 4)  # the central 8 x 8 patch px


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, Path]:
    """30 test frames of the synthetic world at 128 px (S9, 15 actions, 2 cameras), segmented by their own
    part labels (palette colours), cut around the ground-truth 2D joints."""
    directory = tmp_path_factory.mktemp("synthetic_patches")
    config = default_config()
    config["dataset"]["synthetic"].update(
        frame_size=128, train_subjects=["S1"], test_subjects=["S9"], test_poses_per_action=1,
        cameras=[54138969, 60457274],
    )  # fmt: skip
    config["updater"]["training"]["validation_subjects"] = []  # one training subject: held-out poses
    world = world_params_for_split(validate_config(config)["dataset"]["synthetic"], "test")
    render_split(directory / "test.zarr", directory / "test.png", "test", world, seed=0)
    dataset = open_dataset(directory / "test.zarr")
    segmentation = write_label_segmentation(directory / "segmentation.zarr", dataset)
    patches = write_limb_patches(
        directory / "test.zarr", segmentation, directory / "patches.zarr", source="groundtruth",
        geometry=LimbPatchGeometry(cache_size=CACHE), storage={"compressor": "lz4", "compression_level": 5},
    )  # fmt: skip
    return {"dataset": directory / "test.zarr", "patches": patches, "directory": directory}


def test_every_limb_patch_shows_its_own_part_in_the_centre(rendered):
    # Where a limb is visible at its midpoint (its part label fills the 3 x 3 px around the midpoint's pixel),
    # the segmentation patch's central 8 x 8 px must hold that part's exact palette colour: the patch centre
    # maps to the limb centre, a sample lies within 1 px of that pixel in each axis, and its 4 bilinear taps
    # then all fall in the 3 x 3 block. Required for every such (frame, limb), and every limb must occur.
    dataset = open_dataset(rendered["dataset"])
    store = open_patch_store(rendered["patches"], dataset)
    frames = np.arange(dataset.num_frames)
    labels, patches = dataset.read_part_labels(frames), store.read(frames)
    joints = dataset.joints_2d.astype(np.float64)
    midpoints = np.round((joints[:, H36M.limb_children] + joints[:, H36M.limb_parents]) / 2).astype(int)
    checked = np.zeros(H36M.num_limbs, int)
    for n in frames:
        for k, part in enumerate(LIMB_PART):
            x, y = midpoints[n, k]
            if not (1 <= x < 127 and 1 <= y < 127 and np.all(labels[n, y - 1 : y + 2, x - 1 : x + 2] == part)):
                continue
            centre = patches[n, k, 3:, CENTRE, CENTRE].reshape(3, -1).T  # (64, 3) segmentation colours
            found = np.all(centre == PALETTE[part], axis=1).any()
            assert found, f"frame {n}: patch of {H36M.limb_names[k]} lacks {PART_NAMES[part]} in its centre"
            checked[k] += 1
    assert np.all(checked >= 2), dict(zip(H36M.limb_names, checked.tolist(), strict=True))


def test_rgb_patch_centre_is_the_frame_at_the_limb_centre(rendered):
    # The patch centre's 2 x 2 px surround the limb centre: their mean is close to the frame there (bilinear).
    dataset = open_dataset(rendered["dataset"])
    store = open_patch_store(rendered["patches"], dataset)
    frame, patch = dataset.read_frames([0])[0].astype(np.float64), store.read([0])[0].astype(np.float64)
    box = store.read_box([0])[0]
    for k in range(H36M.num_limbs):
        x, y = box[k, :2]
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        if not (0 <= x0 < 127 and 0 <= y0 < 127):
            continue
        fx, fy = x - x0, y - y0
        at_centre = (frame[y0, x0] * (1 - fx) * (1 - fy) + frame[y0, x0 + 1] * fx * (1 - fy)
                     + frame[y0 + 1, x0] * (1 - fx) * fy + frame[y0 + 1, x0 + 1] * fx * fy)  # fmt: skip
        around = patch[k, :3, CACHE // 2 - 1 : CACHE // 2 + 1, CACHE // 2 - 1 : CACHE // 2 + 1].mean(axis=(1, 2))
        assert np.abs(around - at_centre).max() < 40, H36M.limb_names[k]


def test_contact_sheet_shows_frames_and_patches(rendered):
    dataset = open_dataset(rendered["dataset"])
    store = open_patch_store(rendered["patches"], dataset)
    path = rendered["directory"] / "sheet.png"
    write_contact_sheet(store, dataset, 3, path)
    sheet = np.asarray(Image.open(path))
    # 3 rows of (2 + 2 gaps) x 64 px patch blocks; per row: frame tile 130 + 2 blocks of 8 x 66 + 2 px.
    assert sheet.shape[0] == 2 + 3 * (2 * 66 + 2 + 2) and sheet.shape[1] > 2 * 8 * CACHE
    assert len(np.unique(sheet.reshape(-1, 3), axis=0)) > 100
