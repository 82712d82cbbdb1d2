"""k-fold prediction: no subject is ever predicted by a model that saw it."""

from __future__ import annotations

import numpy as np
import pytest

from patchpose.folds import FoldError, assign_folds, check_no_leak, predicting_fold, training_mask

SUBJECTS = ["S1", "S5", "S6", "S7", "S8"]


@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_no_frame_is_predicted_by_a_model_that_trained_on_its_subject(k):
    assignment = assign_folds(SUBJECTS, k)
    assert sorted(set(assignment.values())) == list(range(k))  # every fold has a subject
    frames = np.repeat(SUBJECTS, 7)
    which = predicting_fold("train", frames, assignment)
    for fold in range(k):
        trained_on = set(frames[training_mask(frames, assignment, fold)])
        predicted = set(frames[which == fold])
        assert predicted and trained_on and not predicted & trained_on
        assert predicted | trained_on == set(SUBJECTS)


def test_test_frames_are_shared_out_and_training_subjects_rejected():
    assignment = assign_folds(SUBJECTS, 3)
    which = predicting_fold("test", ["S9"] * 5 + ["S11"] * 4, assignment)
    assert which.tolist() == [0, 1, 2, 0, 1, 2, 0, 1, 2]
    with pytest.raises(FoldError, match="S5"):
        predicting_fold("test", ["S9", "S5"], assignment)


def test_bad_fold_counts_and_unknown_subjects_name_the_problem():
    with pytest.raises(FoldError, match="folds.k = 6"):
        assign_folds(SUBJECTS, 6)
    with pytest.raises(FoldError, match="folds.k = 1"):
        assign_folds(SUBJECTS, 1)
    with pytest.raises(FoldError, match="S9"):
        training_mask(["S1", "S9"], assign_folds(SUBJECTS, 2), 0)


def test_leak_check_refuses_a_model_that_saw_the_subject():
    payload = {"fold": 1, "trained_subjects": ["S1", "S6"]}
    check_no_leak("m.pt", payload, 1, {"S5"})
    with pytest.raises(FoldError, match=r"m.pt: fold 1's model trained on \['S6'\]"):
        check_no_leak("m.pt", payload, 1, {"S5", "S6"})
    with pytest.raises(FoldError, match="expected fold 0"):
        check_no_leak("m.pt", payload, 0, {"S5"})
