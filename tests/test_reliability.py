"""Reliability (docs/reliability.md): the bad inputs no other test file tries, the joint-order check per joint
pair, and the faults: a SIGKILL inside the patch caching and inside the updater training then
``--rerun-incomplete``, a read-only or full disk, two runs at once, and two clean runs giving the same bytes.

The end-to-end tests share two runs of the tiny config (an uninterrupted one and a killed-and-resumed one, each
in its own directory) and one more clean run for the determinism claim; they are marked slow."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr
from click.testing import CliRunner

from patchpose import atomic
from patchpose.cli import main
from patchpose.cli.common import one_line
from patchpose.config import ConfigError, merge_config, validate_config
from patchpose.dataset_format import DatasetFormatError, open_dataset
from patchpose.h36m.extract import extract_sequence
from patchpose.h36m.layout import CAMERA_IDS, H36MLayoutError
from patchpose.h36m.merge import merge_split
from patchpose.patches.store import PatchStoreError, open_patch_store, write_patch_store
from patchpose.poses3d import PredictionFileError, import_external_split, write_predictions
from patchpose.poses3d.joint_order_check import (
    CONFIDENCE_Z,
    SWAP_FRAMES,
    SWAP_GAIN,
    check_joint_order,
    frames_lower_bound,
    swap_gains,
)
from patchpose.poses3d.loading import load_for_store
from patchpose.run_compare import compare_runs, format_comparison
from patchpose.skeleton import H36M
from patchpose.synthetic.plan import plan_split
from patchpose.synthetic.world import sequence_scenes
from patchpose.training import load_torch, save_torch
from tests import test_h36m_extract as h36m
from tests.conftest import HANG_LIMIT, copy_workflow, default_config, run_snakemake, write_config
from tests.dataset_factory import T_POSE_MM, write_tiny_dataset
from tests.h36m_fixture import make_poses, write_cdf
from tests.tiny_pipeline import table1_config

LEFT_RIGHT = list(zip(H36M.left_joints, H36M.right_joints, strict=True))  # hips, knees, ankles, shoulders, ...


def _swapped(poses: np.ndarray, a: int, b: int) -> np.ndarray:
    order = np.arange(H36M.num_joints)
    order[[a, b]] = order[[b, a]]
    return poses[:, order]


def _cli(*args) -> object:
    return CliRunner().invoke(main, ["--quiet", *map(str, args)])


# --- bad inputs: config ---------------------------------------------------------------------------------------


def test_a_human36m_dataset_without_its_root_is_one_config_error_naming_the_key():
    config = default_config()
    config["dataset"]["kind"] = "h36m"
    config["dataset"]["h36m"]["root"] = None
    with pytest.raises(ConfigError) as caught:
        validate_config(config)
    message = str(caught.value)
    assert message.startswith("config key dataset.h36m.root is required when dataset.kind is 'h36m'")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"updater": {"ablation_baseline": "nobody"}},
            "invalid config: updater.ablation_baseline 'nobody' must be a baseline with a training split",
        ),
        (
            {"dataset": {"kind": "h36m", "name": "h36m", "h36m": {"root": "/no/such/release"}}},
            "dataset.h36m.root = '/no/such/release': not a directory",
        ),
    ],
    ids=["unknown-ablation-baseline", "h36m-root-not-a-directory"],
)
def test_a_config_the_plan_refuses_stops_the_dry_run_naming_the_key(workflow_dir, change, expected):
    config = default_config()
    merge_config(config, change)
    write_config(workflow_dir, config)
    result = run_snakemake(workflow_dir, "-n")
    assert result.returncode != 0
    lines = [line for line in (result.stdout + result.stderr).splitlines() if expected in line]
    assert len(lines) == 1, result.stdout + result.stderr
    assert not (workflow_dir / "results").exists()


# --- bad inputs: Human3.6M release and dataset stores -----------------------------------------------------------


def test_nan_in_a_pose_cdf_names_the_file_and_writes_nothing(tmp_path):
    root = h36m.minimal_release(tmp_path / "release", "Walking")
    raw = make_poses(5, 0)
    raw[2, 7, 1] = np.nan
    cdf = root / "S1" / "MyPoseFeatures" / "D3_Positions" / "Walking.cdf"
    write_cdf(cdf, raw.reshape(1, 5, 96))
    with pytest.raises(H36MLayoutError, match=rf"^{cdf}: poses hold NaN or inf$"):
        extract_sequence(h36m.settings(root), "S1", "Walking", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_split_left_without_frames_is_refused_and_nothing_is_written(tmp_path):
    root = h36m.minimal_release(tmp_path / "release", "Walking")
    absent = [f"S1/Videos/Walking.{camera}.mp4" for camera in CAMERA_IDS]  # every camera dropped
    settings = h36m.settings(root, expected_absent=absent)
    assert extract_sequence(settings, "S1", "Walking", tmp_path / "sequence")["num_rows"] == 0
    store, manifest = tmp_path / "train.zarr", tmp_path / "train_manifest.json"
    with pytest.raises(ValueError, match=rf"^{store}: no frames kept in split train \(every sequence dropped\?\)$"):
        merge_split([tmp_path / "sequence"], "train", store, manifest, settings.to_config(), ["S1"])
    assert not store.exists() and not manifest.exists()


def _set_attrs(store: Path, **changes) -> None:
    metadata = json.loads((store / "zarr.json").read_text())
    metadata["attributes"].update(changes)
    (store / "zarr.json").write_text(json.dumps(metadata))


def test_a_dataset_store_of_an_older_format_version_is_refused(tmp_path):
    store = write_tiny_dataset(tmp_path / "old.zarr", 3, (8, 8), with_part_labels=False)
    _set_attrs(store, format_version=0)
    with pytest.raises(DatasetFormatError, match=rf"^{store}: .*'format_version' is 0; this code reads version 1"):
        open_dataset(store)


# --- bad inputs: 3D prediction files ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def test_store(tmp_path_factory) -> Path:
    """A tiny test-split store (9 frames of a T-pose facing the camera; tests/dataset_factory.py)."""
    return write_tiny_dataset(tmp_path_factory.mktemp("reliability") / "test.zarr", 9, with_part_labels=False, seed=4)


def _truth(store_path) -> tuple[np.ndarray, list[str]]:
    """Root-relative ground truth plus 10 mm of seeded noise (mm), and the frame ids."""
    store = open_dataset(store_path)
    poses = store.joints_3d - store.joints_3d[:, :1] + np.random.default_rng(3).normal(0, 10, store.joints_3d.shape)
    return poses - poses[:, :1], store.frame_ids()


def _npz(path: Path, **arrays) -> Path:
    with open(path, "wb") as handle:  # np.savez would append .npz to a name without it
        np.savez(handle, **arrays)
    return path


def _bad_prediction_file(case: str, directory: Path, store: Path) -> tuple[Path, str]:
    """(file, what the error says) for a bad input no other test file tries."""
    poses, ids = _truth(store)
    names = np.array(H36M.joint_names)
    named = {"frame_ids": np.array(ids), "joint_names": names}
    if case == "empty npz":
        (directory / "empty.npz").write_bytes(b"")
        return directory / "empty.npz", "not an npz file: an empty file (0 bytes)"
    if case == "empty csv":
        (directory / "empty.csv").write_bytes(b"")
        return directory / "empty.csv", "no header line"
    if case == "no frames":
        path = _npz(directory / "none.npz", poses_3d=np.zeros((0, 17, 3)), frame_ids=np.array([], dtype=str))
        return path, "poses_3d must have shape (N, 17, 3) with N >= 1, got (0, 17, 3)"
    if case == "npy named npz":
        with open(directory / "array.npz", "wb") as handle:
            np.save(handle, poses)
        return directory / "array.npz", "not an npz file: a single .npy array (numpy.save)"
    if case == "hdf5 named npz":
        write_predictions(directory / "real.h5", poses, ids, split="test", method="m")
        shutil.copy(directory / "real.h5", directory / "h5.npz")
        return directory / "h5.npz", "not an npz file: an HDF5 file; name it .h5"
    if case == "pickle named npz":
        (directory / "pickle.npz").write_bytes(pickle.dumps({"poses_3d": poses}))
        return directory / "pickle.npz", "not an npz file: a Python pickle"
    if case == "poses as text":
        path = _npz(directory / "text.npz", poses_3d=poses.astype(str), **named)
        return path, "poses_3d must hold numbers, got dtype <U"
    if case == "boolean poses":
        return _npz(directory / "bool.npz", poses_3d=poses > 0, **named), "poses_3d must hold numbers, got dtype bool"
    if case == "integer frame ids":
        path = _npz(directory / "ids.npz", poses_3d=poses, frame_ids=np.arange(len(ids)), joint_names=names)
        return path, "frame_ids must be a flat array of strings, got shape (9,) dtype int64"
    if case == "inf":
        infinite = poses.copy()
        infinite[4, 0, 0] = np.inf
        return _npz(directory / "inf.npz", poses_3d=infinite, **named), "1 NaN or inf values in 1 frames"
    if case.startswith("swapped "):
        a, b = next((a, b) for a, b in LEFT_RIGHT if H36M.joint_names[a] == case.split()[1])
        path = _npz(directory / "swapped.npz", poses_3d=_swapped(poses, a, b), **named)
        first, second = sorted((a, b))
        return path, f"{H36M.joint_names[first]} and {H36M.joint_names[second]} look swapped"
    raise AssertionError(case)


PREDICTION_CASES = (
    "empty npz",
    "empty csv",
    "no frames",
    "npy named npz",
    "hdf5 named npz",
    "pickle named npz",
    "poses as text",
    "boolean poses",
    "integer frame ids",
    "inf",
    *(f"swapped {H36M.joint_names[left]}" for left, _ in LEFT_RIGHT),
)


@pytest.mark.parametrize("case", PREDICTION_CASES)
def test_a_bad_prediction_file_is_one_line_naming_it_and_nothing_is_written(test_store, tmp_path, case):
    """The import (the rules' path) and ``patchpose evaluate`` (the command line) refuse it alike."""
    source, problem = _bad_prediction_file(case, tmp_path, test_store)
    output = tmp_path / "canonical.npz"
    with pytest.raises(PredictionFileError) as refused:
        import_external_split(name="x", split="test", source=source, stores={"test": test_store}, output=output,
                              report=tmp_path / "report.json")  # fmt: skip
    assert str(refused.value).startswith(f"{source}: ") and problem in str(refused.value), refused.value
    assert not output.exists() and not (tmp_path / "report.json").exists()
    result = _cli("evaluate", "--predictions", source, "--dataset", test_store, "--csv", tmp_path / "table.csv")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == f"patchpose: error: {refused.value}\n"
    assert not (tmp_path / "table.csv").exists()


# --- the joint-order check, joint pair by joint pair ----------------------------------------------------------


def test_swap_gains_by_hand():
    """The T-pose: perfect predictions give -1 for every pair, swapped hips +1 for the hips, a pose collapsed
    to one point 0 for every pair (it cannot tell any joint from another)."""
    truth = (T_POSE_MM + [0.0, 0.0, 4000.0])[None]
    off_diagonal = ~np.eye(17, dtype=bool)
    median, better = swap_gains(truth - truth[:, :1], truth)
    np.testing.assert_allclose(median[off_diagonal], -1.0)
    assert not better.any()
    hips = H36M.joint_names.index("right_hip"), H36M.joint_names.index("left_hip")
    median, better = swap_gains(_swapped(truth, *hips), truth)
    assert median[hips] == pytest.approx(1.0) and median[hips[::-1]] == pytest.approx(1.0) and better[hips] == 1.0
    median, better = swap_gains(np.zeros_like(truth), truth)
    np.testing.assert_allclose(median[off_diagonal], 0.0, atol=1e-12)


def test_a_pair_needs_more_than_two_thirds_of_its_frames_beyond_chance():
    """Wilson's one-sided 95 % lower bound, by hand where every frame is helped: n / (n + z^2). Six frames can
    refuse a pair, five cannot; 11 of 15 (a tiny run's poorly trained lifting, a pair of arm joints) cannot."""
    z2 = CONFIDENCE_Z**2
    assert frames_lower_bound(np.array(1.0), 6) == pytest.approx(6 / (6 + z2)) and 6 / (6 + z2) > SWAP_FRAMES
    assert frames_lower_bound(np.array(1.0), 5) == pytest.approx(5 / (5 + z2)) and 5 / (5 + z2) < SWAP_FRAMES
    assert frames_lower_bound(np.array(11 / 15), 15) < SWAP_FRAMES < 11 / 15
    assert frames_lower_bound(np.array(0.82), 960) > SWAP_FRAMES  # lifting's wrists swapped, default run


@pytest.fixture(scope="module")
def world_test_poses() -> np.ndarray:
    """(480, 17, 3) mm camera-frame test poses of the default synthetic world (4 poses per action and camera;
    no rendering): people in every orientation, doing every action."""
    config = validate_config(default_config())
    world = {**config["dataset"]["synthetic"], "test_poses_per_action": 4}
    scenes = (scene for plan in plan_split(world, "test") for scene in sequence_scenes(plan, world, config["seed"]))
    return np.array([scene.joints_cam for scene in scenes])


def _inaccurate_method(truth: np.ndarray, seed: int = 1) -> np.ndarray:
    """A method of about 160 mm MPJPE with a real method's kinds of error: half of each pose pulled towards the
    mean pose, a 17-degree (sd) error of the turn about the vertical, 40 mm of noise per joint, and a fifth of the
    frames seen mirrored (left for right, the depth ambiguity), root-relative."""
    rng = np.random.default_rng(seed)
    relative = truth - truth[:, :1]
    seen = relative.copy()
    mirrored = rng.uniform(size=len(seen)) < 0.2
    seen[mirrored] = seen[mirrored][:, H36M.flip_permutation]
    angle = rng.normal(0.0, 0.3, len(seen))
    turn = np.zeros((len(seen), 3, 3))
    turn[:, 0, 0] = turn[:, 2, 2] = np.cos(angle)
    turn[:, 0, 2], turn[:, 2, 0], turn[:, 1, 1] = np.sin(angle), -np.sin(angle), 1.0  # about the camera's y (down)
    poses = 0.5 * np.einsum("nij,nkj->nki", turn, seen) + 0.5 * relative.mean(axis=0)
    poses = poses + rng.normal(0.0, 40.0, poses.shape)
    return poses - poses[:, :1]


def test_an_inaccurate_method_and_a_mean_pose_pass(world_test_poses):
    truth = world_test_poses
    relative = truth - truth[:, :1]
    for poses in (_inaccurate_method(truth), np.broadcast_to(relative.mean(axis=0), truth.shape)):
        assert 140 < np.linalg.norm(poses - relative, axis=-1).mean() < 220  # mm MPJPE, as lifting .. mean_pose
        report = check_joint_order("method.npz", poses, truth)
        assert report["most_swap_like_gain"] < SWAP_GAIN / 2 and report["most_swap_like_frames"] < SWAP_FRAMES


@pytest.mark.parametrize(("left", "right"), LEFT_RIGHT, ids=[H36M.joint_names[left] for left, _ in LEFT_RIGHT])
def test_each_single_left_right_swap_of_an_inaccurate_method_is_refused_naming_the_pair(world_test_poses, left, right):
    poses = _swapped(_inaccurate_method(world_test_poses), left, right)
    with pytest.raises(PredictionFileError) as refused:
        check_joint_order("method.npz", poses, world_test_poses)
    first, second = sorted((left, right))
    expected = f"method.npz: the joints do not seem to be in the declared order: {H36M.joint_names[first]} and "
    assert str(refused.value).startswith(expected + f"{H36M.joint_names[second]} look swapped: "), refused.value


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (H36M.flip_permutation, r"12 joints seem misplaced \(right_hip, right_knee, right_ankle, left_hip, "),
        (np.array([0, 2, 3, 1, *range(4, 17)]), r"3 joints seem misplaced \(right_hip, right_knee, right_ankle\)"),
        (np.random.default_rng(0).permutation(17), r"1\d joints seem misplaced"),
    ],
    ids=["left-right-flip", "three-cycle", "shuffle"],
)
def test_a_flip_a_cycle_or_a_shuffle_is_refused(world_test_poses, order, expected):
    with pytest.raises(PredictionFileError, match=expected):
        check_joint_order("method.npz", _inaccurate_method(world_test_poses)[:, order], world_test_poses)


# --- bad inputs: checkpoints and patch stores ------------------------------------------------------------------


def test_a_truncated_checkpoint_is_refused_naming_it(tmp_path):
    path = tmp_path / "checkpoint.ckpt"
    save_torch(path, {"model": {"weight": torch.arange(4096.0)}, "epoch": 3})
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match=rf"^{path}: not a readable patchpose checkpoint/model: "):
        load_torch(path)


def _patch_store(path: Path) -> Path:
    def produce(start, stop):
        return (
            np.zeros((stop - start, 16, 6, 8, 8), np.uint8),
            np.zeros((stop - start, 16, 2, 3)),
            np.ones((stop - start, 16, 4)),
        )

    return write_patch_store(
        path, kind="limbs", source="groundtruth", split="test", frame_ids=[f"f{i}" for i in range(4)],
        frame_size=(32, 32), patch_names=H36M.limb_names, patch_size=8, geometry={}, compressor="lz4",
        compression_level=1, chunk_frames=2, produce=produce,
    )  # fmt: skip


def test_a_patch_store_with_the_wrong_channel_count_is_refused(tmp_path):
    store = _patch_store(tmp_path / "patches.zarr")
    shutil.rmtree(store / "patches")
    zarr.open_group(store, mode="r+", zarr_format=3).create_array("patches", data=np.zeros((4, 16, 5, 8, 8), np.uint8))
    with pytest.raises(PatchStoreError, match=rf"^{store}: array 'patches' is \(4, 16, 5, 8, 8\) uint8, expected "
                       r"\(4, 16, 6, 8, 8\) uint8$"):  # fmt: skip
        open_patch_store(store)
    other = _patch_store(tmp_path / "channels.zarr")
    _set_attrs(other, channels=["r", "g", "b"])
    with pytest.raises(PatchStoreError, match=rf"^{other}: attr 'kind' 'limbs' or 'channels' \['r', 'g', 'b'\]"):
        open_patch_store(other)


def test_a_patch_store_of_an_older_format_version_is_refused(tmp_path):
    store = _patch_store(tmp_path / "old.zarr")
    _set_attrs(store, format_version=0)
    with pytest.raises(PatchStoreError, match=rf"^{store}: not a patchpose-patches store of version 1 .*version 0"):
        open_patch_store(store)


# --- faults: a full disk, a read-only results directory (the writers themselves) ---------------------------------


def _listing(directory: Path) -> list[str]:
    return sorted(str(path.relative_to(directory)) for path in directory.rglob("*"))


@pytest.mark.parametrize(
    ("where", "code"),
    [("open", errno.EROFS), ("fsync", errno.ENOSPC)],
    ids=["read-only", "disk-full"],
)
def test_a_write_that_fails_names_the_file_and_leaves_the_old_version_only(test_store, tmp_path, monkeypatch, where,
                                                                         code):  # fmt: skip
    """A prediction file (atomic_write_bytes) and a store (atomic_directory): the old version stays whole, no
    temporary file or directory stays, and the error names the target and the cause."""
    poses, ids = _truth(test_store)
    target = tmp_path / "test_poses_3d.npz"
    write_predictions(target, poses, ids, split="test", method="old")
    store = write_tiny_dataset(tmp_path / "store.zarr", 3, (8, 8), with_part_labels=False, seed=1)
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    listing = _listing(tmp_path)

    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code), "somewhere")

    if where == "open":  # a read-only file system refuses the first new name
        real_open, real_mkdir = os.open, os.mkdir
        monkeypatch.setattr(
            atomic.os, "open", lambda p, *a, **k: fail() if ".tmp-" in str(p) else real_open(p, *a, **k)
        )
        monkeypatch.setattr(
            atomic.os, "mkdir", lambda p, *a, **k: fail() if ".tmp-" in str(p) else real_mkdir(p, *a, **k)
        )
    else:  # a full disk shows at the flush (delayed allocation, network file systems)
        monkeypatch.setattr(atomic.os, "fsync", fail)
        monkeypatch.setattr(atomic, "_fsync_tree", fail)
    with pytest.raises(OSError) as refused:
        write_predictions(target, poses[::-1], ids[::-1], split="test", method="new")
    assert refused.value.errno == code and refused.value.filename == str(target)
    assert one_line(refused.value) == f"{target}: cannot write ({os.strerror(code)})"
    with pytest.raises(OSError) as refused:
        write_tiny_dataset(store, 5, (8, 8), with_part_labels=False, seed=2)
    assert refused.value.errno == code
    assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == before
    assert _listing(tmp_path) == listing and open_dataset(store).num_frames == 3


# --- faults: the tiny config under Snakemake ---------------------------------------------------------------------

TABLES = "results/synthetic/tables"


def _tables(directory: Path) -> dict[str, str]:
    """sha256 of every CSV table of a run."""
    tables = sorted((directory / TABLES).glob("*.csv"))
    assert tables, f"no tables under {directory / TABLES}"
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in tables}


def _clean_run(directory: Path) -> Path:
    copy_workflow(directory)
    write_config(directory, table1_config())
    result = run_snakemake(directory)
    assert result.returncode == 0, result.stdout + result.stderr[-5000:]
    return directory


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory) -> Path:
    return _clean_run(tmp_path_factory.mktemp("clean"))


@dataclass
class Interrupted:
    """What the killed-and-resumed run saw."""

    directory: Path
    concurrent: subprocess.CompletedProcess | None = None  # a second run started while the first held the lock
    kills: dict[str, Path] = field(default_factory=dict)  # stage -> what was half done at its kill
    locked_after_kill: subprocess.CompletedProcess | None = None  # a rerun without --unlock
    finished: subprocess.CompletedProcess | None = None


def _start(directory: Path, *args: str) -> subprocess.Popen:
    """Snakemake in a process group of its own (its jobs included), output to a file in ``directory``."""
    with open(directory / f"snakemake-{time.monotonic_ns()}.log", "w") as log:
        return subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "2", *args], cwd=directory,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip


def _kill_when(process: subprocess.Popen, found, what: str, timeout: float = HANG_LIMIT) -> Path:
    """Poll (every 10 ms) until ``found()`` gives a path, then SIGKILL Snakemake's whole process group."""
    deadline = time.monotonic() + timeout
    try:
        while (hit := found()) is None:
            assert process.poll() is None, f"the run ended before {what}"
            assert time.monotonic() < deadline, f"no {what} after {timeout} s"
            time.sleep(0.01)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return hit


def _half_written_patch_store(results: Path) -> Path | None:
    return next((path for path in (results / "patches").glob("*/*.zarr.tmp-*") if path.is_dir()), None)


def _training_updater(results: Path) -> Path | None:
    """An updater whose checkpoint (written after each epoch) is there but whose model file is not yet."""
    checkpoints = (results / "updater").glob("*/*/checkpoint.ckpt")
    return next((path.parent for path in checkpoints if not (path.parent / "model.pt").exists()), None)


@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory) -> Interrupted:
    """The tiny config killed (SIGKILL to Snakemake's process group) inside the patch caching, resumed with
    --rerun-incomplete, killed inside an updater's training, and resumed to the end. While the first run holds
    Snakemake's lock, a second run of the same workflow is started."""
    directory = copy_workflow(tmp_path_factory.mktemp("interrupted"))
    write_config(directory, table1_config())
    results = directory / "results" / "synthetic"
    state = Interrupted(directory)
    first = _start(directory)
    deadline = time.monotonic() + 300
    while not any((directory / ".snakemake" / "locks").glob("*")):
        assert first.poll() is None and time.monotonic() < deadline, "the first run never took its lock"
        time.sleep(0.05)
    state.concurrent = run_snakemake(directory, "--rerun-incomplete")  # past the check of the first's running jobs
    store = _kill_when(first, lambda: _half_written_patch_store(results), "patch store being written")
    assert store.is_dir() and not store.with_name(store.name.split(".tmp-")[0]).exists()  # killed inside the job
    state.kills["patch caching"] = store
    state.locked_after_kill = run_snakemake(directory, "--rerun-incomplete")
    assert run_snakemake(directory, "--unlock").returncode == 0
    second = _start(directory, "--rerun-incomplete")
    updater = _kill_when(second, lambda: _training_updater(results), "updater training between two epochs")
    assert not (updater / "model.pt").exists()  # killed inside the training
    state.kills["updater training"] = updater
    assert run_snakemake(directory, "--unlock").returncode == 0
    state.finished = run_snakemake(directory, "--rerun-incomplete")
    assert state.finished.returncode == 0, state.finished.stdout + state.finished.stderr[-5000:]
    return state


@pytest.mark.slow
def test_a_second_run_while_the_first_holds_the_lock_is_refused(interrupted_run):
    concurrent = interrupted_run.concurrent
    assert concurrent.returncode != 0
    assert "Error: Directory cannot be locked" in concurrent.stdout + concurrent.stderr
    assert "--unlock" in concurrent.stdout + concurrent.stderr


@pytest.mark.slow
def test_a_killed_run_needs_unlock_then_resumes_to_the_same_tables(interrupted_run, clean_run):
    locked = interrupted_run.locked_after_kill
    assert locked.returncode != 0 and "Directory cannot be locked" in locked.stdout + locked.stderr
    directory = interrupted_run.directory
    updater = interrupted_run.kills["updater training"]
    log = directory / "results/synthetic/logs/updater" / f"train_{updater.parent.name}_{updater.name}.log"
    assert "resuming from" in log.read_text() and "epoch 1/" not in log.read_text()  # the checkpoint was used
    assert _tables(directory) == _tables(clean_run)
    for name in ("refined", "baselines"):  # the refined and initial test splits too, byte for byte
        ours = sorted((directory / "results/synthetic" / name).rglob("test_poses_3d.npz"))
        theirs = sorted((clean_run / "results/synthetic" / name).rglob("test_poses_3d.npz"))
        assert [p.relative_to(directory) for p in ours] == [p.relative_to(clean_run) for p in theirs] and ours
        assert all(a.read_bytes() == b.read_bytes() for a, b in zip(ours, theirs, strict=True))
    # what a kill leaves half-written is a temporary sibling that nothing reads; the published store is whole
    store = interrupted_run.kills["patch caching"]
    open_patch_store(store.with_name(store.name.split(".tmp-")[0]))
    # and the rerun of each killed job (the patch caching, the updater, any job beside them) removed its own
    logs = "".join(path.read_text() for path in (directory / "results/synthetic/logs").rglob("*.log"))
    assert f"{store.relative_to(directory)}: removed, a leftover of process" in logs
    leftovers = [path for path in (directory / "results").rglob("*") if ".tmp-" in path.name or ".old-" in path.name]
    assert not leftovers, leftovers


@pytest.fixture(scope="module")
def second_clean_run(tmp_path_factory) -> Path:
    return _clean_run(tmp_path_factory.mktemp("clean_again"))


@pytest.mark.slow
def test_two_clean_runs_give_the_same_files(clean_run, second_clean_run):
    assert _tables(clean_run) == _tables(second_clean_run)
    # and every other file of the two runs: stores, predictions, figures, claims byte for byte, the models and
    # checkpoints weight for weight (benchmarks/compare_runs.py, as the README's determinism statements use it)
    comparison = compare_runs(clean_run / "results/synthetic", second_clean_run / "results/synthetic")
    assert comparison.same, format_comparison(comparison)
    counts = {count.kind: count for count in comparison.counts}
    assert counts["result"].identical > 100 and counts["weights"].identical > 0


@pytest.mark.slow
def test_every_baseline_of_a_run_passes_the_joint_order_check(clean_run):
    results = clean_run / "results/synthetic"
    store = open_dataset(results / "dataset/test.zarr")
    for path in sorted((results / "baselines").glob("*/test_poses_3d.npz")):
        check_joint_order(path, load_for_store(path, store), store.joints_3d)


def _refine(results: Path, model: Path, output: Path, patches: str = "test"):
    return _cli("refine", "--updater", model, "--patches", results / f"patches/predicted/{patches}.zarr",
                "--dataset", results / "dataset/test.zarr", "--predictions",
                results / "baselines/lifting/test_poses_3d.npz", "--out", output)  # fmt: skip


@pytest.mark.slow
def test_refine_refuses_a_model_of_another_stage_a_truncated_one_or_patches_of_other_frames(clean_run, tmp_path):
    results = clean_run / "results/synthetic"
    model = results / "updater/lifting/rgb_seg/model.pt"
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    keypoints = results / "keypoints2d/models/fold0.pt"
    cases = [
        (keypoints, "test", f"{keypoints}: not an updater model file (no 'modality')"),
        (truncated, "test", f"{truncated}: not a readable patchpose checkpoint/model: "),
        (model, "train", f"{results / 'patches/predicted/train.zarr'}: holds patches of other frames than "),
    ]
    for path, patches, problem in cases:
        result = _refine(results, path, tmp_path / "refined.npz", patches)
        errors = [line for line in result.stderr.splitlines() if line.startswith("patchpose: error: ")]
        assert result.exit_code == 1 and len(errors) == 1 and errors[0].startswith(f"patchpose: error: {problem}")
        assert "Traceback" not in result.output and not (tmp_path / "refined.npz").exists()
    assert _refine(results, model, tmp_path / "refined.npz").exit_code == 0  # the same call with good inputs


@pytest.mark.slow
def test_refine_refuses_a_model_whose_weights_do_not_fit_its_network(clean_run, tmp_path):
    results = clean_run / "results/synthetic"
    payload = load_torch(results / "updater/lifting/rgb_seg/model.pt")
    payload["model"] = load_torch(results / "baselines/lifting/models/fold0.pt")["model"]  # another architecture
    mixed = tmp_path / "mixed.pt"
    save_torch(mixed, payload)
    result = _refine(results, mixed, tmp_path / "refined.npz")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 1 and result.stderr.startswith(f"patchpose: error: {mixed}: ")
    assert not (tmp_path / "refined.npz").exists()


def _read_only(directory: Path, command: str, cwd: Path) -> subprocess.CompletedProcess:
    """``command`` (a shell line) with ``directory`` bind-mounted read-only over itself in a private mount
    namespace: for this command alone, as a read-only file system would be (root's chmod would not stop it)."""
    script = f"mount --bind '{directory}' '{directory}' && mount -o remount,ro,bind '{directory}' && exec {command}"
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script], cwd=cwd,
                          capture_output=True, text=True, timeout=HANG_LIMIT)  # fmt: skip


@pytest.mark.slow
def test_a_read_only_results_directory_fails_naming_the_file_and_writes_nothing(clean_run):
    """results/synthetic/tables read-only: Snakemake stops the table job when it clears the job's outputs; the
    package's own writer (the command line's --csv here) says which file it cannot write; nothing appears."""
    tables = clean_run / TABLES
    if shutil.which("unshare") is None or _read_only(tables, "true", clean_run).returncode != 0:
        pytest.skip("no private read-only bind mount here (needs unshare and mount rights)")
    kept = {path.name: path.read_bytes() for path in tables.glob("table1.*")}
    for name in kept:
        (tables / name).unlink()
    before = _listing(tables)
    job = _read_only(tables, f"'{sys.executable}' -m snakemake --cores 1 {TABLES}/table1.csv", clean_run)
    assert job.returncode != 0
    assert f"OSError: [Errno 30] Read-only file system: '{TABLES}/table1.csv'" in job.stderr, job.stderr[-3000:]
    results = clean_run / "results/synthetic"
    script = Path(sys.executable).parent / "patchpose"
    evaluate = (f"'{script}' --quiet evaluate --predictions '{results}/baselines/lifting/test_poses_3d.npz' "
                f"--dataset '{results}/dataset/test.zarr' --csv '{tables}/mine.csv'")  # fmt: skip
    cli = _read_only(tables, evaluate, clean_run)
    assert cli.returncode == 1 and cli.stdout == ""
    assert cli.stderr == f"patchpose: error: {tables}/mine.csv: cannot write (Read-only file system)\n"
    assert _listing(tables) == before  # nothing half-written
    restored = run_snakemake(clean_run, "--rerun-incomplete", f"{TABLES}/table1.csv")  # and once it is writable:
    assert restored.returncode == 0, restored.stderr[-3000:]
    assert {name: (tables / name).read_bytes() for name in kept} == kept  # the same table
