"""The shared training loop: a job killed after epoch 1 resumes to exactly the weights of an uninterrupted run."""

from __future__ import annotations

import copy

import pytest
import torch

from patchpose.config import validate_config
from patchpose.keypoints2d import stage as keypoints2d_stage
from patchpose.keypoints2d.stage import train_fold
from patchpose.training import load_torch
from tests.conftest import default_config
from tests.dataset_factory import write_tiny_dataset


class Killed(Exception):
    pass


def tiny_keypoints_settings(epochs: int = 2) -> dict:
    settings = copy.deepcopy(validate_config(default_config())["keypoints2d"])
    settings["model"].update(input_size=16, heatmap_size=8, stacks=2, features=8, depth=1)
    settings["training"].update(epochs=epochs, batch_size=4)
    return {key: settings[key] for key in ("model", "training", "augment")}


@pytest.fixture(scope="module")
def tiny_train_store(tmp_path_factory):
    return write_tiny_dataset(tmp_path_factory.mktemp("store") / "train.zarr", num_frames=12, split="train")


def _train(store, directory, after_epoch=None):
    return train_fold(store, 0, 2, tiny_keypoints_settings(), 7, directory / "model.pt", directory / "ckpt.pt", 1,
                      after_epoch)  # fmt: skip


def test_resume_after_a_kill_at_epoch_1_reaches_the_same_weights(tiny_train_store, tmp_path, monkeypatch):
    initial, build = [], keypoints2d_stage.build_model  # the learnable weights of each network as it was built

    def build_and_record(model_settings):
        model = build(model_settings)
        initial.append({name: weights.detach().clone() for name, weights in model.named_parameters()})
        return model

    monkeypatch.setattr(keypoints2d_stage, "build_model", build_and_record)
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    _train(tiny_train_store, tmp_path / "a")

    def kill(epoch):
        if epoch == 0:
            raise Killed

    with pytest.raises(Killed):
        _train(tiny_train_store, tmp_path / "b", kill)
    assert load_torch(tmp_path / "b" / "ckpt.pt")["epoch"] == 0 and not (tmp_path / "b" / "model.pt").exists()
    _train(tiny_train_store, tmp_path / "b")
    a, b = load_torch(tmp_path / "a" / "model.pt")["model"], load_torch(tmp_path / "b" / "model.pt")["model"]
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    # The comparison is not vacuous: training moved every learnable weight away from its seeded start.
    assert len(initial) == 3 and initial[0].keys() == initial[1].keys() == initial[2].keys()
    for name, start in initial[0].items():
        assert torch.equal(start, initial[1][name]) and torch.equal(start, initial[2][name]), name
        assert not torch.equal(start, a[name]), f"{name} never changed in training"
    checkpoint = load_torch(tmp_path / "a" / "ckpt.pt")
    assert checkpoint["epoch"] == 1 and {"optimiser", "scheduler", "rng", "config"} <= checkpoint.keys()


def test_a_checkpoint_of_another_config_is_not_resumed(tiny_train_store, tmp_path):
    _train(tiny_train_store, tmp_path)
    first = load_torch(tmp_path / "model.pt")["model"]
    settings = tiny_keypoints_settings()
    settings["training"]["learning_rate"] = 0.01
    train_fold(tiny_train_store, 0, 2, settings, 7, tmp_path / "model.pt", tmp_path / "ckpt.pt", 1)
    second = load_torch(tmp_path / "model.pt")["model"]
    assert load_torch(tmp_path / "ckpt.pt")["config"]["settings"]["training"]["learning_rate"] == 0.01
    assert any(not torch.equal(first[n], second[n]) for n in first if first[n].is_floating_point())


def test_corrupt_checkpoint_error_names_the_file(tiny_train_store, tmp_path):
    (tmp_path / "ckpt.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="ckpt.pt: not a readable"):
        _train(tiny_train_store, tmp_path)
