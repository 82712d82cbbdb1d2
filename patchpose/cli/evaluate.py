"""``patchpose evaluate``: per-action MPJPE and PA-MPJPE of a prediction file and, against another file of the
same frames, the improvement with its paired bootstrap interval (the rules evaluate_baseline, evaluate_refined)."""

from __future__ import annotations

import os
import tempfile

import click

from patchpose.cli.common import DEFAULTS, expected_errors, import_file, import_options, import_settings, step
from patchpose.dataset_format import open_dataset
from patchpose.evaluation.bootstrap import improvement_intervals
from patchpose.evaluation.frame_errors import read_frame_errors
from patchpose.evaluation.groups import CLUSTER_KEYS
from patchpose.evaluation.refinement import improvement_rows, write_improvement
from patchpose.evaluation.tables import evaluate_prediction_file, per_action_rows, write_table
from patchpose.metrics import MEAN_OF_ACTION_MEANS_LABEL, MEAN_OVER_FRAMES_LABEL

__all__ = ["evaluate", "table_lines"]

_CLUSTERS = {"synthetic": "the views of one pose", "h36m": "one sequence: subject, action, subaction"}
assert set(_CLUSTERS) == set(CLUSTER_KEYS), "describe the bootstrap clusters of every source"

_WIDTH = 110  # of the notes under the table

_EXAMPLE = """\b
Examples:
  patchpose evaluate --predictions mine.npz --dataset results/synthetic/dataset/test.zarr
  patchpose evaluate --predictions refined.npz --dataset results/synthetic/dataset/test.zarr \\
      --against results/synthetic/baselines/lifting/test_poses_3d.npz --resamples 2000 --seed 0 \\
      --csv refined_per_action.csv --improvement-csv improvement.csv"""


def table_lines(rows: list[dict], improvements: list[dict] | None, confidence: float) -> list[str]:
    """The per-action table as aligned text lines, errors in mm with the CSVs' 4 decimals: action, frames,
    MPJPE, PA-MPJPE and, with ``improvements`` (``improvement_rows``), the other file's MPJPE, the
    improvement and its interval."""
    header = ["action", "frames", "MPJPE", "PA-MPJPE"]
    if improvements is not None:
        header += ["against", "improvement", f"{confidence:.0%} interval"]
    by_action = {row["action"]: row for row in improvements or []}
    lines = [header]
    for row in rows:
        line = [row["action"], str(row["frames"]), f"{row['mpjpe_mm']:.4f}", f"{row['pa_mpjpe_mm']:.4f}"]
        if improvements is not None:
            other = by_action[row["action"]]
            interval = f"[{other['ci_low_mm']:.4f}, {other['ci_high_mm']:.4f}]"
            line += [f"{other['initial_mm']:.4f}", f"{other['improvement_mm']:.4f}", interval]
        lines.append(line)
    widths = [max(len(line[column]) for line in lines) for column in range(len(header))]

    def aligned(line: list[str]) -> str:  # the action left-aligned, the numbers right-aligned
        cells = [line[0].ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(line[1:], widths[1:], strict=True)
        ]
        return "  ".join(cells).rstrip()

    return [aligned(line) for line in lines]


@click.command(epilog=_EXAMPLE)
@click.option("--predictions", required=True, help="The 3D predictions to evaluate: npz, h5 or CSV.")
@click.option("--dataset", "store", required=True, help="The dataset store of their split (its ground truth).")
@click.option(
    "--against",
    default=None,
    help="Another prediction file of the same frames (e.g. the baseline the predictions refine): adds its MPJPE "
    "and the improvement (its MPJPE minus the predictions') with its paired bootstrap interval.",
)
@click.option("--csv", "table", default=None, help="Write the per-action table (as mpjpe_per_action.csv).")
@click.option("--improvement-csv", default=None, help="With --against: write the improvements (as improvement.csv).")
@click.option(
    "--resamples",
    type=click.IntRange(1),
    default=DEFAULTS["resamples"],
    show_default=True,
    help="Bootstrap resamples (config evaluation.bootstrap_resamples).",
)
@click.option(
    "--confidence",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=DEFAULTS["confidence"],
    show_default=True,
    help="Confidence of the percentile interval (config evaluation.confidence).",
)
@click.option(
    "--seed", type=click.IntRange(0, 2**32 - 1), default=DEFAULTS["seed"], show_default=True, help="Config seed."
)
@click.option(
    "--stream",
    default="",
    metavar="NAME/NAME/...",
    help="Names of the bootstrap's random stream besides the seed; the rule evaluate_refined uses "
    "refined/<baseline>/<variant>, so --stream refined/lifting/rgb_seg reproduces its improvement.csv.",
)
@import_options
@import_options(prefix="against")
@expected_errors
def evaluate(predictions, store, against, table, improvement_csv, resamples, confidence, seed, stream, **options):
    """Per-action MPJPE and PA-MPJPE of a prediction file, as the rules evaluate_baseline and evaluate_refined.

    Each file is imported like an external baseline's first (the checks of validate-predictions; --format,
    --unit and --joint-names for --predictions, --against-format ... for --against). The table goes to
    stdout: errors in mm with the CSVs' 4 decimals.
    """
    if improvement_csv and not against:
        raise click.UsageError("--improvement-csv needs --against")
    dataset = open_dataset(store)
    with tempfile.TemporaryDirectory(prefix="patchpose-evaluate-") as directory:
        rows, errors = {}, {}
        settings = {
            label: import_settings(*(options[f"{prefix}{key}"] for key in ("container", "unit", "joint_names")))
            for label, prefix in (("predictions", ""), ("against", "against_"))
        }
        sources = {"predictions": predictions, "against": against} if against else {"predictions": predictions}
        for label, source in sources.items():
            with step(f"importing and evaluating {source}"):
                canonical, _ = import_file(source, store, dataset.split, settings[label], directory, label)
                errors[label] = os.path.join(directory, f"{label}_frame_errors.npz")
                rows[label] = evaluate_prediction_file(canonical, store, frame_errors=errors[label])
        improvements = None
        if against:  # as evaluate_refinement: the per-frame tables read back, the intervals, the rows
            before, after = read_frame_errors(errors["against"]), read_frame_errors(errors["predictions"])
            names = tuple(name for name in stream.split("/") if name)
            with step(f"paired bootstrap ({resamples} resamples)"):
                intervals = improvement_intervals(
                    before, after, resamples=resamples, seed=seed, stream_names=names, confidence=confidence
                )
            improvements = improvement_rows(per_action_rows(before), rows["predictions"], intervals)
    if table:
        write_table(table, rows["predictions"])
    if improvement_csv:
        write_improvement(improvement_csv, improvements)
    click.echo(f"{predictions} on {store} ({dataset.split} split, {dataset.num_frames} frames), errors in mm:")
    for line in table_lines(rows["predictions"], improvements, confidence):
        click.echo(line)
    notes = [
        f"MPJPE: protocol 1 (root-aligned); PA-MPJPE: protocol 2 (per-frame Procrustes). "
        f"'{MEAN_OF_ACTION_MEANS_LABEL}' weighs every action the same (the headline, as in VideoPose3D's "
        f"tables); '{MEAN_OVER_FRAMES_LABEL}' weighs every frame the same."
    ]
    if improvements is None:
        average = next(row for row in rows["predictions"] if row["action"] == MEAN_OF_ACTION_MEANS_LABEL)
        notes.append(
            f"MPJPE {average['mpjpe_mm']:.2f} mm, PA-MPJPE {average['pa_mpjpe_mm']:.2f} mm "
            f"({MEAN_OF_ACTION_MEANS_LABEL})"
        )
    else:
        notes.append(
            f"against: the MPJPE of {against}; improvement: that minus the MPJPE of {predictions} (positive: "
            f"{predictions} is better); interval: {confidence:.0%} percentile interval of a paired bootstrap, "
            f"{resamples} resamples of clusters ({_CLUSTERS[dataset.source]}) drawn within each action, seed "
            f"{seed}, stream {stream or '(none)'!r}."
        )
        average = next(row for row in improvements if row["action"] == MEAN_OF_ACTION_MEANS_LABEL)
        notes.append(
            f"MPJPE {average['initial_mm']:.2f} -> {average['refined_mm']:.2f} mm, improvement "
            f"{average['improvement_mm']:.2f} mm [{average['ci_low_mm']:.2f}, {average['ci_high_mm']:.2f}] "
            f"({MEAN_OF_ACTION_MEANS_LABEL})"
        )
    for note in notes:
        click.echo(click.wrap_text(note, width=_WIDTH, preserve_paragraphs=False))
    for path in filter(None, (table, improvement_csv)):
        click.echo(f"wrote {path}")
