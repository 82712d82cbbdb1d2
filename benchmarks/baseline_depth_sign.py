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

Run:  .venv/bin/python benchmarks/baseline_depth_sign.py [--results results/synthetic] [--brighter-end] [NAME ...]

NAME: prediction files under the results directory, relative to it, without ``/test_poses_3d.npz``
(default: every ``baselines/<name>`` that has one, then every ``refined/<baseline>/<variant>``).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from patchpose.dataset_format import open_dataset
from patchpose.keypoints2d.stage import read_predictions
from patchpose.poses3d.loading import load_for_store
from patchpose.segmentation.store import open_segmentation
from patchpose.synthetic.cue_data import (
    ARM_LEG_LIMBS,
    ELEVATION_BINS,
    accuracy_by_elevation,
    brighter_end_guesses,
    limb_depth_labels,
)

PREDICTIONS = "test_poses_3d.npz"


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


if __name__ == "__main__":
    main()
