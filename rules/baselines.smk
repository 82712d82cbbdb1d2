# baselines: the initial 3D poses the refinement is applied to, one column of Table 1 each
# (patchpose/poses3d, docs/predictions_format.md). Every baseline, whatever its kind, ends up as
#   results/<dataset>/baselines/<name>/{split}_poses_3d.npz   prediction format: mm, H36M order, root-relative,
#                                                             the split's frames in the store's row order
# for each split it has (get_baseline_splits), and the two rules at the end of this file, shared by all
# kinds, add info.json, and mpjpe_per_action.csv with the per-frame errors it is computed from,
# test_frame_errors.npz (patchpose/evaluation). A kind's rules own its names' {split}_poses_3d.npz
# through a wildcard constraint (get_baseline_name_pattern).


rule import_external_baseline:
    input:
        source=get_external_baseline_source,
        stores=expand(f"{RESULTS}/dataset/{{split}}.zarr", split=SPLITS),
    output:
        predictions=f"{RESULTS}/baselines/{{name}}/{{split}}_poses_3d.npz",
        report=f"{RESULTS}/baselines/{{name}}/{{split}}_import.json",
    wildcard_constraints:
        name=get_baseline_name_pattern("external"),
    params:
        code=get_code_version("import_external_baseline.py"),
        settings=get_baseline_settings,
        file_holds_both_splits=get_external_baseline_shares_file,
        splits=SPLITS,
    log:
        f"{RESULTS}/logs/baselines/import_{{name}}_{{split}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/baselines/import_{{name}}_{{split}}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/import_external_baseline.py"


rule baseline_info:
    input:
        unpack(get_baseline_split_predictions),
    output:
        info=f"{RESULTS}/baselines/{{name}}/info.json",
    params:
        code=get_code_version("baseline_info.py"),
        kind=get_baseline_kind,
    log:
        f"{RESULTS}/logs/baselines/info_{{name}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/baselines/info_{{name}}.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/baseline_info.py"


rule evaluate_baseline:
    input:
        predictions=f"{RESULTS}/baselines/{{name}}/test_poses_3d.npz",
        store=f"{RESULTS}/dataset/test.zarr",
    output:
        table=f"{RESULTS}/baselines/{{name}}/mpjpe_per_action.csv",
        frame_errors=f"{RESULTS}/baselines/{{name}}/test_frame_errors.npz",
    params:
        code=get_code_version("evaluate_baseline.py"),
        name="{name}",
    log:
        f"{RESULTS}/logs/baselines/evaluate_{{name}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/baselines/evaluate_{{name}}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/evaluate_baseline.py"


# In-pipeline baselines (kinds lifting and integral3d; patchpose/baselines), k-fold over the training
# subjects like keypoints2d: one training job per (baseline, fold), one prediction job per (baseline,
# split); each fold model's learning curve (CSV) and one plot per baseline.


rule train_baseline_fold:
    input:
        unpack(get_trained_baseline_training_inputs),
    output:
        model=f"{RESULTS}/baselines/{{name}}/models/fold{{fold}}.pt",
        curve=f"{RESULTS}/baselines/{{name}}/curves/fold{{fold}}.csv",
    wildcard_constraints:
        name=get_trained_baseline_name_pattern(),
    params:
        code=get_trained_baseline_training_code,
        stage=get_trained_baseline_stage,
        settings=get_trained_baseline_training_settings,
        k=config["folds"]["k"],
        seed=config["seed"],
        checkpoint=f"{RESULTS}/baselines/{{name}}/checkpoints/fold{{fold}}.ckpt",
    log:
        f"{RESULTS}/logs/baselines/train_{{name}}_fold{{fold}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/baselines/train_{{name}}_fold{{fold}}.tsv"
    threads: 1  # small networks: more fold jobs side by side beat more threads per job
    priority: get_fold_priority  # the longest fold first (rules/common.smk)
    resources:
        mem_mb=8000,
        runtime=1440,
        gpu=1,
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/train_fold_model.py"


rule predict_trained_baseline:
    input:
        unpack(get_trained_baseline_prediction_inputs),
    output:
        predictions=f"{RESULTS}/baselines/{{name}}/network/{{split}}_poses_3d.npz",
    wildcard_constraints:
        name=get_trained_baseline_name_pattern(),
    params:
        code=get_trained_baseline_prediction_code,
        stage=get_trained_baseline_stage,
        batch_size=get_trained_baseline_prediction_batch_size,
    log:
        f"{RESULTS}/logs/baselines/predict_{{name}}_{{split}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/baselines/predict_{{name}}_{{split}}.tsv"
    threads: 1
    priority: UNBLOCKING_PRIORITY  # cheap, and training waits on it (rules/common.smk)
    resources:
        mem_mb=8000,
        runtime=240,
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/predict_with_fold_models.py"


# The fold models' poses of both splits -> the baseline's poses: corrected by a linear map fitted on the
# out-of-fold training predictions (cross-fitted by fold; settings.correction, kind auto: only where that lowers
# the out-of-fold training MPJPE), or copied unchanged (kind none). correction.json says which and why.


rule correct_trained_baseline:
    input:
        train=f"{RESULTS}/dataset/train.zarr",
        test=f"{RESULTS}/dataset/test.zarr",
        network_train=f"{RESULTS}/baselines/{{name}}/network/train_poses_3d.npz",
        network_test=f"{RESULTS}/baselines/{{name}}/network/test_poses_3d.npz",
    output:
        train=f"{RESULTS}/baselines/{{name}}/train_poses_3d.npz",
        test=f"{RESULTS}/baselines/{{name}}/test_poses_3d.npz",
        report=f"{RESULTS}/baselines/{{name}}/correction.json",
    wildcard_constraints:
        name=get_trained_baseline_name_pattern(),
    params:
        code=get_code_version("correct_trained_baseline.py", "patchpose.baselines.correction"),
        correction=get_trained_baseline_correction,
        k=config["folds"]["k"],
    log:
        f"{RESULTS}/logs/baselines/correct_{{name}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/baselines/correct_{{name}}.tsv"
    threads: 1
    priority: UNBLOCKING_PRIORITY  # cheap, and training waits on it (rules/common.smk)
    resources:
        # float64 poses, truth and ray rotations of both whole splits (Human3.6M's training split: ~1.5 M frames)
        mem_mb=8000,
        runtime=30,
    conda:
        "../envs/torch.yaml"  # patchpose.baselines.geometry (the ray frame) imports torch
    script:
        "../workflow_scripts/correct_trained_baseline.py"


rule plot_baseline_learning_curves:
    input:
        curves=get_trained_baseline_curves,
    output:
        plot=f"{RESULTS}/baselines/{{name}}/learning_curves.png",
    wildcard_constraints:
        name=get_trained_baseline_name_pattern(),
    params:
        code=get_code_version("plot_baseline_curves.py"),
        title="{name}",
    log:
        f"{RESULTS}/logs/baselines/plot_curves_{{name}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/baselines/plot_curves_{{name}}.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/plot_baseline_curves.py"


# The mean pose (kind mean_pose; patchpose/baselines/mean_pose.py): no network, so no training job; one job
# per (baseline, split). Each frame gets the mean training pose (ray or camera frame, settings.frame) of the
# subjects outside the fold that predicts it (folds.k, as the trained baselines: a training frame the fold
# holding its subject, test frame i fold i mod k). The reference row of every table.


rule predict_mean_pose_baseline:
    input:
        train=f"{RESULTS}/dataset/train.zarr",
        dataset=f"{RESULTS}/dataset/{{split}}.zarr",
    output:
        predictions=f"{RESULTS}/baselines/{{name}}/{{split}}_poses_3d.npz",
    wildcard_constraints:
        name=get_baseline_name_pattern("mean_pose"),
    params:
        code=get_code_version("predict_mean_pose.py"),
        settings=get_baseline_settings,
        k=get_mean_pose_fold_count,
    log:
        f"{RESULTS}/logs/baselines/predict_{{name}}_{{split}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/baselines/predict_{{name}}_{{split}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/torch.yaml"  # patchpose.baselines.geometry (the ray frame) imports torch
    script:
        "../workflow_scripts/predict_mean_pose.py"
