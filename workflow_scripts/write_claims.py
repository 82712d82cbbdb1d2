"""Snakemake script: results/<dataset>/claims.json, each claim of Tables 1-3 and the controls with its numbers
(patchpose.evaluation.refinement.compose_claims)."""

from patchpose.evaluation.refinement import compose_claims, write_claims
from patchpose.workflow_logging import log_to_file

with log_to_file(snakemake.log[0]):
    pairs = [tuple(pair) for pair in snakemake.params.pairs]
    keys = [f"{baseline}/{variant}" for baseline, variant in pairs]
    claims = compose_claims(
        baseline_errors=dict(zip(snakemake.params.baselines, snakemake.input.baseline_errors, strict=True)),
        refined_errors=dict(zip(keys, snakemake.input.refined_errors, strict=True)),
        deciles=dict(zip(keys, snakemake.input.deciles, strict=True)),
        table1=[tuple(pair) for pair in snakemake.params.table1],
        ablation=snakemake.params.ablation,
        resamples=snakemake.params.evaluation["bootstrap_resamples"],
        confidence=snakemake.params.evaluation["confidence"],
        seed=snakemake.params.seed,
    )
    write_claims(snakemake.output.claims, claims)
