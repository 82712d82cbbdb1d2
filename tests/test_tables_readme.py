"""Table 1 into the README: the Markdown layout, bold per baseline, the marks, the block between markers."""

from __future__ import annotations

import pandas as pd
import pytest

from patchpose.tables.layout import ACTION_COLUMNS
from patchpose.tables.readme import BEGIN, END, main, markdown_table1, replace_block


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


def test_the_command_writes_the_readme_and_copies_the_figure(tmp_path):
    (tmp_path / "run/tables").mkdir(parents=True)
    (tmp_path / "run/figures").mkdir()
    _tidy().drop(columns="updater").to_csv(tmp_path / "run/tables/table1.csv", index=False)
    (tmp_path / "run/figures/per_action.png").write_bytes(b"png")
    readme = tmp_path / "README.md"
    readme.write_text(f"x\n{BEGIN}\n{END}\n", encoding="utf-8")
    assert main([str(tmp_path / "run"), str(readme), str(tmp_path / "images")]) == 0
    assert "| Avg | 115.0 | **114.0** | 165.0 |" in readme.read_text(encoding="utf-8")
    assert (tmp_path / "images/results_per_action.png").read_bytes() == b"png"
    assert main([str(tmp_path / "missing"), str(readme), str(tmp_path / "images")]) == 1
