"""Does an updater learn anything that carries over to the held-out subject? Its validation loss beside zero's.

Each updater keeps the epoch with the lowest loss on its validation frames (``updater.training``: the held-out
subject S8 on the default), written to ``results/<dataset>/updater/<baseline>/<variant>/curve.csv``. This script
prints that loss beside the loss of predicting no change at all (ΔU = 0: the squared norm of Eq. 2's target
U_gt − U_init summed over the 16 limbs × xyz, the training loss's definition, averaged over the same validation
frames) and beside the training loss of the kept epoch. An updater whose best validation loss is not below zero's
has learnt nothing that carries over to a new person; calibration (``updater.training.calibration``) then shrinks
its residual toward 0. Nothing is trained; it reads a finished run's files and the config the run used.

Run:  .venv/bin/python benchmarks/updater_validation.py [--results results/synthetic] [--configfile config.yaml]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from patchpose.baselines.geometry import root_relative
from patchpose.config import load_config
from patchpose.dataset_format import open_dataset
from patchpose.orientation import bone_statistics
from patchpose.poses3d.loading import load_for_store
from patchpose.updater.stage import residual_targets, validation_rows
from patchpose.updater.variants import updater_seed


def training_poses(results: Path, baseline: str) -> Path:
    """The training split's initial poses ``baseline``'s updaters were trained on (``updater: error_model``: the
    poses sampled from its error model)."""
    initial = results / "baselines" / baseline / "train_poses_3d.npz"
    return initial if initial.is_file() else results / "error_model" / baseline / "train_poses_3d.npz"


def zero_loss(results: Path, baseline: str, training: dict, seed: int, variant: str) -> float:
    """The loss of ΔU = 0 on the validation frames ``train_updater`` holds out for ``baseline``'s ``variant``."""
    store = open_dataset(results / "dataset/train.zarr")
    truth = root_relative(store.joints_3d)
    initial = load_for_store(training_poses(results, baseline), store)
    _, target = residual_targets(truth, initial, bone_statistics(truth))
    held = validation_rows(store, training, seed, ("updater", baseline, variant))
    return float((target[held].astype(np.float64) ** 2).sum(axis=1).mean())


def best_epoch(curve: Path) -> dict:
    """The row of ``curve.csv`` marked best (the kept weights)."""
    with open(curve, newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["best"] == "True"]
    if not rows:
        raise SystemExit(f"{curve}: no epoch marked best")
    return rows[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=Path("results/synthetic"), help="a finished run's results")
    parser.add_argument("--configfile", type=Path, default=Path("config.yaml"), help="the config the run used")
    args = parser.parse_args()
    config = load_config(args.configfile)
    curves = sorted((args.results / "updater").glob("*/*/curve.csv"))
    if not curves:
        raise SystemExit(f"{args.results}: no updater/<baseline>/<variant>/curve.csv")
    print(f"updaters of {args.results}: loss on the validation frames (Eq. 2's squared error summed over 48 outputs)")
    print(f"{'baseline/variant':34s}{'best epoch':>11s}{'train':>9s}{'val':>9s}{'val of ΔU=0':>13s}{'val/zero':>10s}")
    for curve in curves:
        baseline, variant = curve.parent.parent.name, curve.parent.name
        zero = zero_loss(args.results, baseline, config["updater"]["training"], updater_seed(config), variant)
        row = best_epoch(curve)
        val = float(row["val_loss"])
        print(f"{baseline + '/' + variant:34s}{row['epoch']:>11s}{float(row['train_loss']):9.3f}{val:9.3f}"
              f"{zero:13.3f}{val / zero:10.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
