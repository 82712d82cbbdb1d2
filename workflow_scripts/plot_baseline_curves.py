"""Snakemake script: one PNG of an in-pipeline baseline's fold learning curves (rules/baselines.smk)."""

from patchpose.baselines.curves import plot_learning_curves
from patchpose.workflow_logging import log_to_file

with log_to_file(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    plot_learning_curves(list(snakemake.input.curves), snakemake.output.plot, snakemake.params.title)  # noqa: F821
