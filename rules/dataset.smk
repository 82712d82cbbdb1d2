# dataset: render the synthetic world into the common dataset format (docs/data_format.md).


rule render_synthetic_split:
    output:
        store=directory(f"{RESULTS}/dataset/{{split}}.zarr"),
        contact_sheet=f"{RESULTS}/dataset/{{split}}_contact_sheet.png",
    params:
        code=get_code_version("render_synthetic.py"),
        world=get_world_params,
        seed=config["seed"],
    log:
        f"{RESULTS}/logs/dataset/render_{{split}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/dataset/render_{{split}}.tsv"
    threads: 8  # sequences render in parallel processes
    resources:
        mem_mb=8000,
        runtime=240,
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/render_synthetic.py"
