"""The report's table caption rendered as Snakemake renders it (Jinja2 with the job's ``snakemake`` object, then
reStructuredText to HTML), without a run: it states conditioning_dropout only where a planned updater uses it."""

from __future__ import annotations

from types import SimpleNamespace

import jinja2
import pytest
import yaml
from docutils.core import publish_parts

from tests.conftest import REPO


def _caption(dropout_updaters: list[str], table: str = "extended") -> str:
    config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    config["updater"]["model"]["conditioning_dropout"] = 0.375
    params = SimpleNamespace(
        dataset="synthetic", updater_sources="lifting: own", resamples=200, confidence=0.95, seed=0, decimals=1,
        columns="method, action", dropout_updaters=dropout_updaters,
    )  # fmt: skip
    snakemake = SimpleNamespace(wildcards=SimpleNamespace(table=table), config=config, params=params)
    text = jinja2.Environment().from_string((REPO / "report" / "table.rst").read_text(encoding="utf-8"))
    html = publish_parts(text.render(snakemake=snakemake), writer="html", settings_overrides={"report_level": 2})
    return " ".join(html["body"].split())


@pytest.mark.parametrize("table", ["table1", "table2", "table3", "extended"])
def test_the_caption_names_the_dropout_and_the_updaters_it_acts_on(table):
    caption = _caption(["lifting/rgb_seg_conditioned"], table)
    assert "conditioning_dropout 0.375 (U_init and boxes hidden in that share of the training frames of " in caption
    assert "lifting/rgb_seg_conditioned), input" in caption
    assert "system-message" not in caption  # valid reStructuredText


def test_without_a_conditioned_updater_the_caption_leaves_the_dropout_out():
    caption = _caption([])
    assert "conditioning_dropout" not in caption and "0.375" not in caption
    assert "the patches: residual ΔU, or orientation U with ΔU = U - U_init), input" in caption
