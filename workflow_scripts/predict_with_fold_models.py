"""Snakemake script: predict one split with a k-fold stage's fold models (params.stage names the package
module ``patchpose.<stage>.stage``: keypoints2d, segmentation, baselines.<kind>). Named inputs other than
``dataset`` and ``models`` (e.g. lifting's ``joints_2d``) are passed on by name; a baseline's ``{name}``
wildcard labels its predictions (``method``)."""

import importlib

from patchpose.workflow_logging import log_to_file

with log_to_file(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    stage = importlib.import_module(f"patchpose.{snakemake.params.stage}.stage")  # noqa: F821
    extra = {name: path for name, path in snakemake.input.items() if name not in ("dataset", "models")}  # noqa: F821
    if "name" in snakemake.wildcards.keys():  # noqa: F821
        extra["method"] = snakemake.wildcards.name  # noqa: F821
    stage.predict_split(
        store_path=snakemake.input.dataset,  # noqa: F821
        model_paths=list(snakemake.input.models),  # noqa: F821
        split=snakemake.wildcards.split,  # noqa: F821
        batch_size=snakemake.params.batch_size,  # noqa: F821
        output_path=snakemake.output[0],  # noqa: F821
        threads=snakemake.threads,  # noqa: F821
        **extra,
    )
