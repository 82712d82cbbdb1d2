"""The benchmark scripts still start: each imports and parses its arguments, and the updater benchmark builds
the network config.yaml describes (it once broke silently when a key moved). No timing here."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from patchpose.updater.network import build_network
from tests.conftest import REPO

SCRIPTS = sorted(path.name for path in (REPO / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_benchmark_starts(script):
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), "--help"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout


def test_the_updater_benchmark_builds_the_configured_network():
    spec = importlib.util.spec_from_file_location("updater_benchmark", REPO / "benchmarks" / "updater.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    settings, origin = module.model_settings('{"input_size": 16}')
    assert origin == "config.yaml + --model" and settings["input_size"] == 16
    assert settings["condition_on_initial_pose"] is False
    assert build_network(settings, "rgb_seg", load_weights=False) is not None
