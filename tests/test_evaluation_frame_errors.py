"""Per-frame errors and the per-action table computed from them: golden values by hand, an exact and
deterministic file round trip, every refusal naming the file, and the evaluate_baseline rule's new output."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest

from patchpose.dataset_format import open_dataset
from patchpose.evaluation.frame_errors import (
    FrameErrorsFileError,
    check_paired,
    compute_frame_errors,
    read_frame_errors,
    write_frame_errors,
)
from patchpose.evaluation.tables import evaluate_prediction_file, per_action_rows, write_table
from patchpose.metrics import per_frame_pa_mpjpe
from patchpose.poses3d import PredictionFileError, write_predictions
from patchpose.skeleton import H36M
from tests.conftest import default_config, run_snakemake, write_config
from tests.dataset_factory import write_tiny_dataset

NUM_FRAMES = 12


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "test.zarr"
    return open_dataset(write_tiny_dataset(path, NUM_FRAMES, with_part_labels=False, seed=4))


def _truth(store) -> np.ndarray:
    return store.joints_3d - store.joints_3d[:, :1]


def _content(actions=("Walking", "Directions", "Walking", "Walking"), joint_error=(2.0, 10.0, 2.0, 2.0),
             pa=(1.0, 4.0, 1.0, 4.0)) -> dict:  # fmt: skip
    """A valid file's arrays, by hand: frame i of S9, its joints all ``joint_error[i]`` mm off."""
    n = len(actions)
    subaction, camera, index = np.ones(n, np.int64), np.full(n, 54138969), np.arange(n) * 64
    return {
        "format_version": np.array(1),
        "source": np.array("synthetic"),
        "split": np.array("test"),
        "joint_names": np.array(H36M.joint_names),
        "frame_id": np.array([f"S9/{a}/1/54138969/{i:06d}" for a, i in zip(actions, index, strict=True)]),
        "subject": np.array(["S9"] * n),
        "action": np.array(actions),
        "subaction": subaction,
        "camera_id": camera,
        "frame_index": index,
        "mpjpe_mm": np.array(joint_error, dtype=float),
        "pa_mpjpe_mm": np.array(pa, dtype=float),
        "joint_errors_mm": np.repeat(np.array(joint_error, dtype=float)[:, None], 17, axis=1),
    }


def _saved(tmp_path, content: dict, name: str = "errors.npz"):
    path = tmp_path / name
    np.savez(path, **content)
    return path


# --- golden values -------------------------------------------------------------------------------------


def test_per_frame_errors_golden_offsets(store):
    predictions = _truth(store).copy()
    predictions[:, 5] += [3.0, 4.0, 0.0]  # 5 mm off in every frame
    predictions[0, 13] += [0.0, 0.0, 12.0]  # 12 mm more in frame 0
    errors = compute_frame_errors(predictions, store)
    expected_joints = np.zeros((NUM_FRAMES, 17))
    expected_joints[:, 5], expected_joints[0, 13] = 5.0, 12.0
    np.testing.assert_allclose(errors.joint_errors_mm, expected_joints, atol=1e-3)  # the store is float32
    np.testing.assert_allclose(errors.mpjpe_mm, [17 / 17] + [5 / 17] * (NUM_FRAMES - 1), atol=1e-4)
    np.testing.assert_array_equal(errors.pa_mpjpe_mm, per_frame_pa_mpjpe(predictions, store.joints_3d))
    assert errors.frame_ids.tolist() == store.frame_ids()
    assert errors.subject.tolist() == store.subject_names().tolist()
    assert errors.action.tolist() == store.action_names().tolist()
    for column in ("subaction", "camera_id", "frame_index"):
        np.testing.assert_array_equal(getattr(errors, column), getattr(store, column))
    assert (errors.source, errors.split) == ("synthetic", "test")


def test_per_action_table_golden_from_per_frame_errors(tmp_path):
    # Directions: one frame, MPJPE 10, PA 4. Walking: three frames, MPJPE 2, 2, 2 and PA 1, 1, 4 -> 2 and 2.
    # Mean of action means: (10 + 2) / 2 = 6 and (4 + 2) / 2 = 3; over frames: 16 / 4 = 4 and 10 / 4 = 2.5.
    errors = read_frame_errors(_saved(tmp_path, _content()))
    write_table(tmp_path / "table.csv", per_action_rows(errors))
    assert (tmp_path / "table.csv").read_text() == (
        "action,frames,mpjpe_mm,pa_mpjpe_mm\n"
        "Directions,1,10.0000,4.0000\n"
        "Walking,3,2.0000,2.0000\n"
        "average (mean of action means),4,6.0000,3.0000\n"
        "average (mean over frames),4,4.0000,2.5000\n"
    )


# --- the file ------------------------------------------------------------------------------------------


def test_round_trip_is_exact_and_the_bytes_do_not_depend_on_the_clock(store, tmp_path, monkeypatch):
    predictions = _truth(store) + np.random.default_rng(1).normal(0, 30, (NUM_FRAMES, 17, 3))
    errors = compute_frame_errors(predictions, store)
    monkeypatch.setattr(time, "time", lambda: 0.0)  # zip entries would carry the write time
    write_frame_errors(tmp_path / "a.npz", errors)
    monkeypatch.setattr(time, "time", lambda: 1.7e9)
    write_frame_errors(tmp_path / "b.npz", errors)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    back = read_frame_errors(tmp_path / "a.npz")
    for column in ("frame_ids", "subject", "action", "subaction", "camera_id", "frame_index", "mpjpe_mm",
                   "pa_mpjpe_mm", "joint_errors_mm"):  # fmt: skip
        np.testing.assert_array_equal(getattr(back, column), getattr(errors, column))
        assert getattr(back, column).dtype == getattr(errors, column).dtype
    assert per_action_rows(back) == per_action_rows(errors)
    assert back.origin == str(tmp_path / "a.npz")


def _drop(key):
    return lambda c: c.pop(key)


def _set(key, value):
    return lambda c: c.update({key: value})


def _nan_joint(c):
    c["joint_errors_mm"][2, 3] = np.nan


def _wrong_mean(c):
    c["mpjpe_mm"][1] += 0.5


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (_drop("pa_mpjpe_mm"), "missing key(s) pa_mpjpe_mm"),
        (_set("format_version", np.array(2)), "format_version 2 is not supported"),
        (_set("split", np.array("val")), "a split in ('train', 'test')"),
        (_set("joint_names", np.array(H36M.joint_names[::-1])), "joint_names must be the 17 H36M joints"),
        (_set("mpjpe_mm", np.ones(3)), "mpjpe_mm must have shape (4,)"),
        (_set("subaction", np.ones(4)), "subaction must have shape (4,) and dtype kind 'iu'"),
        (_nan_joint, "joint_errors_mm holds NaN, inf or negative values in 1 frames (S9/Walking/1/54138969/000128)"),
        (_set("pa_mpjpe_mm", np.array([1.0, -1.0, 1.0, 1.0])), "pa_mpjpe_mm holds NaN, inf or negative"),
        (_set("frame_index", np.array([0, 64, 128, 0])), "frame_id disagrees with subject/action/subaction"),
        (_wrong_mean, "mpjpe_mm is not the mean of joint_errors_mm in 1 frames (S9/Directions/1/54138969/000064)"),
    ],
)
def test_reader_refuses_a_broken_file_naming_it(tmp_path, mutate, fragment):
    content = _content()
    mutate(content)
    path = _saved(tmp_path, content)
    with pytest.raises(FrameErrorsFileError) as caught:
        read_frame_errors(path)
    assert str(caught.value).startswith(f"{path}: ") and fragment in str(caught.value)


def test_reader_refuses_repeated_frames(tmp_path):
    content = _content(actions=("Walking", "Walking"), joint_error=(1.0, 2.0), pa=(1.0, 1.0))
    for key in ("frame_id", "frame_index"):
        content[key] = content[key][[0, 0]]
    with pytest.raises(FrameErrorsFileError, match="1 frame ids occur more than once: S9/Walking/1/54138969/000000"):
        read_frame_errors(_saved(tmp_path, content))


@pytest.mark.parametrize(
    ("data", "fragment"), [(None, "per-frame error file not found"), (b"action,frames\n", "not an npz file")]
)
def test_reader_refuses_what_is_not_a_table(tmp_path, data, fragment):
    path = tmp_path / "errors.npz"
    if data is not None:
        path.write_bytes(data)
    with pytest.raises(FrameErrorsFileError, match=re.escape(f"{path}: {fragment}")):
        read_frame_errors(path)


def test_writer_refuses_a_bad_table_and_writes_nothing(store, tmp_path):
    errors = compute_frame_errors(_truth(store), store)
    broken = type(errors)(**{**errors.__dict__, "mpjpe_mm": errors.mpjpe_mm + 1.0})
    with pytest.raises(FrameErrorsFileError, match=re.escape(f"{tmp_path / 'x.npz'}: mpjpe_mm is not the mean")):
        write_frame_errors(tmp_path / "x.npz", broken)
    assert not list(tmp_path.iterdir())


def test_paired_tables_must_hold_the_same_frames_in_the_same_order(tmp_path):
    first = read_frame_errors(_saved(tmp_path, _content(), "first.npz"))
    reordered = _content()
    for key, value in reordered.items():
        if np.ndim(value) and key != "joint_names":
            reordered[key] = value[[1, 0, 2, 3]]
    second = read_frame_errors(_saved(tmp_path, reordered, "second.npz"))
    check_paired(first, first)
    with pytest.raises(FrameErrorsFileError) as caught:
        check_paired(first, second)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'second.npz'} (compared with {tmp_path / 'first.npz'}): ")
    assert "2 of 4 rows hold other frames (row 0: 'S9/Directions/1/54138969/000064'" in message


# --- evaluate_prediction_file: one call, two outputs, nothing on a refusal ---------------------------------


def test_evaluate_writes_the_per_frame_errors_and_the_table_from_them(store, tmp_path):
    poses = _truth(store) + np.random.default_rng(2).normal(0, 20, (NUM_FRAMES, 17, 3))
    write_predictions(tmp_path / "test_poses_3d.npz", poses - poses[:, :1], store.frame_ids(), split="test",
                      method="x")  # fmt: skip
    rows = evaluate_prediction_file(
        tmp_path / "test_poses_3d.npz", store.path, table=tmp_path / "t.csv", frame_errors=tmp_path / "e.npz"
    )
    errors = read_frame_errors(tmp_path / "e.npz")
    assert rows == per_action_rows(errors)
    write_table(tmp_path / "again.csv", per_action_rows(errors))
    assert (tmp_path / "again.csv").read_bytes() == (tmp_path / "t.csv").read_bytes()
    assert rows[-1]["mpjpe_mm"] == pytest.approx(errors.mpjpe_mm.mean(), rel=1e-12)


def test_evaluate_refuses_a_file_missing_a_frame_and_writes_nothing(store, tmp_path):
    (tmp_path / "out").mkdir()
    ids = store.frame_ids()
    write_predictions(tmp_path / "short.npz", _truth(store)[1:], ids[1:], split="test", method="x")
    with pytest.raises(PredictionFileError, match=re.escape(str(tmp_path / "short.npz"))):
        evaluate_prediction_file(
            tmp_path / "short.npz", store.path, table=tmp_path / "out/t.csv", frame_errors=tmp_path / "out/e.npz"
        )
    assert not list((tmp_path / "out").iterdir())


# --- the workflow --------------------------------------------------------------------------------------


def test_evaluate_baseline_rule_writes_the_per_frame_errors(workflow_dir):
    write_config(workflow_dir, default_config())
    target = "results/synthetic/baselines/mean_pose/test_frame_errors.npz"
    result = run_snakemake(workflow_dir, "-n", target)
    assert result.returncode == 0, result.stderr
    jobs = re.findall(r"rule evaluate_baseline:\n\s+input: .*\n\s+output: (.*)\n", result.stdout)
    assert jobs == [f"results/synthetic/baselines/mean_pose/mpjpe_per_action.csv, {target}"]
