# updater (paper §3.2, §4.1, Eq. 2): per planned (baseline, variant) one network from the variant's patches (or,
# for the pose-only control, from the initial pose alone; for the pose + boxes control, from it and the limb
# boxes of the rgb_seg patch store, no pixels) to the residual limb orientation, trained on the baseline's
# training-split predictions (patchpose/updater). The pairs are what the tables need
# (get_updater_pairs, patchpose/updater/variants.py). A baseline with updater: {from: <other>} trains nothing
# (the other's updaters refine it, rules/refine.smk); one with updater: error_model trains on the training
# split's ground truth perturbed by an error model fitted on real residuals (the two rules at the end).


rule train_updater:
    input:
        unpack(get_updater_training_inputs),
    output:
        model=f"{RESULTS}/updater/{{baseline}}/{{variant}}/model.pt",
        curve=f"{RESULTS}/updater/{{baseline}}/{{variant}}/curve.csv",
    wildcard_constraints:
        baseline=get_trained_updater_baseline_pattern(),
    params:
        code=get_code_version("train_updater.py"),
        settings=get_updater_settings,
        seed=updater_variants.updater_seed(config),
        checkpoint=f"{RESULTS}/updater/{{baseline}}/{{variant}}/checkpoint.ckpt",
    log:
        f"{RESULTS}/logs/updater/train_{{baseline}}_{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/updater/train_{{baseline}}_{{variant}}.tsv"
    threads: 1  # see train_keypoints2d_fold (rules/keypoints2d.smk)
    resources:
        mem_mb=16000,
        runtime=1440,
        gpu=config["updater"]["training"]["processes"],  # one per training process (patchpose/distributed.py)
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/train_updater.py"


# updater: error_model (patchpose/updater/error_model.py): the error model's parameters fitted on real
# residuals (the baseline's validation_file, else the training splits of error_model_baselines), written as
# JSON and plotted against poses sampled from it; then the training split's initial poses sampled from it, in
# the prediction format, which train_updater reads as the baseline's training-split predictions.


rule fit_error_model:
    input:
        unpack(get_error_model_fit_inputs),
    output:
        params=f"{RESULTS}/error_model/{{baseline}}/params.json",
        plot=f"{RESULTS}/error_model/{{baseline}}/params.png",
    wildcard_constraints:
        baseline=get_error_model_baseline_pattern(),
    params:
        code=get_code_version("fit_error_model.py"),
        settings=get_error_model_settings,
        splits=get_error_model_splits,
        seed=config["seed"],
    log:
        f"{RESULTS}/logs/updater/fit_error_model_{{baseline}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/updater/fit_error_model_{{baseline}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/fit_error_model.py"


rule sample_error_model_poses:
    input:
        params=f"{RESULTS}/error_model/{{baseline}}/params.json",
        dataset=f"{RESULTS}/dataset/train.zarr",
    output:
        predictions=f"{RESULTS}/error_model/{{baseline}}/train_poses_3d.npz",
    wildcard_constraints:
        baseline=get_error_model_baseline_pattern(),
    params:
        code=get_code_version("sample_error_model_poses.py"),
        seed=config["seed"],
    log:
        f"{RESULTS}/logs/updater/sample_error_model_{{baseline}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/updater/sample_error_model_{{baseline}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/sample_error_model_poses.py"
