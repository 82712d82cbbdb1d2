"""Snakemake script: merge one split's Human3.6M sequences into the store + manifest (rules/dataset_h36m.smk)."""

from patchpose.h36m.workflow import run_merge_split
from patchpose.workflow_logging import log_to_file

with log_to_file(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    run_merge_split(
        settings=snakemake.params.settings,  # noqa: F821
        split=snakemake.wildcards.split,  # noqa: F821
        sequence_dirs=list(snakemake.input.sequences),  # noqa: F821
        store_path=snakemake.output.store,  # noqa: F821
        manifest_path=snakemake.output.manifest,  # noqa: F821
    )
