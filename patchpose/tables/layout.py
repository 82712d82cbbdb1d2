"""What the tables print and in which words: the paper's action columns, the column labels, the averaging
convention and the updater-source marks, as constants (numpy- and torch-free).

The paper (Tables 1-3) prints 15 action columns under short names, in an order of its own, then ``Avg``;
``PAPER_ACTIONS`` maps each short name to the dataset's action name (``patchpose.actions.ACTIONS``).
"""

from __future__ import annotations

from types import MappingProxyType

from patchpose.metrics import MEAN_OF_ACTION_MEANS_LABEL, MEAN_OVER_FRAMES_LABEL

__all__ = [
    "PAPER_ACTIONS",
    "AVG",
    "AVG_FRAMES",
    "ACTION_COLUMNS",
    "AVERAGE_LABELS",
    "INITIAL",
    "MODALITY_LABELS",
    "AVERAGING_CONVENTION",
    "BOLD_RULE",
    "OWN",
    "updater_source_note",
    "paper_action",
    "latex_escape",
]

# The paper's column name -> the dataset's action, in the paper's column order.
PAPER_ACTIONS = MappingProxyType(
    {
        "Direction": "Directions",
        "Discuss": "Discussion",
        "Eat": "Eating",
        "Greet": "Greeting",
        "Phone": "Phoning",
        "Pose": "Posing",
        "Purchase": "Purchases",
        "Sit": "Sitting",
        "SitDown": "SittingDown",
        "Smoke": "Smoking",
        "Photo": "Photo",
        "Wait": "Waiting",
        "Walk": "Walking",
        "WalkDog": "WalkDog",
        "WalkPair": "WalkTogether",
    }
)
AVG = "Avg"  # the mean of the action means: the printed average
AVG_FRAMES = "Avg (frames)"  # the mean over frames: in the CSVs only
ACTION_COLUMNS = (*PAPER_ACTIONS, AVG)  # the printed columns, as the paper's
AVERAGE_LABELS = MappingProxyType({MEAN_OF_ACTION_MEANS_LABEL: AVG, MEAN_OVER_FRAMES_LABEL: AVG_FRAMES})
_DATASET_TO_PAPER = {**{dataset: paper for paper, dataset in PAPER_ACTIONS.items()}, **AVERAGE_LABELS}

INITIAL = "initial"  # the modality of a baseline's own predictions (no refinement)
MODALITY_LABELS = MappingProxyType(
    {
        INITIAL: "initial",
        "rgb_seg": "RGB+Seg",
        "rgb": "RGB",
        "seg": "Seg",
        "uncropped_rgb": "uncropped RGB",
        "pose_only": "pose only",
        "pose_boxes": "pose + boxes",
        "rgb_seg_conditioned": "RGB+Seg (cond.)",
    }
)

AVERAGING_CONVENTION = (
    "Avg is the mean of the 15 action means (every action weighs the same); the mean over all test frames is "
    "the CSV's row 'Avg (frames)'."
)
BOLD_RULE = "Bold: the lower error of each compared group (all of them on a tie at the printed precision)."

OWN = "own"  # an updater trained on the baseline's own training-split predictions (no mark)


def updater_source_note(source: str) -> str:
    """The footnote text of a column refined by an updater other than its own. ``source``: which updater
    refines the baseline, as ``patchpose.updater.variants.updater_sources`` names it: ``"own"`` (trained on its
    own training-split predictions), ``"error_model"`` or ``"from <baseline>"`` (borrowed)."""
    if source.startswith("from "):
        return f"refined by the updater trained for {source.removeprefix('from ')} (borrowed)"
    if source == "error_model":
        return "refined by an error-model updater (not trained on this baseline's own predictions)"
    return f"refined by updater {source!r}"


def paper_action(label: str) -> str:
    """The printed name of a per-action table's row label (a dataset action or an average label); other
    labels are kept."""
    return _DATASET_TO_PAPER.get(label, label)


_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "†": r"$^\dagger$",
}


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped (for captions; cells go through Styler's own escape)."""
    return "".join(_LATEX_SPECIALS.get(character, character) for character in text)
