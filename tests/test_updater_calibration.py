"""The calibration factors: least squares on the validation frames, clipped to [0, 1]."""

from __future__ import annotations

import numpy as np
import pytest

from patchpose.updater.calibration import calibration_factors


def test_a_prediction_twice_the_target_gets_one_half_per_output():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(50, 3))
    predictions = target * np.array([2.0, 1.0, 0.5])
    # output 0: half; output 1: exact (1); output 2: would need 2, clipped to 1
    assert np.allclose(calibration_factors(predictions, target, "per_output"), [0.5, 1.0, 1.0])


def test_a_hand_computed_global_factor():
    predictions = np.array([[1.0, 0.0], [0.0, 2.0]])
    target = np.array([[1.0, 0.0], [0.0, 1.0]])
    # <p, t> = 1 + 2 = 3, <p, p> = 1 + 4 = 5
    assert np.allclose(calibration_factors(predictions, target, "global"), [0.6, 0.6])


def test_anticorrelated_or_silent_outputs_get_zero_and_none_gets_ones():
    predictions = np.array([[1.0, 0.0], [-1.0, 0.0]])
    target = np.array([[-2.0, 1.0], [2.0, -1.0]])
    assert np.array_equal(calibration_factors(predictions, target, "per_output"), [0.0, 0.0])
    assert np.array_equal(calibration_factors(predictions, target, "none"), [1.0, 1.0])


@pytest.mark.parametrize(
    ("predictions", "target", "kind", "message"),
    [
        (np.zeros((2, 3)), np.zeros((2, 4)), "per_output", "both be"),
        (np.zeros((0, 3)), np.zeros((0, 3)), "global", "at least one"),
        (np.zeros((2, 3)), np.zeros((2, 3)), "median", "must be one of"),
    ],
)
def test_bad_arguments_are_refused(predictions, target, kind, message):
    with pytest.raises(ValueError, match=message):
        calibration_factors(predictions, target, kind)
