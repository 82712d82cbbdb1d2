"""The rarity figure: the error per decile above, each updater's relative gain with its interval below."""

from __future__ import annotations

import numpy as np
import pytest

from patchpose.evaluation.rarity import DECILE_COLUMNS, decile_rows
from patchpose.evaluation.refinement import _csv
from patchpose.tables.figures import rarity_figure


def _table(path, gain_mm: float):
    poses = np.arange(40)
    spread = np.random.default_rng(int(gain_mm)).uniform(0, 2 * gain_mm, 40)
    rows = decile_rows(poses.astype(float), poses, np.full(40, 100.0), 100.0 - spread, clusters=poses, resamples=200,
                       seed=0)  # fmt: skip
    path.write_text(_csv(rows, DECILE_COLUMNS), encoding="utf-8")
    return path, rows


def test_the_lower_panel_shows_each_updaters_relative_gain_with_its_interval(tmp_path):
    (seg, seg_rows), (rgb, _) = _table(tmp_path / "seg.csv", 4.0), _table(tmp_path / "rgb.csv", 1.0)
    figure = rarity_figure({("lifting", "seg"): seg, ("lifting", "rgb"): rgb})
    (errors,), (gains,) = figure.axes[:1], figure.axes[1:]
    assert errors.get_title() == "lifting" and "relative gain" in gains.get_ylabel()
    plotted = [container for container in gains.containers if container.get_label() == "+ Seg"]
    (points, _, (bars,)) = plotted[0]
    assert np.allclose(points.get_ydata().astype(float), [100 * row["gain_relative"] for row in seg_rows], atol=0.006)
    low_high = np.array([segment[:, 1] for segment in bars.get_segments()])
    expected = [[100 * row["gain_relative_ci_low"], 100 * row["gain_relative_ci_high"]] for row in seg_rows]
    assert np.allclose(low_high, expected, atol=0.006)  # the table keeps 4 decimals


def test_a_decile_table_without_the_intervals_is_refused_naming_it(tmp_path):
    old = tmp_path / "old.csv"
    old.write_text(",".join(DECILE_COLUMNS[:9]) + "\n" + "\n".join(["1,4,16,1,2,100,90,10,0.1"] * 10) + "\n")
    with pytest.raises(ValueError, match="old.csv: not a rarity decile table"):
        rarity_figure({("lifting", "seg"): old})
