# dataset: Human3.6M from the official release (docs/h36m.md). One job per sequence writes an
# intermediate directory atomically (resumable: finished sequences are never redone), then one merge per split
# writes the common-format store and its protocol manifest. Include INSTEAD of rules/dataset.smk when
# config["dataset"]["kind"] == "h36m" (both write {RESULTS}/dataset/{split}.zarr). The get_h36m_* functions
# (rules/common.smk -> patchpose/h36m/workflow.py) list the release's sequences at DAG time.


rule h36m_extract_sequence:
    input:
        release=get_h36m_sequence_inputs,
    output:
        sequence=directory(f"{RESULTS}/dataset/h36m_sequences/{{subject}}/{{sequence}}"),
    params:
        code=get_code_version("h36m_extract_sequence.py"),
        settings=get_h36m_sequence_settings,
    wildcard_constraints:
        subject="S[0-9]+",
        sequence="[A-Za-z]+(_[0-9])?",
    log:
        f"{RESULTS}/logs/dataset/h36m_extract_{{subject}}_{{sequence}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/dataset/h36m_extract_{{subject}}_{{sequence}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/h36m_extract_sequence.py"


rule h36m_merge_split:
    input:
        sequences=get_h36m_split_sequences,
    output:
        store=directory(f"{RESULTS}/dataset/{{split}}.zarr"),
        manifest=f"{RESULTS}/dataset/{{split}}_manifest.json",
    params:
        code=get_code_version("h36m_merge.py"),
        settings=get_h36m_split_settings,
    log:
        f"{RESULTS}/logs/dataset/h36m_merge_{{split}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/dataset/h36m_merge_{{split}}.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=480,
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/h36m_merge.py"
