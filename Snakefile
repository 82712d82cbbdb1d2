# patchpose: patch-based 3D human pose refinement (Wan, Qiu, Yuille, CVPRW 2019).
# This file is a table of contents; each stage lives in rules/<stage>.smk and all logic in patchpose/.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/dataset.smk"


rule all:
    input:
        get_final_outputs(),
    default_target: True
