"""Snakemake script: one table (Table 1-3 or the extended table) as tidy CSV, LaTeX and HTML from its columns'
per-frame errors (patchpose.tables.build.build_table)."""

from patchpose.tables.build import build_table
from patchpose.tables.plan import Column
from patchpose.workflow_logging import log_to_file

with log_to_file(snakemake.log[0]) as logger:
    columns = [Column(baseline, modality) for baseline, modality in snakemake.params.columns]
    tidy = build_table(
        snakemake.wildcards.table,
        columns,
        list(snakemake.input.errors),
        csv=snakemake.output.csv,
        tex=snakemake.output.tex,
        page=snakemake.output.page,
        dataset=snakemake.params.dataset,
        resamples=snakemake.params.resamples,
        confidence=snakemake.params.confidence,
        seed=snakemake.params.seed,
        decimals=snakemake.params.decimals,
        references=list(snakemake.params.references),
        updater_sources=dict(snakemake.params.updater_sources),
        improvements=list(snakemake.input.get("improvements", [])),
        reference_errors=snakemake.input.get("reference"),
    )
    logger.info("%s: %d columns, %d rows", snakemake.wildcards.table, len(columns), len(tidy))
