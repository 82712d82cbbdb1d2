"""Snakemake script: train one fold's model of a k-fold stage (params.stage names the package module
``patchpose.<stage>.stage``: keypoints2d, segmentation, baselines.<kind>). Named inputs other than ``train``
(e.g. lifting's ``joints_2d``) and a ``curve`` output (the baselines' learning curve) are passed on by name;
a baseline's ``{name}`` wildcard names its RNG streams. The checkpoint resumes only for the same provenance:
the content digests of every input and the stage's code digest (params.code)."""

import importlib

from patchpose.provenance import input_fingerprint
from patchpose.workflow_logging import log_to_file

with log_to_file(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    stage = importlib.import_module(f"patchpose.{snakemake.params.stage}.stage")  # noqa: F821
    inputs = dict(snakemake.input.items())  # noqa: F821
    extra = {name: path for name, path in inputs.items() if name != "train"}
    if "curve" in snakemake.output.keys():  # noqa: F821
        extra["curve_path"] = snakemake.output.curve  # noqa: F821
    if "name" in snakemake.wildcards.keys():  # noqa: F821
        extra["name"] = snakemake.wildcards.name  # noqa: F821
    stage.train_fold(
        store_path=snakemake.input.train,  # noqa: F821
        fold=int(snakemake.wildcards.fold),  # noqa: F821
        k=snakemake.params.k,  # noqa: F821
        settings=snakemake.params.settings,  # noqa: F821
        seed=snakemake.params.seed,  # noqa: F821
        model_path=snakemake.output.model,  # noqa: F821
        checkpoint_path=snakemake.params.checkpoint,  # noqa: F821
        threads=snakemake.threads,  # noqa: F821
        provenance={"inputs": input_fingerprint(inputs), "code": snakemake.params.code},  # noqa: F821
        **extra,
    )
