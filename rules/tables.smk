# tables and figures (paper Tables 1-3, Fig. 1/4): each table from its prediction files' per-frame errors as tidy CSV,
# LaTeX (booktabs, pandas' Styler) and HTML with the paper's relative gains beside ours; the figures from the
# tables, the rarity deciles and the refined test splits (patchpose/tables). The HTML pages and figures carry
# report() flags: `snakemake --report report.html` attaches them with the captions in report/.


rule make_table:
    input:
        unpack(get_table_inputs),
    output:
        csv=report(
            f"{RESULTS}/tables/{{table}}.csv",
            caption="../report/table.rst",
            category="Tables",
            subcategory="Files",
            labels={"table": "{table}", "file": "tidy CSV"},
        ),
        tex=report(
            f"{RESULTS}/tables/{{table}}.tex",
            caption="../report/table.rst",
            category="Tables",
            subcategory="Files",
            labels={"table": "{table}", "file": "LaTeX"},
        ),
        page=report(
            f"{RESULTS}/tables/{{table}}.html",
            caption="../report/table.rst",
            category="Tables",
            subcategory="Tables",
            labels={"table": "{table}"},
        ),
    wildcard_constraints:
        table=tables_plan.wildcard_constraint(),
    params:
        code=get_code_version("make_table.py"),
        columns=get_table_columns,
        updater_sources=get_table_updater_sources,
        dropout_updaters=get_dropout_updaters(),
        references=get_baseline_names("mean_pose"),
        dataset=DATASET,
        resamples=config["evaluation"]["bootstrap_resamples"],
        confidence=config["evaluation"]["confidence"],
        seed=config["seed"],
        decimals=config["tables"]["decimals"],
    log:
        f"{RESULTS}/logs/tables/{{table}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/tables/{{table}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/make_table.py"


rule plot_per_action:
    input:
        table=f"{RESULTS}/tables/table1.csv",
    output:
        figure=report(
            f"{RESULTS}/figures/per_action.png",
            caption="../report/per_action.rst",
            category="Figures",
            labels={"figure": "per action, initial vs refined"},
        ),
    params:
        code=get_code_version("plot_per_action.py"),
        dpi=config["tables"]["figures"]["dpi"],
    log:
        f"{RESULTS}/logs/tables/plot_per_action.log",
    benchmark:
        f"{RESULTS}/benchmarks/tables/plot_per_action.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/plot_per_action.py"


rule plot_rarity_deciles:
    input:
        deciles=get_rarity_figure_inputs,
    output:
        figure=report(
            f"{RESULTS}/figures/rarity_deciles.png",
            caption="../report/rarity_deciles.rst",
            category="Figures",
            labels={"figure": "error by pose-rarity decile"},
        ),
    params:
        code=get_code_version("plot_rarity_deciles.py"),
        pairs=get_updater_pairs(),
        dpi=config["tables"]["figures"]["dpi"],
    log:
        f"{RESULTS}/logs/tables/plot_rarity_deciles.log",
    benchmark:
        f"{RESULTS}/benchmarks/tables/plot_rarity_deciles.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/plot_rarity_deciles.py"


rule plot_qualitative:
    input:
        unpack(get_qualitative_inputs),
    output:
        figure=report(
            f"{RESULTS}/figures/qualitative/{{baseline}}/{{variant}}.png",
            caption="../report/qualitative.rst",
            category="Figures",
            labels={"figure": "qualitative", "refinement": "{baseline} + {variant}"},
        ),
    wildcard_constraints:
        baseline=get_updater_baseline_pattern(),
    params:
        code=get_code_version("plot_qualitative.py"),
        frames_per_case=config["tables"]["figures"]["qualitative_frames_per_case"],
        azimuth_deg=config["tables"]["figures"]["view_azimuth_deg"],
        elevation_deg=config["tables"]["figures"]["view_elevation_deg"],
        dpi=config["tables"]["figures"]["dpi"],
    log:
        f"{RESULTS}/logs/tables/plot_qualitative_{{baseline}}_{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/tables/plot_qualitative_{{baseline}}_{{variant}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/plot_qualitative.py"
