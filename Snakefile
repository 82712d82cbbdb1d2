# patchpose: patch-based 3D human pose refinement (Wan, Qiu, Yuille, CVPRW 2019).
# This file is a table of contents; each stage lives in rules/<stage>.smk and all logic in patchpose/.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"


if config["dataset"]["kind"] == "synthetic":

    include: "rules/dataset.smk"

else:

    include: "rules/dataset_h36m.smk"


include: "rules/keypoints2d.smk"
include: "rules/segmentation.smk"
include: "rules/baselines.smk"
include: "rules/patches.smk"
include: "rules/updater.smk"
include: "rules/refine.smk"
include: "rules/tables.smk"



rule all:
    input:
        get_final_outputs(),
    default_target: True
