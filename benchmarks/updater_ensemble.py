"""Is an ensemble of updaters better, and steadier, than one? Several runs' updaters averaged, on the same inputs.

The runs must differ only in how their updaters were trained (another ``updater.seed``, another number of epochs;
a copy of a finished run with that key changed retrains exactly its updaters and what reads them): the same
dataset, patches and baselines, checked byte for byte on the baselines' prediction files. Eq. 1 is
linear in ΔU (``orientation.refine``: the initial pose plus the residual rebuilt along the tree), so the mean of
the members' refined poses is the refinement by the mean of their (calibrated) ΔU: the ensemble's test split is
that mean, evaluated by the pipeline's own code (``evaluate_refinement``, ``compose_claims``, the runs' bootstrap
seed and streams), and written to ``--out`` as a ``results/<dataset>`` directory holds it (``refined/<baseline>/
<variant>/``, ``claims.json``), so ``benchmarks/claims_spread.py`` reads it beside the members.

On the validation frames (the held-out subject of ``updater.training``, S8 on the default), where the choice is
made, it loads every member's model and prints each member's loss (Eq. 2's squared error summed over the 48
outputs, before calibration, as ``curve.csv`` records it) beside the loss of the members' mean prediction and of
ΔU = 0 (with ``validation_subjects: []`` each member held out poses of its own seed's draw, so there is no
such table). The test split's figures follow: each member's and the ensemble's refined MPJPE (mean of the action
means) and the ensemble's gain with its interval. Nothing is trained.

Run:  .venv/bin/python benchmarks/updater_ensemble.py RUN RUN [RUN ...] --out DIR [--configfile config.yaml]

RUN: a finished run's ``results/<dataset>``; ``--configfile``: the config the runs used (the validation subjects,
the seed of the bootstrap, the ablation baseline).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from patchpose.baselines.geometry import root_relative
from patchpose.config import load_config
from patchpose.dataset_format import open_dataset
from patchpose.evaluation.refinement import (
    compose_claims,
    evaluate_refinement,
    read_improvement,
    refinement_stream,
    write_claims,
)
from patchpose.metrics import MEAN_OF_ACTION_MEANS_LABEL
from patchpose.orientation import bone_statistics
from patchpose.poses3d.files import write_predictions
from patchpose.poses3d.loading import load_for_store
from patchpose.provenance import content_digest
from patchpose.updater.modalities import patch_source
from patchpose.updater.stage import load_updater, predict_residuals, residual_targets, validation_rows
from patchpose.updater.variants import updater_seed


def check_same_inputs(runs: list[Path]) -> None:
    """Exit naming the file when the runs' baselines differ (then they are not members of one ensemble)."""
    files = sorted(p.relative_to(runs[0]) for p in (runs[0] / "baselines").glob("*/*_poses_3d.npz"))
    if not files:
        raise SystemExit(f"{runs[0]}: no baselines/<name>/<split>_poses_3d.npz")
    for run in runs[1:]:
        for name in files:
            if not (run / name).is_file() or content_digest(run / name) != content_digest(runs[0] / name):
                raise SystemExit(f"{run / name}: differs from {runs[0] / name}; the runs must share their inputs")


def common_pairs(runs: list[Path]) -> list[tuple[str, str]]:
    """(baseline, variant) of every updater that every run trained and refined with."""
    found = [
        {(m.parent.parent.name, m.parent.name) for m in (run / "updater").glob("*/*/model.pt")
         if (run / "refined" / m.parent.parent.name / m.parent.name / "test_poses_3d.npz").is_file()}
        for run in runs
    ]  # fmt: skip
    pairs = sorted(set.intersection(*found))
    if not pairs:
        raise SystemExit(
            "the runs have no updater in common (updater/<baseline>/<variant>/model.pt and its refinement)"
        )
    return pairs


def raw_predictions(model: Path, results: Path, baseline: str, rows: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The updater's ΔU before calibration (R, 48) for training-split ``rows``."""
    network, payload = load_updater(model, torch.device("cpu"))
    store = open_dataset(results / "dataset/train.zarr")
    modality = payload["modality"]
    patches = None if modality is None else results / "patches" / patch_source(modality) / "train.zarr"
    initial = results / "baselines" / baseline / "train_poses_3d.npz"
    return predict_residuals(network, payload, store, initial, patches, rows, batch_size)[1]


def validation_table(runs: list[Path], pairs, training: dict, seed: int) -> list[str]:
    store = open_dataset(runs[0] / "dataset/train.zarr")
    truth = root_relative(store.joints_3d)
    lines = [
        "validation frames (updater.training), Eq. 2's loss before calibration; members, their mean, ΔU = 0",
        f"{'baseline/variant':34s}" + "".join(f"{f'run {i}':>9s}" for i in range(len(runs)))
        + f"{'mean':>9s}{'ensemble':>10s}{'zero':>9s}{'ens/zero':>10s}",
    ]  # fmt: skip
    for baseline, variant in pairs:
        initial = load_for_store(runs[0] / "baselines" / baseline / "train_poses_3d.npz", store)
        _, target = residual_targets(truth, initial, bone_statistics(truth))
        held = validation_rows(store, training, seed, ("updater", baseline, variant))
        goal = target[held].astype(np.float64)
        members = [raw_predictions(run / "updater" / baseline / variant / "model.pt", run, baseline, held)
                   for run in runs]  # fmt: skip
        losses = [float(((m - goal) ** 2).sum(axis=1).mean()) for m in members]
        ensemble = float(((np.mean(members, axis=0) - goal) ** 2).sum(axis=1).mean())
        zero = float((goal**2).sum(axis=1).mean())
        lines.append(f"{baseline + '/' + variant:34s}" + "".join(f"{v:9.3f}" for v in losses)
                     + f"{np.mean(losses):9.3f}{ensemble:10.3f}{zero:9.3f}{ensemble / zero:10.3f}")  # fmt: skip
    return lines


def evaluate_written(where: Path, results: Path, baseline: str, variant: str, config: dict) -> list[dict]:
    """Evaluate ``where/test_poses_3d.npz``, ``baseline``'s test split refined another way than the run
    ``results`` (a finished ``results/<dataset>``) did, by the pipeline's own code beside it (the run's initial
    errors, rarity and bootstrap streams), into ``where``; returns the rows of its ``improvement.csv``."""
    return evaluate_refinement(
        refined_predictions=where / "test_poses_3d.npz",
        store=results / "dataset/test.zarr",
        initial_errors=results / "baselines" / baseline / "test_frame_errors.npz",
        rarity=results / "evaluation/test_rarity.npz",
        table=where / "mpjpe_per_action.csv",
        frame_errors=where / "test_frame_errors.npz",
        improvement=where / "improvement.csv",
        deciles=where / "rarity_deciles.csv",
        resamples=config["evaluation"]["bootstrap_resamples"],
        confidence=config["evaluation"]["confidence"],
        seed=config["seed"],
        stream_names=refinement_stream(baseline, variant),
    )


def ensemble_test(runs: list[Path], pairs, out: Path, config: dict) -> list[str]:
    store_path = runs[0] / "dataset/test.zarr"
    store = open_dataset(store_path)
    evaluation = config["evaluation"]
    average = MEAN_OF_ACTION_MEANS_LABEL
    lines = [
        f"test split, refined MPJPE in mm ({average}); members, the ensemble, its gain [interval] (relative)",
        f"{'baseline/variant':34s}{'initial':>9s}" + "".join(f"{f'run {i}':>9s}" for i in range(len(runs)))
        + f"{'ensemble':>10s}  gain",
    ]  # fmt: skip
    for baseline, variant in pairs:
        where = out / "refined" / baseline / variant
        where.mkdir(parents=True, exist_ok=True)
        poses = [load_for_store(run / "refined" / baseline / variant / "test_poses_3d.npz", store) for run in runs]
        write_predictions(where / "test_poses_3d.npz", np.mean(poses, axis=0), store.frame_ids(), split="test",
                          method=f"{baseline} refined by {len(runs)} {variant} updaters")  # fmt: skip
        rows = evaluate_written(where, runs[0], baseline, variant, config)
        mean = next(row for row in rows if row["action"] == average)
        members = [read_improvement(run / "refined" / baseline / variant / "improvement.csv")[average]["refined_mm"]
                   for run in runs]  # fmt: skip
        relative = 100.0 * mean["improvement_mm"] / mean["initial_mm"]
        lines.append(f"{baseline + '/' + variant:34s}{mean['initial_mm']:9.1f}" + "".join(f"{m:9.1f}" for m in members)
                     + f"{mean['refined_mm']:10.1f}  {mean['improvement_mm']:+.1f} [{mean['ci_low_mm']:+.1f}, "
                     f"{mean['ci_high_mm']:+.1f}] ({relative:+.1f}%)")  # fmt: skip
    first = json.loads((runs[0] / "claims.json").read_text(encoding="utf-8"))
    table1 = [tuple(key.split(" ", 1)[1].split("/")) for key in first if key.startswith("T1 ")]
    keys = [f"{b}/{v}" for b, v in pairs]
    claims = compose_claims(
        baseline_errors={b: str(runs[0] / "baselines" / b / "test_frame_errors.npz") for b, _ in pairs},
        refined_errors={k: str(out / "refined" / k / "test_frame_errors.npz") for k in keys},
        deciles={k: str(out / "refined" / k / "rarity_deciles.csv") for k in keys},
        table1=[pair for pair in table1 if pair in pairs],
        ablation=config["updater"]["ablation_baseline"],
        resamples=evaluation["bootstrap_resamples"],
        confidence=evaluation["confidence"],
        seed=config["seed"],
    )
    write_claims(out / "claims.json", claims)
    lines.append(f"claims: {out / 'claims.json'} (benchmarks/claims_spread.py compares it with the members')")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="finished runs' results/<dataset>, the members")
    parser.add_argument("--out", type=Path, required=True, help="where the ensemble's refined files and claims go")
    parser.add_argument("--configfile", type=Path, default=Path("config.yaml"), help="the config the runs used")
    args = parser.parse_args()
    if len(args.runs) < 2:
        raise SystemExit("an ensemble needs at least two runs")
    for run in args.runs:
        if not (run / "claims.json").is_file():
            raise SystemExit(f"{run}: not a finished run's results directory (no claims.json)")
    config = load_config(args.configfile)
    check_same_inputs(args.runs)
    pairs = common_pairs(args.runs)
    torch.set_num_threads(2)
    training = config["updater"]["training"]
    if training["validation_subjects"]:
        for line in validation_table(args.runs, pairs, training, updater_seed(config)):
            print(line, flush=True)
    else:  # held-out poses are drawn from each member's updater.seed: no frames are held out from all of them
        print("validation frames: none shared (validation_subjects [] holds out poses drawn by each run's seed)")
    for line in ensemble_test(args.runs, pairs, args.out, config):
        print(line, flush=True)


if __name__ == "__main__":
    main()
