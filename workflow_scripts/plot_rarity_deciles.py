"""Snakemake script: mean MPJPE per pose-rarity decile, initial and refined by each updater
(patchpose.tables.figures.rarity_figure)."""

from patchpose.tables.figures import rarity_figure, write_figure
from patchpose.workflow_logging import log_to_file

with log_to_file(snakemake.log[0]):
    pairs = [tuple(pair) for pair in snakemake.params.pairs]
    figure = rarity_figure(dict(zip(pairs, snakemake.input.deciles, strict=True)))
    write_figure(snakemake.output.figure, figure, snakemake.params.dpi)
