"""The rare-pose claim of claims.json on hand-built decile files: the verdict from the two gains, the intervals
reported beside it."""

from __future__ import annotations

import pytest

from patchpose.evaluation.rarity import DECILE_COLUMNS
from patchpose.evaluation.refinement import compose_claims


def _deciles(path, common_gain: float, rare_gain: float, difference_ci=(-0.1, 0.2)):
    rows = [",".join(DECILE_COLUMNS)]
    for decile in range(1, 11):
        gain = {1: common_gain, 10: rare_gain}.get(decile, 0.0)
        over = gain - common_gain
        low, high = difference_ci if decile == 10 else (over, over)
        values = (decile, 4, 16, decile, decile + 1, 100.0, 100 * (1 - gain), 100 * gain, gain, gain - 0.01,
                  gain + 0.01, over, low, high)  # fmt: skip
        rows.append(",".join(f"{value:.4f}" if isinstance(value, float) else str(value) for value in values))
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return str(path)


def _claim(tmp_path, common_gain, rare_gain, **kwargs):
    deciles = {"lifting/rgb_seg": _deciles(tmp_path / "deciles.csv", common_gain, rare_gain, **kwargs)}
    claims = compose_claims(baseline_errors={}, refined_errors={}, deciles=deciles, table1=[],
                            ablation="lifting", resamples=100, confidence=0.95, seed=0)  # fmt: skip
    return claims["rare lifting/rgb_seg"]


@pytest.mark.parametrize(
    ("common_gain", "rare_gain", "holds"),
    [(0.02, 0.05, True), (0.05, 0.05, True), (0.05, 0.02, False), (-0.06, -0.01, False), (0.0, 0.0, False)],
    ids=["rare-gains-more", "equal", "rare-gains-less", "both-harmed-rare-less", "no-gain"],
)
def test_the_rare_claim_needs_the_rarest_decile_to_gain(tmp_path, common_gain, rare_gain, holds):
    claim = _claim(tmp_path, common_gain, rare_gain)
    assert claim["holds"] is holds
    assert (claim["rarest_relative_gain"], claim["commonest_relative_gain"]) == (rare_gain, common_gain)


def test_the_rare_claim_reports_the_intervals_without_requiring_them(tmp_path):
    claim = _claim(tmp_path, 0.02, 0.05, difference_ci=(-0.04, 0.1))  # holds, though the interval holds 0
    assert claim["holds"] is True
    assert claim["difference"] == pytest.approx(0.03)
    assert claim["difference_ci"] == [-0.04, 0.1]
    assert claim["rarest_ci"] == [0.04, 0.06] and claim["commonest_ci"] == [0.01, 0.03]
    assert (claim["rarest_gain_mm"], claim["commonest_gain_mm"]) == (5.0, 2.0)
    assert (claim["rarest_initial_mm"], claim["commonest_initial_mm"], claim["poses_per_decile"]) == (100, 100, [4, 4])
    assert "95% bootstrap interval of the difference is reported, not required" in claim["claim"]


def test_a_decile_file_of_another_layout_is_refused_naming_it(tmp_path):
    path = tmp_path / "old_deciles.csv"
    path.write_text("decile,poses,frames,rarity_low_mm,rarity_high_mm,initial_mm,refined_mm,gain_mm,gain_relative\n")
    with pytest.raises(ValueError, match="old_deciles.csv: not a rarity decile table: columns decile"):
        compose_claims(baseline_errors={}, refined_errors={}, deciles={"lifting/rgb_seg": str(path)}, table1=[],
                       ablation="lifting", resamples=100, confidence=0.95, seed=0)  # fmt: skip
