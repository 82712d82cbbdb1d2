"""2D keypoints: integral regression, augmentation geometry, the hourglass, metrics, and a tiny stage run."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from patchpose.augment import (
    Augment,
    jitter_colour,
    pixels_to_unit,
    sample_transforms,
    unit_to_pixels,
    warp,
    warp_points,
)
from patchpose.dataset_format import DatasetWriter, open_dataset
from patchpose.keypoints2d.evaluate import evaluate, summarise
from patchpose.keypoints2d.hourglass import StackedHourglass
from patchpose.keypoints2d.integral import expected_coordinates, gaussian_targets, integral_loss, soft_argmax
from patchpose.keypoints2d.stage import predict_split, train_fold
from patchpose.skeleton import H36M
from tests.dataset_factory import TINY_ACTIONS, TINY_SUBJECTS, make_tiny_batch, write_tiny_dataset
from tests.test_training import tiny_keypoints_settings


@given(st.integers(2, 40), st.integers(2, 40), st.data())
@settings(max_examples=40, deadline=None)
def test_soft_argmax_of_a_one_hot_heatmap_is_its_exact_cell_centre(h, w, data):
    row, col = data.draw(st.integers(0, h - 1)), data.draw(st.integers(0, w - 1))
    logits = torch.full((1, 1, h, w), -torch.inf)
    logits[0, 0, row, col] = 0.0
    x, y = soft_argmax(logits)[0, 0].tolist()
    assert unit_to_pixels(x, w) == pytest.approx(col, abs=1e-5)
    assert unit_to_pixels(y, h) == pytest.approx(row, abs=1e-5)


def test_soft_argmax_is_differentiable_and_moves_towards_the_target():
    logits = torch.zeros(1, 1, 8, 8, requires_grad=True)
    target = torch.tensor([[[0.6, -0.4]]])
    (soft_argmax(logits) - target).abs().sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    with torch.no_grad():
        moved = soft_argmax(logits - 10 * logits.grad)
    assert (moved - target).abs().sum() < (soft_argmax(torch.zeros(1, 1, 8, 8)) - target).abs().sum()


def test_gaussian_target_is_normalised_and_centred():
    coords = torch.tensor([[[0.1, -0.3]]])
    target = gaussian_targets(coords, 32, sigma=1.5)
    assert float(target.sum()) == pytest.approx(1.0, abs=1e-5)
    assert torch.allclose(expected_coordinates(target), coords, atol=1e-3)


def test_warped_image_and_warped_joints_agree():
    """A bright dot at a joint moves exactly where warp_points moves the joint (flips swap left/right)."""
    size = 33
    rng = np.random.default_rng(3)
    transforms = sample_transforms(rng, 6, Augment(scale=0.2, rotation_deg=40, flip=True, colour_jitter=0.0))
    assert transforms.flipped.any() and not transforms.flipped.all()
    joints_px = np.tile(np.array([[16.0, 16.0]]), (6, 17, 1))
    joints_px[:, 4] = (10.0, 12.0)  # left_hip, away from the centre
    images = torch.zeros(6, 1, size, size)
    images[:, 0, 12, 10] = 1.0
    warped = warp(images, transforms, size, mode="nearest")
    moved = unit_to_pixels(warp_points(torch.as_tensor(pixels_to_unit(joints_px, size)).float(), transforms), size)
    assert H36M.flip_permutation[4] == 1
    checked = 0
    for i in range(6):
        joint = 1 if transforms.flipped[i] else 4  # left_hip shows as the right hip after a flip
        ys, xs = np.nonzero(warped[i, 0].numpy())
        if len(xs):  # nearest sampling may drop a single pixel under zoom-out; when present it must match
            assert np.abs(moved[i, joint].numpy() - (xs.mean(), ys.mean())).max() <= 1.0
            checked += 1
    assert checked >= 3


def test_channel_shuffle_permutes_channels_and_keeps_the_streams_aligned():
    images = torch.rand(32, 3, 4, 4)
    shuffle = Augment(scale=0.1, rotation_deg=10, flip=True, colour_jitter=0.0, channel_shuffle=True)
    plain = Augment(scale=0.1, rotation_deg=10, flip=True, colour_jitter=0.0)
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    shuffled_draws, plain_draws = sample_transforms(rng_a, 32, shuffle), sample_transforms(rng_b, 32, plain)
    assert rng_a.random() == rng_b.random()  # the same numbers were consumed with and without shuffling
    assert torch.equal(shuffled_draws.matrices, plain_draws.matrices) and plain_draws.channel_order is None
    out = jitter_colour(images, shuffled_draws)
    orders = shuffled_draws.channel_order
    assert len({tuple(o.tolist()) for o in orders}) > 1  # several permutations occur
    for i in range(32):
        assert sorted(orders[i].tolist()) == [0, 1, 2]
        assert torch.allclose(out[i], images[i, orders[i]])
    assert torch.allclose(jitter_colour(images, plain_draws), images)


def test_hourglass_shapes_and_bad_sizes():
    model = StackedHourglass(17, input_size=32, heatmap_size=16, stacks=2, features=8, depth=2)
    outputs, parts = model(torch.rand(2, 3, 32, 32))
    assert len(outputs) == 2 and outputs[-1].shape == (2, 17, 16, 16) and parts is None
    assert integral_loss(outputs, torch.zeros(2, 17, 2), 0.1, 1.0).ndim == 0
    with_parts = StackedHourglass(17, input_size=32, heatmap_size=16, stacks=1, features=8, depth=2, part_classes=15)
    outputs, parts = with_parts(torch.rand(2, 3, 32, 32))
    assert outputs[-1].shape == (2, 17, 16, 16) and parts.shape == (2, 15, 32, 32)  # parts at the input size
    with pytest.raises(ValueError, match="power of 2"):
        StackedHourglass(17, input_size=48, heatmap_size=16, stacks=1, features=8, depth=1)
    with pytest.raises(ValueError, match="divisible by 2"):
        StackedHourglass(17, input_size=24, heatmap_size=6, stacks=1, features=8, depth=2)


def test_the_part_heads_skip_path_sees_the_input_at_its_own_resolution():
    plain = StackedHourglass(17, input_size=32, heatmap_size=16, stacks=1, features=8, depth=2, part_classes=15)
    skipped = StackedHourglass(17, input_size=32, heatmap_size=16, stacks=1, features=8, depth=2, part_classes=15,
                               part_head_skip_channels=4)  # fmt: skip
    assert not any(key.startswith(("part_skip", "part_fuse")) for key in plain.state_dict())  # old model files load
    assert set(plain.state_dict()) - {key for key in plain.state_dict() if key.startswith("parts.3")} < set(
        skipped.state_dict()
    )
    images = torch.rand(2, 3, 32, 32)
    heatmaps, parts = skipped.eval()(images)
    assert parts.shape == (2, 15, 32, 32) and heatmaps[-1].shape == (2, 17, 16, 16)
    # a pixel-sized change moves the part logits at that pixel through the skip even where the trunk's 16 x 16
    # features cannot place it: with the trunk's path held fixed, only the skip carries it
    changed = images.clone()
    changed[:, :, 9, 9] = 1 - changed[:, :, 9, 9]
    with torch.no_grad():
        feature = skipped.heatmaps_and_features(images)[1]
        low = torch.nn.functional.interpolate(
            skipped.parts(feature), size=(32, 32), mode="bilinear", align_corners=False
        )
        before = skipped.part_fuse(torch.cat([low, skipped.part_skip(images)], 1))
        after = skipped.part_fuse(torch.cat([low, skipped.part_skip(changed)], 1))
    moved = (after - before).abs().amax(dim=(0, 1))
    assert moved[9, 9] > 0 and moved[:6].max() == 0 and moved[:, 14:].max() == 0  # within the skip's 5 x 5 + 3 x 3
    assert torch.allclose(before, parts, atol=1e-6)


def test_summary_by_hand():
    truth = np.zeros((1, 17, 2))
    predicted = truth.copy()
    predicted[0, 0] = (3.0, 4.0)  # 5 px off; the other 16 joints exact
    summary = summarise(predicted, truth, threshold_px=4.0)
    assert summary["mean_error_px"] == pytest.approx(5 / 17)
    assert summary["pck"] == pytest.approx(16 / 17)


def test_tiny_stage_trains_predicts_and_evaluates(tmp_path):
    train = write_tiny_dataset(tmp_path / "train.zarr", num_frames=12, split="train")
    test = write_tiny_dataset(tmp_path / "test.zarr", num_frames=5, split="test", seed=1)
    settings_ = tiny_keypoints_settings(epochs=1)
    models = []
    for fold in range(2):
        models.append(tmp_path / f"fold{fold}.pt")
        train_fold(train, fold, 2, settings_, 0, models[-1], tmp_path / f"ckpt{fold}.pt")
    joints = predict_split(train, models, "train", 5, tmp_path / "train.npz")
    assert joints.shape == (12, 17, 2) and np.isfinite(joints).all()
    # The tiny test store holds the training subjects: predicting it with the fold models is refused.
    with pytest.raises(ValueError, match="training subjects"):
        predict_split(test, models, "test", 5, tmp_path / "test.npz")
    predictions = {"train": tmp_path / "train.npz", "test": tmp_path / "train.npz"}
    sheets = {"train": tmp_path / "a.png", "test": tmp_path / "b.png"}
    rows = evaluate({"train": train, "test": train}, predictions, 0.05, 4, tmp_path / "metrics.csv", sheets)
    table = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [r["method"] for r in table] == ["network", "mean_pose_baseline"] * 2 and len(rows) == 4
    assert (tmp_path / "a.png").stat().st_size > 0


def _store_with_joints(path, joints_2d: np.ndarray, split: str, frame_size=(16, 16)):
    """A tiny store whose ``joints_2d`` are the given (N, 17, 2) crop px."""
    batch = make_tiny_batch(len(joints_2d), frame_size, np.random.default_rng(0), with_part_labels=False)
    batch["joints_2d"] = np.asarray(joints_2d, np.float32)
    header = {"source": "synthetic", "split": split, "subjects": TINY_SUBJECTS, "actions": TINY_ACTIONS}
    with DatasetWriter(path, num_frames=len(joints_2d), frame_size=frame_size, has_part_labels=False, **header) as out:
        out.write(0, batch)
    return path


def _prediction_file(path, store_path, joints_2d: np.ndarray):
    """A ``{split}_joints_2d.npz`` as ``predict_split`` writes it, holding ``joints_2d``."""
    store, buffer = open_dataset(store_path), io.BytesIO()
    np.savez(buffer, joints_2d=np.asarray(joints_2d, np.float32), fold=np.zeros(store.num_frames, np.int64),
             frame_ids=np.array(store.frame_ids()), split=np.array(store.split))  # fmt: skip
    path.write_bytes(buffer.getvalue())
    return path


def test_evaluate_by_hand(tmp_path):
    """Every metric of a constructed case, worked out by hand: 16 px crops, PCK at 0.25 x 16 = 4 px."""
    train_truth = np.stack([np.full((17, 2), 4.0), np.full((17, 2), 8.0)])  # mean pose: every joint at (6, 6)
    test_truth = np.stack([np.full((17, 2), (6.0, 11.0)), np.full((17, 2), (9.0, 10.0))])  # both 5 px from it
    train_predicted, test_predicted = train_truth.copy(), test_truth.copy()
    train_predicted[1] += (3.0, 4.0)  # frame 1: all 17 joints 5 px off, frame 0 exact
    test_predicted[0, 0] += (6.0, 8.0)  # frame 0: one joint 10 px off
    test_predicted[1] += (0.0, 3.0)  # frame 1: all 17 joints 3 px off
    stores = {
        "train": _store_with_joints(tmp_path / "train.zarr", train_truth, "train"),
        "test": _store_with_joints(tmp_path / "test.zarr", test_truth, "test"),
    }
    predictions = {
        "train": _prediction_file(tmp_path / "train_joints_2d.npz", stores["train"], train_predicted),
        "test": _prediction_file(tmp_path / "test_joints_2d.npz", stores["test"], test_predicted),
    }
    sheets = {split: tmp_path / f"{split}.png" for split in stores}
    rows = evaluate(stores, predictions, 0.25, 2, tmp_path / "metrics.csv", sheets)
    expected = {  # (mean px, median px, PCK) over the 34 joints of each split's 2 frames
        ("train", "network"): (17 * 5 / 34, (0 + 5) / 2, 17 / 34),
        ("train", "mean_pose_baseline"): (math.sqrt(8), math.sqrt(8), 1.0),  # every joint (2, 2) px off
        ("test", "network"): ((10 + 17 * 3) / 34, 3.0, 33 / 34),  # sorted: 16 zeros, 17 threes, one 10
        ("test", "mean_pose_baseline"): (5.0, 5.0, 0.0),
    }
    table = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [(row["split"], row["method"]) for row in rows] == list(expected)
    for row, written in zip(rows, table, strict=True):
        mean, median, pck = expected[row["split"], row["method"]]
        assert (row["frames"], row["pck_threshold_px"]) == (2, 4.0)
        assert (row["mean_error_px"], row["median_error_px"], row["pck"]) == pytest.approx((mean, median, pck))
        assert (written["split"], written["method"], written["frames"]) == (row["split"], row["method"], "2")
        for column in ("mean_error_px", "median_error_px", "pck", "pck_threshold_px"):
            assert float(written[column]) == pytest.approx(row[column], abs=5e-5), column
    assert all(path.stat().st_size > 0 for path in sheets.values())


def test_the_fold_settings_drop_the_part_head_keys_only_when_the_segmentation_has_its_own_network():
    from patchpose.config import validate_config
    from patchpose.keypoints2d.settings import PART_HEAD_KEYS, fold_settings
    from tests.conftest import default_config

    config = validate_config(default_config())
    with_head = fold_settings(config)
    assert with_head == {key: config["keypoints2d"][key] for key in ("model", "training", "augment")}
    config["segmentation"]["network"] = "refinenet"
    without = fold_settings(config)
    for block, keys in PART_HEAD_KEYS.items():
        assert set(with_head[block]) - set(without[block]) == set(keys)
    assert without["augment"] == with_head["augment"]
    without["model"]["input_size"] = 1  # copies: the config is not changed
    assert config["keypoints2d"]["model"]["input_size"] != 1
