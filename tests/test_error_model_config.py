"""baselines.<name>.updater (own, error_model, {from: <other>}): which updater refines which baseline, the plan it
gives the tables, and one clear config error for each impossible choice (patchpose/updater/variants.py)."""

from __future__ import annotations

import pytest
import yaml

from patchpose.config import ConfigError, merge_config, validate_config
from patchpose.updater.variants import error_model_fit, planned_pairs, updater_owner, updater_source, updater_sources
from tests.conftest import REPO, default_config

TEST_ONLY = {"kind": "external", "file": "mine_test.npz"}


def _config(**baselines) -> dict:
    config = default_config()
    config["baselines"].update(baselines)
    return validate_config(config)


def test_the_default_refines_every_baseline_with_a_training_split_with_its_own_updater():
    config = _config()
    assert updater_sources(config["baselines"]) == {"lifting": "own", "integral3d": "own"}  # not mean_pose
    assert updater_source(config, "integral3d") == "own"
    with pytest.raises(
        ValueError, match=r"baseline 'mean_pose' is not refined .*\(refined baselines: lifting, integral3d\)"
    ):
        updater_source(config, "mean_pose")


def test_a_test_only_baseline_is_refined_when_it_names_an_updater():
    config = _config(
        plain=TEST_ONLY,
        modelled={**TEST_ONLY, "updater": "error_model"},
        borrowed={**TEST_ONLY, "updater": {"from": "integral3d"}},
        both={**TEST_ONLY, "train_file": "mine_train.npz", "updater": "own"},
    )
    sources = updater_sources(config["baselines"])
    assert sources == {
        "lifting": "own",
        "integral3d": "own",
        "modelled": "error_model",
        "borrowed": "from integral3d",
        "both": "own",
    }  # fmt: skip  (plain: not refined)
    assert [updater_owner(name, source) for name, source in sources.items()] == [
        "lifting", "integral3d", "modelled", "integral3d", "both"]  # fmt: skip
    assert updater_source(config, "borrowed") == "from integral3d"


def test_the_plan_gives_every_refined_baseline_a_table1_pair_and_ablations_only_to_one_that_trains():
    plan = planned_pairs(["lifting", "mine", "theirs"], "mine", conditioned=False, trained=["lifting", "mine"])
    assert plan["table1"] == [("lifting", "rgb_seg"), ("mine", "rgb_seg"), ("theirs", "rgb_seg")]
    assert [variant for _, variant in plan["ablation"]] == ["rgb", "seg", "uncropped_rgb", "pose_only", "pose_boxes",
                                                             "rgb_seg_conditioned"]  # fmt: skip
    with pytest.raises(ValueError, match=r"ablation_baseline 'theirs' must be .*\(one that trains updaters of its own: "
                       r"lifting, mine\)"):  # fmt: skip
        planned_pairs(["lifting", "mine", "theirs"], "theirs", conditioned=False, trained=["lifting", "mine"])
    conditioned = planned_pairs(["lifting", "theirs"], None, conditioned=True, trained=["lifting"])
    assert conditioned["table1"] == [("lifting", "rgb_seg_conditioned"), ("theirs", "rgb_seg_conditioned")]


def test_an_error_model_fits_on_the_in_pipeline_baselines_unless_told_otherwise():
    config = _config(mine={**TEST_ONLY, "updater": "error_model"})
    assert error_model_fit(config["baselines"], "mine") == {
        "validation_file": None, "format": "auto", "unit": "auto", "joint_names": None,
        "baselines": ["lifting", "integral3d"]}  # fmt: skip
    config = _config(mine={**TEST_ONLY, "updater": "error_model", "error_model_baselines": ["integral3d"]})
    assert error_model_fit(config["baselines"], "mine")["baselines"] == ["integral3d"]
    block = {**TEST_ONLY, "updater": "error_model", "validation_file": "val.csv", "unit": "m", "joint_names": "h36m"}
    expected = {"validation_file": "val.csv", "format": "auto", "unit": "m", "joint_names": "h36m", "baselines": []}
    assert error_model_fit(_config(mine=block)["baselines"], "mine") == expected


@pytest.mark.parametrize(
    ("baselines", "expected"),
    [
        (
            {"mine": {**TEST_ONLY, "updater": "own"}},
            "config key baselines.mine.updater = 'own' needs training-split predictions (baselines.mine.train_file)",
        ),
        (
            {"mine": {**TEST_ONLY, "updater": {"from": "nobody"}}},
            "config key baselines.mine.updater.from = 'nobody' is not a configured baseline; it must name a baseline "
            "that trains updaters of its own (lifting, integral3d)",
        ),
        ({"mine": {**TEST_ONLY, "updater": {"from": "mine"}}}, "updater.from = 'mine' is the baseline itself"),
        (
            {"mine": {**TEST_ONLY, "updater": {"from": "mean_pose"}}},
            "updater.from = 'mean_pose' has no updater of its own (its updater: not refined)",
        ),
        (
            {"a": {**TEST_ONLY, "updater": {"from": "lifting"}}, "b": {**TEST_ONLY, "updater": {"from": "a"}}},
            "config key baselines.b.updater.from = 'a' has no updater of its own (its updater: from lifting)",
        ),
        ({"a": TEST_ONLY, "b": {**TEST_ONLY, "updater": {"from": "a"}}}, "'a' has no updater of its own"),
        (
            {"mine": {**TEST_ONLY, "validation_file": "v.npz"}},
            "config key baselines.mine.validation_file is used only with updater: error_model (updater is None)",
        ),
        (
            {"mine": {**TEST_ONLY, "updater": "own", "train_file": "t.npz", "error_model_baselines": ["lifting"]}},
            "baselines.mine.error_model_baselines is used only with updater: error_model (updater is 'own')",
        ),
        (
            {
                "mine": {
                    **TEST_ONLY,
                    "updater": "error_model",
                    "validation_file": "v.npz",
                    "error_model_baselines": ["lifting"],
                }
            },
            "baselines.mine.error_model_baselines and validation_file are both set",
        ),
        (
            {"mine": {**TEST_ONLY, "updater": "error_model", "error_model_baselines": ["mean_pose", "other"]}},
            "config key baselines.mine.error_model_baselines lists 'mean_pose', 'other': not baselines with "
            "training-split predictions (lifting, integral3d)",
        ),
        ({"mine": {**TEST_ONLY, "updater": "bogus"}}, "config key baselines.mine.updater = 'bogus' is not allowed"),
        ({"mine": {**TEST_ONLY, "updater": {"from": "lifting", "too": 1}}}, "config key baselines.mine.updater"),
        ({"mean_pose": {"kind": "mean_pose", "updater": "own"}}, "unknown config key baselines.mean_pose.updater"),
    ],  # fmt: skip
    ids=[
        "own-without-train",
        "from-missing",
        "from-itself",
        "from-mean-pose",
        "from-a-from",
        "from-unrefined",
        "validation-without-error-model",
        "list-without-error-model",
        "both-fits",
        "list-unusable",
        "bad-choice",
        "bad-from-block",
        "mean-pose",
    ],  # fmt: skip
)
def test_an_impossible_updater_choice_is_one_config_error_naming_the_key(baselines, expected):
    config = default_config()
    config["baselines"].update(baselines)
    with pytest.raises(ConfigError) as caught:
        validate_config(config)
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_an_error_model_with_nothing_to_fit_on_is_a_config_error():
    config = default_config()
    config["baselines"] = {"mine": {**TEST_ONLY, "updater": "error_model"}}
    config["updater"]["ablation_baseline"] = None
    with pytest.raises(ConfigError, match=r"baselines\.mine\.updater = 'error_model' has nothing to fit on: no "
                       r"lifting or integral3d baseline .* or give baselines\.mine\.validation_file"):  # fmt: skip
        validate_config(config)
    config["baselines"]["mine"]["validation_file"] = "val.npz"
    assert updater_sources(validate_config(config)["baselines"]) == {"mine": "error_model"}


def test_the_updater_sources_file_validates_over_the_default():
    config = default_config()
    merge_config(config, yaml.safe_load((REPO / "config/updater_sources.yaml").read_text(encoding="utf-8")))
    validated = validate_config(config)
    assert validated["dataset"]["name"] == "synthetic"  # the default's results are reused, not rebuilt
    assert updater_sources(validated["baselines"]) == {"lifting": "own", "integral3d": "own",
                                                       "lifting_error_model": "error_model",
                                                       "lifting_by_integral3d": "from integral3d"}  # fmt: skip
    assert error_model_fit(validated["baselines"], "lifting_error_model")["baselines"] == ["integral3d"]
    for name in ("lifting_error_model", "lifting_by_integral3d"):  # lifting's own test predictions
        assert validated["baselines"][name]["file"] == "results/synthetic/baselines/lifting/test_poses_3d.npz"
