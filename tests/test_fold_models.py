"""Loading a stage's fold models: each frame goes to the model that never saw its subject; wrong files refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from patchpose.fold_models import load_fold_models
from patchpose.folds import FoldError
from patchpose.training import save_torch

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
