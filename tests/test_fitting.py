"""``fit()`` without folds (as the updater trains): poses of a whole split held out, the settings block's
training spec, the learning curve and the model file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from patchpose.dataset_format import open_dataset
from patchpose.fitting import CURVE_COLUMNS, fit, holdout_poses, train_spec
from patchpose.training import TrainSpec, load_torch, read_history
from tests.test_baselines import write_store

NAMES = ("updater", "lifting")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A whole training split: 48 frames of three subjects, up to two camera views per pose."""
    return open_dataset(write_store(tmp_path_factory.mktemp("store") / "train.zarr", ("S1", "S5", "S6"), 48, "train"))


def _pose(store, row):
    return store.subject[row], store.action[row], store.subaction[row], store.frame_index[row]


def test_holdout_by_pose_on_a_whole_split(store, tmp_path):
    rows = np.arange(store.num_frames)
    held = holdout_poses(store, rows, 0.25, 0, NAMES)
    held_poses = {_pose(store, r) for r in held}
    trained_poses = {_pose(store, r) for r in np.delete(rows, held)}
    poses = held_poses | trained_poses
    assert len(poses) > 10 and len(poses) < store.num_frames  # some poses have two views
    assert len(held_poses) == round(0.25 * len(poses)) and not held_poses & trained_poses  # all views of a pose
    assert np.array_equal(held, np.unique(held)) and held.dtype == np.int64
    assert np.array_equal(held, holdout_poses(store, rows, 0.25, 0, NAMES))  # seeded
    assert not np.array_equal(held, holdout_poses(store, rows, 0.25, 0, ("updater", "integral3d")))  # named
    assert not np.array_equal(held, holdout_poses(store, rows, 0.25, 1, NAMES))
    with pytest.raises(ValueError, match=r"train\.zarr: updater lifting has 1 pose\(s\); validation needs at least 2"):
        holdout_poses(store, np.array([0]), 0.25, 0, NAMES)
    with pytest.raises(ValueError, match=r"validation fraction must lie in \(0, 1\), got 1"):
        holdout_poses(store, rows, 1, 0, NAMES)


def test_train_spec_reads_the_settings_block():
    training = {"max_epochs": 20, "batch_size": 32, "learning_rate": 1e-5, "weight_decay": 0.0, "patience": 5,
                "schedule": "plateau", "plateau_factor": 0.1, "plateau_patience": 2}  # fmt: skip
    training["validation_fraction"] = 0.1  # a key of the block that is not the spec's
    assert train_spec(training, 3, NAMES) == TrainSpec(20, 32, 1e-5, 0.0, 3, NAMES, 5, "plateau", 0.1, 2)
    old = {"epochs": 6, "batch_size": 8, "learning_rate": 0.002, "weight_decay": 0.0}  # keypoints2d's block
    assert train_spec(old, 0, ("k",)) == TrainSpec(6, 8, 0.002, 0.0, 0, ("k",), 0, "cosine")
    with pytest.raises(ValueError, match="unknown learning-rate schedule 'step'"):
        train_spec({**old, "schedule": "step"}, 0, ("k",))


SETTINGS = {
    "model": {"bias": True},
    "training": dict(
        max_epochs=6,
        batch_size=8,
        learning_rate=0.05,
        weight_decay=0.0,
        patience=0,
        schedule="plateau",
        plateau_factor=0.5,
        plateau_patience=1,
    ),
}


def _build(model_settings: dict) -> torch.nn.Module:
    return torch.nn.Linear(34, 51, **model_settings)


def _fit(store, directory, held, names=NAMES, seen=None, build=_build, **kwargs):
    """Lift the store's 2D joints (crop px / side) to its root-relative 3D joints (m) with a linear layer."""
    x = torch.as_tensor(store.joints_2d.reshape(-1, 34) / store.crop_side(), dtype=torch.float32)
    y = torch.as_tensor((store.joints_3d - store.joints_3d[:, :1]).reshape(-1, 51) / 1000, dtype=torch.float32)
    seen = seen if seen is not None else {"train": set(), "eval": set()}

    def make_batch(rows, rng, device):
        seen["train"].update(rows.tolist())
        return x[rows], y[rows]

    def make_eval_batch(rows, device):
        seen["eval"].update(rows.tolist())
        return x[rows], y[rows]

    directory.mkdir()
    return fit(names, build, SETTINGS, 3, store.num_frames, make_batch, torch.nn.functional.mse_loss,
               directory / "model.pt", directory / "ckpt.pt", validation_rows=held, make_eval_batch=make_eval_batch,
               curve_path=directory / "curve.csv", **kwargs)  # fmt: skip


def test_fit_without_folds_writes_the_model_file_and_the_learning_curve(store, tmp_path):
    held = holdout_poses(store, np.arange(store.num_frames), 0.25, 3, NAMES)
    seen, last, initial = {"train": set(), "eval": set()}, {}, []

    def build_and_record(model_settings):
        model = _build(model_settings)
        initial.append(model.weight.detach().clone())
        return model

    def keep_last_weights(epoch):
        last[epoch] = load_torch(tmp_path / "a" / "ckpt.pt")["model"]

    def calibrate(trained):
        return {"calibration": float(trained.bias.detach().sum())}

    provenance = {"inputs": {"residuals": "0123"}, "code": "abcd"}
    model = _fit(store, tmp_path / "a", held, seen=seen, extras={"normalisation": {"mean": 0.0}},
                 after_training=calibrate, provenance=provenance, describe={"stage": "updater", "baseline": "lifting"},
                 after_epoch=keep_last_weights, build=build_and_record)  # fmt: skip
    # training never saw a held-out row; validation scored exactly the held-out rows
    assert seen["eval"] == set(held.tolist()) and seen["train"] == set(range(store.num_frames)) - set(held.tolist())
    payload = load_torch(tmp_path / "a" / "model.pt")
    assert list(payload) == ["model", "model_settings", "stage", "baseline", "history", "provenance",
                             "normalisation", "calibration"]  # fmt: skip
    assert payload["model_settings"] == {"bias": True} and payload["stage"] == "updater"
    assert payload["provenance"] == provenance and payload["calibration"] == calibrate(model)["calibration"]
    history = payload["history"]
    assert history == read_history(tmp_path / "a" / "ckpt.pt") and [r["epoch"] for r in history] == [1, 2, 3, 4, 5, 6]
    best = [r["best"] for r in history].index(True)
    assert all(torch.equal(payload["model"][name], last[best][name]) for name in payload["model"])  # best epoch kept
    assert history[0]["lr"] == 0.05 and all(r["lr"] in (0.05 * 0.5**i for i in range(7)) for r in history)
    curve = (tmp_path / "a" / "curve.csv").read_text().splitlines()
    assert curve[0] == ",".join(CURVE_COLUMNS) and len(curve) == 7
    assert [line.split(",")[4] for line in curve[1:]] == [str(r["best"]) for r in history]
    config = load_torch(tmp_path / "a" / "ckpt.pt")["config"]
    assert config == {"settings": SETTINGS, "seed": 3, "provenance": provenance, "validation_rows": held.tolist()}
    # the initial weights and batches are the seed's and the names': same names, same model; other names, another
    _fit(store, tmp_path / "b", held, build=build_and_record)
    _fit(store, tmp_path / "c", held, ("updater", "x"), build=build_and_record)
    again, other = (load_torch(tmp_path / directory / "model.pt")["model"] for directory in "bc")
    assert all(torch.equal(again[name], payload["model"][name]) for name in again)
    assert not torch.equal(other["weight"], payload["model"]["weight"])
    assert torch.equal(initial[0], initial[1]) and not torch.equal(initial[0], initial[2])


def test_fit_refuses_foreign_validation_rows_and_clashing_entries(store, tmp_path):
    with pytest.raises(ValueError, match="validation rows must be distinct rows of 0..47"):
        _fit(store, tmp_path / "a", np.array([3, 48]))
    with pytest.raises(ValueError, match="validation rows must be distinct rows of 0..47"):
        _fit(store, tmp_path / "b", np.array([3, 3]))
    with pytest.raises(ValueError, match=r"model\.pt: describe would overwrite the model file's own \['history'\]"):
        _fit(store, tmp_path / "c", np.array([3, 4]), describe={"history": []})
    with pytest.raises(ValueError, match=r"model\.pt: after_training would overwrite .* \['model'\]"):
        _fit(store, tmp_path / "d", np.array([3, 4]), after_training=lambda trained: {"model": None})
    assert not any(tmp_path.glob("*/model.pt"))
