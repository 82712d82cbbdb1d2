"""Snakemake script: fit one baseline's error model on real residuals (its validation file, or other baselines'
training splits) and plot it (patchpose.updater.error_model_stage.fit_stage)."""

from patchpose.updater.error_model_stage import fit_stage
from patchpose.workflow_logging import log_to_file

with log_to_file(snakemake.log[0]):
    inputs, settings = dict(snakemake.input.items()), snakemake.params.settings
    fit_stage(
        name=snakemake.wildcards.baseline,
        stores=dict(zip(snakemake.params.splits, inputs["stores"], strict=True)),
        params_path=snakemake.output.params,
        plot_path=snakemake.output.plot,
        seed=snakemake.params.seed,
        validation_file=inputs.get("validation"),
        validation_settings={key: settings[key] for key in ("format", "unit", "joint_names")},
        baseline_predictions=dict(zip(settings["baselines"], inputs.get("residuals", []), strict=True)),
    )
