"""The claims helper: "refined average lower, interval excludes 0" holds exactly when both parts do, and the
interval must be that of the two tables it is stated for."""

from __future__ import annotations

import json

import numpy as np
import pytest

from patchpose.evaluation.bootstrap import improvement_intervals
from patchpose.evaluation.claims import improvement_claim
from patchpose.evaluation.frame_errors import FrameErrors, read_frame_errors
from patchpose.metrics import MEAN_OF_ACTION_MEANS_LABEL, MEAN_OVER_FRAMES_LABEL
from patchpose.skeleton import H36M

# Eight frames: Eating poses 0..2 (frames 0-3, pose 0 seen twice), Walking poses 3..5 (frames 4-7, pose 3 twice).
ACTIONS = ["Eating"] * 4 + ["Walking"] * 4
CAMERAS = [54138969, 55011271, 54138969, 54138969] * 2
INDICES = [0, 0, 64, 128] * 2


def _table(tmp_path, name: str, mpjpe) -> FrameErrors:
    ids = [f"S9/{a}/1/{c}/{i:06d}" for a, c, i in zip(ACTIONS, CAMERAS, INDICES, strict=True)]
    errors = np.asarray(mpjpe, dtype=float)
    np.savez(
        tmp_path / name, format_version=np.array(1), source=np.array("synthetic"), split=np.array("test"),
        joint_names=np.array(H36M.joint_names), frame_id=np.array(ids), subject=np.array(["S9"] * 8),
        action=np.array(ACTIONS), subaction=np.ones(8, np.int64), camera_id=np.array(CAMERAS),
        frame_index=np.array(INDICES), mpjpe_mm=errors, pa_mpjpe_mm=errors / 2,
        joint_errors_mm=np.repeat(errors[:, None], 17, axis=1),
    )  # fmt: skip
    return read_frame_errors(tmp_path / name)


INITIAL = [40.0, 40.0, 50.0, 60.0, 80.0, 80.0, 90.0, 100.0]


def test_a_clear_improvement_holds_with_its_numbers(tmp_path):
    initial = _table(tmp_path, "initial.npz", INITIAL)
    refined = _table(tmp_path, "refined.npz", np.subtract(INITIAL, [4, 4, 6, 5, 10, 10, 8, 12]))
    intervals = improvement_intervals(initial, refined, resamples=1000, seed=1)
    claim = improvement_claim(initial, refined, intervals)
    # action means: Eating initial (40+40+50+60)/4 = 47.5, refined 47.5 - 19/4; Walking 87.5 and 87.5 - 40/4
    assert claim["holds"] is True
    assert claim["initial_mm"] == pytest.approx((47.5 + 87.5) / 2)
    assert claim["improvement_mm"] == pytest.approx((19 / 4 + 40 / 4) / 2)
    assert claim["initial_mm"] - claim["refined_mm"] == pytest.approx(claim["improvement_mm"])
    assert 0 < claim["ci_low_mm"] <= claim["improvement_mm"] <= claim["ci_high_mm"]
    row = intervals.row(MEAN_OF_ACTION_MEANS_LABEL)
    assert (claim["ci_low_mm"], claim["ci_high_mm"]) == (row["ci_low_mm"], row["ci_high_mm"])
    assert (claim["frames"], claim["clusters"], claim["resamples"], claim["seed"]) == (8, 6, 1000, 1)
    assert claim["claim"] == (
        "refined MPJPE lower than initial (average (mean of action means)), 95% bootstrap interval of the "
        "improvement excludes 0"
    )
    assert claim["initial"].endswith("initial.npz") and claim["refined"].endswith("refined.npz")
    json.dumps(claim, allow_nan=False)  # ready for claims.json


def test_a_lower_average_whose_interval_reaches_0_does_not_hold(tmp_path):
    initial = _table(tmp_path, "initial.npz", INITIAL)
    # one pose per action improves (by 8 and 12 mm), the others not at all: some resamples hold none of them
    refined = _table(tmp_path, "refined.npz", np.subtract(INITIAL, [0, 0, 0, 8, 0, 0, 0, 12]))
    claim = improvement_claim(initial, refined, improvement_intervals(initial, refined, resamples=2000, seed=0))
    assert claim["refined_mm"] < claim["initial_mm"] and claim["ci_low_mm"] == 0.0
    assert claim["holds"] is False


def test_a_worse_refinement_does_not_hold(tmp_path):
    initial = _table(tmp_path, "initial.npz", INITIAL)
    refined = _table(tmp_path, "refined.npz", np.add(INITIAL, 3.0))
    claim = improvement_claim(initial, refined, improvement_intervals(initial, refined, resamples=200, seed=0))
    assert claim["holds"] is False and claim["ci_high_mm"] == pytest.approx(-3.0)


def test_the_claim_follows_the_metric_and_average_of_its_intervals(tmp_path):
    initial = _table(tmp_path, "initial.npz", INITIAL)
    refined = _table(tmp_path, "refined.npz", np.subtract(INITIAL, 2.0))
    intervals = improvement_intervals(initial, refined, resamples=200, seed=0, metric="pa_mpjpe_mm")
    claim = improvement_claim(initial, refined, intervals, average=MEAN_OVER_FRAMES_LABEL)
    assert claim["metric"] == "pa_mpjpe_mm" and claim["claim"].startswith("refined PA-MPJPE lower")
    assert claim["initial_mm"] == pytest.approx(np.mean(INITIAL) / 2) and claim["improvement_mm"] == pytest.approx(1)


def test_intervals_of_other_tables_are_refused(tmp_path):
    initial = _table(tmp_path, "initial.npz", INITIAL)
    refined = _table(tmp_path, "refined.npz", np.subtract(INITIAL, 2.0))
    other = _table(tmp_path, "other.npz", np.subtract(INITIAL, 5.0))
    with pytest.raises(
        ValueError, match="refined.npz: the intervals' improvement 5.000000 mm is not initial - refined"
    ):
        improvement_claim(initial, refined, improvement_intervals(initial, other, resamples=50, seed=0))
    with pytest.raises(ValueError, match="average must be"):
        improvement_claim(initial, refined, improvement_intervals(initial, refined, resamples=50, seed=0),
                          average="Walking")  # fmt: skip


def test_the_patches_add_to_the_pose_claim_compares_the_conditioned_updater_with_the_pose_only_control(tmp_path):
    from patchpose.evaluation.refinement import compose_claims

    pose_only = np.subtract(INITIAL, 1.0)
    files = {
        "pose_only": pose_only,
        "rgb_seg": np.add(INITIAL, 1.0),
        "rgb_seg_conditioned": np.subtract(pose_only, 3.0),
    }
    refined = {}
    for variant, errors in files.items():
        _table(tmp_path, f"{variant}.npz", errors)
        refined[f"integral3d/{variant}"] = str(tmp_path / f"{variant}.npz")
    claims = compose_claims(baseline_errors={}, refined_errors=refined, deciles={}, table1=[],
                            ablation="integral3d", resamples=200, confidence=0.95, seed=0)  # fmt: skip
    added = claims["patches add to the pose-only control"]
    assert added["holds"] is True and added["improvement_mm"] == pytest.approx(3.0)
    assert added["initial"].endswith("pose_only.npz") and added["refined"].endswith("rgb_seg_conditioned.npz")
    assert added["claim"].startswith("integral3d: the conditioned updater (patches + U_init) beats the pose-only")
    assert claims["patches beat the pose-only control"]["holds"] is False  # rgb_seg is 2 mm worse than pose_only
    del refined["integral3d/rgb_seg_conditioned"]
    assert "patches add to the pose-only control" not in compose_claims(
        baseline_errors={}, refined_errors=refined, deciles={}, table1=[], ablation="integral3d",
        resamples=200, confidence=0.95, seed=0,
    )  # fmt: skip


def test_the_pixels_claim_compares_the_conditioned_updater_with_the_pose_boxes_control(tmp_path):
    from patchpose.evaluation.refinement import compose_claims

    pose_only = np.subtract(INITIAL, 1.0)
    pose_boxes = np.subtract(pose_only, 2.0)  # the boxes alone correct 2 mm more than U_init alone
    files = {"pose_only": pose_only, "pose_boxes": pose_boxes, "rgb_seg_conditioned": np.subtract(pose_boxes, 1.5)}
    refined = {}
    for variant, errors in files.items():
        _table(tmp_path, f"{variant}.npz", errors)
        refined[f"integral3d/{variant}"] = str(tmp_path / f"{variant}.npz")

    def claims_of(files: dict) -> dict:
        return compose_claims(baseline_errors={}, refined_errors=files, deciles={}, table1=[], ablation="integral3d",
                              resamples=200, confidence=0.95, seed=0)  # fmt: skip

    claims = claims_of(refined)
    pixels = claims["pixels add to the pose and boxes"]
    assert pixels["holds"] is True and pixels["improvement_mm"] == pytest.approx(1.5)
    assert pixels["initial"].endswith("pose_boxes.npz") and pixels["refined"].endswith("rgb_seg_conditioned.npz")
    stated = "integral3d: the conditioned updater (patches + U_init + boxes) beats the pose + boxes control"
    assert pixels["claim"].startswith(f"{stated} (U_init + boxes, no pixels); refined MPJPE lower")
    # its own bootstrap stream: the interval of the pair's difference drawn with the names ("claims", "pixels")
    before, after = (read_frame_errors(tmp_path / f"{v}.npz") for v in ("pose_boxes", "rgb_seg_conditioned"))
    row = improvement_intervals(before, after, resamples=200, seed=0, stream_names=("claims", "pixels")).row(
        MEAN_OF_ACTION_MEANS_LABEL)  # fmt: skip
    assert (pixels["ci_low_mm"], pixels["ci_high_mm"]) == (row["ci_low_mm"], row["ci_high_mm"])
    # the other claims are those of a run without the control, number for number
    without = claims_of({key: path for key, path in refined.items() if not key.endswith("/pose_boxes")})
    assert set(claims) - set(without) == {"pixels add to the pose and boxes"}
    assert all(claims[key] == claim for key, claim in without.items())
    assert claims["patches add to the pose-only control"]["improvement_mm"] == pytest.approx(3.5)
    # pixels that add nothing beyond the boxes: the claim fails
    _table(tmp_path, "worse.npz", np.add(pose_boxes, 1.0))
    assert claims_of({**refined, "integral3d/rgb_seg_conditioned": str(tmp_path / "worse.npz")})[
        "pixels add to the pose and boxes"]["holds"] is False  # fmt: skip
    # present only when both ran
    del refined["integral3d/rgb_seg_conditioned"]
    assert "pixels add to the pose and boxes" not in claims_of(refined)


def test_the_table_2_and_3_claims_hold_only_when_the_paired_intervals_exclude_0(tmp_path):
    from patchpose.evaluation.refinement import compose_claims

    noisy_tie = np.array([2.0, -1.5] * 4)  # seg - rgb_seg: 0.25 mm lower on average, but not for every pose
    files = {
        "uncropped_rgb": np.add(INITIAL, 2.0),
        "rgb": np.asarray(INITIAL),
        "seg": np.subtract(INITIAL, 1.0),
        "rgb_seg": np.subtract(INITIAL, 3.0),
    }

    def claims_for(files):
        refined = {}
        for variant, errors in files.items():
            _table(tmp_path, f"{variant}.npz", errors)
            refined[f"lifting/{variant}"] = str(tmp_path / f"{variant}.npz")
        return compose_claims(baseline_errors={}, refined_errors=refined, deciles={}, table1=[], ablation="lifting",
                              resamples=400, confidence=0.95, seed=0)  # fmt: skip

    claims = claims_for(files)
    t2, t3 = claims["T2 cropped rgb beats uncropped rgb"], claims["T3 rgb_seg beats rgb and seg"]
    assert t2["holds"] is True and t2["improvement_mm"] == pytest.approx(2.0)
    assert (t2["ci_low_mm"], t2["ci_high_mm"]) == pytest.approx((2.0, 2.0))
    assert t2["rgb_mm"] == pytest.approx(67.5) and t2["uncropped_rgb_mm"] == pytest.approx(69.5)  # (47.5 + 87.5) / 2
    assert t3["holds"] is True
    assert t3["over_rgb"]["improvement_mm"] == pytest.approx(3.0)
    assert t3["over_seg"]["improvement_mm"] == pytest.approx(2.0)
    assert t3["over_seg"]["initial"].endswith("/seg.npz") and t3["over_seg"]["refined"].endswith("/rgb_seg.npz")

    claims = claims_for({**files, "rgb_seg": np.subtract(files["seg"], noisy_tie)})
    t3 = claims["T3 rgb_seg beats rgb and seg"]
    assert t3["rgb_seg_mm"] < t3["seg_mm"]  # lower on average ...
    assert t3["over_seg"]["improvement_mm"] == pytest.approx(0.25) and t3["over_seg"]["ci_low_mm"] < 0
    assert t3["holds"] is False  # ... but not beyond the interval

    del files["uncropped_rgb"]
    assert "T2 cropped rgb beats uncropped rgb" not in claims_for(files)


def test_the_table_1_claim_states_the_interval_its_improvement_csv_prints(tmp_path):
    from patchpose.evaluation.refinement import compose_claims, refinement_stream

    initial = _table(tmp_path, "initial.npz", INITIAL)
    refined = _table(tmp_path, "refined.npz", np.subtract(INITIAL, [5.0, 1.0, 9.0, -2.0, 7.0, 0.0, 3.0, 11.0]))
    claims = compose_claims(baseline_errors={"lifting": str(tmp_path / "initial.npz")},
                            refined_errors={"lifting/rgb_seg": str(tmp_path / "refined.npz")}, deciles={},
                            table1=[("lifting", "rgb_seg")], ablation=None, resamples=300, confidence=0.9,
                            seed=3)  # fmt: skip
    printed = improvement_intervals(initial, refined, resamples=300, seed=3, confidence=0.9,
                                    stream_names=refinement_stream("lifting", "rgb_seg"))  # fmt: skip
    row = next(row for row in printed.rows if row["action"] == MEAN_OF_ACTION_MEANS_LABEL)
    claim = claims["T1 lifting/rgb_seg"]
    assert row["ci_low_mm"] < row["ci_high_mm"]  # a real spread, so another stream would give another interval
    assert (claim["ci_low_mm"], claim["ci_high_mm"]) == (row["ci_low_mm"], row["ci_high_mm"])
    assert refinement_stream("lifting", "rgb_seg") == ("refined", "lifting", "rgb_seg")  # docs/cli.md's --stream
