"""Pose counts per sequence: rare actions are rare in training, every action equal in test."""

from __future__ import annotations

import pytest

from patchpose.actions import ACTIONS, check_action
from patchpose.config import validate_config
from patchpose.synthetic.params import world_params_for_split
from patchpose.synthetic.plan import plan_split
from tests.conftest import default_config


def _world(**overrides):
    config = default_config()
    config["dataset"]["synthetic"].update(overrides)
    return validate_config(config)["dataset"]["synthetic"]


def test_train_split_rare_fractions():
    plans = plan_split(_world(train_poses_per_subject=300), "train")
    per_subject = {}
    for plan in plans:
        per_subject.setdefault(plan.subject, {})[plan.action] = plan.num_poses
    assert set(per_subject) == {"S1", "S5", "S6", "S7", "S8"}
    counts = per_subject["S1"]
    assert sum(counts.values()) == 300
    # 3% of 300 = 9 each; the other 13 actions share 282 = 13 x 21 + 9: nine get 22, four get 21.
    assert counts["Sitting"] == 9 and counts["SittingDown"] == 9
    common = [counts[a] for a in ACTIONS if a not in ("Sitting", "SittingDown")]
    assert sum(common) == 282 and set(common) == {21, 22} and common.count(22) == 282 - 13 * 21


def test_test_split_is_balanced():
    plans = plan_split(_world(test_poses_per_action=5), "test")
    assert {p.subject for p in plans} == {"S9", "S11"}
    assert [p.action for p in plans[:15]] == list(ACTIONS)
    assert all(p.num_poses == 5 for p in plans)


def test_too_few_training_poses_is_an_error():
    with pytest.raises(ValueError, match="leaves .* poses for 13 common actions"):
        plan_split(_world(train_poses_per_subject=10), "train")


def test_zero_fraction_drops_the_action():
    plans = plan_split(_world(rare_actions={"Sitting": 0.0}), "train")
    assert "Sitting" not in {p.action for p in plans}


def test_split_params_keep_train_only_keys_out_of_test():
    world = _world()
    test_params = world_params_for_split(world, "test")
    assert "rare_actions" not in test_params and "train_poses_per_subject" not in test_params
    assert "rare_actions" in world_params_for_split(world, "train")
    with pytest.raises(ValueError, match="unknown split"):
        world_params_for_split(world, "val")


def test_check_action():
    assert check_action("WalkDog") == "WalkDog"
    with pytest.raises(ValueError, match="known actions: Directions"):
        check_action("WalkingDog")
