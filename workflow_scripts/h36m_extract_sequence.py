"""Snakemake script: extract one Human3.6M sequence into its intermediate (rules/dataset_h36m.smk)."""

from patchpose.h36m.workflow import run_extract_sequence
from patchpose.workflow_logging import log_to_file

with log_to_file(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    run_extract_sequence(
        settings=snakemake.params.settings,  # noqa: F821
        subject=snakemake.wildcards.subject,  # noqa: F821
        key=snakemake.wildcards.sequence,  # noqa: F821
        out_dir=snakemake.output.sequence,  # noqa: F821
    )
