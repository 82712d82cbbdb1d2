"""Snakemake script: validate one split of an external baseline's file into canonical form (rules/baselines.smk)."""

from patchpose.poses3d import import_external_split
from patchpose.workflow_logging import log_to_file

with log_to_file(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    settings = snakemake.params.settings  # noqa: F821
    import_external_split(
        name=snakemake.wildcards.name,  # noqa: F821
        split=snakemake.wildcards.split,  # noqa: F821
        source=snakemake.input.source,  # noqa: F821
        stores=dict(zip(snakemake.params.splits, snakemake.input.stores, strict=True)),  # noqa: F821
        output=snakemake.output.predictions,  # noqa: F821
        report=snakemake.output.report,  # noqa: F821
        format=settings["format"],
        unit=settings["unit"],
        joint_names=settings["joint_names"],
        file_holds_both_splits=snakemake.params.file_holds_both_splits,  # noqa: F821
    )
