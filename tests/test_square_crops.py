"""Non-square crops: the dataset format stores them, every stage that treats a crop as a square refuses them.

Those stages resize a crop to a square network input, map crop px <-> unit crop coordinates with one
scale for x and y and measure PCK against the crop side, so a non-square store is refused by name
(``DatasetStore.crop_side``) rather than silently squashed.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from patchpose.baselines.geometry import back_project, crop_unit_mm, crop_units
from patchpose.baselines.lifting import stage as lifting
from patchpose.dataset_format import open_dataset
from patchpose.frames import load_frames
from patchpose.keypoints2d import evaluate as keypoints2d_evaluate
from patchpose.keypoints2d import stage as keypoints2d
from patchpose.segmentation import stage as segmentation
from tests.dataset_factory import write_tiny_dataset
from tests.test_segmentation import tiny_segmentation_settings
from tests.test_training import tiny_keypoints_settings

WIDE = (12, 16)  # H, W px


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("crops")
    return {
        "square": write_tiny_dataset(directory / "square.zarr", num_frames=8, frame_size=(16, 16), split="train"),
        "wide": write_tiny_dataset(directory / "wide.zarr", num_frames=8, frame_size=WIDE, split="train"),
    }


def _refused(stores) -> str:
    return rf"^{stores['wide']}: frame_size \[H, W\] = \[12, 16\] is not square"


def _joints_file(path: Path, store_path: Path) -> Path:
    """A keypoints2d prediction file holding the store's own joints."""
    store, buffer = open_dataset(store_path), io.BytesIO()
    np.savez(buffer, joints_2d=store.joints_2d, fold=np.zeros(store.num_frames, np.int64),
             frame_ids=np.array(store.frame_ids()), split=np.array(store.split))  # fmt: skip
    path.write_bytes(buffer.getvalue())
    return path


def test_the_format_holds_non_square_crops_and_crop_side_refuses_them(stores):
    assert open_dataset(stores["square"]).crop_side() == 16
    wide = open_dataset(stores["wide"])
    assert wide.frame_size == WIDE and wide.read_frames([0]).shape == (1, *WIDE, 3)
    with pytest.raises(ValueError, match=_refused(stores)):
        wide.crop_side()


def test_network_inputs_refuse_non_square_crops(stores):
    assert load_frames(open_dataset(stores["square"]), np.arange(2), 8).shape == (2, 3, 8, 8)
    with pytest.raises(ValueError, match=_refused(stores)):
        load_frames(open_dataset(stores["wide"]), np.arange(2), 8)


def test_keypoints2d_refuses_non_square_crops(stores, tmp_path):
    with pytest.raises(ValueError, match=_refused(stores)):
        keypoints2d.train_fold(
            stores["wide"], 0, 2, tiny_keypoints_settings(1), 0, tmp_path / "m.pt", tmp_path / "c.pt"
        )
    with pytest.raises(ValueError, match=_refused(stores)):
        keypoints2d.predict_split(stores["wide"], [tmp_path / "m.pt"] * 2, "train", 4, tmp_path / "p.npz")
    joints = _joints_file(tmp_path / "train_joints_2d.npz", stores["wide"])
    sheets = {"train": tmp_path / "a.png", "test": tmp_path / "b.png"}
    with pytest.raises(ValueError, match=_refused(stores)):
        splits = {"train": stores["wide"], "test": stores["wide"]}
        keypoints2d_evaluate.evaluate(splits, {"train": joints, "test": joints}, 0.05, 2, tmp_path / "m.csv", sheets)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["train_joints_2d.npz"]


def test_segmentation_training_refuses_non_square_crops(stores, tmp_path):
    with pytest.raises(ValueError, match=_refused(stores)):
        segmentation.train_fold(stores["wide"], 0, 2, tiny_segmentation_settings(), 0, tmp_path / "m.pt",
                                tmp_path / "c.pt")  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_baselines_refuse_non_square_crops(stores, tmp_path):
    square, wide = open_dataset(stores["square"]), open_dataset(stores["wide"])
    units = crop_units(square, np.arange(2))
    assert back_project(square, np.arange(2), units).shape == (2, 17, 3)
    for convert in (
        lambda: crop_units(wide, np.arange(2)),
        lambda: crop_unit_mm(wide, np.arange(2)),
        lambda: back_project(wide, np.arange(2), units),
    ):
        with pytest.raises(ValueError, match=_refused(stores)):
            convert()
    joints = _joints_file(tmp_path / "train_joints_2d.npz", stores["wide"])
    with pytest.raises(ValueError, match=_refused(stores)):
        lifting.predict_split(
            stores["wide"], [tmp_path / "m.pt"] * 2, "train", 4, tmp_path / "p.npz", "lifting", joints
        )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["train_joints_2d.npz"]
