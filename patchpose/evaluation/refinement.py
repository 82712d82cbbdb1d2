"""A refined prediction file evaluated against the file it refined: the improvement with its bootstrap interval
per action and overall, and error and gain per rarity decile; the claims the tables make, as one JSON.

Files (written atomically, CSV with 4 decimals):

* ``improvement.csv`` (``IMPROVEMENT_COLUMNS``): one row per action, then the two average rows of the per-action
  table (their labels), each with the initial and the refined MPJPE (mm), the improvement (initial - refined),
  its paired-bootstrap interval (``patchpose.evaluation.bootstrap``: clusters of views resampled within each
  action, ``resamples`` draws, seeded) and the relative improvement (improvement / initial).
* ``rarity_deciles.csv`` (``patchpose.evaluation.rarity.DECILE_COLUMNS``): the test poses in ten equal groups by
  rarity (mean distance to their nearest training poses), each group's initial and refined error and gain, the
  relative gain's bootstrap interval and its difference from the commonest decile's, with its interval.
* ``claims.json`` (``compose_claims``): each claim with the numbers behind it and whether it holds.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping

from patchpose.atomic import atomic_write_text
from patchpose.evaluation.bootstrap import improvement_intervals
from patchpose.evaluation.claims import improvement_claim
from patchpose.evaluation.frame_errors import read_frame_errors
from patchpose.evaluation.rarity import DECILE_COLUMNS, rarity_deciles, read_deciles, read_rarity
from patchpose.evaluation.tables import evaluate_prediction_file, per_action_rows
from patchpose.metrics import MEAN_OF_ACTION_MEANS_LABEL

__all__ = [
    "IMPROVEMENT_COLUMNS",
    "refinement_stream",
    "improvement_rows",
    "write_improvement",
    "evaluate_refinement",
    "read_improvement",
    "compose_claims",
    "write_claims",
]

IMPROVEMENT_COLUMNS = (
    "action",
    "frames",
    "initial_mm",
    "refined_mm",
    "improvement_mm",
    "ci_low_mm",
    "ci_high_mm",
    "relative_improvement",
)


def refinement_stream(baseline: str, variant: str) -> tuple[str, str, str]:
    """The bootstrap stream names of ``baseline`` refined by ``variant``: its ``improvement.csv`` and its Table 1
    claim draw the same resamples, so the claim's interval is the one printed there."""
    return ("refined", baseline, variant)


def _csv(rows: list[dict], columns) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: f"{value:.4f}" if isinstance(value, float) else value for key, value in row.items()})
    return buffer.getvalue()


def improvement_rows(initial_rows: list[dict], refined_rows: list[dict], intervals) -> list[dict]:
    """Rows of ``IMPROVEMENT_COLUMNS`` from the two per-action tables and the intervals of their difference."""
    refined = {row["action"]: row for row in refined_rows}
    rows = []
    for row in initial_rows:
        interval = intervals.row(row["action"])
        before, after = row["mpjpe_mm"], refined[row["action"]]["mpjpe_mm"]
        rows.append(
            {
                "action": row["action"],
                "frames": row["frames"],
                "initial_mm": before,
                "refined_mm": after,
                "improvement_mm": interval["improvement_mm"],
                "ci_low_mm": interval["ci_low_mm"],
                "ci_high_mm": interval["ci_high_mm"],
                "relative_improvement": (before - after) / before,
            }
        )
    return rows


def write_improvement(path: str | os.PathLike, rows: list[dict]) -> None:
    """``improvement_rows`` as ``improvement.csv`` (``IMPROVEMENT_COLUMNS``, mm with 4 decimals), atomically."""
    atomic_write_text(path, _csv(rows, IMPROVEMENT_COLUMNS))


def evaluate_refinement(
    *,
    refined_predictions: str | os.PathLike,
    store: str | os.PathLike,
    initial_errors: str | os.PathLike,
    rarity: str | os.PathLike,
    table: str | os.PathLike,
    frame_errors: str | os.PathLike,
    improvement: str | os.PathLike,
    deciles: str | os.PathLike,
    resamples: int,
    confidence: float,
    seed: int,
    stream_names: tuple = (),
) -> list[dict]:
    """Evaluate ``refined_predictions`` on the test ``store`` like every prediction file (``table``,
    ``frame_errors``), then against the per-frame errors of the file it refined (``initial_errors``): write
    ``improvement`` and, with the per-frame ``rarity`` (``write_rarity``), ``deciles``. Returns the improvement
    rows."""
    refined_rows = evaluate_prediction_file(refined_predictions, store, table=table, frame_errors=frame_errors)
    before, after = read_frame_errors(initial_errors), read_frame_errors(frame_errors)
    intervals = improvement_intervals(
        before, after, resamples=resamples, seed=seed, stream_names=stream_names, confidence=confidence
    )
    rows = improvement_rows(per_action_rows(before), refined_rows, intervals)
    decile_table = rarity_deciles(read_rarity(rarity, before.num_frames), before, after, resamples=resamples,
                                  seed=seed, stream_names=stream_names, confidence=confidence)  # fmt: skip
    write_improvement(improvement, rows)
    atomic_write_text(deciles, _csv(decile_table, DECILE_COLUMNS))
    return rows


def read_improvement(path: str | os.PathLike) -> dict[str, dict]:
    """``improvement.csv`` as {action label: row with floats}."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or tuple(rows[0]) != IMPROVEMENT_COLUMNS:
        raise ValueError(f"{path}: not an improvement table (columns {', '.join(IMPROVEMENT_COLUMNS)})")
    return {row["action"]: {k: (v if k == "action" else float(v)) for k, v in row.items()} for row in rows}


def compose_claims(
    *,
    baseline_errors: Mapping[str, str],
    refined_errors: Mapping[str, str],
    deciles: Mapping[str, str],
    table1: list[tuple[str, str]],
    ablation: str,
    resamples: int,
    confidence: float,
    seed: int,
) -> dict:
    """The claims of Tables 1-3 and the controls, each ``{claim, holds, ...numbers}``.

    baseline_errors: {baseline: its test_frame_errors.npz}; refined_errors, deciles:
    {"<baseline>/<variant>": file}; table1: the (baseline, variant) pairs of Table 1; ablation: the baseline
    whose ablations ran (variants rgb, seg, uncropped_rgb, pose_only, pose_boxes, rgb_seg_conditioned where
    present).

    * T1 (per pair of Table 1): the refined average MPJPE is lower and the interval excludes 0 (the interval of
      the pair's ``improvement.csv``: the same bootstrap stream, ``refinement_stream``);
    * T2: cropped ``rgb`` patches beat the ``uncropped_rgb`` frame: refined average lower, the paired interval
      of the difference excluding 0;
    * T3: ``rgb_seg`` beats both ``rgb`` and ``seg``, each difference's paired interval excluding 0 (both in
      ``over_rgb`` and ``over_seg``);
    * rare: the rarest decile gains (relative gain > 0: a refiner that harms rare poses less than common
      ones does not help them) and at least as much as the commonest, as the point estimates say; beside them
      each decile's interval and the interval of the difference (rarest - commonest) from the decile table
      (``rarity.decile_rows``), reported, not required: the claim compares the two gains, and the interval says
      whether the test poses can tell them apart (24 poses a decile on the synthetic default);
    * patches: the ``rgb_seg`` updater beats the pose-only control, the paired interval of their
      difference excluding 0;
    * patches add to the pose: the conditioned updater (the same U_init plus the patches) beats the pose-only
      control, the interval excluding 0: what the patches add to what the initial pose alone corrects;
    * pixels add to the pose and boxes: the conditioned updater beats the ``pose_boxes`` control (U_init and the
      same limb boxes, no pixels), the interval excluding 0: what the patches' pixels add, with the boxes (from
      the 2D keypoint network, information the initial pose may lack) on both sides;
    * conditioned: reported beside the paper's variant (its own T1-style claim).
    """
    claims: dict[str, dict] = {}

    def paired_claim(before_path, after_path, *streams: str) -> dict:  # after beats before, the interval excludes 0
        before, after = read_frame_errors(before_path), read_frame_errors(after_path)
        intervals = improvement_intervals(before, after, resamples=resamples, seed=seed, stream_names=streams,
                                          confidence=confidence)  # fmt: skip
        return improvement_claim(before, after, intervals)

    for baseline, variant in table1:
        key = f"{baseline}/{variant}"
        streams = refinement_stream(baseline, variant)  # the interval of the pair's improvement.csv
        claims[f"T1 {key}"] = paired_claim(baseline_errors[baseline], refined_errors[key], *streams)
    average = MEAN_OF_ACTION_MEANS_LABEL
    variants = {variant: f"{ablation}/{variant}" for variant in ("rgb", "uncropped_rgb", "seg", "rgb_seg")}
    ran = {variant for variant, key in variants.items() if key in refined_errors}
    if {"rgb", "uncropped_rgb"} <= ran:
        paired = paired_claim(
            refined_errors[variants["uncropped_rgb"]], refined_errors[variants["rgb"]], "claims", "T2"
        )
        claims["T2 cropped rgb beats uncropped rgb"] = {
            **paired,
            "claim": f"{ablation}: refined MPJPE with rgb patches lower than with the uncropped frame; "
            + paired["claim"],
            "rgb_mm": paired["refined_mm"],
            "uncropped_rgb_mm": paired["initial_mm"],
        }
    if {"rgb", "seg", "rgb_seg"} <= ran:
        over = {
            single: paired_claim(
                refined_errors[variants[single]], refined_errors[variants["rgb_seg"]], "claims", "T3", single
            )
            for single in ("rgb", "seg")
        }
        claims["T3 rgb_seg beats rgb and seg"] = {
            "claim": f"{ablation}: the rgb_seg updater's refined MPJPE is lower than rgb's and seg's ({average}), "
            f"the {over['rgb']['confidence']:.0%} bootstrap interval of each difference excluding 0",
            "holds": bool(over["rgb"]["holds"] and over["seg"]["holds"]),
            "rgb_seg_mm": over["rgb"]["refined_mm"],
            "rgb_mm": over["rgb"]["initial_mm"],
            "seg_mm": over["seg"]["initial_mm"],
            "over_rgb": over["rgb"],
            "over_seg": over["seg"],
        }
    for key, path in deciles.items():
        table = read_deciles(path)
        commonest, rarest = table[0], table[-1]
        rare_gain, common_gain = rarest["gain_relative"], commonest["gain_relative"]
        claims[f"rare {key}"] = {
            "claim": f"{key}: the rarest decile gains (relative gain > 0), at least as much as the commonest (the "
            f"{confidence:.0%} bootstrap interval of the difference is reported, not required)",
            "holds": bool(rare_gain > 0 and rare_gain >= common_gain),
            "rarest_relative_gain": rare_gain,
            "commonest_relative_gain": common_gain,
            "rarest_ci": [rarest["gain_relative_ci_low"], rarest["gain_relative_ci_high"]],
            "commonest_ci": [commonest["gain_relative_ci_low"], commonest["gain_relative_ci_high"]],
            "difference": rarest["vs_commonest"],
            "difference_ci": [rarest["vs_commonest_ci_low"], rarest["vs_commonest_ci_high"]],
            "rarest_gain_mm": rarest["gain_mm"],
            "commonest_gain_mm": commonest["gain_mm"],
            "rarest_initial_mm": rarest["initial_mm"],
            "commonest_initial_mm": commonest["initial_mm"],
            "poses_per_decile": [int(commonest["poses"]), int(rarest["poses"])],
            "confidence": confidence,
            "deciles": str(path),
        }
    control, patches = f"{ablation}/pose_only", f"{ablation}/rgb_seg"
    if control in refined_errors and patches in refined_errors:
        claim = paired_claim(refined_errors[control], refined_errors[patches], "claims", "patches")
        claim["claim"] = f"{ablation}: the rgb_seg updater beats the pose-only control; " + claim["claim"]
        claims["patches beat the pose-only control"] = claim
    conditioned = f"{ablation}/rgb_seg_conditioned"
    if control in refined_errors and conditioned in refined_errors:
        claim = paired_claim(refined_errors[control], refined_errors[conditioned], "claims", "patches add to the pose")
        claim["claim"] = (f"{ablation}: the conditioned updater (patches + U_init) beats the pose-only control "
                          f"(U_init alone); " + claim["claim"])  # fmt: skip
        claims["patches add to the pose-only control"] = claim
    boxes = f"{ablation}/pose_boxes"
    if boxes in refined_errors and conditioned in refined_errors:
        claim = paired_claim(refined_errors[boxes], refined_errors[conditioned], "claims", "pixels")
        claim["claim"] = (f"{ablation}: the conditioned updater (patches + U_init + boxes) beats the pose + boxes "
                          "control (U_init + boxes, no pixels); " + claim["claim"])  # fmt: skip
        claims["pixels add to the pose and boxes"] = claim
    return claims


def write_claims(path: str | os.PathLike, claims: dict) -> None:
    atomic_write_text(path, json.dumps(claims, indent=2, sort_keys=True) + "\n")
