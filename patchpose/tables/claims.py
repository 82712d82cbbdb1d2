"""A run's ``claims.json`` (``rules/refine.smk``) as rows of text: one row per claim and per part of a claim made of
paired parts, with the figure behind it and whether it holds. Read by ``patchpose.tables.readme`` (the README's
results block) and ``benchmarks/claims_spread.py`` (several runs side by side). Torch-free.

Figures: a paired claim (Table 1, Table 2, the controls, each of Table 3's two comparisons) shows its improvement in
mm with its interval (``+`` = the claim's direction), with ``relative=True`` also the improvement relative to the
file it improves on; a rare claim shows the rarest decile's relative gain beside the commonest's, then their
difference in percentage points with its interval (where the file has one); a claim made of parts (Table 3) holds
where all its parts hold.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["read_claims", "claim_rows"]


def read_claims(path: str | os.PathLike) -> dict:
    """The claims of ``path`` (a claims.json, or a directory holding one); ValueError naming the file and what is
    wrong with it."""
    path = Path(path)
    path = path / "claims.json" if path.is_dir() else path
    if not path.is_file():
        raise ValueError(f"{path}: no such claims.json")
    try:
        claims = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not JSON ({error})") from None
    if not isinstance(claims, dict) or not all(isinstance(c, dict) and "holds" in c for c in claims.values()):
        raise ValueError(f"{path}: not a claims.json (an object of claims, each with 'holds')")
    return claims


def _paired(claim: dict, relative: bool) -> str:
    text = f"{claim['improvement_mm']:+.1f} [{claim['ci_low_mm']:+.1f}, {claim['ci_high_mm']:+.1f}]"
    if relative and claim.get("initial_mm"):
        text += f" ({claim['improvement_mm'] / claim['initial_mm']:+.1%})"
    return text


def _rare(claim: dict) -> str:
    text = f"{claim['rarest_relative_gain']:+.1%} vs {claim['commonest_relative_gain']:+.1%}"
    if "difference_ci" in claim:  # claims.json files written before the interval have none
        low, high = (100 * value for value in claim["difference_ci"])
        text += f", {100 * claim['difference']:+.1f} pp [{low:+.1f}, {high:+.1f}]"
    return text


def claim_rows(claims: dict, relative: bool = False) -> dict[str, tuple[str, bool]]:
    """{row name: (figure, holds)}: one row per claim, and one per part of a claim made of paired parts (named
    ``<claim> / <part>``), in the file's order. ``relative``: a paired figure also gives its improvement relative
    to the average it improves on (``initial_mm``)."""
    rows = {}
    for name, claim in claims.items():
        parts = {key: value for key, value in claim.items() if isinstance(value, dict) and "improvement_mm" in value}
        if "improvement_mm" in claim:
            figure = _paired(claim, relative)
        elif "rarest_relative_gain" in claim:
            figure = _rare(claim)
        else:
            figure = "(its parts below)" if parts else ""
        rows[name] = (figure, bool(claim["holds"]))
        for part, value in parts.items():
            rows[f"{name} / {part}"] = (_paired(value, relative), bool(value["holds"]))
    return rows
