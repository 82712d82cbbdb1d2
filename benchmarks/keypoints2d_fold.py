"""One keypoints2d fold model with other settings, scored on the subjects it never saw: its 2D joint error and its
part head's segmentation IoU, in minutes and without the pipeline.

Trains the model of ``--fold`` exactly as the keypoints2d stage does (``patchpose.keypoints2d.stage.train_fold``,
same seed, same frames: the training subjects outside the fold) with the config's ``keypoints2d`` block, changed by
``--set``, and scores it on every ``--every``-th frame of the fold's own subjects: held-out training subjects,
validation data, never the test split. Prints the settings changed, the training seconds, the mean 2D error in
crop pixels and, with the part head (``segmentation.network: keypoints2d``), the mean and per-part IoU of the
argmax part map upsampled to the crop as the segmentation stage upsamples it. With ``--seen`` the same figures on
every ``--every``-th frame of the subjects the model trained on as well: whether a setting is limited by fitting
(low on both) or by carrying over to new people (high on the seen subjects alone). For choosing keypoints2d and
part head settings (README "What holds the paper's effect back": the updaters need a better segmentation).

Each scored set also gets its left and right taken for each other (``baseline_depth_sign.py``'s table): the share
of frames whose 2D joints lie nearer the truth with left and right exchanged, and of frames whose part labels give
more of the true left and right parts' pixels to the other side, over all and by the view (the true body's front
against the direction to the camera), and on the frames with exchanged joints and the rest. ``--model PATH``
scores a fold model file that exists (a finished run's ``keypoints2d/models/fold0.pt``: the reference a variant
is set against) instead of training one.

Run:  .venv/bin/python benchmarks/keypoints2d_fold.py --dataset results/synthetic/dataset/train.zarr
          [--configfile config.yaml] [--set model.features=64 --set training.epochs=12] [--fold 0] [--every 8]
          [--threads 2] [--keep DIR] [--seen] [--model PATH]

``--set KEY=VALUE``: a key of the config's ``keypoints2d`` block, dotted (``training.epochs``), the value read as
YAML; the changed config is validated like any other. With the default config, fold 0 (S1 and S7 held out) takes
about 100 s on 2 idle cores, and the settings that cost more cost proportionally more.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from patchpose.augment import unit_to_pixels
from patchpose.config import ConfigError, load_config, validate_config
from patchpose.dataset_format import open_dataset
from patchpose.folds import assign_folds
from patchpose.frames import load_frames, to_unit_float
from patchpose.keypoints2d.integral import soft_argmax
from patchpose.keypoints2d.settings import fold_settings
from patchpose.keypoints2d.stage import build_model, train_fold
from patchpose.parts import PART_NAMES
from patchpose.segmentation.evaluate import confusion_counts, iou_from_counts
from patchpose.training import load_torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from baseline_depth_sign import camera_view_angles, labels_sides_exchanged, left_right_swapped, sides_lines  # noqa: E402


def apply_settings(config: dict, assignments: list[str]) -> dict:
    """A copy of ``config`` with each ``KEY=VALUE`` of ``assignments`` set under ``keypoints2d``, validated."""
    config = copy.deepcopy(config)
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {assignment!r}: expected KEY=VALUE, e.g. training.epochs=12")
        *parents, leaf = key.split(".")
        block = config["keypoints2d"]
        for name in parents:
            if not isinstance(block.get(name), dict):
                raise ConfigError(f"--set {assignment!r}: keypoints2d has no block {name!r}")
            block = block[name]
        if leaf not in block:
            raise ConfigError(f"--set {assignment!r}: keypoints2d.{key} is not a key of the config")
        block[leaf] = yaml.safe_load(text)
    return validate_config(config)


@dataclass(frozen=True)
class FoldScore:
    """A fold model on some frames: its 2D joints (N, 17, 2) in crop px and their mean error; the part head's
    confusion counts (None without one); per frame, whether its 2D joints are ``left_right_swapped`` and its part
    labels ``labels_sides_exchanged`` (None without a part head)."""

    joints: np.ndarray
    error_px: float
    counts: np.ndarray | None
    joints_exchanged: np.ndarray
    labels_exchanged: np.ndarray | None


@torch.no_grad()
def score(model_path: Path, store, rows: np.ndarray, batch_size: int = 64) -> FoldScore:
    """``FoldScore`` of the model file ``model_path`` on the store's ``rows``."""
    payload = load_torch(model_path)
    model = build_model(payload["model_settings"])
    model.load_state_dict(payload["model"])
    model.eval()
    size, side = payload["model_settings"]["input_size"], store.crop_side()
    found_joints, counts, joints_exchanged, labels_exchanged = [], None, [], []
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        heatmaps, parts = model(to_unit_float(load_frames(store, batch, size), torch.device("cpu")))
        joints = unit_to_pixels(soft_argmax(heatmaps[-1]).numpy(), side)
        found_joints.append(joints)
        joints_exchanged.append(left_right_swapped(joints, store.joints_2d[batch]))
        if parts is not None:
            logits = F.interpolate(parts.float(), size=store.frame_size, mode="bilinear", align_corners=False)
            predicted, truth = logits.argmax(dim=1).numpy(), store.read_part_labels(batch)
            found = confusion_counts(predicted, truth)
            counts = found if counts is None else counts + found
            labels_exchanged.append(labels_sides_exchanged(predicted, truth))
    joints = np.concatenate(found_joints)
    error = float(np.linalg.norm(joints - store.joints_2d[rows], axis=-1).mean())
    return FoldScore(joints, error, counts, np.concatenate(joints_exchanged),
                     None if counts is None else np.concatenate(labels_exchanged))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, required=True, help="a training split's dataset store")
    parser.add_argument("--configfile", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--every", type=int, default=8, help="score every N-th frame of the fold's subjects")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="a new directory to keep the model file in")
    parser.add_argument("--seen", action="store_true", help="also score the subjects the model trained on")
    parser.add_argument("--model", type=Path, help="score this fold model file instead of training one")
    args = parser.parse_args()
    try:
        config = apply_settings(load_config(args.configfile), args.assignments)
    except ConfigError as error:
        raise SystemExit(str(error)) from None
    if not args.dataset.is_dir():
        raise SystemExit(f"{args.dataset}: missing (a training split's dataset store)")
    store = open_dataset(args.dataset)
    k = config["folds"]["k"]
    if not 0 <= args.fold < k:
        raise SystemExit(f"--fold {args.fold}: outside 0..{k - 1} (folds.k = {k})")
    if args.every < 1:
        raise SystemExit(f"--every {args.every}: must be at least 1")
    if args.keep is not None and args.keep.exists():
        raise SystemExit(f"--keep {args.keep}: exists; give a new directory")
    if args.model is not None:
        if args.assignments or args.keep is not None:
            raise SystemExit("--model scores a model file as it is: give it without --set and --keep")
        if not args.model.is_file():
            raise SystemExit(f"--model {args.model}: missing (a keypoints2d fold model file)")
        trained = load_torch(args.model)
        if trained.get("fold") != args.fold or trained.get("k") != k:
            raise SystemExit(f"--model {args.model}: fold {trained.get('fold')} of {trained.get('k')}, "
                             f"expected fold {args.fold} of {k} (--fold, folds.k)")  # fmt: skip
    assignment = assign_folds(store.subjects, k)
    held_out = sorted(subject for subject, fold in assignment.items() if fold == args.fold)
    seen = sorted(subject for subject, fold in assignment.items() if fold != args.fold)
    rows = np.flatnonzero(np.isin(store.subject_names(), held_out))[:: args.every]
    seen_rows = np.flatnonzero(np.isin(store.subject_names(), seen))[:: args.every]
    settings = fold_settings(config)
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch) if args.keep is None else args.keep
        directory.mkdir(parents=True, exist_ok=True)
        model_path = args.model or directory / f"fold{args.fold}.pt"
        started = time.perf_counter()
        if args.model is None:
            train_fold(args.dataset, args.fold, k, settings, config["seed"], model_path,
                       directory / "checkpoint.pt", args.threads)  # fmt: skip
        seconds = time.perf_counter() - started
        torch.set_num_threads(args.threads)
        scores = [(f"held out {' '.join(held_out)}", rows, score(model_path, store, rows))]
        if args.seen:
            scores.append((f"seen (trained on) {' '.join(seen)}", seen_rows, score(model_path, store, seen_rows)))
    print(f"settings changed: {' '.join(args.assignments) or 'none'}")
    print(f"fold {args.fold} of {k}, held out {' '.join(held_out)}: {len(rows)} frames scored (every {args.every})")
    print(f"training: {seconds:.0f} s on {args.threads} threads" if args.model is None
          else f"training: none, the model file {args.model}")  # fmt: skip
    for name, scored, result in scores:
        if len(scores) > 1:
            print(f"{name} ({len(scored)} frames):")
        print(f"2D mean error: {result.error_px:.2f} px")
        if result.counts is None:
            print("segmentation: no part head (segmentation.network is not keypoints2d)")
        else:
            iou, mean = iou_from_counts(result.counts)
            print(f"segmentation mean IoU: {mean:.3f}")
            print("  ".join(f"{name} {value:.2f}" for name, value in zip(PART_NAMES, iou, strict=True)))
        sources = [("2D joints", result.joints_exchanged)]
        if result.labels_exchanged is not None:
            sources.append(("part labels", result.labels_exchanged))
        print("left and right exchanged, share of frames, by the view (degrees from facing the camera):")
        print("\n".join(sides_lines(sources, camera_view_angles(store.joints_3d[scored]), "exchanged 2D")))


if __name__ == "__main__":
    sys.exit(main())
