"""The rare-pose claim of claims.json on hand-built decile files."""

from __future__ import annotations

import pytest

from patchpose.evaluation.refinement import compose_claims

COLUMNS = "decile,poses,frames,rarity_low_mm,rarity_high_mm,initial_mm,refined_mm,gain_mm,gain_relative"


def _deciles(path, common_gain: float, rare_gain: float):
    rows = [COLUMNS]
    for decile, gain in ((1, common_gain), (2, 0.0), (3, rare_gain)):
        rows.append(f"{decile},4,16,{decile},{decile + 1},100.0,{100 * (1 - gain):.4f},{100 * gain:.4f},{gain}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("common_gain", "rare_gain", "holds"),
    [(0.02, 0.05, True), (0.05, 0.05, True), (0.05, 0.02, False), (-0.06, -0.01, False), (0.0, 0.0, False)],
    ids=["rare-gains-more", "equal", "rare-gains-less", "both-harmed-rare-less", "no-gain"],
)
def test_the_rare_claim_needs_the_rarest_decile_to_gain(tmp_path, common_gain, rare_gain, holds):
    deciles = {"lifting/rgb_seg": _deciles(tmp_path / "deciles.csv", common_gain, rare_gain)}
    claims = compose_claims(baseline_errors={}, refined_errors={}, deciles=deciles, table1=[],
                            ablation="lifting", resamples=100, confidence=0.95, seed=0)  # fmt: skip
    claim = claims["rare lifting/rgb_seg"]
    assert claim["holds"] is holds
    assert (claim["rarest_relative_gain"], claim["commonest_relative_gain"]) == (rare_gain, common_gain)
