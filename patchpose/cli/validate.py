"""``patchpose validate-predictions``: the import's checks alone, every problem listed."""

from __future__ import annotations

import tempfile

import click

from patchpose.cli.common import expected_errors, import_file, import_options, import_settings, one_line
from patchpose.dataset_format import open_dataset
from patchpose.poses3d.importer import import_problems
from patchpose.poses3d.joint_order_check import SWAP_FRAMES, SWAP_GAIN

__all__ = ["validate_predictions"]

_EXAMPLE = """\b
Example:
  patchpose validate-predictions mine.csv --dataset results/synthetic/dataset/test.zarr --unit m"""


@click.command("validate-predictions", epilog=_EXAMPLE)
@click.argument("predictions")
@click.option("--dataset", "store", required=True, help="The dataset store of the file's split.")
@import_options
@expected_errors
def validate_predictions(predictions, store, container, unit, joint_names):
    """Check a prediction file as the import of an external baseline does, listing every problem.

    Exit 0 with a one-line summary when the pipeline would accept the file for the store's split; else one
    'patchpose: error: <file>: <problem>' line per problem (and the checks an earlier problem left
    undecidable, as 'not checked') and exit 1.
    """
    dataset = open_dataset(store)
    settings = import_settings(container, unit, joint_names)
    problems, skipped = import_problems(
        split=dataset.split, source=predictions, stores={dataset.split: store}, **settings
    )
    if not problems:  # then the import itself, so that exit 0 means the pipeline accepts the file
        with tempfile.TemporaryDirectory(prefix="patchpose-validate-") as directory:
            try:
                _, report = import_file(predictions, store, dataset.split, settings, directory, "checked")
            except ValueError as error:
                problems = [error]
    if problems:
        for problem in problems:
            click.echo(f"patchpose: error: {one_line(problem)}", err=True)
        for check in skipped:
            click.echo(f"patchpose: not checked: {check}", err=True)
        click.echo(f"patchpose: {len(problems)} problem(s) in {predictions}", err=True)
        raise click.exceptions.Exit(1)
    order = "--joint-names" if joint_names else "the file's joint names"
    click.echo(
        f"{predictions}: OK: {report['frames']} {dataset.split} frames of {store}; unit {report['unit']} "
        f"(median bone {report['median_bone_length_mm']:.0f} mm); joint order from {order} (mean joint distance "
        f"to the ground truth {report['declared_order_error_mm']:.0f} mm, {report['best_order_error_mm']:.0f} mm "
        f"reordered; most swap-like joint pair {report['most_swap_like_pair']}: trading places helps in "
        f"{report['most_swap_like_frames']:.0%} of the frames, median gain {report['most_swap_like_gain']:+.2f}; "
        f"refused over {SWAP_FRAMES:.0%} and {SWAP_GAIN}); root offset up to {report['root_offset_max_mm']:.1f} mm "
        "subtracted"
    )
