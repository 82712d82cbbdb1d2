"""How rare each test pose is among the training poses, and two files' errors by decile of rarity.

**Body frame.** Every ground-truth pose ((17, 3) mm, camera frame, ``H36M`` order) is expressed in its own
body frame, so neither the viewpoint nor where the person stands or faces counts:

* origin: the pelvis (joint 0);
* x: the unit vector from the right hip to the left hip;
* z: up the spine: ``thorax - pelvis`` minus its x component, normalised (so exactly orthogonal to x);
* y = z × x, completing a right-handed frame (x × y = z); it points behind the body.

A pose whose hips coincide, or whose spine is parallel to the hips, has no body frame (``ValueError``).

**Distance** between two poses ``p``, ``q`` in body frames: the root mean square over the 17 joints of the
joint-to-joint distance, ``sqrt(mean_j |p_j - q_j|^2)`` mm per joint (= the 51-D Euclidean distance over
``sqrt(17)``). It is a metric a nearest-neighbour search handles exactly, and it is never below the mean
joint distance (MPJPE) of the two poses; the two are equal when every joint is equally far off.

**Rarity** of a test pose: the mean of its distances to its ``k`` nearest training poses, mm. Training poses
are the training store's distinct poses (a pose's views counted once, ``groups.pose_ids``), test rarity is
computed once per pose and shared by all its views.

**Search**, exact: chunked brute force on BLAS. Squared distances ``|q|^2 + |r|^2 - 2 q·r`` come from matrix
products of blocks of at most ``_BLOCK_ELEMENTS`` (test x training pairs, 32 MiB of float64); each block's
candidates are merged into a running k-best per test pose (``argpartition``), and the k distances kept are
recomputed directly from the differences at the end, so the rounding of the product form never reaches the
result. Memory is bounded by the block whatever the sizes; time grows as ``test x training`` pairs (51
multiply-adds and a partition step each): 960 x 6,000 (the synthetic default) takes a fraction of a second;
2,000 x 30,000 took 0.8 s on a 2-core machine, so Human3.6M's ~100k x 300k takes minutes (~7 there). A
KD-tree (scipy) was not used: in 51 dimensions it prunes little, and its cost depends on the data where this
one does not.

**Deciles**: the test poses sorted by rarity (ties by pose order) and cut into ten groups of equal count
(sizes differ by at most one): decile ``d`` (1..10) holds the poses of rank ``r`` with ``floor(10 r / P) = d - 1``
among ``P`` poses. Per decile: its poses and frames, its rarity range, the mean error over its frames of an
initial and a refined file, the gain ``initial - refined`` (mm) and the relative gain ``gain / initial``.

**Intervals** of the relative gains, as a fraction (percentile intervals, ``intervals``, as ``bootstrap``'s):
each decile's, and that of its relative gain minus the commonest decile's (``vs_commonest``; the rare-pose claim
compares the rarest decile with the commonest). One replicate redraws, in every decile independently, the
decile's bootstrap clusters (``groups.cluster_ids``: a pose on the synthetic world, so a decile's poses; on
Human3.6M a sequence's frames inside the decile) as many times as it has them, with replacement, and computes
the relative gain over the drawn frames, ``(sum initial - sum refined) / sum initial``. The deciles are the
strata: their make-up (which poses are how rare) is fixed by the data, and with as few as 24 poses a decile
(the synthetic default) a decile's gain is far noisier than the average's. Decile ``d``'s draws come from
``patchpose.rng.stream(seed, *stream_names, "rarity decile", d)``; the difference's replicate ``b`` is decile
``d``'s replicate ``b`` minus decile 1's. On Human3.6M a sequence's frames in two deciles are drawn apart,
which ignores what the two share; errors within a recording move together, so the difference's interval is then,
if anything, too wide.
"""

from __future__ import annotations

import csv
import io
import os

import numpy as np

from patchpose.atomic import atomic_write_bytes
from patchpose.dataset_format import DatasetStore
from patchpose.evaluation.frame_errors import FrameErrors, check_paired
from patchpose.evaluation.groups import cluster_ids, pose_ids, store_pose_ids
from patchpose.evaluation.intervals import check_confidence, check_resamples, percentile_interval, resampled_sums
from patchpose.rng import stream
from patchpose.skeleton import H36M

__all__ = [
    "DECILE_COLUMNS",
    "body_frame",
    "pose_rarity",
    "frame_rarity",
    "write_rarity",
    "read_rarity",
    "decile_rows",
    "rarity_deciles",
    "read_deciles",
]

DECILE_COLUMNS = (
    "decile",
    "poses",
    "frames",
    "rarity_low_mm",
    "rarity_high_mm",
    "initial_mm",
    "refined_mm",
    "gain_mm",
    "gain_relative",
    "gain_relative_ci_low",
    "gain_relative_ci_high",
    "vs_commonest",
    "vs_commonest_ci_low",
    "vs_commonest_ci_high",
)
NUM_DECILES = 10
_BLOCK_ELEMENTS = 1 << 22  # test x training distances computed at once
_REFERENCE_BLOCK = 8192  # training poses per block
_PELVIS, _RIGHT_HIP, _LEFT_HIP, _THORAX = map(H36M.joint_index, ("pelvis", "right_hip", "left_hip", "thorax"))
_MIN_AXIS_MM = 1e-6


def _poses(poses_mm, name: str) -> np.ndarray:
    poses = np.asarray(poses_mm, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (H36M.num_joints, 3) or poses.shape[0] == 0:
        raise ValueError(f"{name} must have shape (N, {H36M.num_joints}, 3) with N >= 1, got {poses.shape}")
    bad = int(np.count_nonzero(~np.isfinite(poses)))
    if bad:
        raise ValueError(f"{name} contains {bad} non-finite values (NaN or inf)")
    return poses


def body_frame(poses_mm) -> np.ndarray:
    """(N, 17, 3) mm: ``poses_mm`` (N, 17, 3) mm, any frame, expressed in their body frames (module docstring).

    ``ValueError`` for a bad shape, NaN or inf, or poses without a body frame (counted, first index named).
    """
    poses = _poses(poses_mm, "poses")
    centred = poses - poses[:, _PELVIS : _PELVIS + 1]
    hips = centred[:, _LEFT_HIP] - centred[:, _RIGHT_HIP]
    spine = centred[:, _THORAX]
    hip_length = np.linalg.norm(hips, axis=1)
    x = hips / np.where(hip_length > _MIN_AXIS_MM, hip_length, 1.0)[:, None]
    up = spine - np.einsum("ni,ni->n", spine, x)[:, None] * x
    up_length = np.linalg.norm(up, axis=1)
    degenerate = np.flatnonzero((hip_length <= _MIN_AXIS_MM) | (up_length <= _MIN_AXIS_MM))
    if degenerate.size:
        raise ValueError(
            f"{degenerate.size} poses have no body frame (hips coincide or the spine runs along the hips), "
            f"first pose {int(degenerate[0])}"
        )
    z = up / up_length[:, None]
    y = np.cross(z, x)
    rotation = np.stack([x, y, z], axis=1)  # (N, 3, 3), rows: the body axes in the input frame
    return np.einsum("nab,njb->nja", rotation, centred)


def _mean_nearest_distances(queries: np.ndarray, reference: np.ndarray, k: int) -> np.ndarray:
    """(Q,) mean RMS joint distance of each query (Q, 51) to its k nearest rows of ``reference`` (R, 51)."""
    reference_sq = np.einsum("rd,rd->r", reference, reference)
    reference_block = min(reference.shape[0], _REFERENCE_BLOCK)
    query_block = max(1, min(4096, _BLOCK_ELEMENTS // (reference_block + k)))
    result = np.empty(queries.shape[0])
    for q_start in range(0, queries.shape[0], query_block):
        query = queries[q_start : q_start + query_block]
        query_sq = np.einsum("qd,qd->q", query, query)
        best_sq = np.empty((query.shape[0], 0))
        best_index = np.empty((query.shape[0], 0), dtype=np.int64)
        for r_start in range(0, reference.shape[0], reference_block):
            r_stop = min(r_start + reference_block, reference.shape[0])
            squared = (
                query_sq[:, None] + reference_sq[None, r_start:r_stop] - 2.0 * (query @ reference[r_start:r_stop].T)
            )
            best_sq = np.concatenate([best_sq, squared], axis=1)
            indices = np.broadcast_to(np.arange(r_start, r_stop), squared.shape)
            best_index = np.concatenate([best_index, indices], axis=1)
            if best_sq.shape[1] > k:
                keep = np.argpartition(best_sq, k - 1, axis=1)[:, :k]
                best_sq = np.take_along_axis(best_sq, keep, axis=1)
                best_index = np.take_along_axis(best_index, keep, axis=1)
        differences = query[:, None, :] - reference[best_index]  # (q, k, 51)
        distances = np.sqrt(np.einsum("qkd,qkd->qk", differences, differences) / H36M.num_joints)
        result[q_start : q_start + query.shape[0]] = distances.mean(axis=1)
    return result


def pose_rarity(test_poses_mm, train_poses_mm, k: int) -> np.ndarray:
    """(T,) mm rarity of each test pose (T, 17, 3) among training poses (R, 17, 3), both mm in any frames
    (each pose is put in its body frame): the mean RMS joint distance to its ``k`` nearest training poses."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    train = body_frame(_poses(train_poses_mm, "train_poses_mm")).reshape(-1, 3 * H36M.num_joints)
    test = body_frame(_poses(test_poses_mm, "test_poses_mm")).reshape(-1, 3 * H36M.num_joints)
    if k > train.shape[0]:
        raise ValueError(f"k = {k} nearest training poses asked for, but there are only {train.shape[0]}")
    return _mean_nearest_distances(test, train, int(k))


def frame_rarity(test_store: DatasetStore, train_store: DatasetStore, k: int) -> np.ndarray:
    """(N,) mm rarity of each row of ``test_store``: its pose's rarity among ``train_store``'s distinct poses
    (ground truth ``joints_3d``); the views of one pose share it. ``ValueError`` naming the stores for
    stores of the wrong splits or ``k`` above the training pose count."""
    if (test_store.split, train_store.split) != ("test", "train"):
        raise ValueError(
            f"{test_store.path}, {train_store.path}: need a test and a train store, got splits "
            f"{test_store.split}, {train_store.split}"
        )
    _, train_rows = np.unique(store_pose_ids(train_store), return_index=True)
    test_poses = store_pose_ids(test_store)
    _, test_rows = np.unique(test_poses, return_index=True)  # pose p's first view, p = 0, 1, ...
    try:
        rarity = pose_rarity(test_store.joints_3d[test_rows], train_store.joints_3d[train_rows], k)
    except ValueError as error:
        raise ValueError(f"{test_store.path} against {train_store.path}: {error}") from None
    return rarity[test_poses]


def _relative_gain_replicates(initial, refined, clusters, resamples: int, rng) -> np.ndarray:
    """(B,) relative gains ``(sum initial - sum refined) / sum initial`` over frames drawn by whole ``clusters``
    (``intervals.resampled_sums``); NaN where the drawn initial errors sum to 0."""
    _, local = np.unique(clusters, return_inverse=True)
    per_cluster = (np.bincount(local, weights=errors) for errors in (initial, refined))
    drawn_initial, drawn_refined = resampled_sums(per_cluster, resamples, rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(drawn_initial > 0, (drawn_initial - drawn_refined) / drawn_initial, np.nan)


def decile_rows(
    rarity_mm,
    poses,
    initial_mm,
    refined_mm,
    *,
    clusters,
    resamples: int,
    seed: int,
    stream_names=(),
    confidence: float = 0.95,
) -> list[dict]:
    """Ten rows keyed by ``DECILE_COLUMNS`` (module docstring) from per-frame ``rarity_mm``, pose ids
    ``poses``, bootstrap cluster ids ``clusters`` and errors ``initial_mm``, ``refined_mm``, all (N,) (mm; ids
    int). The intervals: ``resamples`` draws at ``confidence`` from the streams of ``seed`` and ``stream_names``.
    ``gain_relative`` is NaN for a decile whose initial error is 0. ``ValueError`` for bad inputs, fewer than ten
    poses, or a rarity that differs between the views of one pose."""
    resamples, confidence = check_resamples(resamples), check_confidence(confidence)
    rarity = np.asarray(rarity_mm, dtype=np.float64)
    poses, clusters = np.asarray(poses), np.asarray(clusters)
    initial = np.asarray(initial_mm, dtype=np.float64)
    refined = np.asarray(refined_mm, dtype=np.float64)
    if (
        rarity.ndim != 1
        or any(a.shape != rarity.shape for a in (poses, clusters, initial, refined))
        or poses.dtype.kind not in "iu"
        or clusters.dtype.kind not in "iu"
    ):
        raise ValueError(
            f"rarity, poses and clusters (integer ids), initial and refined must be (N,) each, got "
            f"{rarity.shape}, {poses.shape} {poses.dtype}, {clusters.shape} {clusters.dtype}, {initial.shape}, "
            f"{refined.shape}"
        )
    if not all(np.isfinite(a).all() for a in (rarity, initial, refined)):
        raise ValueError("rarity, initial and refined must be finite")
    unique_poses, first, pose_of_frame = np.unique(poses, return_index=True, return_inverse=True)
    if unique_poses.size < NUM_DECILES:
        raise ValueError(f"deciles need at least {NUM_DECILES} poses, got {unique_poses.size}")
    pose_rarities = rarity[first]
    if not np.array_equal(rarity, pose_rarities[pose_of_frame]):
        raise ValueError("the views of one pose must share its rarity")
    rank = np.empty(unique_poses.size, dtype=np.int64)
    rank[np.lexsort((first, pose_rarities))] = np.arange(unique_poses.size)
    decile_of_frame = (rank * NUM_DECILES // unique_poses.size)[pose_of_frame]
    decile_of_pose = rank * NUM_DECILES // unique_poses.size
    rows, commonest = [], None
    for decile in range(NUM_DECILES):
        frames = decile_of_frame == decile
        mean_initial, mean_refined = float(initial[frames].mean()), float(refined[frames].mean())
        gain = mean_initial - mean_refined
        relative = gain / mean_initial if mean_initial > 0 else float("nan")
        rng = stream(seed, *stream_names, "rarity decile", decile + 1)
        replicates = _relative_gain_replicates(initial[frames], refined[frames], clusters[frames], resamples, rng)
        if commonest is None:
            commonest = (relative, replicates)
        values = (
            decile + 1,
            int(np.count_nonzero(decile_of_pose == decile)),
            int(np.count_nonzero(frames)),
            float(pose_rarities[decile_of_pose == decile].min()),
            float(pose_rarities[decile_of_pose == decile].max()),
            mean_initial,
            mean_refined,
            gain,
            relative,
            *percentile_interval(replicates, confidence),
            relative - commonest[0],
            *percentile_interval(replicates - commonest[1], confidence),
        )
        rows.append(dict(zip(DECILE_COLUMNS, values, strict=True)))
    return rows


def rarity_deciles(
    rarity_mm,
    initial: FrameErrors,
    refined: FrameErrors,
    *,
    resamples: int,
    seed: int,
    stream_names=(),
    confidence: float = 0.95,
    metric: str = "mpjpe_mm",
) -> list[dict]:
    """``decile_rows`` for two per-frame error tables of one store (paired row for row, ``check_paired``)
    and ``rarity_mm`` (N,) per row of that store (``frame_rarity``), in ``metric``; the bootstrap clusters
    by the tables' ``source`` (``groups.cluster_ids``)."""
    check_paired(initial, refined)
    rarity = np.asarray(rarity_mm)
    if rarity.shape != (initial.num_frames,):
        raise ValueError(
            f"{initial.origin}: rarity must be one value per row ({initial.num_frames}), got {rarity.shape}"
        )
    parts = (initial.subject, initial.action, initial.subaction, initial.frame_index)
    clusters = cluster_ids(initial.source, *parts, where=initial.origin)
    return decile_rows(rarity, pose_ids(*parts), initial.metric(metric), refined.metric(metric), clusters=clusters,
                       resamples=resamples, seed=seed, stream_names=stream_names, confidence=confidence)  # fmt: skip


def read_deciles(path: str | os.PathLike) -> list[dict]:
    """A ``rarity_deciles.csv`` as ten rows of floats keyed by ``DECILE_COLUMNS``; ``ValueError`` naming the file
    when it is not one (other columns, not ten rows, a value that is not a number)."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            columns, rows = tuple(reader.fieldnames or ()), list(reader)
        if columns != DECILE_COLUMNS:
            raise ValueError(f"columns {', '.join(columns) or '(none)'}, expected {', '.join(DECILE_COLUMNS)}")
        if len(rows) != NUM_DECILES:
            raise ValueError(f"{len(rows)} rows, expected {NUM_DECILES}")
        return [{column: float(row[column]) for column in DECILE_COLUMNS} for row in rows]
    except (OSError, UnicodeDecodeError, ValueError, TypeError) as error:
        raise ValueError(f"{path}: not a rarity decile table: {error}") from None


def write_rarity(path: str | os.PathLike, rarity_mm: np.ndarray, frame_ids: list[str], k: int) -> None:
    """The test split's per-frame rarity (mm) as npz: ``rarity_mm`` (N,), ``frame_ids`` (N,), ``k``."""
    buffer = io.BytesIO()
    np.savez(buffer, rarity_mm=np.asarray(rarity_mm, dtype=np.float64), frame_ids=np.array(frame_ids), k=np.array(k))
    atomic_write_bytes(path, buffer.getvalue())


def read_rarity(path: str | os.PathLike, num_frames: int) -> np.ndarray:
    """(N,) rarity of a ``write_rarity`` file; ValueError naming the file when it is not one of N frames."""
    try:
        with np.load(path) as data:
            rarity = np.asarray(data["rarity_mm"], dtype=np.float64)
    except Exception as error:
        raise ValueError(f"{path}: not a readable rarity file: {error}") from error
    if rarity.shape != (num_frames,) or not np.all(np.isfinite(rarity)):
        raise ValueError(f"{path}: rarity of {rarity.shape} frames (finite?), the test split has {num_frames}")
    return rarity
