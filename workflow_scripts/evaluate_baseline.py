"""Snakemake script: per-action MPJPE and PA-MPJPE of one baseline's test split (rules/baselines.smk)."""

import logging

from patchpose.poses3d import evaluate_prediction_file
from patchpose.workflow_logging import log_to_file

with log_to_file(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    rows = evaluate_prediction_file(snakemake.input.predictions, snakemake.input.store, snakemake.output.table)  # noqa: F821
    logging.getLogger("patchpose.poses3d").info(
        "%s: MPJPE %.2f mm, PA-MPJPE %.2f mm (mean over frames)",
        snakemake.params.name,  # noqa: F821
        rows[-1]["mpjpe_mm"],
        rows[-1]["pa_mpjpe_mm"],
    )
