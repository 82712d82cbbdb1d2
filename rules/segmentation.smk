# segmentation: 15 body parts, colour-encoded, k-fold over training subjects (patchpose/segmentation,
# patchpose/folds.py). The fold models that segment are keypoints2d's (their part head; segmentation.network:
# keypoints2d, the default) or this stage's own NBF-style network (refinenet: one training job per fold model).
# One job per split's predictions.


rule train_segmentation_fold:
    input:
        train=f"{RESULTS}/dataset/train.zarr",
    output:
        model=f"{RESULTS}/segmentation/models/fold{{fold}}.pt",
    params:
        code=get_code_version("train_fold_model.py", "patchpose.segmentation.stage"),
        stage="segmentation",
        settings=get_segmentation_training_settings(),
        k=config["folds"]["k"],
        seed=config["seed"],
        checkpoint=f"{RESULTS}/segmentation/checkpoints/fold{{fold}}.ckpt",
    log:
        f"{RESULTS}/logs/segmentation/train_fold{{fold}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/segmentation/train_fold{{fold}}.tsv"
    threads: 1  # see train_keypoints2d_fold (rules/keypoints2d.smk)
    priority: get_fold_priority  # the longest fold first (rules/common.smk)
    resources:
        mem_mb=16000,
        runtime=1440,
        gpu=1,
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/train_fold_model.py"


rule predict_segmentation:
    input:
        dataset=f"{RESULTS}/dataset/{{split}}.zarr",
        models=get_segmentation_fold_models,
    output:
        store=directory(f"{RESULTS}/segmentation/{{split}}.zarr"),
    params:
        code=get_code_version("predict_with_fold_models.py", "patchpose.segmentation.stage"),
        stage="segmentation",
        batch_size=config["segmentation"]["prediction_batch_size"],
    log:
        f"{RESULTS}/logs/segmentation/predict_{{split}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/segmentation/predict_{{split}}.tsv"
    threads: 1  # see train_keypoints2d_fold (rules/keypoints2d.smk)
    priority: UNBLOCKING_PRIORITY  # cheap, and training waits on it (rules/common.smk)
    resources:
        mem_mb=8000,
        runtime=480,
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/predict_with_fold_models.py"


rule evaluate_segmentation:
    input:
        stores=expand(f"{RESULTS}/dataset/{{split}}.zarr", split=SPLITS),
        segmentations=expand(f"{RESULTS}/segmentation/{{split}}.zarr", split=SPLITS),
    output:
        metrics=f"{RESULTS}/segmentation/metrics.csv",
        sheets=expand(f"{RESULTS}/segmentation/{{split}}_contact_sheet.png", split=SPLITS),
    params:
        code=get_code_version("evaluate_segmentation.py"),
        evaluation=config["segmentation"]["evaluation"],
        splits=SPLITS,
    log:
        f"{RESULTS}/logs/segmentation/evaluate.log",
    benchmark:
        f"{RESULTS}/benchmarks/segmentation/evaluate.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/evaluate_segmentation.py"
