"""Snakemake script: train one fold's model of an in-pipeline baseline (params.kind names the package
module ``patchpose.baselines.<kind>.stage``; named inputs other than ``train``, e.g. lifting's ``joints_2d``,
are passed on by name; rules/baselines.smk)."""

import importlib

from patchpose.workflow_logging import log_to_file

with log_to_file(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    stage = importlib.import_module(f"patchpose.baselines.{snakemake.params.kind}.stage")  # noqa: F821
    extra = {name: path for name, path in snakemake.input.items() if name != "train"}  # noqa: F821
    stage.train_fold(
        store_path=snakemake.input.train,  # noqa: F821
        fold=int(snakemake.wildcards.fold),  # noqa: F821
        k=snakemake.params.k,  # noqa: F821
        settings=snakemake.params.settings,  # noqa: F821
        seed=snakemake.params.seed,  # noqa: F821
        model_path=snakemake.output.model,  # noqa: F821
        checkpoint_path=snakemake.params.checkpoint,  # noqa: F821
        curve_path=snakemake.output.curve,  # noqa: F821
        threads=snakemake.threads,  # noqa: F821
        **extra,
    )
