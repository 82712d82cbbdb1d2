"""Snakemake script: one split's whole frames, resized, into the uncropped patch store (rules/patches.smk)."""

from patchpose.patches.stage import write_uncropped
from patchpose.workflow_logging import log_to_file

with log_to_file(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    params = snakemake.params  # noqa: F821
    write_uncropped(
        dataset_path=snakemake.input.dataset,  # noqa: F821
        segmentation_path=snakemake.input.segmentation,  # noqa: F821
        output_path=snakemake.output.store,  # noqa: F821
        size=params.size,
        storage={"compressor": params.compressor, "compression_level": params.compression_level},
        threads=snakemake.threads,  # noqa: F821
    )
