"""The workflow as Snakemake sees it: the default config dry-runs; bad configs stop it naming the key."""

from __future__ import annotations

import pytest

from tests.conftest import default_config, run_snakemake, write_config


def test_default_config_dry_run(workflow_dir):
    result = run_snakemake(workflow_dir, "-n")
    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    assert "render_synthetic_split" in out
    assert "results/synthetic/dataset/train.zarr" in out and "results/synthetic/dataset/test.zarr" in out


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda c: c.update(extra_key=1), "invalid config: unknown config key extra_key"),
        (lambda c: c.update(seed="one"), "invalid config: config key seed = 'one' has the wrong type"),
        (
            lambda c: c["dataset"]["synthetic"].update(dim_light_fraction=2.0),
            "invalid config: config key dataset.synthetic.dim_light_fraction = 2.0 is out of range",
        ),
    ],
    ids=["unknown-key", "wrong-type", "out-of-range"],
)
def test_bad_config_stops_the_run_naming_the_key(workflow_dir, mutate, expected):
    config = default_config()
    mutate(config)
    write_config(workflow_dir, config)
    result = run_snakemake(workflow_dir, "-n")
    assert result.returncode != 0
    lines = [line for line in (result.stdout + result.stderr).splitlines() if expected in line]
    assert len(lines) == 1, result.stderr


def test_workflow_lints_clean(workflow_dir):
    result = run_snakemake(workflow_dir, "--lint")
    assert result.returncode == 0, result.stdout + result.stderr
