"""The paired cluster bootstrap: clusters per dataset, golden distributions worked out by hand, whole clusters,
stratification by action, seeding, and the pairing of two per-frame error tables."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patchpose.dataset_format import DatasetWriter, open_dataset
from patchpose.evaluation.bootstrap import bootstrap_replicates, improvement_intervals, paired_bootstrap
from patchpose.evaluation.frame_errors import FrameErrorsFileError, read_frame_errors
from patchpose.evaluation.groups import cluster_ids, pose_ids, store_cluster_ids, store_pose_ids
from patchpose.metrics import MEAN_OF_ACTION_MEANS_LABEL, MEAN_OVER_FRAMES_LABEL
from patchpose.skeleton import H36M
from tests.dataset_factory import TINY_ACTIONS, make_tiny_batch

# Six frames: two poses of one sequence seen by two cameras, and one pose of another sequence seen by two.
SUBJECTS = ["S9", "S9", "S9", "S9", "S11", "S11"]
ACTIONS = ["Walking"] * 6
SUBACTIONS = [1, 1, 1, 1, 2, 2]
CAMERAS = [54138969, 55011271, 54138969, 55011271, 54138969, 55011271]
FRAME_INDICES = [0, 0, 64, 64, 0, 0]


# --- clusters ------------------------------------------------------------------------------------------


def test_synthetic_clusters_are_poses_and_h36m_clusters_are_sequences():
    columns = (SUBJECTS, ACTIONS, SUBACTIONS, FRAME_INDICES)
    assert cluster_ids("synthetic", *columns).tolist() == [0, 0, 1, 1, 2, 2]  # the views of one pose
    assert cluster_ids("h36m", *columns).tolist() == [0, 0, 0, 0, 1, 1]  # (subject, action, subaction)
    assert pose_ids(*columns).tolist() == [0, 0, 1, 1, 2, 2]
    with pytest.raises(ValueError, match="store.zarr: no bootstrap clusters are defined for source 'mocap'; known: "
                                         "synthetic, h36m"):  # fmt: skip
        cluster_ids("mocap", *columns, where="store.zarr")


@pytest.mark.parametrize(("source", "expected"), [("synthetic", [0, 0, 1, 1, 2, 2]), ("h36m", [0, 0, 0, 0, 1, 1])])
def test_store_clusters_follow_the_source_attribute(tmp_path, source, expected):
    batch = make_tiny_batch(6, (16, 16), np.random.default_rng(0), with_part_labels=False)
    batch.update(
        subject=np.array([("S9", "S11").index(s) for s in SUBJECTS], np.int16),
        action=np.full(6, TINY_ACTIONS.index("Walking"), np.int16),
        subaction=np.array(SUBACTIONS, np.int16),
        camera_id=np.array(CAMERAS, np.int64),
        frame_index=np.array(FRAME_INDICES, np.int32),
    )
    header = {"num_frames": 6, "frame_size": (16, 16), "has_part_labels": False, "split": "test"}
    with DatasetWriter(tmp_path / "test.zarr", source=source, subjects=("S9", "S11"), actions=TINY_ACTIONS,
                       **header) as writer:  # fmt: skip
        writer.write(0, batch)
    store = open_dataset(tmp_path / "test.zarr")
    assert store_cluster_ids(store).tolist() == expected
    assert store_pose_ids(store).tolist() == [0, 0, 1, 1, 2, 2]


# --- golden distributions ------------------------------------------------------------------------------


def test_two_clusters_0_and_10_give_0_5_10_with_probabilities_quarter_half_quarter():
    # Two clusters of three frames each, improvements 0 and 10 mm: a resample holds two clusters drawn
    # with replacement, so its mean is 0 (both the first), 5 (one each) or 10 with probabilities 1/4, 1/2, 1/4.
    improvement = [0.0] * 3 + [10.0] * 3
    replicates = bootstrap_replicates(improvement, ["Walking"] * 6, [0, 0, 0, 1, 1, 1], resamples=20_000, seed=3)
    values, counts = np.unique(replicates.mean_of_action_means, return_counts=True)
    assert values.tolist() == [0.0, 5.0, 10.0]
    np.testing.assert_allclose(counts / 20_000, [0.25, 0.5, 0.25], atol=0.015)
    assert np.median(replicates.mean_of_action_means) == 5.0
    intervals = paired_bootstrap(improvement, ["Walking"] * 6, [0, 0, 0, 1, 1, 1], resamples=20_000, seed=3)
    for label in ("Walking", MEAN_OF_ACTION_MEANS_LABEL, MEAN_OVER_FRAMES_LABEL):
        row = intervals.row(label)
        assert (row["improvement_mm"], row["ci_low_mm"], row["ci_high_mm"]) == (5.0, 0.0, 10.0)
        assert (row["frames"], row["clusters"]) == (6, 2)


@settings(max_examples=30, deadline=None)
@given(
    d=st.floats(-200.0, 200.0, allow_nan=False),
    sizes=st.lists(st.integers(1, 4), min_size=1, max_size=6),
    seed=st.integers(0, 2**31),
)
def test_clusters_that_all_improve_by_d_give_the_interval_d_d(d, sizes, seed):
    clusters = np.repeat(np.arange(len(sizes)), sizes)
    actions = ["Walking" if c % 2 else "Eating" for c in clusters]
    intervals = paired_bootstrap(np.full(clusters.size, d), actions, clusters, resamples=50, seed=seed)
    for row in intervals.rows:
        assert row["improvement_mm"] == pytest.approx(d, rel=1e-12, abs=1e-12)
        assert row["ci_low_mm"] == pytest.approx(d, rel=1e-12, abs=1e-12)
        assert row["ci_high_mm"] == pytest.approx(d, rel=1e-12, abs=1e-12)


def test_the_views_of_one_pose_always_move_together():
    # Two poses with four views each, every view's improvement different: whole poses give replicate means
    # mean(A) = 1.5, (1.5 + 101.5) / 2 = 51.5 or mean(B) = 101.5 only; resampling views would give many more.
    improvement = [0.0, 1.0, 2.0, 3.0, 100.0, 101.0, 102.0, 103.0]
    replicates = bootstrap_replicates(improvement, ["Walking"] * 8, [0] * 4 + [1] * 4, resamples=2000, seed=0)
    assert set(replicates.mean_over_frames.tolist()) == {1.5, 51.5, 101.5}


def test_unequal_clusters_weigh_by_their_frames():
    # Clusters of 1 frame (0 mm) and 3 frames (8 mm): the action mean over frames of a resample holding one
    # of each is (0 + 3 * 8) / 4 = 6, not the mean of cluster means 4; the point estimate is 6 as well.
    replicates = bootstrap_replicates([0.0, 8.0, 8.0, 8.0], ["Walking"] * 4, [0, 1, 1, 1], resamples=2000, seed=1)
    assert set(replicates.action_means[:, 0].tolist()) == {0.0, 6.0, 8.0}
    assert paired_bootstrap([0.0, 8.0, 8.0, 8.0], ["Walking"] * 4, [0, 1, 1, 1], resamples=10, seed=1).row("Walking")[
        "improvement_mm"
    ] == pytest.approx(6.0)


def test_resampling_is_stratified_by_action():
    # Eating improves by 2 mm in each of its 5 clusters, Walking by 6 mm in each of its 2: every action
    # keeps its own clusters in every replicate, so the mean of action means is always (2 + 6) / 2 = 4 and
    # the mean over frames always (5 * 2 + 2 * 6) / 7; resampling the 7 clusters together would vary both.
    improvement = [2.0] * 5 + [6.0] * 2
    actions = ["Eating"] * 5 + ["Walking"] * 2
    replicates = bootstrap_replicates(improvement, actions, np.arange(7), resamples=500, seed=2)
    assert replicates.actions == ("Eating", "Walking") and replicates.clusters == (5, 2)
    np.testing.assert_allclose(replicates.mean_of_action_means, 4.0, rtol=1e-15)
    np.testing.assert_allclose(replicates.mean_over_frames, 22 / 7, rtol=1e-15)


def test_mean_of_action_means_interval_is_about_action_means_not_frames():
    # Eating: 1 cluster of 6 frames at 0 mm; Walking: 2 clusters of 1 frame at 0 and 12 mm. Walking's
    # replicate mean is 0, 6 or 12, Eating's always 0, so the mean of action means is 0, 3 or 6 (half of
    # Walking's), while the mean over frames is 0, 12/8 or 24/8.
    improvement = [0.0] * 6 + [0.0, 12.0]
    actions = ["Eating"] * 6 + ["Walking"] * 2
    clusters = [0] * 6 + [1, 2]
    intervals = paired_bootstrap(improvement, actions, clusters, resamples=4000, seed=5)
    average = intervals.row(MEAN_OF_ACTION_MEANS_LABEL)
    assert (average["improvement_mm"], average["ci_low_mm"], average["ci_high_mm"]) == (3.0, 0.0, 6.0)
    frames = intervals.row(MEAN_OVER_FRAMES_LABEL)
    assert (frames["improvement_mm"], frames["ci_low_mm"], frames["ci_high_mm"]) == (1.5, 0.0, 3.0)
    assert [row["action"] for row in intervals.rows] == ["Eating", "Walking", MEAN_OF_ACTION_MEANS_LABEL,
                                                         MEAN_OVER_FRAMES_LABEL]  # fmt: skip


# --- seeding -------------------------------------------------------------------------------------------


def _data(num_clusters: int = 30, seed: int = 0):
    rng = np.random.default_rng(seed)
    clusters = np.repeat(np.arange(num_clusters), 4)
    actions = np.where(clusters < num_clusters // 2, "Eating", "Walking")
    improvement = rng.normal(3.0, 5.0, num_clusters)[clusters] + rng.normal(0, 1, clusters.size)
    return improvement, actions, clusters


def test_same_seed_same_intervals_other_seed_others():
    improvement, actions, clusters = _data()
    first = paired_bootstrap(improvement, actions, clusters, resamples=300, seed=7, stream_names=("lifting",))
    again = paired_bootstrap(improvement, actions, clusters, resamples=300, seed=7, stream_names=("lifting",))
    other = paired_bootstrap(improvement, actions, clusters, resamples=300, seed=7, stream_names=("integral3d",))
    assert first.rows == again.rows and first.rows != other.rows
    assert [r["improvement_mm"] for r in first.rows] == [r["improvement_mm"] for r in other.rows]


def test_an_actions_replicates_do_not_depend_on_the_other_actions_or_on_chunking(monkeypatch):
    improvement, actions, clusters = _data()
    both = bootstrap_replicates(improvement, actions, clusters, resamples=200, seed=4)
    walking = actions == "Walking"
    alone = bootstrap_replicates(improvement[walking], actions[walking], clusters[walking], resamples=200, seed=4)
    np.testing.assert_array_equal(both.action_means[:, 1], alone.action_means[:, 0])
    monkeypatch.setattr("patchpose.evaluation.intervals.DRAWS_PER_CHUNK", 64)  # a few replicates per draw
    chunked = bootstrap_replicates(improvement, actions, clusters, resamples=200, seed=4)
    np.testing.assert_array_equal(chunked.action_means, both.action_means)


# --- refusals and pairing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"clusters": [0, 0, 1, 1]}, "clusters must be 3 integer ids"),
        ({"clusters": [0.0, 0.0, 1.0]}, "clusters must be 3 integer ids"),
        ({"actions": ["Eating", "Walking", "Walking"], "clusters": [0, 0, 1]}, "a cluster holds frames of several"),
        ({"resamples": 0}, "resamples must be an integer >= 1"),
        ({"confidence": 1.0}, "confidence must lie in (0, 1)"),
        ({"improvement_mm": [1.0, np.nan, 2.0]}, "non-finite"),
    ],
)
def test_bad_inputs_are_refused(kwargs, message):
    arguments = {"improvement_mm": [1.0, 2.0, 3.0], "actions": ["Walking"] * 3, "clusters": [0, 0, 1],
                 "resamples": 10, "seed": 0, **kwargs}  # fmt: skip
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        paired_bootstrap(**arguments)


def _table(tmp_path, name: str, mpjpe, frame_index=(0, 0, 64, 64), source: str = "synthetic"):
    n = len(mpjpe)
    actions = np.array(["Walking"] * n)
    cameras = np.array([54138969, 55011271] * (n // 2))
    index = np.array(frame_index)
    ids = [f"S9/Walking/1/{c}/{i:06d}" for c, i in zip(cameras, index, strict=True)]
    np.savez(
        tmp_path / name,
        format_version=np.array(1), source=np.array(source), split=np.array("test"),
        joint_names=np.array(H36M.joint_names), frame_id=np.array(ids), subject=np.array(["S9"] * n), action=actions,
        subaction=np.ones(n, np.int64), camera_id=cameras, frame_index=index, mpjpe_mm=np.array(mpjpe, float),
        pa_mpjpe_mm=np.zeros(n), joint_errors_mm=np.repeat(np.array(mpjpe, float)[:, None], 17, axis=1),
    )  # fmt: skip
    return read_frame_errors(tmp_path / name)


def test_improvement_intervals_pair_two_tables_and_cluster_by_their_source(tmp_path):
    initial = _table(tmp_path, "initial.npz", [10.0, 12.0, 30.0, 34.0])
    refined = _table(tmp_path, "refined.npz", [10.0, 10.0, 20.0, 20.0])  # improvements 0, 2 | 10, 14
    intervals = improvement_intervals(initial, refined, resamples=4000, seed=0)
    # poses (0, 2) and (10, 14) mean 1 and 12: replicate means 1, 6.5, 12
    row = intervals.row(MEAN_OF_ACTION_MEANS_LABEL)
    assert (row["improvement_mm"], row["ci_low_mm"], row["ci_high_mm"], row["clusters"]) == (6.5, 1.0, 12.0, 2)
    assert (intervals.metric, intervals.resamples, intervals.seed, intervals.confidence) == ("mpjpe_mm", 4000, 0, 0.95)
    shuffled = _table(tmp_path, "shuffled.npz", [10.0, 10.0, 20.0, 20.0], frame_index=(64, 64, 0, 0))
    with pytest.raises(FrameErrorsFileError, match="shuffled.npz .compared with .*initial.npz.: 4 of 4 rows"):
        improvement_intervals(initial, shuffled, resamples=10, seed=0)
    with pytest.raises(ValueError, match="unknown metric 'mpjpe'"):
        improvement_intervals(initial, refined, resamples=10, seed=0, metric="mpjpe")
