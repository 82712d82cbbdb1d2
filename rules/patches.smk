# patches: the paper's 16 limb patches cut from the RGB frame and the colour-coded segmentation
# (patchpose/patches). One store per (2D source, split), plus the uncropped whole frames (Table 2) and a
# contact sheet per store. {source2d}: predicted (keypoints2d output, the default) or groundtruth (oracle).


rule cut_limb_patches:
    input:
        unpack(get_patch_joints_input),
        dataset=f"{RESULTS}/dataset/{{split}}.zarr",
        segmentation=f"{RESULTS}/segmentation/{{split}}.zarr",
    output:
        store=directory(f"{RESULTS}/patches/{{source2d}}/{{split}}.zarr"),
    params:
        code=get_code_version("cut_limb_patches.py"),
        min_side_at_256=config["patches"]["min_side_at_256"],
        scale=config["patches"]["scale"],
        square=config["patches"]["square"],
        cache_size=config["patches"]["cache_size"],
        compressor=config["patches"]["compressor"],
        compression_level=config["patches"]["compression_level"],
    log:
        f"{RESULTS}/logs/patches/{{source2d}}_{{split}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/patches/{{source2d}}_{{split}}.tsv"
    threads: 1  # see train_keypoints2d_fold (rules/keypoints2d.smk)
    priority: UNBLOCKING_PRIORITY  # cheap, and training waits on it (rules/common.smk)
    resources:
        mem_mb=8000,
        runtime=480,
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/cut_limb_patches.py"


rule cut_uncropped_frames:
    input:
        dataset=f"{RESULTS}/dataset/{{split}}.zarr",
        segmentation=f"{RESULTS}/segmentation/{{split}}.zarr",
    output:
        store=directory(f"{RESULTS}/patches/uncropped/{{split}}.zarr"),
    params:
        code=get_code_version("cut_uncropped_frames.py"),
        size=config["patches"]["uncropped_size"],
        compressor=config["patches"]["compressor"],
        compression_level=config["patches"]["compression_level"],
    log:
        f"{RESULTS}/logs/patches/uncropped_{{split}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/patches/uncropped_{{split}}.tsv"
    threads: 1  # see train_keypoints2d_fold (rules/keypoints2d.smk)
    resources:
        mem_mb=8000,
        runtime=480,
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/cut_uncropped_frames.py"


rule patches_contact_sheet:
    input:
        dataset=f"{RESULTS}/dataset/{{split}}.zarr",
        store=f"{RESULTS}/patches/{{source2d}}/{{split}}.zarr",
    output:
        sheet=f"{RESULTS}/patches/{{source2d}}/{{split}}_contact_sheet.png",
    params:
        code=get_code_version("patches_contact_sheet.py"),
        frames=config["patches"]["contact_sheet_frames"],
    log:
        f"{RESULTS}/logs/patches/{{source2d}}_{{split}}_contact_sheet.log",
    benchmark:
        f"{RESULTS}/benchmarks/patches/{{source2d}}_{{split}}_contact_sheet.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/patches_contact_sheet.py"
