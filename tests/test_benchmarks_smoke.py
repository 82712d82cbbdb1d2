"""The benchmark scripts still start: each imports and parses its arguments, and the updater benchmark builds
the network config.yaml describes (it once broke silently when a key moved); the scale-out arithmetic runs on a
tiny results tree and its numbers add up. No timing here."""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from patchpose.augment import PART_FLIP
from patchpose.code_version import code_digest
from patchpose.config import ConfigError, load_config, validate_config
from patchpose.dataset_format import open_dataset
from patchpose.keypoints2d.settings import fold_settings
from patchpose.keypoints2d.stage import train_fold
from patchpose.parts import PALETTE, PART_NAMES
from patchpose.patches.store import open_patch_store, write_patch_store
from patchpose.poses3d.files import write_predictions
from patchpose.segmentation.store import coarse_labels, open_segmentation, write_segmentation
from patchpose.skeleton import H36M
from patchpose.training import load_torch
from patchpose.updater.network import build_network, complexity
from patchpose.updater.variants import variant_settings
from tests.conftest import REPO, copy_workflow
from tests.dataset_factory import write_tiny_dataset
from tests.patches_factory import write_label_segmentation

SCRIPTS = sorted(path.name for path in (REPO / "benchmarks").glob("*.py"))


def benchmark_module(script: str, monkeypatch):
    """``benchmarks/<script>`` imported as a module (registered in sys.modules for the test only: dataclasses
    look their module up there)."""
    name = f"benchmark_{script.removesuffix('.py')}"
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / script)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_benchmark_starts(script):
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), "--help"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout


def test_the_updater_benchmark_builds_the_configured_network(monkeypatch):
    module = benchmark_module("updater.py", monkeypatch)
    settings, origin = module.model_settings('{"input_size": 16}')
    assert origin == "config.yaml + --model" and settings["input_size"] == 16
    assert settings["condition_on_initial_pose"] is False
    assert build_network(settings, "rgb_seg", load_weights=False) is not None


def _tiny_results(root):
    """The stores and files benchmarks/scale_out.py measures, a few frames each (16 px frames, 4 px patches)."""
    for folder in ("dataset", "segmentation", "keypoints2d", "baselines/mean_pose", "patches/predicted",
                   "patches/uncropped"):  # fmt: skip
        (root / folder).mkdir(parents=True)
    stores = {}
    for split in ("train", "test"):
        stores[split] = open_dataset(write_tiny_dataset(root / "dataset" / f"{split}.zarr", 6, split=split, seed=1))
        write_label_segmentation(root / "segmentation" / f"{split}.zarr", stores[split])
        ids = stores[split].frame_ids()
        np.savez(root / "keypoints2d" / f"{split}_joints_2d.npz", joints_2d=np.zeros((6, 17, 2), np.float32),
                 frame_ids=np.array(ids))  # fmt: skip
        poses = stores[split].joints_3d - stores[split].joints_3d[:, :1]
        write_predictions(
            root / "baselines" / "mean_pose" / f"{split}_poses_3d.npz", poses, ids, split=split, method="m"
        )
    rng = np.random.default_rng(0)
    for kind, names, size in (("limbs", H36M.limb_names, 4), ("uncropped", ("frame",), 8)):
        count = len(names)

        def produce(start, stop, count=count, size=size):
            shape = (stop - start, count)
            return (
                rng.integers(0, 256, (*shape, 6, size, size), np.uint8),
                np.zeros((*shape, 2, 3)),
                np.ones((*shape, 4)),
            )

        source = "predicted" if kind == "limbs" else "uncropped"
        write_patch_store(
            root / "patches" / source / "train.zarr", kind=kind, source=source, split="train",
            frame_ids=stores["train"].frame_ids(), frame_size=stores["train"].frame_size, patch_names=names,
            patch_size=size, geometry={}, compressor="lz4", compression_level=5, chunk_frames=2, produce=produce,
        )  # fmt: skip
    return root


def test_the_scale_out_arithmetic_adds_up(tmp_path):
    """On config.yaml alone (small networks) and a tiny results tree: the protocol's frame counts, samples =
    folds x frames x epochs, GPU-hours = FLOPs / the assumed throughput, the updater's FLOPs as the package counts
    them, and disk = frames x bytes per frame with the raw bytes of the configured patch sizes."""
    results, out = _tiny_results(tmp_path / "results"), tmp_path / "scale_out.json"
    command = [sys.executable, str(REPO / "benchmarks" / "scale_out.py"), "--configfile", "--quick",
               "--sustained-tflops", "50", "--results", str(results), "--json", str(out)]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    numbers = json.loads(out.read_text(encoding="utf-8"))
    config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    frames = numbers["frames"]
    assert (frames["train"], frames["test"]) == (1_500_000 // 5, 8594)  # train_stride 5; 550,000 / 64 = 8593.75
    assert (config["dataset"]["h36m"]["train_stride"], config["dataset"]["h36m"]["test_every"]) == (5, 64)
    stages = {row["stage"]: row for row in numbers["stages"]}
    k = config["folds"]["k"]
    assert stages["keypoints2d"]["train_samples"] == (k - 1) * 300_000 * config["keypoints2d"]["training"]["epochs"]
    assert stages["keypoints2d"]["predict_samples"] == 300_000 + 8594
    for row in numbers["stages"]:
        assert row["gpu_hours"] == pytest.approx(row["flops"] / 50e12 / 3600)
        net = numbers["networks"][row["network"]]
        expected = row["train_samples"] * net["training_flops"]
        expected += (row["eval_samples"] + row["predict_samples"]) * net["forward_flops"]
        assert row["flops"] == pytest.approx(expected)
    assert numbers["totals"]["gpu_hours"] == pytest.approx(sum(row["gpu_hours"] for row in numbers["stages"]))
    updater = build_network(variant_settings(config["updater"]["model"], "rgb_seg"), "rgb_seg", load_weights=False)
    counted = complexity(updater, config["updater"]["model"]["input_size"])
    measured = numbers["networks"]["updater limb_encoder 96 ch"]
    assert measured["training_flops"] == pytest.approx(counted["training_flops"], abs=1)
    assert measured["parameters"] == counted["parameters"] and measured["cpu_train_s"] > 0
    disk = {row["store"]: row for row in numbers["disk"]}
    limbs = disk["patches/predicted/train.zarr"]
    other = numbers["disk_basis"]["patches"]["other_bytes_per_frame"]
    assert limbs["raw_bytes_per_frame"] == pytest.approx(16 * 6 * 64 * 64 + other)  # config.yaml's cache_size 64
    assert disk["patches/uncropped/test.zarr"]["frames"] == 8594
    for row in numbers["disk"]:
        if row["frames"]:
            assert row["bytes"] == pytest.approx(row["files"] * row["frames"] * row["bytes_per_frame"])
    assert "ASSUMPTION" in result.stdout and "4. fan-out" in result.stdout


def test_the_scale_out_networks_of_the_paper_config_are_the_ones_it_names(monkeypatch):
    """Each network spec of config/h36m_paper.yaml builds the network of its own config block (each spec's
    builder binds its settings when made, not the loop's last ones: the segmentation RefineNet once got the
    lifting MLP's settings)."""
    module = benchmark_module("scale_out.py", monkeypatch)
    config, _ = module.load_settings([REPO / "config" / "h36m_paper.yaml"])
    specs = module.network_specs(config)
    assert {"keypoints2d", "segmentation", "baseline lifting", "baseline integral3d"} <= set(specs)
    segmentation = specs["segmentation"].build()
    assert type(segmentation).__name__ == "RefineNetLite"
    assert sum(p.numel() for p in segmentation.parameters()) == sum(
        p.numel() for p in module.build_refinenet(config["segmentation"]["model"]).parameters()
    )
    lifting = specs["baseline lifting"].build()
    assert sum(p.numel() for p in lifting.parameters()) == sum(
        p.numel() for p in module.build_lifting(config["baselines"]["lifting"]["model"]).parameters()
    )
    hourglass = specs["keypoints2d"].build()
    assert sum(p.numel() for p in hourglass.parameters()) == sum(
        p.numel() for p in module.build_keypoints2d(module.hourglass_settings(config, False)).parameters()
    )


def test_the_scale_out_arithmetic_names_a_missing_store(tmp_path):
    out = tmp_path / "scale_out.json"
    command = [sys.executable, str(REPO / "benchmarks" / "scale_out.py"), "--configfile", "--quick",
               "--results", str(tmp_path / "nothing"), "--json", str(out)]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and not out.exists() and result.stdout == ""
    assert f"{tmp_path / 'nothing' / 'dataset' / 'train.zarr'}: missing" in result.stderr


def test_the_depth_sign_benchmark_scores_a_perfect_and_a_depth_mirrored_prediction(tmp_path, monkeypatch):
    module = benchmark_module("baseline_depth_sign.py", monkeypatch)
    (tmp_path / "dataset").mkdir()
    store = open_dataset(write_tiny_dataset(tmp_path / "dataset/test.zarr", 40, split="test", seed=3))
    truth = store.joints_3d - store.joints_3d[:, :1]
    mirrored = truth * np.array([1.0, 1.0, -1.0])  # depth differences reversed (about the camera axis, not each ray)
    for name, poses in (("perfect", truth), ("mirrored", mirrored)):
        (tmp_path / "baselines" / name).mkdir(parents=True)
        write_predictions(tmp_path / "baselines" / name / "test_poses_3d.npz", poses, store.frame_ids(), split="test",
                          method=name)  # fmt: skip
    names = module._default_names(tmp_path)
    assert names == ["baselines/mirrored", "baselines/perfect"]
    overall = {name: rows[-1] for name, rows in module.depth_sign_table(tmp_path, names)}
    assert overall["baselines/perfect"].balanced_accuracy == 1.0 and overall["baselines/perfect"].count == 40 * 8
    # the tiny world's limbs lie nearly across their rays, so the reversal about the z axis flips most, not all
    assert overall["baselines/mirrored"].balanced_accuracy < 0.6


def test_the_facing_benchmark_measures_the_torsos_turn_and_each_joint_groups_error(tmp_path, monkeypatch):
    """Each pose turned about its own torso axis by 30 degrees reads 30, by 180 a flip in every frame; the truth
    reads 0 and no error; one wrist moved by 100 mm is a wrists' error of 50 mm and nothing elsewhere; 2D joints
    with left and right exchanged in 3 frames of 10 are 30% of the frames, and the MPJPE is split on them."""
    module = benchmark_module("baseline_depth_sign.py", monkeypatch)
    (tmp_path / "dataset").mkdir()
    (tmp_path / "keypoints2d").mkdir()
    store = open_dataset(write_tiny_dataset(tmp_path / "dataset/test.zarr", 10, split="test", seed=3))
    joints_2d = np.array(store.joints_2d)
    joints_2d[[1, 4, 7]] = joints_2d[[1, 4, 7]][:, H36M.flip_permutation]
    np.savez(tmp_path / "keypoints2d/test_joints_2d.npz", joints_2d=joints_2d, fold=np.zeros(10, np.int64),
             frame_ids=np.array(store.frame_ids()), split=np.array("test"))  # fmt: skip
    assert module.left_right_swapped(joints_2d, store.joints_2d).nonzero()[0].tolist() == [1, 4, 7]
    truth = store.joints_3d - store.joints_3d[:, :1]
    up = truth[:, H36M.joint_index("thorax")]
    up = up / np.linalg.norm(up, axis=1, keepdims=True)

    def turned(degrees):  # Rodrigues' rotation of every joint about the frame's own up axis
        angle = np.radians(degrees)
        along = (truth * up[:, None]).sum(-1, keepdims=True) * up[:, None]
        return along + np.cos(angle) * (truth - along) + np.sin(angle) * np.cross(up[:, None], truth)

    assert np.allclose(module.facing_angles(turned(30), truth), 30, atol=1e-6)
    assert np.allclose(module.facing_angles(truth, truth), 0, atol=1e-6)
    moved = truth.copy()
    moved[:, H36M.joint_index("left_wrist"), 0] += 100
    poses = {"perfect": truth, "turned": turned(180), "wrist": moved}
    for name, pose in poses.items():
        (tmp_path / "baselines" / name).mkdir(parents=True)
        write_predictions(tmp_path / "baselines" / name / "test_poses_3d.npz", pose, store.frame_ids(), split="test",
                          method=name)  # fmt: skip
    share, rows = module.facing_table(tmp_path, [f"baselines/{name}" for name in poses])
    assert share == 0.3
    table = {row[0]: row[1:] for row in rows}
    moved[[1, 4, 7], H36M.joint_index("right_wrist"), 1] += 340  # a larger error on the exchanged frames only
    write_predictions(tmp_path / "baselines/wrist/test_poses_3d.npz", moved, store.frame_ids(), split="test",
                      method="wrist")  # fmt: skip
    _, [(_, _, _, _, on_swapped, on_rest)] = module.facing_table(tmp_path, ["baselines/wrist"])
    assert np.isclose(on_swapped, 440 / 17, atol=1e-3) and np.isclose(on_rest, 100 / 17, atol=1e-3)
    # the prediction files hold float32: angles near 0 and 180 degrees within 0.1, errors within a micrometre
    assert np.allclose(table["baselines/perfect"][:2], 0, atol=0.1)
    assert np.isclose(table["baselines/turned"][0], 180, atol=0.1) and table["baselines/turned"][1] == 1.0
    assert all(np.isclose(error, 0, atol=1e-3) for error in table["baselines/perfect"][2].values())
    wrist = table["baselines/wrist"][2]
    assert np.isclose(wrist["wrists"], 50, atol=1e-3)
    assert all(np.isclose(wrist[group], 0, atol=1e-3) for group in wrist if group != "wrists")
    assert np.isclose(table["baselines/wrist"][0], 0, atol=0.1)  # a wrist does not turn the torso


def test_the_sides_benchmark_reads_the_view_and_which_frames_took_left_for_right(tmp_path, monkeypatch):
    """A hand-built body on the optical axis facing the camera reads 0 degrees, turned about its up axis by 30, 90 and
    180 degrees reads those, and 45 degrees off the axis 45 and 135; part labels with most lateral pixels given the
    other side are exchanged, a few are not, a frame without lateral parts is not; the shares per view and against a
    reference are the hand-counted ones; and a run's and another run's keypoints2d and segmentation are read frame
    by frame."""
    module = benchmark_module("baseline_depth_sign.py", monkeypatch)
    index = H36M.joint_index
    front, up = np.array([0.0, 0.0, -1.0]), np.array([0.0, -1.0, 0.0])  # camera frame: toward the camera, y down
    assert np.cross(up, front) @ [1.0, 0.0, 0.0] == 1  # its left (up x front) on the image's right

    def body(turn_degrees):
        angle = np.radians(turn_degrees)
        turned_front = np.cos(angle) * front + np.sin(angle) * np.cross(up, front)
        turned_left = np.cross(up, turned_front)
        pose = np.zeros((17, 3)) + [0.0, 0.0, 5000.0]
        pose[index("thorax")] += 500 * up
        for name, height in (("shoulder", 500), ("hip", 0)):
            pose[index(f"left_{name}")] += height * up + 150 * turned_left
            pose[index(f"right_{name}")] += height * up - 150 * turned_left
        return pose

    poses = np.stack([body(degrees) for degrees in (0, 30, 90, 180)])
    assert np.allclose(module.camera_view_angles(poses), [0, 30, 90, 180], atol=1e-6)
    off_axis = poses + [5000.0, 0.0, 0.0]  # 45 degrees to the side of the camera: facing -z is 45 degrees off
    assert np.allclose(module.camera_view_angles(off_axis)[[0, 3]], [45, 135], atol=1e-6)

    lu, ru = PART_NAMES.index("left_upper_arm"), PART_NAMES.index("right_upper_arm")
    truth = np.zeros((3, 2, 4), np.int64)
    truth[:2, 0], truth[:2, 1] = lu, ru  # four pixels of each side
    predicted = truth.copy()
    predicted[0, 0, :3] = ru  # three of eight given the other side: not exchanged
    predicted[1] = PART_FLIP[truth[1]]  # every one: exchanged
    predicted[2] = lu  # no lateral part in the truth: not exchanged
    assert module.labels_sides_exchanged(predicted, truth).tolist() == [False, True, False]

    flags = np.array([1, 0, 1, 1, 0, 0], bool)
    angles = np.array([10, 20, 90, 170, 180, 60.0])
    reference = np.array([1, 1, 0, 0, 0, 0], bool)
    row = module.sides_row(flags, angles, reference)
    assert row[0] == pytest.approx(0.5) and row[1] == pytest.approx(0.5)  # all; front: frames 0 and 1
    assert row[2] == 0 and row[3] == 1 and np.isnan(row[4])  # front-side: frame 5; side: frame 2; back-side: none
    assert row[5] == pytest.approx(0.5)  # back: frames 3 and 4 (180 inclusive)
    assert row[6] == pytest.approx(0.5) and row[7] == pytest.approx(0.5)  # on the reference, on the rest
    lines = module.sides_lines([("2D", reference), ("parts", flags)], angles, "exchanged")
    assert lines[1].split() == ["(frames)", "6", "2", "1", "1", "0", "2", "2", "4"]
    assert lines[3].split()[:2] == ["parts", "50.0%"] and lines[3].split()[5] == "-"

    for run in ("a", "b"):
        for stage in ("dataset", "segmentation", "keypoints2d"):
            (tmp_path / run / stage).mkdir(parents=True)
    store = open_dataset(write_tiny_dataset(tmp_path / "a/dataset/test.zarr", 10, (64, 64), split="test", seed=3))
    labels = store.read_part_labels(np.arange(10))
    assert (PART_FLIP[labels] != labels).any(axis=(1, 2)).all()  # every frame shows a lateral part
    for run, joints_rows, label_rows in (("a", [1, 4, 7], [4, 7, 8]), ("b", [2], [2, 3])):
        joints = np.array(store.joints_2d)
        joints[joints_rows] = joints[joints_rows][:, H36M.flip_permutation]
        np.savez(tmp_path / run / "keypoints2d/test_joints_2d.npz", joints_2d=joints, fold=np.zeros(10, np.int64),
                 frame_ids=np.array(store.frame_ids()), split=np.array("test"))  # fmt: skip
        given = labels.copy()
        given[label_rows] = PART_FLIP[given[label_rows]]
        write_segmentation(tmp_path / run / "segmentation/test.zarr", "test", store.frame_ids(), store.frame_size,
                           lambda a, b, given=given: (np.zeros((b - a, 3, 64, 64), np.uint8), given[a:b],
                                                      np.zeros(b - a, np.int64)))  # fmt: skip
    angles, sources = module.sides_table(tmp_path / "a", [tmp_path / "b"])
    assert np.allclose(angles, module.camera_view_angles(store.joints_3d))
    other = tmp_path / "b"
    assert [name for name, _ in sources] == ["keypoints2d (this run)", "segmentation (this run)",
                                             f"keypoints2d ({other})", f"segmentation ({other})"]  # fmt: skip
    assert [np.flatnonzero(flags).tolist() for _, flags in sources] == [[1, 4, 7], [4, 7, 8], [2], [2, 3]]


def test_the_depth_sign_benchmark_reads_the_rule_off_each_pairing_of_parts_and_joints(tmp_path, monkeypatch):
    """Predicted 2D = the ground truth, predicted segmentation = all background: the rule with the predicted
    parts scores no limb, with the ground-truth parts the same limbs whichever 2D it is given."""
    module = benchmark_module("baseline_depth_sign.py", monkeypatch)
    for stage in ("dataset", "segmentation", "keypoints2d"):
        (tmp_path / stage).mkdir()
    store = open_dataset(write_tiny_dataset(tmp_path / "dataset/test.zarr", 12, (64, 64), split="test", seed=3))
    blank = np.zeros((12, 64, 64), np.uint8)
    write_segmentation(
        tmp_path / "segmentation/test.zarr",
        "test",
        store.frame_ids(),
        store.frame_size,
        lambda a, b: (np.zeros((b - a, 3, 64, 64), np.uint8), blank[a:b], np.zeros(b - a, np.int64)),
    )
    np.savez(tmp_path / "keypoints2d/test_joints_2d.npz", joints_2d=store.joints_2d, fold=np.zeros(12, np.int64),
             frame_ids=np.array(store.frame_ids()), split=np.array("test"))  # fmt: skip
    table = {name: (rows[-1], share) for name, rows, share in module.brighter_end_table(tmp_path)}
    assert list(table) == ["ground-truth parts, ground-truth 2D", "ground-truth parts, predicted 2D",
                           "predicted parts, ground-truth 2D", "predicted parts, predicted 2D"]  # fmt: skip
    scored, _ = table["ground-truth parts, ground-truth 2D"]
    assert table["ground-truth parts, predicted 2D"][0] == scored and scored.count > 0
    assert table["ground-truth parts, ground-truth 2D"][1] == scored.count / (12 * 8)
    assert table["predicted parts, ground-truth 2D"][1] == table["predicted parts, predicted 2D"][1] == 0.0


def test_the_allocator_benchmark_runs_both_modes_on_a_store(tmp_path):
    store = _tiny_results(tmp_path) / "patches" / "predicted" / "train.zarr"
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "allocator.py"), "--store", str(store),
                             "--batch-size", "2", "--pool", "2", "--warmup", "1", "--steps", "2", "--repeats", "1"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    rows = [line.split() for line in lines if line.startswith(("glibc ", "kept ")) and " / " not in line]
    assert [row[0] for row in rows] == ["glibc", "kept"] and all(float(row[1]) > 0 for row in rows)
    assert "kept / glibc:" in lines[-1] and "not applied" not in result.stdout


def test_the_allocator_benchmark_names_a_missing_store(tmp_path):
    script = REPO / "benchmarks" / "allocator.py"
    result = subprocess.run([sys.executable, str(script), "--store", str(tmp_path / "absent.zarr")], cwd=REPO,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 2 and "absent.zarr: not a patch store" in result.stderr


def _claims_file(path, t1_improvement, rare_gains, over_seg_holds):
    """A claims.json of the writer's shapes: a paired T1, a T3 made of two paired parts, a rare claim."""

    def paired(improvement):
        return {"improvement_mm": improvement, "ci_low_mm": improvement - 1, "ci_high_mm": improvement + 1,
                "holds": improvement - 1 > 0}  # fmt: skip

    over_seg = paired(2.0 if over_seg_holds else -2.0)
    claims = {
        "T1 a/rgb_seg": paired(t1_improvement),
        "T3 rgb_seg beats rgb and seg": {"holds": over_seg_holds, "over_rgb": paired(5.0), "over_seg": over_seg},
        "rare a/rgb_seg": {
            "holds": rare_gains[0] >= rare_gains[1],
            "rarest_relative_gain": rare_gains[0],
            "commonest_relative_gain": rare_gains[1],
        },
    }
    path.mkdir()
    (path / "claims.json").write_text(json.dumps(claims))
    return path


def test_the_claims_spread_tells_robust_claims_from_varying_ones(tmp_path):
    first = _claims_file(tmp_path / "seed0", 4.0, (0.05, 0.10), over_seg_holds=False)
    second = _claims_file(tmp_path / "seed1", 3.0, (0.08, 0.02), over_seg_holds=False)
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "claims_spread.py"), str(first),
                             str(second / "claims.json"), "--names", "s0,s1"], capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = {line.split("  ")[0].strip(): line for line in result.stdout.splitlines()}
    assert "+4.0 [+3.0, +5.0] holds" in rows["T1 a/rgb_seg"] and rows["T1 a/rgb_seg"].endswith("holds in every run")
    assert rows["T3 rgb_seg beats rgb and seg"].endswith("fails in every run")
    assert rows["T3 rgb_seg beats rgb and seg / over_rgb"].endswith("holds in every run")
    assert "-2.0 [-3.0, -1.0] FAILS" in rows["T3 rgb_seg beats rgb and seg / over_seg"]
    assert "+5.0% vs +10.0% FAILS" in rows["rare a/rgb_seg"] and "+8.0% vs +2.0% holds" in rows["rare a/rgb_seg"]
    assert rows["rare a/rgb_seg"].endswith("varies: holds in 1 of 2")
    assert result.stdout.splitlines()[-1] == ("3 claims over 2 runs: 1 hold in every run, 1 fail in every run, "
                                              "1 vary, 0 missing in some run")  # fmt: skip


def test_the_claims_spread_names_a_file_that_is_not_claims(tmp_path):
    bad = tmp_path / "claims.json"
    bad.write_text(json.dumps({"T1": {"improvement_mm": 1.0}}))
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "claims_spread.py"), str(bad)],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode != 0 and f"{bad}: not a claims.json" in result.stderr


def test_the_keypoints2d_fold_benchmark_trains_the_stage_model_of_its_settings(tmp_path, monkeypatch):
    """The model it scores is the one the stage would train with the changed settings (same frames, same seed:
    the same weights), and it scores the fold's own subjects."""
    module = benchmark_module("keypoints2d_fold.py", monkeypatch)
    store = write_tiny_dataset(tmp_path / "train.zarr", num_frames=12, split="train")
    config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    config["folds"]["k"] = 2
    config["keypoints2d"]["model"].update(input_size=16, heatmap_size=8, features=8, depth=1)
    config["keypoints2d"]["training"].update(epochs=1, batch_size=4)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    command = [sys.executable, str(REPO / "benchmarks" / "keypoints2d_fold.py"), "--dataset", str(store),
               "--configfile", str(tmp_path / "config.yaml"), "--set", "model.part_head_channels=4", "--fold", "1",
               "--every", "2", "--threads", "1", "--keep", str(tmp_path / "kept"), "--seen"]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    held_out = open_dataset(store).subject_names() == "S9"  # TINY_SUBJECTS: S1 is fold 0, S9 fold 1
    count, seen_count = len(np.flatnonzero(held_out)[::2]), len(np.flatnonzero(~held_out)[::2])
    assert lines[0] == "settings changed: model.part_head_channels=4"
    assert lines[1] == f"fold 1 of 2, held out S9: {count} frames scored (every 2)"
    assert lines[3] == f"held out S9 ({count} frames):" and lines[12] == f"seen (trained on) S1 ({seen_count} frames):"
    for block in (lines[4:12], lines[13:21]):
        assert block[0].startswith("2D mean error: ") and block[1].startswith("segmentation mean IoU: ")
        assert block[2].split()[::2] == list(PART_NAMES)
        assert all(np.isnan(value) or 0 <= value <= 1 for value in map(float, block[2].split()[1::2]))
        assert block[3].startswith("left and right exchanged") and block[4].split()[:2] == ["all", "front"]
        assert block[6].startswith("2D joints") and block[7].startswith("part labels")
    seen_rows = np.flatnonzero(~held_out)[::2]
    result = module.score(tmp_path / "kept/fold1.pt", open_dataset(store), seen_rows)
    assert lines[13] == f"2D mean error: {result.error_px:.2f} px"  # the seen subjects' own frames
    assert lines[18].split()[1] == f"{len(seen_rows)}"
    assert lines[19].split()[2] == f"{100 * result.joints_exchanged.mean():.1f}%"  # after "2D joints"
    assert lines[20].split()[2] == f"{100 * result.labels_exchanged.mean():.1f}%"  # after "part labels"
    again = [sys.executable, str(REPO / "benchmarks" / "keypoints2d_fold.py"), "--dataset", str(store), "--configfile",
             str(tmp_path / "config.yaml"), "--fold", "1", "--every", "2", "--threads", "1", "--seen",
             "--model", str(tmp_path / "kept/fold1.pt")]  # fmt: skip
    scored = subprocess.run(again, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert scored.returncode == 0, scored.stderr
    assert scored.stdout.splitlines()[2] == f"training: none, the model file {tmp_path / 'kept/fold1.pt'}"
    assert scored.stdout.splitlines()[3:] == lines[3:]  # the kept model scored as it is: the same figures
    refused = subprocess.run(again + ["--set", "training.epochs=2"], cwd=REPO, capture_output=True, text=True,
                             timeout=300)  # fmt: skip
    assert refused.returncode != 0 and "without --set and --keep" in refused.stderr
    settings = fold_settings(module.apply_settings(load_config(tmp_path / "config.yaml"),
                                                          ["model.part_head_channels=4"]))  # fmt: skip
    assert settings["model"]["part_head_channels"] == 4
    train_fold(store, 1, 2, settings, config["seed"], tmp_path / "direct.pt", tmp_path / "direct_ckpt.pt", 1)
    kept, direct = load_torch(tmp_path / "kept/fold1.pt"), load_torch(tmp_path / "direct.pt")
    assert kept["model_settings"] == direct["model_settings"]
    assert all(torch.equal(kept["model"][name], direct["model"][name]) for name in direct["model"])


def test_the_sides_verifier_maps_the_joints_by_side_and_keeps_the_label_through_a_flip(monkeypatch):
    module = benchmark_module("sides_verifier.py", monkeypatch)
    joints = np.full((1, H36M.num_joints, 2), 1.5)
    left, right = H36M.joint_names.index("left_wrist"), H36M.joint_names.index("right_ankle")
    joints[0, left], joints[0, right] = (4.5, 2.5), (6.5, 7.5)  # pixel centres of (x 4, y 2) and (x 6, y 7)
    maps = module.joint_maps(torch.from_numpy(joints), side=8.0, size=8)
    assert maps.shape == (1, 3, 8, 8) and float(maps.max()) == pytest.approx(1.0)
    assert maps[0, 0, 2, 4] == pytest.approx(1.0) and maps[0, 1, 7, 6] == pytest.approx(1.0)
    assert maps[0, 2, 1, 1] == pytest.approx(1.0) and maps[0, 0, 7, 6] < 1e-3 and maps[0, 1, 2, 4] < 1e-3
    exchanged = module.joint_maps(torch.from_numpy(module.exchange(joints)), side=8.0, size=8)
    assert torch.equal(exchanged[:, [1, 0, 2]], maps)  # exchanging the joints exchanges the two side maps
    rng = np.random.default_rng(0)
    truth = rng.uniform(0, 8, (40, H36M.num_joints, 2))
    predicted = np.where(rng.random(40)[:, None, None] < 0.5, module.exchange(truth), truth) + rng.normal(
        0, 0.3, truth.shape
    )
    frames = torch.from_numpy(rng.integers(0, 256, (40, 3, 8, 8), dtype=np.uint8))
    images, moved = module.augment(np.random.default_rng(1), frames, predicted, 8.0)
    _, moved_truth = module.augment(np.random.default_rng(1), frames, truth, 8.0)
    flipped = ~np.isclose(moved[:, 0], predicted[:, 0]).all(axis=-1)
    assert 5 < flipped.sum() < 35
    np.testing.assert_allclose(moved[flipped][:, H36M.flip_permutation, 0], 8.0 - predicted[flipped][..., 0])
    assert torch.equal(images[flipped].sort(dim=1).values, frames[flipped].flip(-1).sort(dim=1).values)
    np.testing.assert_array_equal(module.left_right_swapped(moved, moved_truth),
                                  module.left_right_swapped(predicted, truth))  # fmt: skip


def test_the_sides_verifier_scores_a_fold_model_on_its_held_out_subjects(tmp_path, monkeypatch):
    store = write_tiny_dataset(tmp_path / "train.zarr", num_frames=12, split="train")
    config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    config["folds"]["k"] = 2
    config["keypoints2d"]["model"].update(input_size=16, heatmap_size=8, features=8, depth=1, part_head_channels=4)
    config["keypoints2d"]["training"].update(epochs=1, batch_size=4)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    settings = fold_settings(load_config(tmp_path / "config.yaml"))
    train_fold(store, 1, 2, settings, config["seed"], tmp_path / "fold1.pt", tmp_path / "checkpoint.pt", 1)
    command = [sys.executable, str(REPO / "benchmarks" / "sides_verifier.py"), "--dataset", str(store),
               "--configfile", str(tmp_path / "config.yaml"), "--fold", "1", "--every", "1", "--epochs", "1",
               "--width", "4", "--threads", "1"]  # fmt: skip
    runs = [subprocess.run(command + ["--model", str(tmp_path / "fold1.pt")] + extra, cwd=REPO, capture_output=True,
                           text=True, timeout=300) for extra in ([], [], ["--no-image"])]  # fmt: skip
    assert all(run.returncode == 0 for run in runs), [run.stderr for run in runs]
    lines = runs[0].stdout.splitlines()
    assert runs[1].stdout.splitlines()[2:] == lines[2:]  # seeded: the same decisions (line 1 has the seconds)
    held_out = np.flatnonzero(open_dataset(store).subject_names() == "S9")  # TINY_SUBJECTS: S9 is fold 1
    assert lines[2].startswith(f"held out S9: {len(held_out)} frames (every 1); the verifier decides ")
    assert "trained on S1 (" in lines[1] and "the crop blanked" in runs[2].stdout.splitlines()[1]
    scored = benchmark_module("keypoints2d_fold.py", monkeypatch).score(
        tmp_path / "fold1.pt", open_dataset(store), held_out
    )
    assert lines[3].startswith(f"2D mean error: {scored.error_px:.2f} px before, ")
    assert lines[7].startswith("2D joints") and lines[7].split()[2] == f"{100 * scored.joints_exchanged.mean():.1f}%"
    assert lines[8].startswith("after the verifier")
    wrong = subprocess.run(command + ["--fold", "0", "--model", str(tmp_path / "fold1.pt")], cwd=REPO,
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert wrong.returncode != 0 and "fold 1 of 2, expected fold 0 of 2" in wrong.stderr


def test_the_keypoints2d_fold_benchmark_names_a_wrong_setting(tmp_path, monkeypatch):
    module = benchmark_module("keypoints2d_fold.py", monkeypatch)
    config = validate_config(yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8")))
    with pytest.raises(ConfigError, match="keypoints2d.model.nope is not a key"):
        module.apply_settings(config, ["model.nope=3"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        module.apply_settings(config, ["model.features"])
    with pytest.raises(ConfigError, match="must be >= 8"):
        module.apply_settings(config, ["model.features=2"])
    assert module.apply_settings(config, ["training.epochs=12"])["keypoints2d"]["training"]["epochs"] == 12
    assert config["keypoints2d"]["training"]["epochs"] == 6  # the config given is not changed
    command = [sys.executable, str(REPO / "benchmarks" / "keypoints2d_fold.py"), "--dataset", str(tmp_path / "no")]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and f"{tmp_path / 'no'}: missing" in result.stderr


def test_the_segmentation_swap_takes_another_runs_store_of_the_same_frames_only(tmp_path, monkeypatch):
    """``--from``: the same frames render the same digest and other pixels another; the swapped-in store is the
    other run's, byte for byte, in place of the first; a store of other frames is refused and leaves it alone."""
    module = benchmark_module("segmentation_oracle.py", monkeypatch)
    for run in "abcd":
        (tmp_path / run).mkdir()
    first = write_tiny_dataset(tmp_path / "a/dataset.zarr", num_frames=6, seed=0)
    same = write_tiny_dataset(tmp_path / "b/dataset.zarr", num_frames=6, seed=0)
    other = write_tiny_dataset(tmp_path / "c/dataset.zarr", num_frames=6, seed=1)
    assert module.frames_digest(first) == module.frames_digest(same) != module.frames_digest(other)
    mine = tmp_path / "a/segmentation.zarr"

    def background(start, stop):
        return (
            np.zeros((stop - start, 3, 16, 16), np.uint8),
            np.zeros((stop - start, 16, 16), np.uint8),
            np.zeros(stop - start, np.int64),
        )

    write_segmentation(mine, "test", open_dataset(first).frame_ids(), (16, 16), background)
    theirs = write_label_segmentation(tmp_path / "b/segmentation.zarr", open_dataset(same))
    module.swap_in(mine, theirs, first)
    swapped, source = open_segmentation(mine), open_segmentation(theirs)
    rows = np.arange(6)
    assert np.array_equal(swapped.read_labels(rows), source.read_labels(rows))
    assert swapped.read_labels(rows).any()  # not the all-background store it replaced
    fewer = write_tiny_dataset(tmp_path / "d/dataset.zarr", num_frames=4, seed=0)
    elsewhere = write_label_segmentation(tmp_path / "d/segmentation.zarr", open_dataset(fewer))
    with pytest.raises(ValueError, match="frame"):
        module.swap_in(mine, elsewhere, first)
    assert np.array_equal(open_segmentation(mine).read_labels(rows), source.read_labels(rows))
    assert sorted(path.name for path in (tmp_path / "a").iterdir()) == ["dataset.zarr", "segmentation.zarr"]


def test_the_segmentation_mix_gives_the_named_parts_their_true_labels_and_keeps_the_rest(tmp_path, monkeypatch):
    """``--truth-parts``: a pixel the truth or the segmentation puts in a named part takes the true label and its
    colour, every other pixel keeps the segmentation's label and soft colour; ``--encoding argmax`` colours each
    pixel by its label; ``--truth-sides`` puts right only a part given on the wrong side; the store is rewritten
    in place with its folds; a wrong part name is refused by name."""
    module = benchmark_module("segmentation_oracle.py", monkeypatch)
    arms = module.part_ids("arms")
    assert [PART_NAMES[i] for i in arms] == [
        "left_upper_arm", "left_lower_arm", "left_hand", "right_upper_arm", "right_lower_arm", "right_hand",
    ]  # fmt: skip
    assert list(module.part_ids("head,legs,head")) == [1, *range(9, 15)]
    with pytest.raises(SystemExit, match="'elbow' is not a body part or group"):
        module.part_ids("arms,elbow")
    with pytest.raises(SystemExit, match="at least one"):
        module.part_ids(",")
    left_forearm, torso, head, leg = (
        PART_NAMES.index(n) for n in ("left_lower_arm", "torso", "head", "left_upper_leg")
    )
    truth = np.array([[[left_forearm, torso, 0, head]]], np.uint8)  # (1, 1, 4)
    labels = np.array([[[torso, left_forearm, leg, head]]], np.uint8)  # missed, invented, wrong, right
    soft = np.full((1, 3, 1, 4), 7, np.uint8)
    colours, mixed = module.mix_colours_and_labels(soft, labels, truth, arms, "expected")
    assert mixed.tolist() == [[[left_forearm, torso, leg, head]]]
    assert colours[0, :, 0, 0].tolist() == PALETTE[left_forearm].tolist()
    assert colours[0, :, 0, 1].tolist() == PALETTE[torso].tolist()  # the invented forearm pixel is torso
    assert (colours[0, :, 0, 2:] == 7).all()  # not an arm in either: the segmentation's soft colour
    colours, mixed = module.mix_colours_and_labels(soft, labels, truth, np.zeros(0, np.uint8), "argmax")
    assert np.array_equal(mixed, labels) and np.array_equal(colours[0].transpose(1, 2, 0), PALETTE[labels[0]])
    right_forearm, right_leg = PART_NAMES.index("right_lower_arm"), PART_NAMES.index("right_upper_leg")
    swapped = np.array([[[right_forearm, torso, right_leg, head]]], np.uint8)  # the forearm on the wrong side
    colours, mixed = module.mix_colours_and_labels(soft, swapped, truth, np.zeros(0, np.uint8), "expected", True)
    assert mixed.tolist() == [[[left_forearm, torso, right_leg, head]]]  # only the side is put right
    assert colours[0, :, 0, 0].tolist() == PALETTE[left_forearm].tolist() and (colours[0, :, 0, 1:] == 7).all()
    dataset = write_tiny_dataset(tmp_path / "dataset.zarr", num_frames=5, seed=0)
    truth = open_dataset(dataset).read_part_labels(np.arange(5))
    assert np.isin(truth, arms).any()

    def torso_everywhere(start, stop):
        return (
            np.full((stop - start, 3, *truth.shape[1:]), 9, np.uint8),
            np.full((stop - start, *truth.shape[1:]), torso, np.uint8),
            np.arange(start, stop) % 2,
        )

    store = tmp_path / "segmentation.zarr"
    write_segmentation(store, "test", open_dataset(dataset).frame_ids(), truth.shape[1:], torso_everywhere)
    module.remix(store, dataset, arms, "expected")
    mixed = open_segmentation(store, open_dataset(dataset))
    rows = np.arange(5)
    on_arms = np.isin(truth, arms)
    assert np.array_equal(mixed.read_labels(rows), np.where(on_arms, truth, torso))
    assert (mixed.read_encoded(rows).transpose(0, 2, 3, 1)[~on_arms] == 9).all()
    assert mixed.fold.tolist() == [0, 1, 0, 1, 0]
    coarse = tmp_path / "coarse.zarr"  # --side 4: the arms as a perfect 4 x 4 segmenter gives them
    write_segmentation(coarse, "test", open_dataset(dataset).frame_ids(), truth.shape[1:], torso_everywhere)
    module.remix(coarse, dataset, arms, "expected", side=4)
    blurred = coarse_labels(truth, 4)
    expected = np.where(np.isin(blurred, arms), blurred, torso)
    assert np.array_equal(open_segmentation(coarse).read_labels(rows), expected)
    assert not np.array_equal(expected, mixed.read_labels(rows))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["coarse.zarr", "dataset.zarr", "segmentation.zarr"]


def test_the_oracles_iou_per_part_counts_sides_taken_for_each_other_once_merged(tmp_path, monkeypatch):
    """A segmentation that is the truth with every left and right part exchanged: IoU 0 for each lateral part
    present, 1 for the rest, and 1 for every part once left and right are merged (the right parts then NaN)."""
    module = benchmark_module("segmentation_oracle.py", monkeypatch)
    for stage in ("dataset", "segmentation"):
        (tmp_path / stage).mkdir()
    dataset = open_dataset(write_tiny_dataset(tmp_path / "dataset/test.zarr", num_frames=4, seed=0))
    truth = dataset.read_part_labels(np.arange(4))
    write_segmentation(tmp_path / "segmentation/test.zarr", "test", dataset.frame_ids(), dataset.frame_size,
                       lambda a, b: (np.zeros((b - a, 3, *truth.shape[1:]), np.uint8), PART_FLIP[truth[a:b]],
                                     np.zeros(b - a, np.int64)))  # fmt: skip
    iou, _ = module.part_iou(tmp_path, "test")
    present = np.unique(truth)
    lateral = [i for i in present if PART_NAMES[i].startswith(("left_", "right_"))]
    assert lateral and all(iou[i] == 0 for i in lateral)
    assert all(iou[i] == 1 for i in present if i not in lateral)
    merged, mean = module.part_iou(tmp_path, "test", merge_sides=True)
    assert mean == 1 and np.isnan(merged[[i for i, n in enumerate(PART_NAMES) if n.startswith("right_")]]).all()
    row = module.iou_row(merged)
    assert list(row) == list(module.IOU_COLUMNS)


def test_the_limb_segmenter_samples_and_pastes_where_the_patches_lie(monkeypatch):
    """Hand-built geometry: a patch that is the frame itself samples the labels unchanged; a patch laid over the
    frame's middle pastes its parts exactly where it covers more than half a pixel and leaves the rest alone."""
    module = benchmark_module("limb_segmenter.py", monkeypatch)
    truth = np.random.default_rng(0).integers(0, 15, (1, 16, 16)).astype(np.uint8)

    class Labels:  # the part of a dataset store that patch_labels reads
        frame_size = (16, 16)

        def read_part_labels(self, rows):
            return truth[rows]

    identity = module.patch_to_frame(np.array([[[[1.0, 0, 0], [0, 1, 0]]]]), cache=16, side=16)
    assert np.array_equal(module.patch_labels(Labels(), identity, np.array([0]), 16)[0, 0], truth[0])
    # cache 16 -> side 8: patch px u is cache px 2u + 0.5, frame px 2u + 0.5 under the identity
    assert np.allclose(module.patch_to_frame(np.array([[1.0, 0, 0], [0, 1, 0]]), 16, 8) @ [3, 5, 1], [6.5, 10.5, 1])
    middle = module.patch_to_frame(np.array([[[[0.5, 0, 4], [0, 0.5, 4]]]]), cache=16, side=16)  # frame 4..11.5
    probabilities = torch.zeros(1, 1, 15, 16, 16)
    probabilities[:, :, 3] = 1
    stage_colours, stage_labels = np.full((1, 3, 16, 16), 7, np.uint8), np.zeros((1, 16, 16), np.uint8)
    colours, labels = module.paste(probabilities, middle, stage_colours, stage_labels, (16, 16))
    inside = np.zeros((16, 16), bool)
    inside[4:12, 4:12] = True
    assert np.array_equal(labels[0], np.where(inside, 3, 0))
    assert np.array_equal(colours[0][:, inside], np.repeat(PALETTE[3][:, None], inside.sum(), 1))
    assert (colours[0][:, ~inside] == 7).all() and not stage_labels.any()  # the stage's arrays are not changed


@pytest.mark.slow
def test_the_limb_segmenter_writes_stores_the_oracle_swaps_in(tiny_run, tmp_path, monkeypatch):
    """On the tiny run: both splits' stores, of the run's frames, the stage's labels kept outside the arm
    patches; ``segmentation_oracle.py --from`` takes the directory and refuses it once its digests are not the
    run's."""
    results = tiny_run / "results/synthetic"
    arms = list(benchmark_module("limb_segmenter.py", monkeypatch).LIMB_GROUPS["arms"])
    oracle = benchmark_module("segmentation_oracle.py", monkeypatch)
    side = open_patch_store(results / "patches/predicted/test.zarr").patch_size // 4
    out = tmp_path / "limbs"
    command = [sys.executable, str(REPO / "benchmarks" / "limb_segmenter.py"), str(tiny_run), "--out", str(out),
               "--epochs", "1", "--width", "4", "--side", str(side), "--threads", "1"]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("fold 0: trained in") and lines[1].startswith("fold 1: trained in")
    assert [line.split()[0] for line in lines[-2:]] == ["train", "test"]
    for split in ("train", "test"):
        dataset = open_dataset(results / f"dataset/{split}.zarr")
        stage = open_segmentation(results / f"segmentation/{split}.zarr", dataset)
        pasted = open_segmentation(out / f"segmentation/{split}.zarr", dataset)
        rows = np.arange(dataset.num_frames)
        assert np.array_equal(pasted.fold, stage.fold)
        kept = pasted.read_labels(rows) == stage.read_labels(rows)
        boxes = open_patch_store(results / f"patches/predicted/{split}.zarr").read_box(rows)[:, arms]
        half = boxes[..., 2:].max(-1) / 2 + 1  # the square patch about each box's centre, and a pixel's margin
        ys, xs = np.mgrid[: dataset.frame_size[0], : dataset.frame_size[1]]
        near = (np.abs(xs - boxes[..., 0, None, None]) <= half[..., None, None]) & (
            np.abs(ys - boxes[..., 1, None, None]) <= half[..., None, None]
        )
        outside = ~near.any(1)
        assert outside.any() and kept[outside].all() and not kept.all()
    assert oracle.segmentation_source(out, results) == out
    digests = json.loads((out / "frames.json").read_text(encoding="utf-8"))
    (out / "frames.json").write_text(json.dumps({**digests, "test": "0" * 64}), encoding="utf-8")
    with pytest.raises(SystemExit, match="its test frames are not"):
        oracle.segmentation_source(out, results)


def test_the_pose_prior_draws_each_part_where_the_joints_put_it(monkeypatch):
    """Hand-built joints: a pixel inside the hips-shoulders quadrilateral is at distance 0 of the torso, one beside
    the forearm at its distance from the segment, the hand's point lies a quarter forearm beyond the wrist; a band
    drawn with radius 3 around the predicted forearm is fitted back as 3 with IoU 1; weight 0 leaves the part
    head's labels and an infinite weight gives the bands alone."""
    module = benchmark_module("pose_prior_segmentation.py", monkeypatch)
    place = {
        "pelvis": (16, 20),
        "left_hip": (20, 20),
        "right_hip": (12, 20),
        "spine": (16, 15),
        "thorax": (16, 10),
        "left_shoulder": (20, 10),
        "right_shoulder": (12, 10),
        "left_elbow": (24, 10),
        "left_wrist": (24, 18),
    }
    joints = np.zeros((1, 17, 2), np.float32)
    for name, xy in place.items():
        joints[0, H36M.joint_index(name)] = xy
    d = module.part_distances(joints, (32, 32))[0]
    torso, forearm, hand = (PART_NAMES.index(name) - 1 for name in ("torso", "left_lower_arm", "left_hand"))
    assert d[torso, 18, 14] == 0 and d[torso, 18, 30] > 0  # (x 14, y 18) inside, (x 30, y 18) outside
    assert d[forearm, 14, 27] == pytest.approx(3) and d[forearm, 30, 24] == pytest.approx(12)
    assert d[hand].argmin() == 20 * 32 + 24  # wrist (24, 18) + (18 - 10) / 4 down

    class Labels:  # the part of a dataset store that fit_radii reads
        num_frames, frame_size = 1, (32, 32)

        def read_part_labels(self, rows):
            return np.where(d[forearm] <= 3, forearm + 1, 0).astype(np.uint8)[None]

    radii, iou = module.fit_radii(Labels(), joints)
    assert radii[forearm] == 3 and iou[forearm] == 1
    log_p = torch.log_softmax(torch.randn(1, 15, 32, 32, generator=torch.Generator().manual_seed(0)), 1)
    radii = torch.from_numpy(radii.astype(np.float32))
    assert torch.equal(module.fused_scores(log_p, d[None], radii, 0.0), log_p)
    bands = module.fused_scores(log_p, d[None], radii, float("inf")).argmax(1)[0]
    assert bands[14, 26] == forearm + 1 and bands[31, 31] == 0  # 2 px from the forearm, inside its band


def test_the_cue_test_renders_the_world_it_is_asked_for(monkeypatch):
    module = benchmark_module("cue_test.py", monkeypatch)
    base = dict(frame_size=96, train_poses=3, test_poses=1, depth_falloff=None, outfits=None)
    configured = load_config(REPO / "config.yaml")["dataset"]["synthetic"]
    on = module._world(module.argparse.Namespace(**base), cues=True)
    assert on["outfits"] == configured["outfits"] and on["depth_falloff"] == configured["depth_falloff"]
    assert on["texture_cue"] and on["shading_cue"] and on["frame_size"] == 96
    varied = dict(base, outfits="per_sequence", depth_falloff=2.0)
    on = module._world(module.argparse.Namespace(**varied), cues=True)
    off = module._world(module.argparse.Namespace(**varied), cues=False)
    assert on["outfits"] == off["outfits"] == "per_sequence"  # the conditions differ only in their cues
    assert on["depth_falloff"] == 2.0 and off["depth_falloff"] == 0
    assert not (off["texture_cue"] or off["shading_cue"])


def test_the_refine_benchmark_times_both_allocators_in_fresh_processes(tiny_run):
    """--allocator both: a run with glibc as it comes, then one with freed blocks kept (as the pipeline refines on
    the CPU), each printing its own figures, then the ratios of their per-frame times."""
    command = [sys.executable, str(REPO / "benchmarks" / "refine.py"), "--results",
               str(tiny_run / "results/synthetic"), "--frames", "4", "--batch", "2", "--repeats", "1", "--threads", "1",
               "--allocator", "both"]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    glibc, kept = result.stdout.split("--- allocator kept")
    assert glibc.startswith("--- allocator glibc") and "allocator glibc" in glibc.splitlines()[1]
    assert "allocator kept" in kept.splitlines()[1] and "ratio whole / forward" in kept
    lines = result.stdout.splitlines()
    assert lines[-2].startswith("whole refinement per frame, glibc / kept: ") and lines[-1].startswith("forward alone")


def test_the_updater_ensemble_is_the_mean_of_its_members_and_evaluated_like_them(tiny_run, tmp_path):
    """Two members: the tiny run and a copy whose one refined file is moved; the ensemble's file of that pair is
    the mean of the two, of the others the run's own, evaluated to the run's own figures; the members' validation
    losses are the ones their curve.csv kept, and with validation_subjects [] (no frames held out from both) no
    validation table is printed and the test split's figures are the same; runs on other baselines are refused by
    name."""
    from patchpose.poses3d.files import read_predictions
    from patchpose.poses3d.loading import load_for_store

    results = tiny_run / "results/synthetic"
    other = tmp_path / "other"
    shutil.copytree(results, other)
    pairs = sorted(path.parent for path in (results / "refined").glob("*/*/test_poses_3d.npz"))
    moved, kept = pairs[0].relative_to(results), pairs[-1].relative_to(results)
    store = open_dataset(results / "dataset/test.zarr")
    first = load_for_store(results / moved / "test_poses_3d.npz", store)
    second = first.copy()
    second[:, 1:] += np.linspace(-20, 20, 16)[None, :, None]
    write_predictions(other / moved / "test_poses_3d.npz", second, store.frame_ids(), split="test", method="moved")
    out = tmp_path / "ensemble"
    command = [sys.executable, str(REPO / "benchmarks" / "updater_ensemble.py"), str(results), str(other),
               "--out", str(out), "--configfile", str(tiny_run / "config.yaml")]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert np.allclose(read_predictions(out / moved / "test_poses_3d.npz").poses_3d, (first + second) / 2, atol=1e-3)
    assert np.allclose(read_predictions(out / kept / "test_poses_3d.npz").poses_3d,
                       read_predictions(results / kept / "test_poses_3d.npz").poses_3d, atol=1e-3)  # fmt: skip
    assert (out / kept / "improvement.csv").read_text() == (results / kept / "improvement.csv").read_text()
    claims = json.loads((out / "claims.json").read_text())
    assert set(claims) == set(json.loads((results / "claims.json").read_text()))
    validation = result.stdout.split("test split")[0].splitlines()
    lines = {line.split()[0]: line.split() for line in validation if line.split()}
    for pair in pairs:
        name = f"{pair.parent.name}/{pair.name}"
        with open(results / "updater" / name / "curve.csv", newline="", encoding="utf-8") as handle:
            kept_loss = float([row for row in csv.DictReader(handle) if row["best"] == "True"][-1]["val_loss"])
        members = [float(value) for value in lines[name][1:3]]  # the first table's row: the members' losses
        assert members[0] == members[1] == pytest.approx(kept_loss, rel=2e-3, abs=2e-3)
    # with poses held out instead of a subject, each member's draw is its own: no shared validation table
    config = yaml.safe_load((tiny_run / "config.yaml").read_text(encoding="utf-8"))
    config["updater"]["training"]["validation_subjects"] = []
    (tmp_path / "poses.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    poses_command = [*command[:4], "--out", str(tmp_path / "by_poses"), "--configfile", str(tmp_path / "poses.yaml")]
    by_poses = subprocess.run(poses_command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert by_poses.returncode == 0, by_poses.stderr
    assert "validation frames: none shared" in by_poses.stdout and "Eq. 2's loss" not in by_poses.stdout
    figures = ("holds", "improvement_mm", "ci_low_mm", "ci_high_mm")  # the files named differ: the two --out
    poses_claims = json.loads((tmp_path / "by_poses" / "claims.json").read_text())
    assert {name: [claim.get(key) for key in figures] for name, claim in poses_claims.items()} == {
        name: [claim.get(key) for key in figures] for name, claim in claims.items()
    }
    write_predictions(other / "baselines" / moved.parent.name / "test_poses_3d.npz", second, store.frame_ids(),
                      split="test", method="another")  # fmt: skip
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    assert f"{other / 'baselines' / moved.parent.name / 'test_poses_3d.npz'}: differs from" in result.stderr


def test_the_threads_benchmark_trains_both_configured_networks_both_ways():
    command = [sys.executable, str(REPO / "benchmarks" / "threads.py"), "--steps", "1", "--warmup", "0",
               "--repeats", "1", "--jobs", "2"]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()[2:]]
    assert [(row[0], " ".join(row[1:-2])) for row in rows if "x" not in row[-1]] == [
        (network, arrangement) for network in ("keypoints2d", "updater")
        for arrangement in ("1 job x 2 threads", "2 jobs x 1 thread")
    ]  # fmt: skip
    assert all(float(row[-1]) > 0 and float(row[-2]) > 0 for row in rows if "x" not in row[-1])
    ratios = [row for row in rows if row[-1].endswith("x")]
    assert [row[0] for row in ratios] == ["keypoints2d", "updater"] and all(float(row[-1][:-1]) > 0 for row in ratios)
    wrong = subprocess.run(command + ["--networks", "hourglass"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert wrong.returncode != 0 and "unknown: ['hourglass']" in wrong.stderr


def test_the_shared_orientation_updaters_are_interchangeable_and_their_mean_is_evaluated(tiny_run, tmp_path):
    """The tiny run's two rgb_seg updaters (lifting's and integral3d's, predicting orientations): each member's
    validation loss is the same on either baseline's U_init and the one its own curve.csv kept, and their mean's
    is no higher than the members' average (the loss is convex). In a copy whose integral3d updater is lifting's
    file, the mean of the two is lifting's updater, calibrated afresh on the same frames: lifting's shared
    refinement is the run's own. A variant with one updater, a residual one and held-out poses are refused."""
    from patchpose.poses3d.files import read_predictions

    results = tiny_run / "results/synthetic"
    script, config = str(REPO / "benchmarks" / "shared_orientation.py"), str(tiny_run / "config.yaml")

    def run(results, out, *extra, configfile=config):
        command = [sys.executable, script, "--results", str(results), "--configfile", configfile, "--out", str(out)]
        return subprocess.run(command + list(extra), cwd=REPO, capture_output=True, text=True, timeout=600)

    result = run(results, tmp_path / "shared")
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: [float(value) for value in line.split()[1:]]
            for line in result.stdout.split("test split")[0].splitlines()[2:]}  # fmt: skip
    assert sorted(rows) == ["integral3d", "lifting"]
    for baseline, values in rows.items():
        members, mean = values[:2], values[2]
        assert members == pytest.approx(rows["lifting"][:2], rel=2e-3, abs=2e-3)  # the baseline's U_init cancels
        assert mean <= np.mean(members) + 1e-3
        with open(results / "updater" / baseline / "rgb_seg" / "curve.csv", newline="", encoding="utf-8") as handle:
            kept = float([row for row in csv.DictReader(handle) if row["best"] == "True"][-1]["val_loss"])
        assert members[sorted(rows).index(baseline)] == pytest.approx(kept, rel=2e-3, abs=2e-3)
    for baseline in rows:
        assert (tmp_path / "shared" / "refined" / baseline / "rgb_seg" / "improvement.csv").is_file()
        assert f"{baseline:14s}shared" in result.stdout and f"{baseline:14s}own" in result.stdout

    twins = tmp_path / "twins"
    shutil.copytree(results, twins)
    shutil.copyfile(results / "updater/lifting/rgb_seg/model.pt", twins / "updater/integral3d/rgb_seg/model.pt")
    result = run(twins, tmp_path / "twins_out")
    assert result.returncode == 0, result.stderr
    shared = read_predictions(tmp_path / "twins_out/refined/lifting/rgb_seg/test_poses_3d.npz").poses_3d
    own = read_predictions(results / "refined/lifting/rgb_seg/test_poses_3d.npz").poses_3d
    assert np.abs(shared - own).max() < 0.05  # mm

    refusals = (("rgb", "sharing needs two or more"), ("rgb_seg_conditioned", "reads U_init beside the patches"))
    for variant, message in refusals:
        refused = run(results, tmp_path / variant, "--variant", variant)
        assert refused.returncode != 0 and message in refused.stderr, refused.stderr
    settings = yaml.safe_load((tiny_run / "config.yaml").read_text(encoding="utf-8"))
    settings["updater"]["training"]["validation_subjects"] = []
    (tmp_path / "poses.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    refused = run(results, tmp_path / "poses", configfile=str(tmp_path / "poses.yaml"))
    assert refused.returncode != 0 and "validation_subjects is []" in refused.stderr


def test_the_code_digest_benchmark_agrees_both_ways_and_dry_runs_each_way(tmp_path, monkeypatch):
    module = benchmark_module("code_digest.py", monkeypatch)
    roots = module.digest_roots()
    scripts = {Path(root[0]).name for root in roots}
    assert {"train_updater.py", "refine_with_updater.py"} <= scripts
    assert "patchpose.keypoints2d.stage" in {root[-1] for root in roots if len(root) == 2}
    _, per_digest = module.time_digests(roots[:4], parse_once=False)
    _, once = module.time_digests(roots[:4], parse_once=True)
    assert per_digest == once == [code_digest(*root) for root in roots[:4]]
    workflow = copy_workflow(tmp_path)  # the dry run with the package's parse cache switched off, then as it comes
    assert module.dry_run_seconds(parse_once=False, repo=workflow) > 0
    assert module.dry_run_seconds(parse_once=True, repo=workflow) > 0
