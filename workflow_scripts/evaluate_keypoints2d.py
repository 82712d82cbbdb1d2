"""Snakemake script: 2D keypoint metrics per split and contact sheets (rules/keypoints2d.smk)."""

from patchpose.keypoints2d.evaluate import evaluate
from patchpose.workflow_logging import log_to_file

with log_to_file(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    splits = snakemake.params.splits  # noqa: F821
    evaluate(
        stores=dict(zip(splits, snakemake.input.stores, strict=True)),  # noqa: F821
        prediction_paths=dict(zip(splits, snakemake.input.joints, strict=True)),  # noqa: F821
        pck_threshold=snakemake.params.evaluation["pck_threshold"],  # noqa: F821
        sheet_frames=snakemake.params.evaluation["contact_sheet_frames"],  # noqa: F821
        metrics_path=snakemake.output.metrics,  # noqa: F821
        sheets=dict(zip(splits, snakemake.output.sheets, strict=True)),  # noqa: F821
    )
