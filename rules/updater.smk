# updater (paper §3.2, §4.1, Eq. 2): per planned (baseline, variant) one network from the variant's patches (or,
# for the pose-only control, from the initial pose alone) to the residual limb orientation, trained on the
# baseline's training-split predictions (patchpose/updater). The pairs are what the tables need
# (get_updater_pairs, patchpose/updater/variants.py).


rule train_updater:
    input:
        unpack(get_updater_training_inputs),
    output:
        model=f"{RESULTS}/updater/{{baseline}}/{{variant}}/model.pt",
        curve=f"{RESULTS}/updater/{{baseline}}/{{variant}}/curve.csv",
    wildcard_constraints:
        baseline=get_updater_baseline_pattern(),
    params:
        code=get_code_version("train_updater.py"),
        settings=get_updater_settings,
        seed=config["seed"],
        checkpoint=f"{RESULTS}/updater/{{baseline}}/{{variant}}/checkpoint.ckpt",
    log:
        f"{RESULTS}/logs/updater/train_{{baseline}}_{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/updater/train_{{baseline}}_{{variant}}.tsv"
    threads: 2
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/train_updater.py"
