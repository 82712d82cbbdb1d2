"""The config contract: schema validation with one-line errors that name the key."""

from __future__ import annotations

import copy
import re

import pytest
import yaml

from patchpose.config import ConfigError, load_config, load_schema, merge_config, validate_config
from tests.conftest import REPO, default_config


def _leaf_keys(schema: dict, prefix: str = "") -> list[str]:
    keys = []
    for key, sub in schema.get("properties", {}).items():
        path = f"{prefix}.{key}" if prefix else key
        keys.append(path)
        keys.extend(_leaf_keys(sub, path))
    return keys


def test_default_config_is_valid_and_complete():
    validated = validate_config(default_config())
    assert validated["dataset"]["kind"] == "synthetic"
    # config.yaml spells out every key of the schema (no hidden defaults for the embedded default).
    raw = default_config()
    for dotted in _leaf_keys(load_schema()):
        node = raw
        for part in dotted.split("."):
            assert part in node, f"config.yaml does not spell out {dotted}"
            node = node[part]


def test_the_schema_defaults_are_the_embedded_default():
    """A key left out of a config (a user's own file, a run driven from Python) gets config.yaml's value, so
    leaving a key out means what the README and config.yaml say it means."""
    raw = default_config()
    differing = []
    for dotted in _leaf_keys(load_schema()):
        node, value = load_schema(), raw
        for part in dotted.split("."):
            node, value = node["properties"][part], value[part]
        if "default" in node and not isinstance(node["default"], dict) and node["default"] != value:
            differing.append(f"{dotted}: schema {node['default']!r}, config.yaml {value!r}")
    assert not differing, "schema defaults that config.yaml does not have:\n" + "\n".join(differing)
    # So a config with those keys left out validates to the default config.
    trimmed = copy.deepcopy(raw)
    for block in ("keypoints2d", "segmentation"):
        del trimmed[block]["augment"]
    for key in ("max_epochs", "patience", "validation_subjects"):
        del trimmed["updater"]["training"][key]
    del trimmed["updater"]["ablation_baseline"]
    assert validate_config(trimmed) == validate_config(raw)


def test_every_config_key_is_commented():
    """Each key line in config.yaml is preceded by a comment line (meaning, unit, range)."""
    lines = (REPO / "config.yaml").read_text(encoding="utf-8").splitlines()
    key_line = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*):")
    for i, line in enumerate(lines):
        match = key_line.match(line)
        if not match or match.group(1) in ("Sitting", "SittingDown"):  # entries of the rare_actions map
            continue
        previous = lines[i - 1].strip() if i else ""
        # A key directly following another key of the same comment block is allowed (e.g. train/test pairs).
        assert previous.startswith("#") or key_line.match(lines[i - 1]), f"config.yaml line {i + 1} lacks a comment"


def test_every_schema_key_has_a_description():
    for dotted in _leaf_keys(load_schema()):
        node = load_schema()
        for part in dotted.split("."):
            node = node["properties"][part]
        assert node.get("description"), f"schema key {dotted} has no description"


def test_schema_fills_defaults():
    validated = validate_config({"seed": 3, "dataset": {"name": "w", "kind": "synthetic"}})
    assert (
        validated["dataset"]["synthetic"]["frame_size"]
        == load_schema()["properties"]["dataset"]["properties"]["synthetic"]["properties"]["frame_size"]["default"]
    )


def _with(path: str, value) -> dict:
    config = copy.deepcopy(default_config())
    node = config
    *parents, last = path.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    return config


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({**default_config(), "sead": 1}, "unknown config key sead; allowed keys at the top level: baselines, "),
        (_with("dataset.synthetic.frame_sise", 64), "unknown config key dataset.synthetic.frame_sise"),
        (_with("seed", "zero"), "config key seed = 'zero' has the wrong type: expected integer"),
        (_with("dataset.kind", "h3.6m"), "config key dataset.kind = 'h3.6m' is not allowed; allowed values: synthetic"),
        (_with("dataset.synthetic.frame_size", 8), "config key dataset.synthetic.frame_size = 8 is out of range"),
        (_with("dataset.synthetic.train_poses_per_subject", -5), "train_poses_per_subject = -5 is out of range"),
        (_with("dataset.synthetic.rare_actions", {"Sitting": 1.5}), "rare_actions.Sitting = 1.5 is out of range"),
        (
            _with("dataset.synthetic.rare_actions", {"Siting": 0.1}),
            "unknown config key dataset.synthetic.rare_actions.Siting",
        ),
        (_with("dataset.synthetic.cameras", [12345]), "config key dataset.synthetic.cameras.0 = 12345 is not allowed"),
        (_with("dataset.synthetic.test_subjects", ["S1"]), "share S1"),
        (_with("updater.model.conditioning_dropout", 1), "updater.model.conditioning_dropout = 1 is out of range"),
    ],
)
def test_wrong_key_or_value_names_the_key(config, expected):
    with pytest.raises(ConfigError) as info:
        validate_config(config)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_load_config_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_with("dataset.synthetic.noise_sigma", 99)), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.yaml: config key dataset\.synthetic\.noise_sigma = 99"):
        load_config(path)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "broken.yaml").write_text("seed: [1,\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken\.yaml: not valid YAML"):
        load_config(tmp_path / "broken.yaml")


def test_the_paper_settings_file_validates_over_the_default(tmp_path):
    """config/h36m_paper.yaml (the paper's Human3.6M settings) merged over config.yaml, as --configfile does."""
    config = default_config()
    merge_config(config, yaml.safe_load((REPO / "config/h36m_paper.yaml").read_text(encoding="utf-8")))
    config["dataset"]["h36m"]["root"] = str(tmp_path)
    validated = validate_config(config)
    model, training = validated["updater"]["model"], validated["updater"]["training"]
    assert model["architecture"] == "resnet" and model["input_size"] == 256 and model["resnet"]["depth"] == 50
    assert training["schedule"] == "plateau" and training["learning_rate"] == 1e-5
    assert training["validation_subjects"] == [] and validated["updater"]["model"]["resnet"]["pretrained"] is None
    hourglass = validated["keypoints2d"]["model"]  # the 2D stage at Newell et al.'s size, NBF's own segmentation
    assert (hourglass["stacks"], hourglass["features"], hourglass["input_size"], hourglass["heatmap_size"]) == (
        8, 256, 256, 64)  # fmt: skip
    segmentation = validated["segmentation"]
    assert segmentation["network"] == "refinenet" and segmentation["model"]["input_size"] == 256
    assert validated["baselines"]["lifting"]["model"]["width"] == 1024


@pytest.mark.parametrize("held", [["S9"], ["S1", "S5", "S6", "S7", "S8"]], ids=["not-a-training-subject", "all"])
def test_updater_validation_subjects_must_be_some_training_subjects(held):
    config = default_config()
    config["updater"]["training"]["validation_subjects"] = held
    with pytest.raises(ConfigError, match=r"updater\.training\.validation_subjects .* must be some, not all, of "
                       r"dataset\.synthetic\.train_subjects"):  # fmt: skip
        validate_config(config)


def test_the_per_sequence_outfits_file_validates_over_the_default():
    config = default_config()
    outfits = REPO / "config/synthetic_outfits_per_sequence.yaml"
    merge_config(config, yaml.safe_load(outfits.read_text(encoding="utf-8")))
    validated = validate_config(config)
    assert validated["dataset"]["synthetic"]["outfits"] == "per_sequence"
    assert validated["dataset"]["name"] == "synthetic_outfits"  # its results beside the default's


def test_merge_config_merges_mappings_key_by_key_and_replaces_the_rest():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 0}
    merge_config(base, {"a": {"c": [3]}, "e": {"f": 2}})
    assert base == {"a": {"b": 1, "c": [3]}, "d": 0, "e": {"f": 2}}
