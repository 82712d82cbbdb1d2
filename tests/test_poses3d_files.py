"""The 3D prediction format on its own: round trips through npz / h5 / CSV, units, joint names, bad files."""

from __future__ import annotations

import numpy as np
import pytest

from patchpose.poses3d import (
    VIDEOPOSE3D_JOINT_NAMES,
    PredictionFileError,
    canonicalise,
    read_predictions,
    write_predictions,
)
from patchpose.poses3d.joints import permutation_to_h36m
from patchpose.poses3d.units import detect_unit, resolve_unit
from patchpose.skeleton import H36M
from tests.dataset_factory import T_POSE_MM

IDS = [f"S9/Walking/1/54138969/{index:06d}" for index in range(0, 40, 8)]


def _poses(n: int = len(IDS), seed: int = 0) -> np.ndarray:
    """(n, 17, 3) mm, root-relative, H36M order: the T-pose with 10 mm jitter, pelvis at the origin."""
    poses = T_POSE_MM[None] + np.random.default_rng(seed).normal(0, 10, size=(n, 17, 3))
    return poses - poses[:, :1]


def _rejected(call, path, *fragments: str) -> str:
    """Run ``call``; expect a PredictionFileError whose message starts with ``path`` and holds the fragments."""
    with pytest.raises(PredictionFileError) as caught:
        call()
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.mark.parametrize("suffix", [".npz", ".h5", ".hdf5", ".csv"])
def test_round_trip_every_container(tmp_path, suffix):
    path = tmp_path / f"pred{suffix}"
    poses = _poses()
    write_predictions(path, poses, IDS, split="test", method="mine", unit="mm")
    back = read_predictions(path)
    assert back.frame_ids == tuple(IDS)
    assert back.joint_names == H36M.joint_names
    assert (back.unit, back.split, back.method, back.format_version) == ("mm", "test", "mine", 1)
    np.testing.assert_allclose(back.poses_3d, poses, atol=1e-3)  # float32 (npz, h5) or 6 decimals (CSV)


def test_round_trip_keeps_a_foreign_joint_order_and_unit(tmp_path):
    path = tmp_path / "foreign.csv"
    order = np.random.default_rng(1).permutation(17)
    names = [VIDEOPOSE3D_JOINT_NAMES[j] for j in order]
    poses = _poses()[:, order] / 1000
    write_predictions(path, poses, IDS, split="train+test", method="x", unit="m", joint_names=names)
    back = read_predictions(path)
    assert back.joint_names == tuple(names) and back.unit == "m"
    np.testing.assert_allclose(back.poses_3d, poses, atol=1e-6)
    canonical, report = canonicalise(back)
    np.testing.assert_allclose(canonical.poses_3d, _poses(), atol=2e-3)
    assert report["unit"] == "m" and report["scale_to_mm"] == 1000


def test_csv_layout_is_the_documented_one(tmp_path):
    path = tmp_path / "pred.csv"
    write_predictions(path, _poses(), IDS, split="test", method="mine")
    lines = path.read_text().splitlines()
    assert lines[:4] == ["# format_version: 1", "# unit: mm", "# split: test", "# method: mine"]
    assert lines[4].split(",")[:4] == ["frame_id", "pelvis_x", "pelvis_y", "pelvis_z"]
    assert len(lines[4].split(",")) == 52 and lines[5].startswith(IDS[0] + ",")


def test_csv_without_metadata_lines_reads_with_unknown_unit(tmp_path):
    path = tmp_path / "bare.csv"
    write_predictions(path, _poses(), IDS, split="test", method="mine")
    path.write_text("\n".join(line for line in path.read_text().splitlines() if not line.startswith("#")) + "\n")
    back = read_predictions(path)
    assert back.unit is None and back.split is None and back.format_version is None


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda lines: lines[:4] + ["id," + lines[4].split(",", 1)[1]] + lines[5:], "must start with 'frame_id'"),
        (lambda lines: lines[:5] + [lines[5] + ",1.0"] + lines[6:], "line 6: 53 fields, the header has 52"),
        (lambda lines: lines[:5] + [lines[5].replace(",", ",abc,", 1).rsplit(",", 1)[0]] + lines[6:], "line 6"),
        (lambda lines: ["# colour: red"] + lines[4:], "line 1: expected '# key: value'"),
        (lambda lines: lines[:4] + [lines[4].replace("pelvis_y", "pelvis_q")] + lines[5:], "are not '<joint>_x"),
    ],
    ids=["header", "field-count", "not-a-number", "unknown-metadata", "axis-name"],
)
def test_broken_csv_is_rejected_by_line(tmp_path, edit, fragment):
    path = tmp_path / "broken.csv"
    write_predictions(path, _poses(), IDS, split="test", method="mine")
    path.write_text("\n".join(edit(path.read_text().splitlines())) + "\n")
    _rejected(lambda: read_predictions(path), path, fragment)


def test_structure_errors_name_the_file(tmp_path):
    path = tmp_path / "pred.npz"
    sixteen = _poses()[:, :16]
    _rejected(
        lambda: np.savez(path, poses_3d=sixteen, frame_ids=np.array(IDS)) or read_predictions(path),
        path,
        "holds 16 joints per frame, expected the 17",
    )
    nan = _poses()
    nan[2, 5, 1] = np.nan
    _rejected(
        lambda: np.savez(path, poses_3d=nan, frame_ids=np.array(IDS)) or read_predictions(path),
        path,
        "1 NaN or inf values in 1 frames",
        IDS[2],
    )
    _rejected(
        lambda: np.savez(path, poses_3d=_poses(), frame_ids=np.array(IDS[:-1])) or read_predictions(path),
        path,
        "4 frame_ids for 5 poses",
    )
    _rejected(
        lambda: np.savez(path, poses_3d=_poses(), frame_ids=np.array(IDS, dtype=object)) or read_predictions(path),
        path,
        "cannot read without pickle",
    )
    _rejected(lambda: np.savez(path, poses=_poses()) or read_predictions(path), path, "missing key(s) poses_3d")
    _rejected(
        lambda: np.savez(path, poses_3d=_poses(), frame_ids=np.array(IDS), format_version=2) or read_predictions(path),
        path,
        "format_version 2 is not supported",
    )
    _rejected(lambda: read_predictions(tmp_path / "absent.npz"), tmp_path / "absent.npz", "not found")
    _rejected(lambda: read_predictions(tmp_path / "pred.txt"), tmp_path / "pred.txt", "suffix '.txt'")


def test_writer_refuses_duplicate_or_malformed_ids_and_writes_nothing(tmp_path):
    path = tmp_path / "pred.npz"
    _rejected(
        lambda: write_predictions(path, _poses(), IDS[:-1] + IDS[:1], split="test", method="m"), path, "more than once"
    )
    bad = IDS[:-1] + ["S9/Walking/1/54138969/12"]
    _rejected(lambda: write_predictions(path, _poses(), bad, split="test", method="m"), path, "not canonical")
    assert not path.exists()


def test_unit_is_detected_from_bone_lengths():
    assert detect_unit(_poses())[0] == "mm"
    assert detect_unit(_poses() / 1000)[0] == "m"
    assert detect_unit(_poses() * 1000)[0] is None


@pytest.mark.parametrize(
    ("scale", "file_unit", "config_unit", "fragments"),
    [
        (1e-3, None, "auto", ["no unit declared, so mm assumed", "looks like 'm'", "declare unit: m"]),
        (1e-3, "mm", "auto", ["declared 'mm'", "looks like 'm'"]),
        (1.0, None, "m", ["declared 'm'", "looks like 'mm'", "declare unit: mm"]),
        (1e3, None, "auto", ["neither mm", "nor m"]),
        (1.0, "mm", "m", ["the file declares unit 'mm' but the config declares 'm'"]),
        (1.0, "cm", "auto", ["unit 'cm'"]),
    ],
    ids=["metres-undeclared", "metres-declared-mm", "mm-declared-m", "neither", "conflict", "unknown"],
)
def test_unit_mismatch_is_refused_saying_what_was_found(scale, file_unit, config_unit, fragments):
    _rejected(lambda: resolve_unit("f.npz", _poses() * scale, file_unit, config_unit), "f.npz", *fragments)


@pytest.mark.parametrize(("file_unit", "config_unit"), [("m", "auto"), (None, "m"), ("m", "m")])
def test_declared_metres_are_accepted(file_unit, config_unit):
    assert resolve_unit("f.npz", _poses() / 1000, file_unit, config_unit) == "m"


def test_videopose3d_order_is_ours_and_aliases_map():
    np.testing.assert_array_equal(permutation_to_h36m("f", VIDEOPOSE3D_JOINT_NAMES), np.arange(17))
    spelled = ["root", "R_Hip", "right-knee", "RAnkle", "l_hip", "LKnee", "left_foot", "torso", "Thorax", "nose"]
    spelled += ["HEAD", "LShoulder", "l_elbow", "LWrist", "right_shoulder", "RElbow", "r_wrist"]
    np.testing.assert_array_equal(permutation_to_h36m("f", spelled), np.arange(17))
    order = np.random.default_rng(3).permutation(17)
    permutation = permutation_to_h36m("f", [H36M.joint_names[j] for j in order])
    np.testing.assert_array_equal(order[permutation], np.arange(17))


def test_joint_name_errors_name_the_file():
    names = list(H36M.joint_names)
    _rejected(
        lambda: permutation_to_h36m("f.csv", names[:-1] + ["tail"]), "f.csv", "unknown joint name(s) 'tail'", "Hip"
    )
    _rejected(lambda: permutation_to_h36m("f.csv", names[:-1] + ["Hip"]), "f.csv", "'pelvis' and 'Hip' both mean")
    _rejected(lambda: permutation_to_h36m("f.csv", names[:-1]), "f.csv", "lists 16 joints")


def test_joint_order_must_be_declared_once_and_consistently(tmp_path):
    path = tmp_path / "pred.npz"
    np.savez(path, poses_3d=_poses(), frame_ids=np.array(IDS))
    bare = read_predictions(path)
    _rejected(lambda: canonicalise(bare), path, "the joint order is unknown")
    _rejected(lambda: canonicalise(bare, joint_names="openpose"), path, "unknown named joint order 'openpose'")
    canonical, _ = canonicalise(bare, joint_names="videopose3d")
    np.testing.assert_allclose(canonical.poses_3d, _poses())
    write_predictions(path, _poses(), IDS, split="test", method="m")
    reversed_names = list(H36M.joint_names[::-1])
    _rejected(lambda: canonicalise(read_predictions(path), joint_names=reversed_names), path, "different joint orders")


def test_root_is_subtracted_and_reported(tmp_path):
    path = tmp_path / "absolute.h5"
    offset = np.array([100.0, -50.0, 4000.0])
    write_predictions(path, _poses() + offset, IDS, split="test", method="m")
    canonical, report = canonicalise(read_predictions(path))
    np.testing.assert_allclose(canonical.poses_3d, _poses(), atol=1e-3)
    assert np.all(canonical.poses_3d[:, 0] == 0)
    assert report["root_offset_max_mm"] == pytest.approx(np.linalg.norm(offset), abs=1e-2)
