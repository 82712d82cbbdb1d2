"""Snakemake script: refine a baseline's test predictions with its trained updater (Eq. 1), written in the
prediction format (patchpose.updater.stage.refine_split)."""

from patchpose.updater.stage import refine_split
from patchpose.workflow_logging import log_to_file

with log_to_file(snakemake.log[0]):
    inputs = dict(snakemake.input.items())
    refine_split(
        model=inputs["model"],
        dataset=inputs["dataset"],
        initial=inputs["initial"],
        patches=inputs.get("patches"),
        output=snakemake.output.predictions,
        method=f"{snakemake.wildcards.baseline} + updater ({snakemake.wildcards.variant})",
        batch_size=snakemake.params.batch_size,
        threads=snakemake.threads,
    )
