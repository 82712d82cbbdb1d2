"""Shared fixtures: a scratch copy of the workflow to run Snakemake in."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from patchpose.pipeline_timing import WORKFLOW_FILES

REPO = Path(__file__).resolve().parents[1]


def copy_workflow(directory: Path) -> Path:
    """Copy the workflow (not the package: that is installed; with its profiles, so the workflow's own default
    profile applies as in the repository) into ``directory``."""
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, directory / name)
        else:
            shutil.copy2(source, directory / name)
    return directory


@pytest.fixture
def workflow_dir(tmp_path: Path) -> Path:
    """A fresh directory holding the workflow."""
    return copy_workflow(tmp_path)


def write_config(directory: Path, config: dict, name: str = "config.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def default_config() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))


# s: the hard limit on one Snakemake run (or another long subprocess) of a test. It only catches a hang: it is not a
# timing check (benchmarks/ are). Machines vary: one CI run took 72 min where the previous took 29, and the tiny
# config on SLURM (tests/test_slurm.py, then with the default updaters), ~6 min on the earlier 2-core machine,
# took 17-19 min on a slower one, past the 900 s this used to be.
HANG_LIMIT = 2400


def run_snakemake(directory: Path, *args: str, timeout: float = HANG_LIMIT) -> subprocess.CompletedProcess:
    """Run Snakemake in ``directory``; returns the completed process (text output)."""
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", *args],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The tiny config (tests/tiny_pipeline.py) run to the end once per session, with the installed package. Test
    modules never change it: each works in its own copy (``tests.tiny_pipeline.copy_finished_run``)."""
    from tests.tiny_pipeline import tiny_config

    directory = copy_workflow(tmp_path_factory.mktemp("tiny-run"))
    write_config(directory, tiny_config())
    result = run_snakemake(directory)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    return directory


def skip_outside_ci(reason: str) -> None:
    """Skip a test whose tool is missing here; in CI (``CI=true``, set by .ci/run, which installs the tools)
    fail instead, so CI never passes by skipping."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run this test, but {reason}")
    pytest.skip(reason)
