"""The baselines config block: schema defaults per kind, one-line errors naming the key, split planning."""

from __future__ import annotations

import pytest

from patchpose.config import ConfigError, validate_config
from patchpose.poses3d.baseline_config import baseline_splits, external_source, file_holds_both_splits
from tests.conftest import default_config


def _with_baselines(baselines: dict) -> dict:
    config = default_config()
    config["baselines"] = baselines
    return config


def test_baselines_default_to_none():
    config = default_config()
    config.pop("baselines", None)
    assert validate_config(config)["baselines"] == {}


def test_external_baseline_gets_its_defaults():
    validated = validate_config(_with_baselines({"mine": {"kind": "external", "file": "p.npz"}}))
    assert validated["baselines"]["mine"] == {
        "kind": "external",
        "file": "p.npz",
        "train_file": None,
        "unit": "auto",
        "joint_names": None,
        "format": "auto",
    }


@pytest.mark.parametrize("joint_names", ["videopose3d", [f"j{i}" for i in range(17)], None])
def test_joint_names_take_a_named_order_or_a_list(joint_names):
    block = {"mine": {"kind": "external", "file": "p.csv", "joint_names": joint_names}}
    assert validate_config(_with_baselines(block))["baselines"]["mine"]["joint_names"] == joint_names


@pytest.mark.parametrize(
    ("baselines", "expected"),
    [
        ({"my method": {"kind": "external", "file": "p"}}, "config key baselines.my method has an invalid name"),
        ({"m": {"kind": "lifting9"}}, "config key baselines.m.kind = 'lifting9' is not allowed; allowed values:"),
        ({"m": {"kind": "external"}}, "config key baselines.m is missing a required key: 'file'"),
        ({"m": {"file": "p"}}, "config key baselines.m is missing a required key: 'kind'"),
        ({"m": {"kind": "external", "file": "p", "unit": "cm"}}, "baselines.m.unit = 'cm' is not allowed"),
        ({"m": {"kind": "external", "file": "p", "colour": 1}}, "unknown config key baselines.m.colour"),
        ({"m": {"kind": "external", "file": "p", "format": "xls"}}, "baselines.m.format = 'xls' is not allowed"),
        ({"m": {"kind": "external", "file": "p", "joint_names": ["a"] * 17}}, "baselines.m.joint_names"),
    ],
    ids=["name", "kind", "no-file", "no-kind", "unit", "unknown-key", "format", "repeated-names"],
)
def test_bad_baseline_block_names_the_key(baselines, expected):
    with pytest.raises(ConfigError) as caught:
        validate_config(_with_baselines(baselines))
    assert expected in str(caught.value)


def test_splits_follow_train_file(tmp_path):
    test_only = {"kind": "external", "file": "p.npz", "train_file": None}
    assert baseline_splits(test_only) == ("test",)
    assert external_source("mine", test_only, "test") == "p.npz"
    with pytest.raises(
        ValueError, match="baseline 'mine' has no train-split predictions: set baselines.mine.train_file"
    ):
        external_source("mine", test_only, "train")
    both = {**test_only, "train_file": "./p.npz"}
    assert baseline_splits(both) == ("train", "test") and file_holds_both_splits(both)
    separate = {**test_only, "train_file": "q.npz"}
    assert external_source("mine", separate, "train") == "q.npz" and not file_holds_both_splits(separate)
    assert baseline_splits({"kind": "lifting"}) == ("train", "test")
