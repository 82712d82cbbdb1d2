"""Snakemake script: predict one split's 3D poses with an in-pipeline baseline's fold models, written in the
prediction format (params.kind names ``patchpose.baselines.<kind>.stage``; named inputs other than
``dataset`` and ``models`` are passed on by name; rules/baselines.smk)."""

import importlib

from patchpose.workflow_logging import log_to_file

with log_to_file(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    stage = importlib.import_module(f"patchpose.baselines.{snakemake.params.kind}.stage")  # noqa: F821
    extra = {name: path for name, path in snakemake.input.items() if name not in ("dataset", "models")}  # noqa: F821
    stage.predict_split(
        store_path=snakemake.input.dataset,  # noqa: F821
        model_paths=list(snakemake.input.models),  # noqa: F821
        split=snakemake.wildcards.split,  # noqa: F821
        batch_size=snakemake.params.batch_size,  # noqa: F821
        output_path=snakemake.output.predictions,  # noqa: F821
        method=snakemake.wildcards.name,  # noqa: F821
        threads=snakemake.threads,  # noqa: F821
        **extra,
    )
