"""The soft Dice loss of the part head (keypoints2d.training.part_dice_weight)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from patchpose.config import ConfigError, validate_config
from patchpose.part_loss import soft_dice_loss
from tests.conftest import default_config


def test_soft_dice_by_hand():
    """Two classes, two pixels, probabilities given: each class's Dice computed by hand."""
    probabilities = torch.tensor([[0.8, 0.2], [0.4, 0.6]])  # pixel x class
    logits = probabilities.log().T.reshape(1, 2, 1, 2)
    labels = torch.tensor([[[0, 1]]])
    # class 0: overlap 0.8, sum p 1.2, one pixel; class 1: overlap 0.6, sum p 0.8, one pixel
    dice = [(2 * 0.8 + 1) / (1.2 + 1 + 1), (2 * 0.6 + 1) / (0.8 + 1 + 1)]
    assert soft_dice_loss(logits, labels).item() == pytest.approx(1 - sum(dice) / 2, rel=1e-6)
    assert soft_dice_loss(logits, labels, smooth=1e-3).item() == pytest.approx(
        1 - (1.6 / 2.2 + 1.2 / 1.8) / 2, rel=1e-3
    )


def test_a_missed_thin_part_costs_as_much_as_a_missed_large_one():
    """Unlike the per-pixel cross-entropy, Dice does not let a network paint over a part of a few pixels."""
    labels = torch.zeros(1, 8, 8, dtype=torch.long)
    labels[0, :, :4] = 1  # a large part
    labels[0, 0, 6] = 2  # a part of one pixel

    def logits_of(prediction):
        return 40.0 * F.one_hot(prediction, 3).permute(0, 3, 1, 2).float()

    def losses_when_missing(part):
        prediction = labels.clone()
        prediction[labels == part] = 0
        logits = logits_of(prediction)
        return soft_dice_loss(logits, labels, smooth=1e-6).item(), F.cross_entropy(logits, labels).item()

    assert soft_dice_loss(logits_of(labels), labels, smooth=1e-6).item() == pytest.approx(0.0, abs=1e-5)
    (dice_thin, entropy_thin), (dice_large, entropy_large) = losses_when_missing(2), losses_when_missing(1)
    assert dice_thin == pytest.approx(1 / 3, abs=0.01)  # its Dice 0, the others' near 1
    # background's Dice falls too when the large part is painted over: (1 + 1 - 2 * 31 / 94) / 3
    assert dice_large == pytest.approx((2 - 62 / 94) / 3, abs=0.01)
    assert entropy_thin / entropy_large == pytest.approx(1 / 32)  # the cross-entropy hardly minds the thin one
    assert dice_thin / dice_large > 0.7


def test_soft_dice_has_gradients_and_refuses_bad_shapes():
    logits = torch.randn(2, 4, 5, 5, requires_grad=True)
    labels = torch.randint(0, 4, (2, 5, 5))
    loss = soft_dice_loss(logits, labels)
    loss.backward()
    assert 0 <= loss.item() < 1 and torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="expected logits"):
        soft_dice_loss(logits, labels[:, :4])
    with pytest.raises(ValueError, match="smooth"):
        soft_dice_loss(logits, labels, smooth=0)


def test_the_dice_weight_is_validated_and_off_by_default():
    config = default_config()
    assert validate_config(config)["keypoints2d"]["training"]["part_dice_weight"] == 0
    config["keypoints2d"]["training"]["part_dice_weight"] = -1
    with pytest.raises(ConfigError, match="part_dice_weight"):
        validate_config(config)
