"""The tiny config the end-to-end tests run (a 48-px world of two training subjects, toy networks) and one finished
run of it shared by the test modules that only read it or make their own changes to a copy of it."""

from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path

from patchpose.config import merge_config
from tests.conftest import default_config

TINY = {
    "frame_size": 48,
    "train_subjects": ["S1", "S5"],
    "test_subjects": ["S9"],
    "train_poses_per_subject": 15,
    "test_poses_per_action": 2,  # 2 clusters per action: the bootstrap has something to resample
    "cameras": [54138969],
}


# keypoints2d and segmentation at toy sizes (48 px frames, 2 training subjects -> 2 folds, one epoch).
TINY_STAGE2 = {
    "folds": {"k": 2},
    "keypoints2d": {
        "model": {"input_size": 16, "heatmap_size": 8, "stacks": 1, "features": 8, "depth": 1},
        "training": {"epochs": 1, "batch_size": 8},
    },
    "segmentation": {
        "model": {"input_size": 16, "output_stride": 2, "width": 4, "levels": 2, "decoder_channels": 8},
        "training": {"epochs": 1, "batch_size": 8},
    },
}


# The in-pipeline baselines at toy sizes (a few epochs, early stopping still in play); the updaters validate
# on the second training subject (the default's S8 is not in the tiny world).
TINY_BASELINES = {
    "baselines": {
        "lifting": {"model": {"width": 16, "blocks": 1}, "training": {"max_epochs": 3, "patience": 1, "batch_size": 8}},
        "integral3d": {"model": {"depth_bins": 4}, "training": {"max_epochs": 2, "patience": 1, "batch_size": 8}},
    },
    # lifting: the cheaper ablation baseline at this size (the tests' paths name it)
    "updater": {"ablation_baseline": "lifting", "training": {"validation_subjects": ["S5"]}},
}


# The updaters at toy sizes and a cheap evaluation (every e2e run uses them: a run's cost is its jobs' start-up).
TINY_UPDATER = {
    "updater": {
        "model": {
            "input_size": 16,
            "limb_encoder": {"widths": [4, 8], "embedding": 8, "hidden": 16},
            "pose_only": {"width": 16, "blocks": 1},
        },
        "training": {"max_epochs": 2, "batch_size": 8},
    },
    "evaluation": {"bootstrap_resamples": 200, "rarity_neighbours": 2},
}


def tiny_config(changes: dict | None = None, **world) -> dict:
    """The default config at toy sizes (``world`` keys go to dataset.synthetic), with ``changes`` merged in."""
    config = default_config()
    config["dataset"]["synthetic"].update(TINY, **world)
    for block in (TINY_STAGE2, TINY_BASELINES, TINY_UPDATER, changes or {}):
        merge_config(config, copy.deepcopy(block))  # the constants stay as they are
    return config


def table1_config() -> dict:
    """The tiny config without ablations: Table 1 from every baseline's updater (the fewest jobs of a whole run)."""
    return tiny_config({"updater": {"ablation_baseline": None}})


def copy_finished_run(run: Path, directory: Path) -> Path:
    """A copy of the finished run ``run`` (workflow, config, results and Snakemake's metadata) at ``directory``.
    Modification times are kept, so Snakemake finds nothing to do in the copy, as in the run."""
    shutil.copytree(run, directory, symlinks=True, dirs_exist_ok=True)
    return directory


def planned_jobs(result) -> dict[str, int]:
    """Job counts from a dry run's job table ('rule  count' lines)."""
    table = re.findall(r"^(\w+)\s+(\d+)\s*$", result.stdout, flags=re.MULTILINE)
    return {rule: int(count) for rule, count in table if rule != "total"}


def planned_outputs(result) -> set[str]:
    """The dataset stores among the outputs of the jobs a dry run plans."""
    return {path for path in all_planned_outputs(result) if path.endswith(".zarr") and "/dataset/" in path}


def all_planned_outputs(result) -> set[str]:
    """Every output of the jobs a dry run plans."""
    return set(", ".join(re.findall(r"^\s*output: (.*)$", result.stdout, flags=re.MULTILINE)).split(", "))
