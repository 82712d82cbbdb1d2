"""Segmentation: colour encoding, label flips, IoU by hand, the RefineNet-like net, the store, a tiny stage run."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from patchpose.augment import PART_FLIP
from patchpose.config import validate_config
from patchpose.dataset_format import DatasetWriter, open_dataset
from patchpose.keypoints2d import stage as keypoints2d
from patchpose.parts import NUM_PARTS, PALETTE, PART_NAMES, encode_labels, part_class_weights
from patchpose.segmentation.evaluate import confusion_counts, evaluate, iou_from_counts, mean_label_map
from patchpose.segmentation.refinenet import RefineNetLite
from patchpose.segmentation.stage import encode_probability_maps, predict_split, train_fold
from patchpose.segmentation.store import (
    coarse_labels,
    open_segmentation,
    write_ground_truth_segmentation,
    write_segmentation,
)
from tests.conftest import default_config
from tests.dataset_factory import TINY_ACTIONS, TINY_SUBJECTS, make_tiny_batch, write_tiny_dataset
from tests.test_training import tiny_keypoints_settings


def test_one_hot_probabilities_encode_to_the_palette_colour():
    labels = torch.arange(NUM_PARTS).reshape(1, 3, 5)
    one_hot = torch.nn.functional.one_hot(labels, NUM_PARTS).permute(0, 3, 1, 2).float()
    encoded = encode_probability_maps(one_hot)
    assert encoded.shape == (1, 3, 3, 5)
    assert np.array_equal(encoded[0].permute(1, 2, 0).numpy().reshape(-1, 3), PALETTE.astype(np.float32))


def test_mixed_probabilities_encode_to_the_expected_colour():
    probabilities = torch.zeros(1, NUM_PARTS, 1, 1)
    probabilities[0, PART_NAMES.index("head"), 0, 0] = 0.25  # white
    probabilities[0, 0, 0, 0] = 0.75  # black background
    assert encode_probability_maps(probabilities)[0, :, 0, 0].tolist() == [63.75, 63.75, 63.75]


def test_flip_swaps_left_and_right_parts_only():
    for part, name in enumerate(PART_NAMES):
        flipped = PART_NAMES[PART_FLIP[part]]
        assert flipped == name.replace("left_", "R").replace("right_", "left_").replace("R", "right_")
    assert PART_FLIP[PART_FLIP].tolist() == list(range(NUM_PARTS))


def test_iou_by_hand_and_mean_label_map():
    truth = np.array([[0, 0, 1, 1]])
    predicted = np.array([[0, 1, 1, 1]])
    iou, mean = iou_from_counts(confusion_counts(predicted, truth))
    assert iou[0] == pytest.approx(1 / 2) and iou[1] == pytest.approx(2 / 3) and np.isnan(iou[2])
    assert mean == pytest.approx((1 / 2 + 2 / 3) / 2)
    labels = np.array([[[0, 2]], [[1, 2]], [[1, 0]]])
    assert mean_label_map(labels).tolist() == [[1, 2]]


def test_network_output_shape_and_bad_size():
    model = RefineNetLite(NUM_PARTS, input_size=32, output_stride=2, width=4, levels=2, decoder_channels=8)
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, NUM_PARTS, 32, 32)
    with pytest.raises(ValueError, match="divisible"):
        RefineNetLite(NUM_PARTS, input_size=36, output_stride=2, width=4, levels=2, decoder_channels=8)


def tiny_segmentation_settings() -> dict:
    settings = validate_config(default_config())["segmentation"]
    settings["model"].update(input_size=16, output_stride=2, width=4, levels=2, decoder_channels=8)
    settings["training"].update(epochs=1, batch_size=4)
    return {key: settings[key] for key in ("model", "training", "augment")}


def test_tiny_stage_trains_segments_and_evaluates(tmp_path):
    train = write_tiny_dataset(tmp_path / "train.zarr", num_frames=10, split="train")
    models = []
    for fold in range(2):
        models.append(tmp_path / f"fold{fold}.pt")
        train_fold(train, fold, 2, tiny_segmentation_settings(), 0, models[-1], tmp_path / f"ckpt{fold}.pt")
    predict_split(train, models, "train", 3, tmp_path / "seg.zarr")
    store = open_dataset(train)
    segmentation = open_segmentation(tmp_path / "seg.zarr", store)
    encoded, labels = segmentation.read_encoded(np.arange(10)), segmentation.read_labels(np.arange(10))
    assert encoded.shape == (10, 3, 16, 16) and encoded.dtype == np.uint8 and labels.max() < NUM_PARTS
    subjects = store.subject_names()
    for fold in range(2):  # each frame predicted by the fold model that never saw its subject
        trained = set(torch.load(models[fold], weights_only=False)["trained_subjects"])
        assert not trained & set(subjects[segmentation.fold == fold])
    evaluate({"train": train, "test": train}, {"train": tmp_path / "seg.zarr", "test": tmp_path / "seg.zarr"}, 3,
             tmp_path / "metrics.csv", {"train": tmp_path / "a.png", "test": tmp_path / "b.png"})  # fmt: skip
    table = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [r["method"] for r in table[:3]] == ["network", "all_background_baseline", "mean_label_map_baseline"]
    assert "iou_left_hand" in table[0]


def test_coarse_labels_keep_what_their_cells_can_hold():
    labels = np.zeros((2, 8, 8), np.uint8)
    labels[0, :, 3] = PART_NAMES.index("left_lower_arm")  # a stripe one pixel wide
    labels[1, :6, :6] = PART_NAMES.index("torso")  # 36 of 64 pixels
    assert np.array_equal(coarse_labels(labels, 8), labels)  # one cell per pixel: unchanged
    assert np.array_equal(coarse_labels(labels, 1), np.stack([np.zeros((8, 8)), np.full((8, 8), 2)]))
    assert np.all(coarse_labels(labels, 2)[0] == 0)  # a quarter of each cell it crosses: background wins
    assert np.any(coarse_labels(labels, 8)[0] != 0) and coarse_labels(labels, 2).dtype == np.uint8
    with pytest.raises(ValueError, match="side"):
        coarse_labels(labels, 0)


def test_the_ground_truth_segmentation_holds_the_dataset_labels_or_their_coarse_version(tmp_path):
    store = open_dataset(write_tiny_dataset(tmp_path / "train.zarr", num_frames=4, frame_size=(16, 16)))
    labels = store.read_part_labels(np.arange(4))
    write_ground_truth_segmentation(tmp_path / "exact.zarr", store)
    exact = open_segmentation(tmp_path / "exact.zarr", store)
    assert np.array_equal(exact.read_labels(np.arange(4)), labels)
    assert np.array_equal(exact.read_encoded(np.arange(4)), encode_labels(labels).transpose(0, 3, 1, 2))
    write_ground_truth_segmentation(tmp_path / "coarse.zarr", store, side=2)
    coarse = open_segmentation(tmp_path / "coarse.zarr", store).read_labels(np.arange(4))
    assert np.array_equal(coarse, coarse_labels(labels, 2))
    unlabelled = open_dataset(write_tiny_dataset(tmp_path / "plain.zarr", num_frames=4, with_part_labels=False))
    with pytest.raises(ValueError, match="no part_labels"):
        write_ground_truth_segmentation(tmp_path / "none.zarr", unlabelled)
    assert not (tmp_path / "none.zarr").exists()


def test_part_class_weights_by_hand():
    """100 pixels: 85 background, 10 head, 5 torso, no other part; one pseudo-count per part (115 in all)."""
    labels = np.array([0] * 85 + [PART_NAMES.index("head")] * 10 + [PART_NAMES.index("torso")] * 5).reshape(10, 10)
    frequency = np.full(NUM_PARTS, 1 / 115)
    frequency[[0, PART_NAMES.index("head"), PART_NAMES.index("torso")]] = [86 / 115, 11 / 115, 6 / 115]
    assert np.allclose(part_class_weights(labels, 0.0), 1.0)
    uniform_mass = part_class_weights(labels, 1.0) * frequency  # each part's pixels weigh the same in total
    assert np.allclose(uniform_mass, 1 / NUM_PARTS)
    root = part_class_weights(labels, 0.5)
    assert np.allclose(root, frequency**-0.5 / (frequency**0.5).sum())  # sum_k f_k w_k = 1
    assert np.isclose((root * frequency).sum(), 1.0) and root.dtype == np.float32
    assert root[PART_NAMES.index("left_hand")] > root[PART_NAMES.index("head")] > root[0]
    with pytest.raises(ValueError, match="power"):
        part_class_weights(labels, 1.5)
    with pytest.raises(ValueError, match="part ids"):
        part_class_weights(np.array([NUM_PARTS]), 0.5)


def fold_models_differ(train_fold, store, settings_of, values, directory) -> bool:
    """Whether fold 0's model of ``store`` trained by ``train_fold`` with ``settings_of(value)`` ends with other
    weights for each of the two ``values`` (same seed, same frames)."""
    weights = []
    for value in values:
        path = directory / f"{value}.pt"
        train_fold(store, 0, 2, settings_of(value), 0, path, directory / f"{value}.ckpt")
        weights.append(torch.load(path, weights_only=False)["model"])
    first, second = weights
    assert first.keys() == second.keys()
    return any(not torch.equal(first[key], second[key]) for key in first)


@pytest.mark.parametrize("key", ["part_class_weight_power", "part_dice_weight"])
def test_the_part_heads_loss_settings_reach_the_trained_part_head(tmp_path, key):
    """0 trains the plain cross-entropy; a class weight power or a Dice term changes the weights the fold model
    ends with."""
    train = write_tiny_dataset(tmp_path / "train.zarr", num_frames=10, split="train")

    def settings_of(value):
        settings = tiny_keypoints_settings(epochs=1)
        settings["training"][key] = value
        return settings

    assert fold_models_differ(keypoints2d.train_fold, train, settings_of, (0.0, 1.0), tmp_path)


def test_keypoints2d_fold_models_segment_with_their_part_head(tmp_path):
    """The default: the keypoints2d hourglass's part head segments; its segmentation is the head's argmax."""
    train = write_tiny_dataset(tmp_path / "train.zarr", num_frames=10, split="train")
    settings = tiny_keypoints_settings(epochs=1)
    assert "part_head_channels" in settings["model"]
    models = [tmp_path / f"fold{fold}.pt" for fold in range(2)]
    for fold, path in enumerate(models):
        keypoints2d.train_fold(train, fold, 2, settings, 0, path, tmp_path / f"ckpt{fold}.pt")
    predict_split(train, models, "train", 3, tmp_path / "seg.zarr")
    store = open_dataset(train)
    segmentation = open_segmentation(tmp_path / "seg.zarr", store)
    payload = torch.load(models[0], weights_only=False)
    network = keypoints2d.build_model(payload["model_settings"])
    network.load_state_dict(payload["model"])
    rows = np.flatnonzero(segmentation.fold == 0)
    frames = torch.as_tensor(store.read_frames(rows)).permute(0, 3, 1, 2).float() / 255
    assert payload["model_settings"]["input_size"] == store.crop_side()  # no resampling in between
    logits = network.eval()(frames)[1]
    assert np.array_equal(segmentation.read_labels(rows), logits.argmax(1).numpy())
    # a keypoints2d model without the part head cannot segment
    del settings["model"]["part_head_channels"], settings["training"]["part_loss_weight"]
    del settings["training"]["part_class_weight_power"]
    keypoints2d.train_fold(train, 0, 2, settings, 0, tmp_path / "plain.pt", tmp_path / "plain.ckpt")
    with pytest.raises(ValueError, match="no part head"):
        predict_split(train, [tmp_path / "plain.pt", models[1]], "train", 3, tmp_path / "x.zarr")
    assert not (tmp_path / "x.zarr").exists()


def test_segmentation_of_other_frames_is_refused(tmp_path):
    write_tiny_dataset(tmp_path / "a.zarr", num_frames=4, split="train")
    other = ["S1/Walking/1/54138969/000000"] * 4
    write_segmentation(
        tmp_path / "s.zarr",
        "train",
        other,
        (16, 16),
        lambda a, b: (
            np.zeros((b - a, 3, 16, 16), np.uint8),
            np.zeros((b - a, 16, 16), np.uint8),
            np.zeros(b - a, np.int64),
        ),
    )
    with pytest.raises(ValueError, match="s.zarr: segments other frames"):
        open_segmentation(tmp_path / "s.zarr", open_dataset(tmp_path / "a.zarr"))
    with pytest.raises(ValueError, match="nothing.zarr"):
        open_segmentation(tmp_path / "nothing.zarr")


def _store_with_labels(path, labels: np.ndarray, split: str):
    """A tiny store whose ``part_labels`` are the given (N, H, W) part ids."""
    batch = make_tiny_batch(len(labels), labels.shape[1:], np.random.default_rng(0))
    batch["part_labels"] = np.asarray(labels, np.uint8)
    header = {"source": "synthetic", "split": split, "subjects": TINY_SUBJECTS, "actions": TINY_ACTIONS}
    with DatasetWriter(
        path, num_frames=len(labels), frame_size=labels.shape[1:], has_part_labels=True, **header
    ) as out:
        out.write(0, batch)
    return path


def _segmentation_of(path, store_path, labels: np.ndarray):
    """A segmentation store predicting ``labels`` (N, H, W) for the frames of the store at ``store_path``."""
    store = open_dataset(store_path)

    def produce(start, stop):
        return encode_labels(labels[start:stop]).transpose(0, 3, 1, 2), labels[start:stop], np.zeros(stop - start)

    write_segmentation(path, store.split, store.frame_ids(), store.frame_size, produce)
    return path


def test_evaluate_by_hand(tmp_path):
    """IoU per part and mean IoU of the network and both baselines on 2 x 2 px label maps, by hand."""
    train_truth = np.array([[[0, 1], [2, 2]], [[0, 1], [1, 2]]])  # mean label map [[0, 1], [1, 2]] (1 wins a tie)
    train_predicted = np.array([[[0, 1], [1, 2]], [[0, 2], [1, 2]]])  # one truth-2 pixel as 1, one truth-1 as 2
    test_truth, test_predicted = np.array([[[1, 1], [0, 0]]]), np.array([[[1, 0], [0, 0]]])
    stores = {
        "train": _store_with_labels(tmp_path / "train.zarr", train_truth, "train"),
        "test": _store_with_labels(tmp_path / "test.zarr", test_truth, "test"),
    }
    segmentations = {
        "train": _segmentation_of(tmp_path / "train_seg.zarr", stores["train"], train_predicted.astype(np.uint8)),
        "test": _segmentation_of(tmp_path / "test_seg.zarr", stores["test"], test_predicted.astype(np.uint8)),
    }
    sheets = {split: tmp_path / f"{split}.png" for split in stores}
    evaluate(stores, segmentations, 2, tmp_path / "metrics.csv", sheets)
    nan = float("nan")
    expected = {  # IoU of parts 0, 1, 2 (the other parts: absent from truth and prediction, NaN), mean IoU
        ("train", "network"): ((1.0, 2 / 4, 2 / 4), 2 / 3),
        ("train", "all_background_baseline"): ((2 / 8, 0.0, 0.0), 1 / 12),
        ("train", "mean_label_map_baseline"): ((1.0, 3 / 4, 2 / 3), (1 + 3 / 4 + 2 / 3) / 3),
        ("test", "network"): ((2 / 3, 1 / 2, nan), (2 / 3 + 1 / 2) / 2),
        ("test", "all_background_baseline"): ((2 / 4, 0.0, nan), 1 / 4),
        ("test", "mean_label_map_baseline"): ((0.0, 1 / 3, 0.0), 1 / 9),  # predicts part 2 where truth has none
    }
    table = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [(row["split"], row["method"]) for row in table] == list(expected)
    for row in table:
        ious, mean = expected[row["split"], row["method"]]
        assert row["frames"] == ("2" if row["split"] == "train" else "1")
        assert float(row["mean_iou"]) == pytest.approx(mean, abs=5e-5)
        written = [float(row[f"iou_{name}"]) for name in PART_NAMES]
        assert written[:3] == pytest.approx(ious, abs=5e-5, nan_ok=True)
        assert np.isnan(written[3:]).all()
    assert all(path.stat().st_size > 0 for path in sheets.values())


def _background_segmentation(path, num_frames: int, size: int = 16):
    """A store segmenting ``num_frames`` frames as all background: every chunk holds only zeros."""
    ids = [f"S1/Walking/1/54138969/{index:06d}" for index in range(num_frames)]

    def produce(start, stop):
        return (np.zeros((stop - start, 3, size, size), np.uint8), np.zeros((stop - start, size, size), np.uint8),
                np.zeros(stop - start, np.int64))  # fmt: skip

    write_segmentation(path, "train", ids, (size, size), produce)
    return path


def test_truncated_segmentation_store_is_refused_naming_the_chunk(tmp_path):
    path = _background_segmentation(tmp_path / "s.zarr", 70)  # two chunks of 64 frames
    assert not open_segmentation(path).read_labels(np.arange(70)).any()  # all-zero chunks are written too
    chunk = path / "labels" / "c" / "1" / "0" / "0"
    assert chunk.is_file()
    chunk.unlink()  # zarr alone would read those 6 frames as background without complaint
    with pytest.raises(ValueError, match=rf"^{path}: array 'labels': missing chunk file {chunk} \(truncated store\)"):
        open_segmentation(path)


def test_segmentation_store_of_the_wrong_shape_is_refused(tmp_path):
    path = _background_segmentation(tmp_path / "s.zarr", 5)
    metadata = json.loads((path / "zarr.json").read_text())
    metadata["attributes"]["num_frames"] = 4
    (path / "zarr.json").write_text(json.dumps(metadata))
    with pytest.raises(ValueError, match=rf"^{path}: array 'encoded' is \(5, 3, 16, 16\) uint8, expected \(4, 3,"):
        open_segmentation(path)
