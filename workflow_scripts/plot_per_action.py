"""Snakemake script: Table 1's initial and refined MPJPE per action with interval whiskers
(patchpose.tables.figures.per_action_figure)."""

from patchpose.tables.figures import per_action_figure, write_figure
from patchpose.tables.numbers import read_tidy
from patchpose.workflow_logging import log_to_file

with log_to_file(snakemake.log[0]):
    write_figure(snakemake.output.figure, per_action_figure(read_tidy(snakemake.input.table)), snakemake.params.dpi)
