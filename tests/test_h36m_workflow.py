"""The Human3.6M rule chain under Snakemake: per-sequence jobs then a merge per split; resumable; lint-clean.

The real workflow runs with ``dataset.kind: h36m`` on a fake release tree (tests/h36m_fixture.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from patchpose.dataset_format import open_dataset
from tests.conftest import copy_workflow, default_config, run_snakemake, write_config
from tests.h36m_fixture import build_release

pytestmark = pytest.mark.slow

# The dataset stage's outputs: these tests exercise stage 1 only (the fixture's one training subject is too few
# for the later stages' subject folds).
DATASET = tuple(
    f"results/h36m/dataset/{split}{suffix}" for split in ("train", "test") for suffix in (".zarr", "_manifest.json")
)


@pytest.fixture(scope="module")
def h36m_workflow(tmp_path_factory) -> Path:
    """The real workflow with dataset.kind = h36m on a fake release tree."""
    directory = copy_workflow(tmp_path_factory.mktemp("h36m_workflow"))
    build_release(directory / "release")
    write(directory, {})
    return directory


def write(directory: Path, overrides: dict) -> None:
    config = default_config()
    block = {"root": str(directory / "release"), "train_subjects": ["S1"], "test_subjects": ["S11"], **overrides}
    config["dataset"] = {"kind": "h36m", "name": "h36m", "h36m": {**config["dataset"]["h36m"], **block}}
    config["updater"]["training"]["validation_subjects"] = []  # one training subject: held-out poses
    write_config(directory, config)


def jobs(result) -> dict[str, int]:
    """Rule name -> number of jobs Snakemake planned, from its job-stats table."""
    text = result.stdout + result.stderr
    return {name: int(count) for name, count in re.findall(r"^(h36m_\w+)\s+(\d+)\s*$", text, flags=re.M)}


def test_lint_and_dry_run(h36m_workflow):
    lint = run_snakemake(h36m_workflow, *DATASET, "--configfile", "config.yaml", "--lint")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    dry = run_snakemake(h36m_workflow, *DATASET, "--configfile", "config.yaml", "-n")
    assert dry.returncode == 0, dry.stderr
    assert jobs(dry) == {"h36m_extract_sequence": 6, "h36m_merge_split": 2}
    assert "results/h36m/dataset/h36m_sequences/S1/WalkingDog_1" in dry.stdout + dry.stderr


def test_run_then_resume_only_what_is_missing(h36m_workflow):
    run = run_snakemake(h36m_workflow, *DATASET, "--configfile", "config.yaml")
    assert run.returncode == 0, run.stderr
    assert "h36m train: 36 frames from 4 sequences (16 videos), 0 dropped items" in run.stdout + run.stderr
    dataset = h36m_workflow / "results" / "h36m" / "dataset"
    assert open_dataset(dataset / "train.zarr").num_frames == 36
    test = open_dataset(dataset / "test.zarr")
    assert test.num_frames == 14
    # the release's own subaction numbers: S11 "Directions 1" is subaction 1, "Directions" (camera 1 dropped) 2
    assert test.frame_ids()[:2] == ["S11/Directions/1/54138969/000000", "S11/Directions/1/54138969/000064"]
    assert "S11/Directions/2/55011271/000000" in test.frame_ids()
    manifest = json.loads((dataset / "test_manifest.json").read_text())
    assert manifest["totals"]["frames"] == 14 and manifest["metadata_xml"]["agrees"] is True
    assert "subaction mapping" in manifest["metadata_xml"]["checked"]
    assert not list(dataset.rglob("*.tmp-*"))

    again = run_snakemake(h36m_workflow, *DATASET, "--configfile", "config.yaml", "-n")
    assert again.returncode == 0 and jobs(again) == {}, again.stdout + again.stderr

    # a run killed before Sitting_1 finished (so before the train merge): only that sequence is redone
    shutil.rmtree(dataset / "h36m_sequences" / "S1" / "Sitting_1")
    shutil.rmtree(dataset / "train.zarr")
    resume = run_snakemake(h36m_workflow, *DATASET, "--configfile", "config.yaml", "-n")
    assert jobs(resume) == {"h36m_extract_sequence": 1, "h36m_merge_split": 1}, resume.stdout

    # a train-only key reruns the train sequences only; the policy key reruns every sequence
    write(h36m_workflow, {"train_stride": 3})
    stride = run_snakemake(h36m_workflow, *DATASET, "--configfile", "config.yaml", "-n")
    assert jobs(stride) == {"h36m_extract_sequence": 4, "h36m_merge_split": 1}, stride.stdout


def test_drop_sequence_policy_end_to_end(h36m_workflow):
    write(h36m_workflow, {"corrupt_video_policy": "drop_sequence"})
    run = run_snakemake(h36m_workflow, *DATASET, "--configfile", "config.yaml")
    assert run.returncode == 0, run.stderr
    dataset = h36m_workflow / "results" / "h36m" / "dataset"
    manifest = json.loads((dataset / "test_manifest.json").read_text())
    assert manifest["totals"] == {"frames": 8, "sequences": 2, "cameras_kept": 4, "dropped_items": 1}
    assert manifest["dropped"][0]["reason"].endswith("corrupt_video_policy=drop_sequence (all cameras)")
    log = (h36m_workflow / "results" / "h36m" / "logs" / "dataset" / "h36m_extract_S11_Directions.log").read_text()
    assert "dropped sequence (S11/Videos/Directions.54138969.mp4)" in log


def test_bad_release_stops_naming_the_file(h36m_workflow, tmp_path):
    write(h36m_workflow, {"root": str(tmp_path)})
    bad = tmp_path / "S1" / "MyPoseFeatures" / "D3_Positions"
    bad.mkdir(parents=True)
    (bad / "Dancing.cdf").write_bytes(b"")
    train_split = DATASET[:2]  # the release holds S1 only; the train split's DAG lists its pose files
    result = run_snakemake(h36m_workflow, *train_split, "--configfile", "config.yaml", "-n")
    assert result.returncode != 0
    assert "Dancing.cdf: unknown action 'Dancing'" in result.stdout + result.stderr


def test_killed_run_keeps_finished_sequences_and_no_half_written_one(h36m_workflow):
    write(h36m_workflow, {"crop_margin": 1.5})  # a fresh parameter set: every sequence must be redone
    sequences = h36m_workflow / "results" / "h36m" / "dataset" / "h36m_sequences"
    shutil.rmtree(h36m_workflow / "results", ignore_errors=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "snakemake", "--cores", "1", *DATASET, "--configfile", "config.yaml"],
        cwd=h36m_workflow,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not any(".tmp-" not in path.parent.name for path in sequences.glob("*/*/sequence.json")):
            assert process.poll() is None and time.monotonic() < deadline, "no sequence finished"
            time.sleep(0.02)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    finished = [d for d in sequences.glob("*/*") if ".tmp-" not in d.name]
    assert 1 <= len(finished) < 6
    for directory in finished:  # every published sequence is whole
        record = json.loads((directory / "sequence.json").read_text())
        assert (directory / "frames.zarr" / "zarr.json").exists() == (record["num_rows"] > 0)
    # Snakemake flags the job that was running at the kill as incomplete (even if our rename already
    # published it): --rerun-incomplete redoes at most that one plus the never-started ones
    resume = run_snakemake(h36m_workflow, *DATASET, "--configfile", "config.yaml", "--rerun-incomplete", "-n")
    redo = jobs(resume).get("h36m_extract_sequence")
    assert redo in (6 - len(finished), 7 - len(finished)), resume.stdout + resume.stderr[-3000:]
    assert (
        run_snakemake(h36m_workflow, *DATASET, "--configfile", "config.yaml", "--unlock").returncode == 0
    )  # the kill's lock
    finish = run_snakemake(h36m_workflow, *DATASET, "--configfile", "config.yaml", "--rerun-incomplete")
    assert finish.returncode == 0, finish.stderr
    assert open_dataset(h36m_workflow / "results" / "h36m" / "dataset" / "train.zarr").num_frames == 36
