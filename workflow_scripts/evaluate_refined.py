"""Snakemake script: a refined test split evaluated like every prediction file, then against the baseline it
refined: improvement with bootstrap intervals, error and gain per rarity decile
(patchpose.evaluation.refinement.evaluate_refinement)."""

import logging

from patchpose.evaluation.refinement import evaluate_refinement, refinement_stream
from patchpose.metrics import MEAN_OF_ACTION_MEANS_LABEL
from patchpose.workflow_logging import log_to_file

with log_to_file(snakemake.log[0]):
    rows = evaluate_refinement(
        refined_predictions=snakemake.input.predictions,
        store=snakemake.input.store,
        initial_errors=snakemake.input.initial_errors,
        rarity=snakemake.input.rarity,
        table=snakemake.output.table,
        frame_errors=snakemake.output.frame_errors,
        improvement=snakemake.output.improvement,
        deciles=snakemake.output.deciles,
        resamples=snakemake.params.evaluation["bootstrap_resamples"],
        confidence=snakemake.params.evaluation["confidence"],
        seed=snakemake.params.seed,
        stream_names=refinement_stream(snakemake.wildcards.baseline, snakemake.wildcards.variant),
    )
    average = next(row for row in rows if row["action"] == MEAN_OF_ACTION_MEANS_LABEL)
    logging.getLogger("patchpose.evaluation").info(
        "%s/%s: MPJPE %.2f -> %.2f mm (%s), improvement %.2f mm [%.2f, %.2f]",
        snakemake.wildcards.baseline,
        snakemake.wildcards.variant,
        average["initial_mm"],
        average["refined_mm"],
        MEAN_OF_ACTION_MEANS_LABEL,
        average["improvement_mm"],
        average["ci_low_mm"],
        average["ci_high_mm"],
    )
