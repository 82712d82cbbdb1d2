"""Does a baseline already know which end of a limb is nearer? The cue test's question asked of its 3D poses.

``benchmarks/cue_test.py`` measures how well a single limb patch shows the sign of the limb's depth difference
(the child joint nearer the camera than the parent, ``patchpose.synthetic.cue_data``), as balanced accuracy per
elevation bin on the test subjects. A patch updater can only add to a baseline what the baseline does not know
already, so this script reads the same label off each baseline's test predictions: the predicted root-relative
pose placed at the ground-truth root (labels need camera-frame positions; the root only sets the viewing
ray), the eight arm and leg limbs, binned by the ground truth's elevation, scored against the ground truth's
labels. Nothing is trained; it reads a finished run's files.

``--brighter-end`` adds the cue test's fixed rule (``cue_data.brighter_end_guesses``: the end of the limb whose
own part pixels are brighter is the nearer one) on the run's test frames, with the limb's pixels and endpoints
taken from the ground truth or from the run's predictions (segmentation stage, keypoints2d), each of the four
pairings scored on the limbs it can score (both ends with 3 or more of the limb's pixels; share in the last
column): how much of the depth cue the run's own segmentation and 2D joints leave readable.

``--facing`` adds the torso's own depth question, which way the body faces: per prediction file, the median angle
between the predicted and the true facing (the normal of the plane that the hips and shoulders span, camera frame)
and the share of frames where it is off by more than 90 degrees (a person facing the camera predicted facing away,
or the other way), beside the mean error of each joint group (protocol 1, mm): where a refinement's gain lies.
It also splits each file's MPJPE between the frames whose keypoints2d joints are nearer the truth with left and
right exchanged (the 2D stage took one side for the other) and the rest, and prints that share of frames.
Then a table of left and right taken for each other, by the view (the true body's front against the direction to
the camera): the share of frames whose keypoints2d joints are exchanged, and of frames whose segmentation gives more
of the true left and right parts' pixels to the other side's part than to their own, each also on the frames with
exchanged joints and on the rest (whether the two stages err on the same frames). ``--sides-from RUN`` adds another
finished run's keypoints2d and segmentation of the same test frames (another network: whether the frames are the
image's or one network's).

Run:  .venv/bin/python benchmarks/baseline_depth_sign.py [--results results/synthetic] [--brighter-end] [--facing]
          [--sides-from RUN] [NAME ...]

NAME: prediction files under the results directory, relative to it, without ``/test_poses_3d.npz``
(default: every ``baselines/<name>`` that has one, then every ``refined/<baseline>/<variant>``).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from patchpose.augment import PART_FLIP
from patchpose.dataset_format import open_dataset
from patchpose.evaluation.frame_errors import compute_frame_errors
from patchpose.keypoints2d.stage import read_predictions
from patchpose.poses3d.loading import load_for_store
from patchpose.segmentation.store import open_segmentation
from patchpose.skeleton import H36M
from patchpose.synthetic.cue_data import (
    ARM_LEG_LIMBS,
    ELEVATION_BINS,
    accuracy_by_elevation,
    brighter_end_guesses,
    limb_depth_labels,
)

PREDICTIONS = "test_poses_3d.npz"
JOINT_GROUPS = {
    "hips": ("left_hip", "right_hip"),
    "knees": ("left_knee", "right_knee"),
    "ankles": ("left_ankle", "right_ankle"),
    "spine-head": ("spine", "thorax", "neck_nose", "head"),
    "shoulders": ("left_shoulder", "right_shoulder"),
    "elbows": ("left_elbow", "right_elbow"),
    "wrists": ("left_wrist", "right_wrist"),
}
# (name, low, high): degrees between the body's front and the direction to the camera (``camera_view_angles``).
VIEWS = (("front", 0, 45), ("front-side", 45, 80), ("side", 80, 100), ("back-side", 100, 135), ("back", 135, 180))


def facing(poses) -> np.ndarray:
    """(N, 3) unit normals of the torso: up (pelvis to thorax) crossed with across (right to left, the shoulders'
    and the hips' together), so a body facing the camera and one facing away get opposite normals."""
    poses = np.asarray(poses, dtype=np.float64)
    joint = {name: poses[:, H36M.joint_index(name)] for name in H36M.joint_names}
    across = joint["left_shoulder"] - joint["right_shoulder"] + joint["left_hip"] - joint["right_hip"]
    normal = np.cross(joint["thorax"] - joint["pelvis"], across)
    return normal / np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)


def facing_angles(predicted, truth) -> np.ndarray:
    """(N,) degrees between the predicted and the true torso normals (``facing``), 0..180."""
    cosine = np.clip((facing(predicted) * facing(truth)).sum(axis=1), -1.0, 1.0)
    return np.degrees(np.arccos(cosine))


def left_right_swapped(predicted_2d, truth_2d) -> np.ndarray:
    """(N,) bool: the predicted 2D joints are nearer the truth (mean joint distance) with every left and right
    joint exchanged (``H36M.flip_permutation``) than as they are."""
    predicted_2d, truth_2d = np.asarray(predicted_2d, np.float64), np.asarray(truth_2d, np.float64)
    as_given = np.linalg.norm(predicted_2d - truth_2d, axis=-1).mean(axis=1)
    exchanged = np.linalg.norm(predicted_2d[:, H36M.flip_permutation] - truth_2d, axis=-1).mean(axis=1)
    return exchanged < as_given


def camera_view_angles(truth) -> np.ndarray:
    """(N,) degrees between the body's front and the direction from its pelvis to the camera centre, 0..180: 0 faces
    the camera, 180 turns its back to it. ``truth``: (N, 17, 3) camera-frame poses with their true root (the ground
    truth; the root sets the ray). The front is ``-facing``: that normal points out of the back (body frames face
    +y with the left at -x, ``patchpose.synthetic.kinematics``, so up x (left - right) = -y)."""
    truth = np.asarray(truth, dtype=np.float64)
    to_camera = -truth[:, 0] / np.maximum(np.linalg.norm(truth[:, 0], axis=1, keepdims=True), 1e-9)
    return np.degrees(np.arccos(np.clip((-facing(truth) * to_camera).sum(axis=1), -1.0, 1.0)))


def labels_sides_exchanged(predicted, truth) -> np.ndarray:
    """(N,) bool: of the pixels that the truth gives a left or right part, more are given the same part of the other
    side (``patchpose.augment.PART_FLIP``) than their own part. (N, H, W) part labels each."""
    predicted, truth = np.asarray(predicted), np.asarray(truth)
    other = PART_FLIP[truth]
    lateral = other != truth
    own = ((predicted == truth) & lateral).sum(axis=(1, 2))
    return ((predicted == other) & lateral).sum(axis=(1, 2)) > own


def _groups(angles, reference) -> list[np.ndarray]:
    """Masks of every frame, of each of ``VIEWS`` (its upper bound open but for the last), of ``reference``, of the
    rest."""
    angles, reference = np.asarray(angles), np.asarray(reference, bool)
    views = [(angles >= low) & ((angles < high) | (high == VIEWS[-1][2])) for _, low, high in VIEWS]
    return [np.ones(len(reference), bool), *views, reference, ~reference]


def sides_row(flags, angles, reference) -> list[float]:
    """Shares of frames with ``flags``: over all, within each of ``VIEWS`` (by ``angles``), on the frames with
    ``reference`` and on the rest (nan where a group is empty)."""
    flags = np.asarray(flags, bool)
    return [float(flags[group].mean()) if group.any() else math.nan for group in _groups(angles, reference)]


def sides_lines(sources: list[tuple[str, np.ndarray]], angles, reference_name: str) -> list[str]:
    """The table of ``sides_row`` per (name, flags) source against the first source's flags (``reference_name``
    names them), with the frame count of each group."""
    reference = np.asarray(sources[0][1], bool)
    header = ["all", *(name for name, _, _ in VIEWS), f"on {reference_name}", "on the rest"]
    width = max(len(name) for name, _ in sources) + 2
    counts = [int(group.sum()) for group in _groups(angles, reference)]
    cell = max(len(label) for label in header) + 2
    lines = [f"{'':{width}s}" + "".join(f"{label:>{cell}s}" for label in header),
             f"{'(frames)':{width}s}" + "".join(f"{count:>{cell}d}" for count in counts)]  # fmt: skip
    for name, flags in sources:
        shares = sides_row(flags, angles, reference)
        lines.append(f"{name:{width}s}" + "".join(f"{_percent(share):>{cell}s}" for share in shares))
    return lines


def sides_table(results: Path, others: list[Path]) -> tuple[np.ndarray, list[tuple[str, np.ndarray]]]:
    """The test frames' ``camera_view_angles`` and (name, flags) for this run's keypoints2d (``left_right_swapped``)
    and segmentation (``labels_sides_exchanged``), then each other run's of the same frames."""
    store = open_dataset(results / "dataset/test.zarr")
    rows = np.arange(store.num_frames)
    truth_labels = store.read_part_labels(rows) if store.has_part_labels else None
    sources = []
    for label, run in [("this run", results), *((str(other), other) for other in others)]:
        joints = read_predictions(run / "keypoints2d/test_joints_2d.npz", store)
        sources.append((f"keypoints2d ({label})", left_right_swapped(joints, store.joints_2d)))
        if truth_labels is not None:
            labels = open_segmentation(run / "segmentation/test.zarr", store).read_labels(rows)
            sources.append((f"segmentation ({label})", labels_sides_exchanged(labels, truth_labels)))
    return camera_view_angles(store.joints_3d), sources


def facing_table(results: Path, names: list[str]) -> tuple[float, list[tuple]]:
    """The share of test frames whose keypoints2d joints are ``left_right_swapped``, and per prediction file
    (name, median facing angle in degrees, share of frames beyond 90 degrees, mean error per joint group in mm,
    MPJPE of the swapped frames, MPJPE of the others), against the test store's ground truth."""
    store = open_dataset(results / "dataset/test.zarr")
    truth = np.asarray(store.joints_3d, dtype=np.float64)
    joints_2d = read_predictions(results / "keypoints2d/test_joints_2d.npz", store)
    swapped = left_right_swapped(joints_2d, store.joints_2d)
    rows = []
    for name in names:
        poses = load_for_store(results / name / PREDICTIONS, store)
        angles = facing_angles(poses, truth)
        errors = compute_frame_errors(poses, store, origin=f"{results / name / PREDICTIONS} against {store.path}")
        groups = {group: float(errors.joint_errors_mm[:, [H36M.joint_index(j) for j in joints]].mean())
                  for group, joints in JOINT_GROUPS.items()}  # fmt: skip
        split = [float(errors.mpjpe_mm[rows_].mean()) if rows_.any() else math.nan for rows_ in (swapped, ~swapped)]
        rows.append((name, float(np.median(angles)), float((angles > 90).mean()), groups, *split))
    return float(swapped.mean()), rows


def depth_sign_table(results: Path, names: list[str]) -> list[tuple[str, list]]:
    """(name, ``accuracy_by_elevation`` rows) per prediction file, against the test store's ground truth."""
    store = open_dataset(results / "dataset/test.zarr")
    truth = np.asarray(store.joints_3d, dtype=np.float64)
    toward, elevation, _ = limb_depth_labels(truth, ARM_LEG_LIMBS)
    rows = []
    for name in names:
        predicted = load_for_store(results / name / PREDICTIONS, store) + truth[:, :1]  # at the true root
        predicted_toward, _, _ = limb_depth_labels(predicted, ARM_LEG_LIMBS)
        rows.append((name, accuracy_by_elevation(predicted_toward.ravel(), toward.ravel(), elevation.ravel())))
    return rows


def brighter_end_table(results: Path) -> list[tuple[str, list, float]]:
    """(pairing, ``accuracy_by_elevation`` rows over the limbs scored, share scored) of the fixed brighter-end
    rule on the test frames, per pairing of segmentation (ground truth / predicted) and 2D joints (same)."""
    store = open_dataset(results / "dataset/test.zarr")
    if not store.has_part_labels:
        raise SystemExit(f"{results / 'dataset/test.zarr'}: has no part labels to score the rule against")
    rows = np.arange(store.num_frames)
    toward, elevation, _ = limb_depth_labels(np.asarray(store.joints_3d, dtype=np.float64), ARM_LEG_LIMBS)
    frames = store.read_frames(rows)
    parts = {"ground-truth": store.read_part_labels(rows),
             "predicted": open_segmentation(results / "segmentation/test.zarr", store).read_labels(rows)}  # fmt: skip
    joints = {"ground-truth": np.asarray(store.joints_2d),
              "predicted": read_predictions(results / "keypoints2d/test_joints_2d.npz", store)}  # fmt: skip
    table = []
    for part_source, labels in parts.items():
        for joint_source, joints_2d in joints.items():
            guesses, valid = brighter_end_guesses(frames, labels, joints_2d, ARM_LEG_LIMBS)
            stats = accuracy_by_elevation(guesses[valid], toward[valid], elevation[valid])
            table.append((f"{part_source} parts, {joint_source} 2D", stats, float(valid.mean())))
    return table


def _default_names(results: Path) -> list[str]:
    found = sorted(path.parent for path in (results / "baselines").glob(f"*/{PREDICTIONS}"))
    found += sorted(path.parent for path in (results / "refined").glob(f"*/*/{PREDICTIONS}"))
    return [str(path.relative_to(results)) for path in found]


def _percent(value: float) -> str:
    return "   -" if math.isnan(value) else f"{100 * value:5.1f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=Path("results/synthetic"), help="a finished run's results")
    parser.add_argument("--brighter-end", action="store_true", help="also score the fixed brighter-end rule")
    parser.add_argument("--facing", action="store_true", help="also the torso's facing and each joint group's error")
    parser.add_argument("--sides-from", type=Path, action="append", default=[], metavar="RUN",
                        help="with --facing: also another finished run's sides (its results/<dataset>)")  # fmt: skip
    parser.add_argument("names", nargs="*", help="prediction files' directories relative to --results")
    args = parser.parse_args()
    names = args.names or _default_names(args.results)
    missing = [name for name in names if not (args.results / name / PREDICTIONS).is_file()]
    if missing or not names:
        raise SystemExit(f"{args.results}: no {PREDICTIONS} under {', '.join(missing) or 'baselines/ or refined/'}")
    table = depth_sign_table(args.results, names)
    edges = ELEVATION_BINS
    bins = [f"{edges[b]:.0f}-{edges[b + 1]:.0f} deg" for b in range(len(edges) - 1)] + ["all"]
    print(f"balanced accuracy of the depth sign of the arm and leg limbs, test split of {args.results}")
    print(f"{'predictions':40s}" + "".join(f"{label:>11s}" for label in bins))
    counts = [stats.count for stats in table[0][1]]
    print(f"{'(limb samples)':40s}" + "".join(f"{count:>11d}" for count in counts))
    for name, stats in table:
        print(f"{name:40s}" + "".join(f"{_percent(row.balanced_accuracy):>11s}" for row in stats))
    if args.brighter_end:
        print("the fixed brighter-end rule on the test frames (limbs it can score; share scored in the last column)")
        for name, stats, share in brighter_end_table(args.results):
            print(f"{name:40s}" + "".join(f"{_percent(row.balanced_accuracy):>11s}" for row in stats)
                  + f"{_percent(share):>11s}")  # fmt: skip
    if args.facing:
        share, rows = facing_table(args.results, names)
        print("the torso's facing against the truth, the mean error of each joint group (mm), and MPJPE (mm) on the")
        print(f"frames whose keypoints2d joints have left and right exchanged ({_percent(share).strip()}) and the rest")
        print(f"{'predictions':40s}{'median deg':>11s}{'> 90 deg':>11s}" + "".join(f"{g:>11s}" for g in JOINT_GROUPS)
              + f"{'exchanged':>11s}{'the rest':>11s}")  # fmt: skip
        for name, median, flipped, groups, on_swapped, on_rest in rows:
            cells = [f"{median:>11.1f}", f"{_percent(flipped):>11s}", *(f"{groups[g]:>11.1f}" for g in JOINT_GROUPS)]
            print(f"{name:40s}" + "".join(cells) + f"{on_swapped:>11.1f}{on_rest:>11.1f}")
        angles, sources = sides_table(args.results, args.sides_from)
        print("left and right taken for each other: the share of test frames, by the view (the true body's front")
        print("against the direction to the camera, degrees: front 0-45, side 80-100, back 135-180), and on the frames")
        print("whose keypoints2d joints (this run's) are exchanged and on the rest")
        print("\n".join(sides_lines(sources, angles, "exchanged")))


if __name__ == "__main__":
    main()
