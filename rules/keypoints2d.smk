# keypoints2d: a stacked hourglass with integral regression, k-fold over training subjects (patchpose/keypoints2d,
# patchpose/folds.py); by default its fold models also carry the part head the segmentation stage segments with.
# One job per fold model, one per split's predictions.


rule train_keypoints2d_fold:
    input:
        train=f"{RESULTS}/dataset/train.zarr",
    output:
        model=f"{RESULTS}/keypoints2d/models/fold{{fold}}.pt",
    params:
        code=get_code_version("train_fold_model.py", "patchpose.keypoints2d.stage"),
        stage="keypoints2d",
        settings=get_keypoints2d_training_settings(),
        k=config["folds"]["k"],
        seed=config["seed"],
        checkpoint=f"{RESULTS}/keypoints2d/checkpoints/fold{{fold}}.ckpt",
    log:
        f"{RESULTS}/logs/keypoints2d/train_fold{{fold}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/keypoints2d/train_fold{{fold}}.tsv"
    threads: 1  # one per job: on 2 cores two jobs side by side beat one job on 2 threads (benchmarks/threads.py)
    priority: get_fold_priority  # the longest fold first (rules/common.smk)
    resources:
        mem_mb=16000,
        runtime=1440,
        gpu=1,
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/train_fold_model.py"


rule predict_keypoints2d:
    input:
        dataset=f"{RESULTS}/dataset/{{split}}.zarr",
        models=get_keypoints2d_fold_models,
    output:
        joints=f"{RESULTS}/keypoints2d/{{split}}_joints_2d.npz",
    params:
        code=get_code_version("predict_with_fold_models.py", "patchpose.keypoints2d.stage"),
        stage="keypoints2d",
        batch_size=config["keypoints2d"]["prediction_batch_size"],
    log:
        f"{RESULTS}/logs/keypoints2d/predict_{{split}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/keypoints2d/predict_{{split}}.tsv"
    threads: 1  # see train_keypoints2d_fold
    priority: UNBLOCKING_PRIORITY  # cheap, and training waits on it (rules/common.smk)
    resources:
        mem_mb=8000,
        runtime=480,
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/predict_with_fold_models.py"


rule evaluate_keypoints2d:
    input:
        stores=expand(f"{RESULTS}/dataset/{{split}}.zarr", split=SPLITS),
        joints=expand(f"{RESULTS}/keypoints2d/{{split}}_joints_2d.npz", split=SPLITS),
    output:
        metrics=f"{RESULTS}/keypoints2d/metrics.csv",
        sheets=expand(f"{RESULTS}/keypoints2d/{{split}}_contact_sheet.png", split=SPLITS),
    params:
        code=get_code_version("evaluate_keypoints2d.py"),
        evaluation=config["keypoints2d"]["evaluation"],
        splits=SPLITS,
    log:
        f"{RESULTS}/logs/keypoints2d/evaluate.log",
    benchmark:
        f"{RESULTS}/benchmarks/keypoints2d/evaluate.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/evaluate_keypoints2d.py"
