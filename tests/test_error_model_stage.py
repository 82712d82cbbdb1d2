"""The error-model stage (patchpose/updater/error_model_stage.py) on tiny stores: fit on a validation file or on
baselines' training splits, parameters and plot written; the training split's poses sampled, seeded; a bad
validation file refused naming it, with nothing written."""

from __future__ import annotations

import json

import numpy as np
import pytest

from patchpose.dataset_format import DatasetWriter, open_dataset
from patchpose.poses3d import VIDEOPOSE3D_JOINT_NAMES, PredictionFileError, load_for_store, read_predictions
from patchpose.poses3d.files import write_predictions
from patchpose.updater.error_model import ErrorModel, read_error_model, sample_poses, write_error_model
from patchpose.updater.error_model_stage import fit_stage, sample_training_poses
from tests.dataset_factory import TINY_ACTIONS, TINY_SUBJECTS, make_tiny_batch

NOISE = ErrorModel(0.02, 0.05, [0.1] * 16, [0.2] * 16, [0.08] * 16, [0.0] + [8.0] * 16)
AUTO = {"format": "auto", "unit": "auto", "joint_names": None}


def _store(path, split: str, count: int, seed: int, first_index: int = 0):
    batch = make_tiny_batch(count, (16, 16), np.random.default_rng(seed))
    batch["frame_index"] = batch["frame_index"] + first_index  # ids of the two splits never meet
    with DatasetWriter(path, num_frames=count, frame_size=(16, 16), has_part_labels=True, source="synthetic",
                       split=split, subjects=TINY_SUBJECTS, actions=TINY_ACTIONS) as writer:  # fmt: skip
        writer.write(0, batch)
    return open_dataset(path)


@pytest.fixture
def stores(tmp_path):
    return {
        "train": _store(tmp_path / "train.zarr", "train", 40, 0),
        "test": _store(tmp_path / "test.zarr", "test", 20, 1, 1000),
    }


def _noisy(store, rows, seed=0):
    truth = np.asarray(store.joints_3d, dtype=np.float64)[rows]
    return sample_poses(NOISE, truth, np.random.default_rng(seed))


def _paths(tmp_path):
    return {"params_path": tmp_path / "out/params.json", "plot_path": tmp_path / "out/params.png"}


def test_a_validation_file_of_both_splits_is_fitted_on_and_plotted(tmp_path, stores):
    train, test = stores["train"], stores["test"]
    poses = np.concatenate([_noisy(train, np.arange(15)), _noisy(test, np.arange(10))])
    ids = train.frame_ids()[:15] + test.frame_ids()[:10]
    order = np.random.default_rng(0).permutation(len(ids))  # any row order, metres, VideoPose3D's names
    path = tmp_path / "validation.csv"
    write_predictions(path, poses[order] / 1000, [ids[i] for i in order], split="train+test", method="mine",
                      unit="m", joint_names=VIDEOPOSE3D_JOINT_NAMES)  # fmt: skip
    (tmp_path / "out").mkdir()
    paths = {split: store.path for split, store in stores.items()}
    model = fit_stage(
        name="mine", stores=paths, seed=0, validation_file=path, validation_settings=AUTO, **_paths(tmp_path)
    )
    written = json.loads((tmp_path / "out/params.json").read_text())
    assert written["fitted_on"] == {"source": "validation_file", "file": str(path), "frames": {"train": 15, "test": 10},
                                    "seed": 0}  # fmt: skip
    assert read_error_model(tmp_path / "out/params.json").equals(model)
    assert 0.05 < np.degrees(model.depth_sigma_rad).mean() / 11.5 < 2  # noisy (25 frames), but of NOISE's order
    assert (tmp_path / "out/params.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _bad_file(tmp_path, stores, kind):
    train = stores["train"]
    poses, ids = _noisy(train, np.arange(20)), list(train.frame_ids()[:20])
    if kind == "unknown-frames":
        ids[3] = "S7/Walking/1/54138969/000003"
    elif kind == "too-few-frames":
        poses, ids = poses[:4], ids[:4]
    elif kind == "nan":
        poses[2, 5, 0] = np.nan
    elif kind == "unit":
        poses = poses / 1000  # metres, declared as mm
    elif kind == "repeated-frame":
        ids[1] = ids[0]
    path = tmp_path / "validation.npz"
    np.savez(path, poses_3d=poses, frame_ids=np.array(ids, dtype=str), unit=np.array("mm"),
             joint_names=np.array(VIDEOPOSE3D_JOINT_NAMES))  # fmt: skip
    return path


@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        ("unknown-frames", "1 frame ids are not in the dataset"),
        ("too-few-frames", "holds 4 frames; an error model is fitted on at least 10 validation frames"),
        ("nan", "NaN"),
        ("unit", "unit mismatch"),
        ("repeated-frame", "1 frame ids occur more than once"),
    ],
)
def test_a_bad_validation_file_is_refused_naming_it(tmp_path, stores, kind, problem):
    path = _bad_file(tmp_path, stores, kind)
    (tmp_path / "out").mkdir()
    paths = {split: store.path for split, store in stores.items()}
    with pytest.raises(PredictionFileError) as caught:
        fit_stage(name="mine", stores=paths, seed=0, validation_file=path, validation_settings=AUTO, **_paths(tmp_path))
    assert str(caught.value).startswith(f"{path}: ") and problem in str(caught.value)
    assert list((tmp_path / "out").iterdir()) == []  # nothing written


def test_baselines_training_splits_are_fitted_on_and_the_training_poses_sampled(tmp_path, stores):
    train = stores["train"]
    everything = np.arange(train.num_frames)
    baselines = {}
    for seed, name in enumerate(("lifting", "integral3d")):
        baselines[name] = tmp_path / f"{name}_train.npz"
        write_predictions(
            baselines[name], _noisy(train, everything, seed), train.frame_ids(), split="train", method=name
        )
    (tmp_path / "out").mkdir()
    fit_stage(name="mine", stores={"train": train.path}, seed=0, baseline_predictions=baselines, **_paths(tmp_path))
    fitted_on = json.loads((tmp_path / "out/params.json").read_text())["fitted_on"]
    assert fitted_on["source"] == "baselines" and fitted_on["frames"] == {"train": 80}
    assert fitted_on["baselines"] == {name: str(path) for name, path in baselines.items()}
    sampled = {}
    for seed, output in ((0, "a.npz"), (0, "b.npz"), (1, "c.npz")):
        sampled[output] = sample_training_poses(name="mine", params=tmp_path / "out/params.json", dataset=train.path,
                                                output=tmp_path / output, seed=seed)  # fmt: skip
    record = read_predictions(tmp_path / "a.npz")
    assert record.split == "train" and record.frame_ids == tuple(train.frame_ids()) and record.unit == "mm"
    np.testing.assert_allclose(load_for_store(tmp_path / "a.npz", train), sampled["a.npz"], atol=1e-3)  # float32
    assert np.array_equal(sampled["a.npz"], sampled["b.npz"]) and not np.allclose(sampled["a.npz"], sampled["c.npz"])
    truth = np.asarray(train.joints_3d, dtype=np.float64)
    error = np.linalg.norm(sampled["a.npz"] - (truth - truth[:, :1]), axis=-1).mean()
    assert 20 < error < 300  # perturbed, not the truth, not noise


def test_the_training_poses_need_the_training_split_and_a_complete_baseline(tmp_path, stores):
    (tmp_path / "out").mkdir()
    write_error_model(tmp_path / "out/params.json", NOISE, {})
    with pytest.raises(ValueError, match="test.zarr: an error model samples the training split's poses"):
        sample_training_poses(name="m", params=tmp_path / "out/params.json", dataset=stores["test"].path,
                              output=tmp_path / "x.npz", seed=0)  # fmt: skip
    part = tmp_path / "part.npz"
    train = stores["train"]
    write_predictions(part, _noisy(train, np.arange(30)), train.frame_ids()[:30], split="train", method="p")
    with pytest.raises(PredictionFileError, match=r"part.npz: is missing 10 of 40 train-split frames"):
        fit_stage(name="m", stores={"train": train.path}, seed=0, baseline_predictions={"p": part}, **_paths(tmp_path))
