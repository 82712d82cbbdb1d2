"""Snakemake script: the training split's synthetic initial poses of a baseline with updater: error_model, in the
prediction format (patchpose.updater.error_model_stage.sample_training_poses)."""

from patchpose.updater.error_model_stage import sample_training_poses
from patchpose.workflow_logging import log_to_file

with log_to_file(snakemake.log[0]):
    sample_training_poses(
        name=snakemake.wildcards.baseline,
        params=snakemake.input.params,
        dataset=snakemake.input.dataset,
        output=snakemake.output.predictions,
        seed=snakemake.params.seed,
    )
