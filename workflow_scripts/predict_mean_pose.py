"""Snakemake script: the mean_pose baseline's predictions for one split, from the training store's fold means
(rules/baselines.smk)."""

from patchpose.baselines.mean_pose import predict_split
from patchpose.workflow_logging import log_to_file

with log_to_file(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    predict_split(
        train_path=snakemake.input.train,  # noqa: F821
        store_path=snakemake.input.dataset,  # noqa: F821
        split=snakemake.wildcards.split,  # noqa: F821
        k=snakemake.params.k,  # noqa: F821
        frame=snakemake.params.settings["frame"],  # noqa: F821
        output_path=snakemake.output.predictions,  # noqa: F821
        method=snakemake.wildcards.name,  # noqa: F821
    )
