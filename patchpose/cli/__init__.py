"""The ``patchpose`` command line: refine, evaluate and validate a 3D prediction file without Snakemake.

Every verb calls the functions the workflow's rules call, so a file gets the same checks and the same
numbers as in the pipeline (docs/cli.md):

* ``refine`` (``refine.py``): the file is imported like an external baseline (``import_external_split``: any
  container, unit and joint order converted, every check), then refined by a trained updater
  (``refine_split``, the ``refine_with_updater`` rule's call);
* ``evaluate`` (``evaluate.py``): imported the same way, then evaluated like every prediction file
  (``evaluate_prediction_file``, the ``evaluate_baseline`` rule's call); with ``--against`` also the paired
  bootstrap interval of the improvement (``improvement_intervals``, ``improvement_rows``: the
  ``evaluate_refined`` rule's);
* ``validate-predictions`` (``validate.py``): the import's checks alone, every problem listed
  (``import_problems``).

Expected problems (a bad file, store or model: the package's ``ValueError``s, which read "<file>: <problem>",
and ``OSError``s) print one line ``patchpose: error: <file>: <problem>`` and exit 1, with no output written
(``common.py``); usage errors exit 2 (click). Torch is imported by ``refine`` only.
"""

from __future__ import annotations

import logging
import sys

import click

from patchpose.cli.evaluate import evaluate
from patchpose.cli.refine import refine
from patchpose.cli.validate import validate_predictions

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-q", "--quiet", is_flag=True, help="No progress lines on stderr.")
@click.option("-v", "--verbose", is_flag=True, help="Log what the package does (import, refinement) on stderr.")
@click.pass_context
def main(context: click.Context, quiet: bool, verbose: bool) -> None:
    """Refine, evaluate and validate 3D pose prediction files (docs/predictions_format.md) with the
    pipeline's own functions: the same checks and the same numbers as the Snakemake rules (docs/cli.md)."""
    context.obj = {"quiet": quiet}
    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)


main.add_command(refine)
main.add_command(evaluate)
main.add_command(validate_predictions)
