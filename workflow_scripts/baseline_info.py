"""Snakemake script: info.json of one baseline, the splits its predictions cover (rules/baselines.smk)."""

from patchpose.poses3d import write_baseline_info
from patchpose.workflow_logging import log_to_file

with log_to_file(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    write_baseline_info(
        snakemake.output.info,  # noqa: F821
        name=snakemake.wildcards.name,  # noqa: F821
        kind=snakemake.params.kind,  # noqa: F821
        split_files={split: snakemake.input[split] for split in ("train", "test") if split in snakemake.input.keys()},  # noqa: F821
    )
