"""Snakemake script: a trained baseline's poses of both splits from its fold models' poses, corrected by the
linear map fitted on its out-of-fold training predictions, or unchanged (rules/baselines.smk,
patchpose/baselines/correction.py)."""

from patchpose.baselines.correction import correct_baseline
from patchpose.workflow_logging import log_to_file

with log_to_file(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    correct_baseline(
        train_store_path=snakemake.input.train,  # noqa: F821
        test_store_path=snakemake.input.test,  # noqa: F821
        network_train=snakemake.input.network_train,  # noqa: F821
        network_test=snakemake.input.network_test,  # noqa: F821
        k=snakemake.params.k,  # noqa: F821
        kind=snakemake.params.correction["kind"],  # noqa: F821
        ridges=snakemake.params.correction["ridges"],  # noqa: F821
        output_train=snakemake.output.train,  # noqa: F821
        output_test=snakemake.output.test,  # noqa: F821
        output_report=snakemake.output.report,  # noqa: F821
        method=snakemake.wildcards.name,  # noqa: F821
    )
