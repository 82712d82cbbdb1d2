"""Snakemake script: train one baseline's updater of one variant (patchpose.updater.stage.train_updater). The
checkpoint resumes only for the same provenance: every input's content digest and the code digest."""

from patchpose.provenance import input_fingerprint
from patchpose.updater.stage import train_updater
from patchpose.workflow_logging import log_to_file

with log_to_file(snakemake.log[0]):
    inputs = dict(snakemake.input.items())
    train_updater(
        dataset=inputs["dataset"],
        initial=inputs["initial"],
        patches=inputs.get("patches"),
        variant=snakemake.wildcards.variant,
        settings=snakemake.params.settings,
        seed=snakemake.params.seed,
        baseline=snakemake.wildcards.baseline,
        model_path=snakemake.output.model,
        checkpoint_path=snakemake.params.checkpoint,
        curve_path=snakemake.output.curve,
        threads=snakemake.threads,
        provenance={"inputs": input_fingerprint(inputs), "code": snakemake.params.code},
    )
