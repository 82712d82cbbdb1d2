# refine/evaluate (paper Eq. 1): each trained updater refines its baseline's test split (and those of the
# baselines with updater: {from: <it>}; get_updater_refine_inputs), written in the prediction format under the
# refined baseline's name, which is evaluated like every prediction file and against the baseline it refined
# (bootstrap intervals, rarity deciles; patchpose/evaluation); claims.json states what the tables claim.


rule refine_with_updater:
    input:
        unpack(get_updater_refine_inputs),
    output:
        predictions=f"{RESULTS}/refined/{{baseline}}/{{variant}}/test_poses_3d.npz",
    wildcard_constraints:
        baseline=get_updater_baseline_pattern(),
    params:
        code=get_code_version("refine_with_updater.py"),
        batch_size=config["updater"]["prediction_batch_size"],
    log:
        f"{RESULTS}/logs/refine/refine_{{baseline}}_{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/refine/refine_{{baseline}}_{{variant}}.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=240,
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/refine_with_updater.py"


rule pose_rarity:
    input:
        train=f"{RESULTS}/dataset/train.zarr",
        test=f"{RESULTS}/dataset/test.zarr",
    output:
        rarity=f"{RESULTS}/evaluation/test_rarity.npz",
    params:
        code=get_code_version("pose_rarity.py"),
        neighbours=config["evaluation"]["rarity_neighbours"],
    log:
        f"{RESULTS}/logs/refine/pose_rarity.log",
    benchmark:
        f"{RESULTS}/benchmarks/refine/pose_rarity.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/pose_rarity.py"


rule evaluate_refined:
    input:
        predictions=f"{RESULTS}/refined/{{baseline}}/{{variant}}/test_poses_3d.npz",
        store=f"{RESULTS}/dataset/test.zarr",
        initial_errors=f"{RESULTS}/baselines/{{baseline}}/test_frame_errors.npz",
        rarity=f"{RESULTS}/evaluation/test_rarity.npz",
    output:
        table=f"{RESULTS}/refined/{{baseline}}/{{variant}}/mpjpe_per_action.csv",
        frame_errors=f"{RESULTS}/refined/{{baseline}}/{{variant}}/test_frame_errors.npz",
        improvement=f"{RESULTS}/refined/{{baseline}}/{{variant}}/improvement.csv",
        deciles=f"{RESULTS}/refined/{{baseline}}/{{variant}}/rarity_deciles.csv",
    wildcard_constraints:
        baseline=get_updater_baseline_pattern(),
    params:
        code=get_code_version("evaluate_refined.py"),
        evaluation=config["evaluation"],
        seed=config["seed"],
    log:
        f"{RESULTS}/logs/refine/evaluate_{{baseline}}_{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/refine/evaluate_{{baseline}}_{{variant}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/evaluate_refined.py"


rule write_claims:
    input:
        unpack(get_claims_inputs),
    output:
        claims=f"{RESULTS}/claims.json",
    params:
        code=get_code_version("write_claims.py"),
        pairs=get_updater_pairs(),
        table1=get_updater_plan()["table1"],
        ablation=config["updater"]["ablation_baseline"],
        baselines=get_claims_baselines(),
        evaluation=config["evaluation"],
        seed=config["seed"],
    log:
        f"{RESULTS}/logs/refine/claims.log",
    benchmark:
        f"{RESULTS}/benchmarks/refine/claims.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/write_claims.py"
