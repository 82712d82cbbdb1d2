"""Snakemake script: cut one split's 16 limb patches into its patch store (rules/patches.smk)."""

from patchpose.patches.geometry import LimbPatchGeometry
from patchpose.patches.stage import write_limb_patches
from patchpose.workflow_logging import log_to_file

with log_to_file(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    params = snakemake.params  # noqa: F821
    write_limb_patches(
        dataset_path=snakemake.input.dataset,  # noqa: F821
        segmentation_path=snakemake.input.segmentation,  # noqa: F821
        output_path=snakemake.output.store,  # noqa: F821
        source=snakemake.wildcards.source2d,  # noqa: F821
        joints_path=snakemake.input.get("joints"),  # noqa: F821 (predicted source only)
        geometry=LimbPatchGeometry(params.min_side_at_256, params.scale, params.square, params.cache_size),
        storage={"compressor": params.compressor, "compression_level": params.compression_level},
        threads=snakemake.threads,  # noqa: F821
    )
