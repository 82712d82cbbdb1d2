"""Snakemake script: render one split of the synthetic world (rules/dataset.smk)."""

from patchpose.synthetic.split import render_split
from patchpose.workflow_logging import log_to_file

with log_to_file(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    render_split(
        store_path=snakemake.output.store,  # noqa: F821
        contact_sheet_path=snakemake.output.contact_sheet,  # noqa: F821
        split=snakemake.wildcards.split,  # noqa: F821
        world=snakemake.params.world,  # noqa: F821
        seed=snakemake.params.seed,  # noqa: F821
        threads=snakemake.threads,  # noqa: F821
    )
