"""The recolouring of each body part (``augment.part_recolour``): the draws, the shares of each pixel, the colour
map by hand, and that the keypoints2d and segmentation fold models train with it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from patchpose.augment import (
    PART_FLIP,
    PART_PARENT,
    Augment,
    augment_frames,
    part_shares,
    recolour_parts,
    sample_part_colours,
    sample_transforms,
    warp_part_labels,
)
from patchpose.config import ConfigError, validate_config
from patchpose.keypoints2d import stage as keypoints2d
from patchpose.parts import NUM_PARTS, PART_NAMES
from patchpose.segmentation import stage as segmentation
from tests.conftest import default_config
from tests.dataset_factory import write_tiny_dataset
from tests.test_segmentation import fold_models_differ, tiny_segmentation_settings
from tests.test_training import tiny_keypoints_settings

PART = {name: index for index, name in enumerate(PART_NAMES)}


def _augment(part_recolour: float, flip: bool = False, scale: float = 0.0) -> Augment:
    return Augment(scale=scale, rotation_deg=0.0, flip=flip, colour_jitter=0.0, part_recolour=part_recolour)


def test_without_part_recolour_nothing_is_drawn():
    rng, untouched = np.random.default_rng(4), np.random.default_rng(4)
    assert sample_part_colours(rng, 16, _augment(0.0)) is None
    assert rng.random() == untouched.random()


def test_the_parts_tree():
    assert PART_PARENT[PART["background"]] == -1 and PART_PARENT[PART["torso"]] == -1
    assert PART_PARENT[PART["head"]] == PART["torso"]
    assert PART_PARENT[PART["right_hand"]] == PART["right_lower_arm"]
    assert PART_PARENT[PART["left_lower_leg"]] == PART["left_upper_leg"]
    assert PART_PARENT[PART["left_upper_arm"]] == PART["torso"]
    # one pass in id order fills them: a parent comes first or is a root, whose matrix is never replaced
    assert all(parent < part or PART_PARENT[parent] == -1 for part, parent in enumerate(PART_PARENT))


def test_part_colours_permute_and_scale_channels_and_are_shared_as_drawn():
    colours = sample_part_colours(np.random.default_rng(0), 400, _augment(1.0)).numpy()
    assert colours.shape == (400, NUM_PARTS, 3, 3)
    nonzero = colours != 0
    assert (nonzero.sum(axis=3) == 1).all() and (nonzero.sum(axis=2) == 1).all()  # a permutation of the channels
    gains = colours.sum(axis=3)
    assert gains.min() >= 0.5 and gains.max() <= 1.5
    same = lambda a, b: np.all(colours[:, a] == colours[:, b], axis=(1, 2))  # noqa: E731
    # half the parts take their parent's matrix: a sleeve over both arm parts, a colour edge not at a part's edge
    assert 0.4 < same(PART["left_lower_arm"], PART["left_upper_arm"]).mean() < 0.6
    assert 0.4 < same(PART["head"], PART["torso"]).mean() < 0.6
    # half the right parts their left counterpart's (dressed alike), the rest their own or their parent's
    assert 0.4 < same(PART["right_upper_leg"], PART["left_upper_leg"]).mean() < 0.7
    assert same(PART["background"], PART["torso"]).mean() < 0.1  # drawn apart: 1 in 36 permutations alike, gains not
    assert PART_FLIP[PART["right_foot"]] == PART["left_foot"]


def test_part_recolour_is_drawn_for_the_given_share_of_examples():
    colours = sample_part_colours(np.random.default_rng(1), 1000, _augment(0.3)).numpy()
    identity = np.all(colours == np.eye(3), axis=(1, 2, 3))
    assert 0.25 < 1 - identity.mean() < 0.35


def test_recolour_by_hand():
    images = torch.tensor([[[[0.2, 0.4], [0.8, 0.0]], [[0.6, 0.2], [0.1, 0.0]], [[1.0, 0.4], [0.5, 0.0]]]])
    shares = torch.zeros(1, NUM_PARTS, 2, 2)
    shares[0, PART["torso"], 0, 0] = 1.0  # pixel (0, 0): torso alone
    shares[0, PART["torso"], 0, 1] = shares[0, PART["head"], 0, 1] = 0.5  # (0, 1): half torso, half head
    shares[0, PART["background"], 1, 0] = 1.0  # (1, 0): background; (1, 1): outside the frame, no share at all
    colours = torch.eye(3).repeat(1, NUM_PARTS, 1, 1)
    colours[0, PART["torso"]] = torch.tensor([[0.0, 0.0, 1.5], [1.0, 0.0, 0.0], [0.0, 0.5, 0.0]])  # B, R, G
    colours[0, PART["head"]] = torch.diag(torch.tensor([2.0, 1.0, 1.0]))
    out = recolour_parts(images, shares, colours)[0]
    assert torch.allclose(out[:, 0, 0], torch.tensor([1.0, 0.2, 0.3]))  # 1.5 x 1.0 clipped to 1
    torso, head = torch.tensor([0.6, 0.4, 0.1]), torch.tensor([0.8, 0.2, 0.4])
    assert torch.allclose(out[:, 0, 1], 0.5 * torso + 0.5 * head)
    assert torch.allclose(out[:, 1, 0], images[0, :, 1, 0])
    assert torch.equal(out[:, 1, 1], torch.zeros(3))


def test_shares_are_area_averaged_and_follow_the_pixels_through_a_flip():
    labels = torch.zeros(1, 4, 4, dtype=torch.uint8)
    labels[0, :, :2] = PART["left_upper_arm"]
    labels[0, :, 2] = PART["torso"]  # the third column: half of the right output pixel at half the size
    shares = part_shares(labels, sample_transforms(np.random.default_rng(0), 1, _augment(1.0)), 2)
    assert torch.allclose(shares.sum(1), torch.ones(1, 2, 2))
    assert torch.allclose(shares[0, PART["left_upper_arm"]], torch.tensor([[1.0, 0.0], [1.0, 0.0]]))
    assert torch.allclose(shares[0, PART["torso"]], torch.tensor([[0.0, 0.5], [0.0, 0.5]]))
    assert torch.allclose(shares[0, PART["background"]], torch.tensor([[0.0, 0.5], [0.0, 0.5]]))
    flipped = sample_transforms(np.random.default_rng(0), 64, _augment(1.0, flip=True))
    row = int(np.flatnonzero(flipped.flipped.numpy())[0])
    one = type(flipped)(flipped.matrices[row : row + 1], flipped.flipped[row : row + 1], flipped.colour[row : row + 1])
    mirrored = part_shares(labels, one, 2)
    # the left arm's pixels moved to the right and keep its id: the colours follow the pixels, not the names
    assert torch.allclose(mirrored[0, PART["left_upper_arm"]], torch.tensor([[0.0, 1.0], [0.0, 1.0]]))
    assert mirrored[0, PART["right_upper_arm"]].abs().max() == 0
    # the part head's targets of the same pixels are renamed: the left arm seen mirrored is a right arm
    targets = warp_part_labels(labels, one, 4)
    assert targets.dtype == torch.int64 and torch.equal(targets[0, :, 2:], torch.full((4, 2), PART["right_upper_arm"]))
    assert torch.equal(targets[0, :, 1], torch.full((4,), PART["torso"]))
    unflipped = sample_transforms(np.random.default_rng(0), 1, _augment(1.0))
    assert torch.equal(warp_part_labels(labels, unflipped, 4), labels.long())  # no flip, no zoom: the labels


def test_augment_frames_recolours_only_with_the_labels_it_needs():
    frames, labels = torch.rand(4, 3, 8, 8), torch.randint(0, NUM_PARTS, (4, 8, 8))
    plain, transforms = augment_frames(np.random.default_rng(2), frames, _augment(0.0, flip=True, scale=0.1), 8)
    assert plain.shape == (4, 3, 8, 8) and len(transforms.matrices) == 4
    with pytest.raises(ValueError, match="part_recolour needs the frames' part labels"):
        augment_frames(np.random.default_rng(2), frames, _augment(1.0), 8)
    recoloured, same = augment_frames(np.random.default_rng(2), frames, _augment(1.0, flip=True, scale=0.1), 8, labels)
    assert torch.equal(same.matrices, transforms.matrices)  # the transforms are drawn first, as without it
    assert not torch.equal(recoloured, plain)


def _with_part_recolour(settings_of):
    def settings(share):
        chosen = settings_of()
        chosen["augment"]["part_recolour"] = share
        return chosen

    return settings


def test_part_recolour_reaches_the_keypoints2d_fold_model_and_needs_part_labels(tmp_path):
    train = write_tiny_dataset(tmp_path / "train.zarr", num_frames=10, split="train")
    settings_of = _with_part_recolour(lambda: tiny_keypoints_settings(epochs=1))
    assert fold_models_differ(keypoints2d.train_fold, train, settings_of, (0.0, 1.0), tmp_path)
    # without the part head it still needs the labels to recolour by; without both it trains as before
    plain = write_tiny_dataset(tmp_path / "plain.zarr", num_frames=10, split="train", with_part_labels=False)
    settings = tiny_keypoints_settings(epochs=1)
    del settings["model"]["part_head_channels"], settings["training"]["part_loss_weight"]
    settings["augment"]["part_recolour"] = 0.5
    with pytest.raises(ValueError, match=r"plain\.zarr: has no part_labels to recolour the parts by"):
        keypoints2d.train_fold(plain, 0, 2, settings, 0, tmp_path / "p.pt", tmp_path / "p.ckpt")
    assert not (tmp_path / "p.pt").exists()
    settings["augment"]["part_recolour"] = 0.0
    keypoints2d.train_fold(plain, 0, 2, settings, 0, tmp_path / "p.pt", tmp_path / "p.ckpt")
    assert (tmp_path / "p.pt").exists()


def test_part_recolour_reaches_the_segmentation_networks_fold_model(tmp_path):
    train = write_tiny_dataset(tmp_path / "train.zarr", num_frames=10, split="train")
    settings_of = _with_part_recolour(tiny_segmentation_settings)
    assert fold_models_differ(segmentation.train_fold, train, settings_of, (0.0, 1.0), tmp_path)


@pytest.mark.parametrize("block", ["keypoints2d", "segmentation"])
def test_part_recolour_is_a_share(block):
    config = default_config()
    config[block]["augment"]["part_recolour"] = 1.5
    with pytest.raises(ConfigError, match=rf"{block}\.augment\.part_recolour = 1\.5"):
        validate_config(config)
    config[block]["augment"]["part_recolour"] = 1
    assert validate_config(config)[block]["augment"]["part_recolour"] == 1
