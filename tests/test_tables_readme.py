"""Table 1 into the README: the Markdown layout, bold per baseline, the marks, the block between markers."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from patchpose.evaluation.refinement import IMPROVEMENT_COLUMNS
from patchpose.metrics import MEAN_OF_ACTION_MEANS_LABEL
from patchpose.tables.claims import claim_rows, read_claims
from patchpose.tables.layout import ACTION_COLUMNS
from patchpose.tables.readme import (
    BEGIN,
    END,
    RESULTS_BEGIN,
    RESULTS_END,
    main,
    markdown_results,
    markdown_table1,
    replace_block,
)


def _tidy(updater: str = "own") -> pd.DataFrame:
    rows = []
    for method, modality, base in (("a", "initial", 100.0), ("a", "rgb_seg", 99.0), ("m", "initial", 150.0)):
        for i, action in enumerate(ACTION_COLUMNS):
            # 'a' refined is better except on the second action, where both print the same
            value = base + i if not (i == 1 and method == "a") else 120.04
            rows.append({"method": method, "modality": modality, "action": action, "mpjpe_mm": value,
                         "ci_low": value - 1, "ci_high": value + 1, "n_frames": 4,
                         "updater": updater if modality != "initial" else ""})  # fmt: skip
    return pd.DataFrame(rows)


def test_rows_are_actions_and_the_better_of_each_pair_is_bold():
    lines = markdown_table1(_tidy()).splitlines()
    assert lines[0] == "| action | `a` | `a` + RGB+Seg | `m` |"
    assert [line.split(" | ")[0].lstrip("| ") for line in lines[2:]] == list(ACTION_COLUMNS)
    assert lines[2] == "| Direction | 100.0 | **99.0** | 150.0 |"  # the reference column is never bold
    assert lines[3] == "| Discuss | **120.0** | **120.0** | 151.0 |"  # a tie at the printed precision


def test_a_borrowed_updater_is_marked():
    assert "`a` + RGB+Seg†" in markdown_table1(_tidy("from b")).splitlines()[0]


def test_the_block_between_the_markers_is_replaced_and_bad_markers_are_refused():
    text = f"intro\n{BEGIN}\nold\n{END}\noutro\n"
    assert replace_block(text, "new\n", "R") == f"intro\n{BEGIN}\nnew\n{END}\noutro\n"
    with pytest.raises(ValueError, match="R: needs one"):
        replace_block("no markers", "x", "R")


CLAIMS = {
    "T1 a/rgb_seg": {"holds": True, "improvement_mm": 4.0, "ci_low_mm": 3.0, "ci_high_mm": 5.0, "initial_mm": 80.0},
    "T3 rgb_seg beats rgb and seg": {
        "holds": False,
        "over_rgb": {"holds": True, "improvement_mm": 1.0, "ci_low_mm": 0.5, "ci_high_mm": 1.5, "initial_mm": 50.0},
        "over_seg": {"holds": False, "improvement_mm": -2.0, "ci_low_mm": -3.0, "ci_high_mm": -1.0},
    },
    "rare a/rgb_seg": {"holds": False, "rarest_relative_gain": 0.05, "commonest_relative_gain": 0.1},
}


def _improvement(path, initial, refined, low, high):
    path.parent.mkdir(parents=True)
    row = {"action": MEAN_OF_ACTION_MEANS_LABEL, "frames": 8, "initial_mm": initial, "refined_mm": refined,
           "improvement_mm": initial - refined, "ci_low_mm": low, "ci_high_mm": high,
           "relative_improvement": (initial - refined) / initial}  # fmt: skip
    pd.DataFrame([row], columns=IMPROVEMENT_COLUMNS).to_csv(path, index=False)


def _run(tmp_path):
    run = tmp_path / "run"
    (run / "tables").mkdir(parents=True)
    (run / "figures").mkdir()
    _tidy().drop(columns="updater").to_csv(run / "tables/table1.csv", index=False)
    (run / "figures/per_action.png").write_bytes(b"png")
    (run / "claims.json").write_text(json.dumps(CLAIMS), encoding="utf-8")
    _improvement(run / "refined/a/seg/improvement.csv", 80.0, 78.0, 1.0, 3.0)
    _improvement(run / "refined/a/rgb_seg/improvement.csv", 80.0, 76.0, 3.0, 5.0)
    return run


def test_claims_read_as_rows_with_their_figures_and_parts(tmp_path):
    rows = claim_rows(CLAIMS, relative=True)
    assert rows["T1 a/rgb_seg"] == ("+4.0 [+3.0, +5.0] (+5.0%)", True)
    assert rows["T3 rgb_seg beats rgb and seg"] == ("(its parts below)", False)
    assert rows["T3 rgb_seg beats rgb and seg / over_rgb"] == ("+1.0 [+0.5, +1.5] (+2.0%)", True)
    assert rows["T3 rgb_seg beats rgb and seg / over_seg"] == ("-2.0 [-3.0, -1.0]", False)  # no initial_mm
    assert rows["rare a/rgb_seg"] == ("+5.0% vs +10.0%", False)  # a claims.json from before the interval
    with_interval = {**CLAIMS["rare a/rgb_seg"], "difference": -0.05, "difference_ci": [-0.121, 0.0249]}
    assert claim_rows({"rare a/rgb_seg": with_interval})["rare a/rgb_seg"] == (
        "+5.0% vs +10.0%, -5.0 pp [-12.1, +2.5]", False)  # fmt: skip
    assert claim_rows(CLAIMS)["T1 a/rgb_seg"][0] == "+4.0 [+3.0, +5.0]"
    (tmp_path / "claims.json").write_text(json.dumps(CLAIMS), encoding="utf-8")
    assert read_claims(tmp_path) == read_claims(tmp_path / "claims.json") == CLAIMS
    (tmp_path / "bad.json").write_text(json.dumps({"T1": {"improvement_mm": 1.0}}), encoding="utf-8")
    with pytest.raises(ValueError, match="bad.json: not a claims.json"):
        read_claims(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="nothing/claims.json: no such claims.json"):
        read_claims(tmp_path / "nothing/claims.json")


def test_every_refinement_and_claim_of_a_run_is_rendered(tmp_path):
    lines = markdown_results(_run(tmp_path)).splitlines()
    # the paper's updater first, then the others in the tables' order
    assert lines[2] == "| `a` | RGB+Seg (`rgb_seg`) | 80.0 → 76.0 | +4.0 [+3.0, +5.0] (+5.0%) |"
    assert lines[3] == "| `a` | Seg (`seg`) | 80.0 → 78.0 | +2.0 [+1.0, +3.0] (+2.5%) |"
    assert "| T1 a/rgb_seg | +4.0 [+3.0, +5.0] (+5.0%) | yes |" in lines
    assert "| rare a/rgb_seg | +5.0% vs +10.0% | **no** |" in lines
    assert lines[-1].startswith("1 of 3 claims hold.")
    (tmp_path / "run/refined/a/seg/improvement.csv").write_text("action,x\n", encoding="utf-8")
    with pytest.raises(ValueError, match="seg/improvement.csv: not an improvement table"):
        markdown_results(tmp_path / "run")


def test_the_command_writes_the_readme_and_copies_the_figure(tmp_path):
    run = _run(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text(f"x\n{RESULTS_BEGIN}\n{RESULTS_END}\ny\n{BEGIN}\n{END}\n", encoding="utf-8")
    assert main([str(run), str(readme), str(tmp_path / "images")]) == 0
    text = readme.read_text(encoding="utf-8")
    assert "| Avg | 115.0 | **114.0** | 165.0 |" in text
    assert "| T1 a/rgb_seg | +4.0 [+3.0, +5.0] (+5.0%) | yes |" in text.split(RESULTS_END)[0]
    assert (tmp_path / "images/results_per_action.png").read_bytes() == b"png"
    assert main([str(tmp_path / "missing"), str(readme), str(tmp_path / "images")]) == 1
    readme.write_text(f"x\n{BEGIN}\n{END}\n", encoding="utf-8")  # no results markers: refused, nothing written
    assert main([str(run), str(readme), str(tmp_path / "images")]) == 1
    assert readme.read_text(encoding="utf-8") == f"x\n{BEGIN}\n{END}\n"
