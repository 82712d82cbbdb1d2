"""End-to-end: the tiny config runs through Snakemake; reruns follow exactly the params that changed."""

from __future__ import annotations

import re

import pytest

from patchpose.dataset_format import open_dataset
from tests.conftest import copy_workflow, default_config, run_snakemake, write_config

TINY = {
    "frame_size": 48,
    "train_subjects": ["S1", "S5"],
    "test_subjects": ["S9"],
    "train_poses_per_subject": 15,
    "test_poses_per_action": 1,
    "cameras": [54138969],
}


def _tiny_config(**world) -> dict:
    config = default_config()
    config["dataset"]["synthetic"].update(TINY, **world)
    return config


def _planned_jobs(result) -> dict[str, int]:
    """Job counts from a dry run's job table ('rule  count' lines)."""
    table = re.findall(r"^(\w+)\s+(\d+)\s*$", result.stdout, flags=re.MULTILINE)
    return {rule: int(count) for rule, count in table if rule != "total"}


def _planned_outputs(result) -> set[str]:
    """The dataset stores among the outputs of the jobs a dry run plans."""
    outputs = ", ".join(re.findall(r"^\s*output: (.*)$", result.stdout, flags=re.MULTILINE)).split(", ")
    return {path for path in outputs if path.endswith(".zarr")}


@pytest.fixture(scope="module")
def finished_workflow(tmp_path_factory):
    directory = copy_workflow(tmp_path_factory.mktemp("e2e"))
    write_config(directory, _tiny_config())
    result = run_snakemake(directory)
    assert result.returncode == 0, result.stdout + result.stderr
    return directory


def test_tiny_pipeline_runs(finished_workflow):
    for split in ("train", "test"):
        store = open_dataset(finished_workflow / f"results/synthetic/dataset/{split}.zarr")
        assert store.num_frames == (30 if split == "train" else 15)
        assert (finished_workflow / f"results/synthetic/dataset/{split}_contact_sheet.png").stat().st_size > 0
        assert (finished_workflow / f"results/synthetic/logs/dataset/render_{split}.log").exists()
        assert (finished_workflow / f"results/synthetic/benchmarks/dataset/render_{split}.tsv").exists()


def test_second_run_does_nothing(finished_workflow):
    result = run_snakemake(finished_workflow, "-n")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"rare_actions": {"Sitting": 0.1}}, {"results/synthetic/dataset/train.zarr"}),
        ({"test_poses_per_action": 2}, {"results/synthetic/dataset/test.zarr"}),
        (
            {"noise_sigma": 5.0},
            {"results/synthetic/dataset/train.zarr", "results/synthetic/dataset/test.zarr"},
        ),
    ],
    ids=["train-only-key", "test-only-key", "shared-key"],
)
def test_changed_world_key_reruns_what_depends_on_it(finished_workflow, change, expected):
    write_config(finished_workflow, _tiny_config(**change), name="changed.yaml")
    result = run_snakemake(finished_workflow, "-n", "--configfile", "changed.yaml")
    assert result.returncode == 0, result.stderr
    assert _planned_outputs(result) == expected
    assert _planned_jobs(result)["render_synthetic_split"] == len(expected)
    assert "params" in result.stdout.lower()
