"""Snakemake script: the qualitative figure of one refinement, as the paper's Fig. 1/4: the frames with the largest
improvement, the largest deterioration and the rarest pose (patchpose.tables.figures.qualitative_figure)."""

from patchpose.tables.figures import qualitative_figure, write_figure
from patchpose.tables.layout import MODALITY_LABELS
from patchpose.workflow_logging import log_to_file

with log_to_file(snakemake.log[0]):
    baseline, variant = snakemake.wildcards.baseline, snakemake.wildcards.variant
    figure = qualitative_figure(
        **{key: snakemake.input[key] for key in ("store", "patches", "initial", "refined", "rarity")},
        initial_errors=snakemake.input.initial_errors,
        refined_errors=snakemake.input.refined_errors,
        title=f"{baseline} + {MODALITY_LABELS.get(variant, variant)}",
        frames_per_case=snakemake.params.frames_per_case,
        azimuth_deg=snakemake.params.azimuth_deg,
        elevation_deg=snakemake.params.elevation_deg,
    )
    write_figure(snakemake.output.figure, figure, snakemake.params.dpi)
