"""Training and loading a stage's fold models: each fold trains without its subjects, each frame goes to the
model that never saw its subject; wrong files refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from patchpose.dataset_format import open_dataset
from patchpose.fold_models import holdout_rows, load_fold_models, plan_fold, train_fold_model
from patchpose.folds import FoldError
from patchpose.training import load_torch, save_torch
from tests.test_baselines import write_store

SUBJECTS = ["S1", "S5", "S6", "S7"]


def _model_files(directory, k: int, trained=None) -> list:
    """k tiny model files of a k-fold run over SUBJECTS (fold f trained on subjects outside fold f)."""
    paths = []
    for fold in range(k):
        seen = trained[fold] if trained else [s for i, s in enumerate(SUBJECTS) if i % k != fold]
        torch.manual_seed(fold)
        payload = {"model": torch.nn.Linear(2, 1).state_dict(), "model_settings": {"bias": True}, "fold": fold,
                   "k": k, "trained_subjects": seen, "all_subjects": SUBJECTS}  # fmt: skip
        save_torch(directory / f"fold{fold}.pt", payload)
        paths.append(directory / f"fold{fold}.pt")
    return paths


def _build(settings: dict) -> torch.nn.Module:
    return torch.nn.Linear(2, 1, **settings)


def test_each_training_frame_goes_to_the_model_that_did_not_see_its_subject(tmp_path):
    frames = ["S1", "S5", "S6", "S7", "S1", "S6"]
    which, models, payloads = load_fold_models(_model_files(tmp_path, 2), "train", frames, _build, torch.device("cpu"))
    assert which.tolist() == [0, 1, 0, 1, 0, 0]
    for subject, fold in zip(frames, which, strict=True):
        assert subject not in payloads[fold]["trained_subjects"]
    assert not models[0].training and torch.equal(models[1].weight, payloads[1]["model"]["weight"])
    test_which, _, _ = load_fold_models(_model_files(tmp_path, 2), "test", ["S9"] * 5, _build, torch.device("cpu"))
    assert np.array_equal(test_which, [0, 1, 0, 1, 0])


def test_a_model_that_saw_the_subject_is_refused_naming_the_file(tmp_path):
    paths = _model_files(tmp_path, 2, trained=[["S1", "S5"], ["S1", "S7"]])  # fold 0 (S1, S6) saw S1
    with pytest.raises(FoldError, match=r"fold0\.pt: fold 0's model trained on \['S1'\]"):
        load_fold_models(paths, "train", SUBJECTS, _build, torch.device("cpu"))


def test_models_of_another_fold_count_are_refused(tmp_path):
    paths = _model_files(tmp_path, 3)
    with pytest.raises(ValueError, match=r"fold0\.pt: a model of a 3-fold run, given 2 fold models"):
        load_fold_models(paths[:2], "train", SUBJECTS, _build, torch.device("cpu"))


TOY = {
    "model": {"in_features": 34, "out_features": 16},
    "training": {"max_epochs": 2, "patience": 1, "batch_size": 4, "learning_rate": 0.01, "weight_decay": 0.0},
}


def _linear(settings: dict) -> torch.nn.Module:
    return torch.nn.Linear(**settings)


def test_the_k_fold_wrapper_trains_each_fold_without_its_subjects_and_its_models_refuse_leaks(tmp_path):
    """train_fold_model (around patchpose.fitting.fit): fold f's batches and validation come from the other
    folds' subjects only; its model file names them, so a model given the wrong fold's frames is refused."""
    store = open_dataset(write_store(tmp_path / "train.zarr", ("S1", "S5", "S6"), 36, "train"))
    x = torch.as_tensor(store.joints_2d.reshape(-1, 34) / store.crop_side(), dtype=torch.float32)
    y = torch.as_tensor((store.joints_3d[:, 1:, 2] - store.joints_3d[:, :1, 2]) / 1000, dtype=torch.float32)
    subjects = store.subject_names()
    paths = [tmp_path / f"fold{fold}.pt" for fold in range(3)]
    for fold, path in enumerate(paths):
        plan = plan_fold("toy", store, 3, fold)
        held, seen = holdout_rows(plan, store, 0.25, 0), {"train": set(), "eval": set()}

        def batch(rows, kind, plan=plan, seen=seen):
            seen[kind].update(plan.indices[rows].tolist())
            return x[plan.indices[rows]], y[plan.indices[rows]]

        train_fold_model(
            plan, _linear, TOY, 0, lambda rows, rng, device, batch=batch: batch(rows, "train"),
            torch.nn.functional.mse_loss, path, path.with_suffix(".ckpt"), validation_rows=held,
            make_eval_batch=lambda rows, device, batch=batch: batch(rows, "eval"),
        )  # fmt: skip
        assert seen["eval"] == set(plan.indices[held].tolist()) and not seen["train"] & seen["eval"]
        assert seen["train"] | seen["eval"] == set(plan.indices.tolist())
        assert set(subjects[list(seen["train"] | seen["eval"])]) == {"S1", "S5", "S6"} - {("S1", "S5", "S6")[fold]}
        payload = load_torch(path)
        assert list(payload) == ["model", "model_settings", "stage", "fold", "k", "trained_subjects", "all_subjects",
                                 "history", "provenance"]  # fmt: skip
        assert (payload["stage"], payload["fold"], payload["k"]) == ("toy", fold, 3)
        assert payload["trained_subjects"] == sorted({"S1", "S5", "S6"} - {("S1", "S5", "S6")[fold]})
        config = load_torch(path.with_suffix(".ckpt"))["config"]
        assert (config["fold"], config["k"], config["subjects"]) == (fold, 3, ["S1", "S5", "S6"])
        assert config["validation_rows"] == held.tolist()
    which, _, _ = load_fold_models(paths, "train", subjects, _linear, torch.device("cpu"))
    assert np.array_equal(which, np.arange(36) % 3)
    with pytest.raises(FoldError, match=r"fold1\.pt: holds fold 1's model, expected fold 0"):
        load_fold_models([paths[1], paths[0], paths[2]], "train", subjects, _linear, torch.device("cpu"))
    relabelled = load_torch(paths[0]) | {"fold": 1}  # fold 0's model (trained on S5, S6) offered S5's frames
    save_torch(tmp_path / "relabelled.pt", relabelled)
    with pytest.raises(FoldError, match=r"relabelled\.pt: fold 1's model trained on \[.*'S5'.*\]"):
        load_fold_models([paths[0], tmp_path / "relabelled.pt", paths[2]], "train", subjects, _linear,
                         torch.device("cpu"))  # fmt: skip
