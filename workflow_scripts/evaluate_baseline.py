"""Snakemake script: per-frame errors and per-action MPJPE and PA-MPJPE of one baseline's test split
(rules/baselines.smk)."""

import logging

from patchpose.evaluation.tables import evaluate_prediction_file
from patchpose.workflow_logging import log_to_file

with log_to_file(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    rows = evaluate_prediction_file(
        snakemake.input.predictions,  # noqa: F821
        snakemake.input.store,  # noqa: F821
        table=snakemake.output.table,  # noqa: F821
        frame_errors=snakemake.output.frame_errors,  # noqa: F821
    )
    logging.getLogger("patchpose.evaluation").info(
        "%s: MPJPE %.2f mm, PA-MPJPE %.2f mm (mean over frames)",
        snakemake.params.name,  # noqa: F821
        rows[-1]["mpjpe_mm"],
        rows[-1]["pa_mpjpe_mm"],
    )
