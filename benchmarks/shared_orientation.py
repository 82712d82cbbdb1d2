"""Are the patches-only updaters of one modality interchangeable between baselines, and does their mean refine better?

With ``updater.model.predicts: orientation`` a patches-only updater's learned part predicts the orientations U
from the patches, and ΔU = U - U_init. Its training target U_gt - U_init and its loss, (ΔU - target)² =
(U - U_gt)², do not depend on the baseline: the updaters that Table 1 trains for each baseline on one modality
learn the same function from the same patches and targets, and differ only in their random draws (each updater's
streams are named after its baseline). Any of them can refine any baseline, and their mean is an ensemble that
costs no more training than the run already did.

For every baseline B that trained such an updater for ``--variant``:

* on B's validation frames (``updater.training.validation_subjects``, S8 on the default, which no member
  trained on), each member's Eq. 2 loss before calibration, applied to B's U_init, and the loss of the members'
  mean ΔU, beside the loss of ΔU = 0 (the ratio is ``benchmarks/updater_validation.py``'s val/zero);
* on the test split, B refined by its own updater (the run's ``refined/B/<variant>/improvement.csv``) beside B
  refined by the members' mean ΔU, calibrated afresh on B's validation frames the way the training stage
  calibrates one updater (``updater.training.calibration``), then Eq. 1, evaluated by the pipeline's own code
  (the same bootstrap streams as the run's file) into ``--out/refined/B/<variant>/``.

Nothing is trained. The updaters must predict orientations (a residual updater's ΔU is its own baseline's) and
the validation frames must be a held-out subject (held-out poses are drawn per baseline, so one member's
validation frames are another's training frames).

Run:  .venv/bin/python benchmarks/shared_orientation.py --out DIR [--results results/synthetic]
          [--configfile config.yaml] [--variant rgb_seg]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from patchpose.baselines.geometry import root_relative
from patchpose.config import load_config
from patchpose.dataset_format import open_dataset
from patchpose.evaluation.refinement import read_improvement
from patchpose.metrics import MEAN_OF_ACTION_MEANS_LABEL
from patchpose.orientation import BoneStatistics, bone_statistics, refine
from patchpose.poses3d.files import write_predictions
from patchpose.poses3d.loading import load_for_store
from patchpose.updater.calibration import calibration_factors
from patchpose.updater.modalities import patch_source
from patchpose.updater.network import OUTPUTS
from patchpose.updater.stage import load_updater, predict_residuals, residual_targets, validation_rows
from patchpose.updater.variants import updater_seed

sys.path.insert(0, str(Path(__file__).resolve().parent))
from updater_ensemble import evaluate_written  # noqa: E402
from updater_validation import training_poses  # noqa: E402

SPLITS = ("train", "test")


def load_members(results: Path, variant: str) -> dict[str, tuple[torch.nn.Module, dict]]:
    """baseline -> (network, payload) of every ``updater/<baseline>/<variant>/model.pt``; exits unless there are
    two or more and all predict orientations from the patches alone."""
    members = {}
    for model in sorted((results / "updater").glob(f"*/{variant}/model.pt")):
        network, payload = load_updater(model, torch.device("cpu"))
        if network.predicts != "orientation" or network.uses_boxes:
            why = "reads U_init beside the patches" if network.uses_boxes else f"predicts {network.predicts}"
            raise SystemExit(f"{model}: {why}: its ΔU is its own baseline's and not another's (a patches-only "
                             "variant predicting orientations, updater.model.predicts)")  # fmt: skip
        members[model.parent.parent.name] = (network, payload)
    if len(members) < 2:
        raise SystemExit(
            f"{results}: {len(members)} {variant} updater(s) under updater/<baseline>/{variant}/; "
            "sharing needs two or more (Table 1 trains one per baseline with a training split)"
        )
    return members


def loss(delta: np.ndarray, goal: np.ndarray) -> float:
    """Eq. 2's loss: the squared error summed over the 48 outputs, averaged over the frames."""
    return float(((delta - goal) ** 2).sum(axis=1).mean())


def residuals(members, store, initial: Path, patches: Path, rows=None) -> list[np.ndarray]:
    """Each member's ΔU before calibration (R, 48) on ``rows`` of ``store`` with the initial poses ``initial``."""
    return [predict_residuals(network, payload, store, initial, patches, rows)[1] for network, payload in members]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=Path("results/synthetic"), help="a finished run's results")
    parser.add_argument("--configfile", type=Path, default=Path("config.yaml"), help="the config the run used")
    parser.add_argument("--variant", default="rgb_seg", help="a patches-only variant Table 1 trains per baseline")
    parser.add_argument("--out", type=Path, required=True, help="where the shared refinements and evaluations go")
    args = parser.parse_args()
    config = load_config(args.configfile)
    training = config["updater"]["training"]
    if not training["validation_subjects"]:
        raise SystemExit(f"{args.configfile}: updater.training.validation_subjects is []: each baseline's updater "
                         "held out poses of its own draw, which the others trained on")  # fmt: skip
    torch.set_num_threads(2)
    members = load_members(args.results, args.variant)
    names = list(members)
    train, test = open_dataset(args.results / "dataset/train.zarr"), open_dataset(args.results / "dataset/test.zarr")
    modality = members[names[0]][1]["modality"]
    patches = {split: args.results / "patches" / patch_source(modality) / f"{split}.zarr" for split in SPLITS}
    truth = root_relative(train.joints_3d)
    validation = [f"validation frames ({', '.join(training['validation_subjects'])}), Eq. 2's loss before "
                  f"calibration, each baseline's U_init; the {args.variant} updaters trained for " + ", ".join(names),
                  f"{'baseline':14s}" + "".join(f"{name:>12s}" for name in names)
                  + f"{'mean':>10s}{'zero':>9s}{'own/zero':>10s}{'mean/zero':>11s}"]  # fmt: skip
    average = MEAN_OF_ACTION_MEANS_LABEL
    tests = [f"test split, refined MPJPE in mm ({average}): by its own {args.variant} updater and by the members' "
             "mean, calibrated on its validation frames; gain [interval] (relative)"]  # fmt: skip
    for baseline in names:
        initial = training_poses(args.results, baseline)
        _, target = residual_targets(truth, load_for_store(initial, train), bone_statistics(truth))
        held = validation_rows(train, training, updater_seed(config), ("updater", baseline, args.variant))
        goal = target[held].astype(np.float64)
        each = residuals(members.values(), train, initial, patches["train"], held)
        mean = np.mean(each, axis=0)
        zero, own, shared = (loss(delta, goal) for delta in (np.zeros_like(goal), each[names.index(baseline)], mean))
        validation.append(f"{baseline:14s}" + "".join(f"{loss(delta, goal):12.3f}" for delta in each)
                          + f"{shared:10.3f}{zero:9.3f}{own / zero:10.3f}{shared / zero:11.3f}")  # fmt: skip
        alpha = calibration_factors(mean, goal, training["calibration"])
        initial = args.results / "baselines" / baseline / "test_poses_3d.npz"
        each = residuals(members.values(), test, initial, patches["test"])
        poses = load_for_store(initial, test)
        stats = BoneStatistics.from_dict(members[baseline][1]["bone_statistics"])
        refined = refine(poses, (np.mean(each, axis=0) * alpha).reshape(-1, OUTPUTS // 3, 3), stats)
        where = args.out / "refined" / baseline / args.variant
        where.mkdir(parents=True, exist_ok=True)
        method = f"{baseline} refined by the {args.variant} updaters of {', '.join(names)}"
        write_predictions(where / "test_poses_3d.npz", refined - refined[:, :1], test.frame_ids(), split="test",
                          method=method)  # fmt: skip
        rows = evaluate_written(where, args.results, baseline, args.variant, config)
        for label, row in (
            ("own", read_improvement(args.results / "refined" / baseline / args.variant / "improvement.csv")[average]),
            ("shared", next(row for row in rows if row["action"] == average)),
        ):
            tests.append(f"{baseline:14s}{label:8s}{row['initial_mm']:8.1f} -> {row['refined_mm']:6.1f}  "
                         f"{row['improvement_mm']:+.1f} [{row['ci_low_mm']:+.1f}, {row['ci_high_mm']:+.1f}] "
                         f"({100.0 * row['improvement_mm'] / row['initial_mm']:+.1f}%)")  # fmt: skip
        tests.append(f"{'':14s}calibration factors of the mean: mean {alpha.mean():.3f} (min {alpha.min():.3f}, "
                     f"max {alpha.max():.3f})")  # fmt: skip
    print("\n".join(validation + tests), flush=True)


if __name__ == "__main__":
    main()
