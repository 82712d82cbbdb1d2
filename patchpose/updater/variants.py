"""The updater variants the tables need, as one frozen table: name -> input modality, network override.

A variant is what one updater job trains for one baseline (paper §3.2, Tables 1-3, and two controls the paper
does not have):

* ``rgb_seg`` (Table 1, Table 3): the paper's input Concat(Crop(I), Crop(S)), the configured network;
* ``rgb``, ``seg`` (Table 3) and ``uncropped_rgb`` (Table 2): the other modalities, same network;
* ``pose_only`` (control): the same training on the same targets, but the network sees only the initial
  orientations U_init, no image (``updater.model.pose_only``): what a refiner achieves without the patches;
* ``rgb_seg_conditioned`` (control): the ``rgb_seg`` network that also receives U_init and the limb boxes
  before its head (``condition_on_initial_pose``), so it can correct the pose it is given.

Torch-free, so ``rules/common.smk`` can build the ``{variant}`` wildcard constraint from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "Variant",
    "VARIANTS",
    "TABLE1_VARIANT",
    "ABLATION_VARIANTS",
    "get_variant",
    "variant_settings",
    "job_settings",
    "planned_pairs",
    "wildcard_constraint",
]


@dataclass(frozen=True)
class Variant:
    """modality: the patch input (``patchpose.updater.modalities``), None for no image; architecture: the
    network to use instead of ``updater.model.architecture`` (None: the configured one); conditioned: the
    network also receives U_init and the boxes."""

    name: str
    modality: str | None
    architecture: str | None = None
    conditioned: bool = False


VARIANTS = MappingProxyType(
    {
        variant.name: variant
        for variant in (
            Variant("rgb_seg", "rgb_seg"),
            Variant("rgb", "rgb"),
            Variant("seg", "seg"),
            Variant("uncropped_rgb", "uncropped_rgb"),
            Variant("pose_only", None, architecture="pose_only"),
            Variant("rgb_seg_conditioned", "rgb_seg", conditioned=True),
        )
    }
)
TABLE1_VARIANT = "rgb_seg"  # every baseline with a training split (Table 1)
ABLATION_VARIANTS = ("rgb", "seg", "uncropped_rgb", "pose_only", "rgb_seg_conditioned")  # the ablation baseline


def get_variant(name: str) -> Variant:
    if name not in VARIANTS:
        raise ValueError(f"unknown updater variant {name!r}; known: {', '.join(VARIANTS)}")
    return VARIANTS[name]


def variant_settings(model_settings: dict, name: str) -> dict:
    """``updater.model`` as variant ``name`` trains it: the architecture overridden where the variant says
    (``pose_only``) and ``condition_on_initial_pose`` set to the variant's."""
    variant = get_variant(name)
    settings = dict(model_settings)
    if variant.architecture is not None:
        settings["architecture"] = variant.architecture
    settings["condition_on_initial_pose"] = variant.conditioned
    return settings


def job_settings(updater: dict, name: str) -> dict:
    """The keys of the config's ``updater`` block that shape variant ``name``'s updater: ``model`` as the
    variant trains it (``variant_settings``) with only its architecture's block, and ``training``. A rule's
    params hold exactly these, so a key of another architecture reruns nothing."""
    model = variant_settings(updater["model"], name)
    architecture = model["architecture"]
    common = {key: value for key, value in model.items() if not isinstance(value, dict)}
    return {"model": {**common, architecture: model[architecture]}, "training": updater["training"]}


def planned_pairs(with_training_split: list[str], ablation_baseline: str | None, conditioned: bool) -> dict:
    """The (baseline, variant) updaters the tables need, not a cross product: ``table1``: every baseline with
    a training split (``with_training_split``, config order) x ``rgb_seg`` (``rgb_seg_conditioned`` when
    ``conditioned``: the config's ``updater.condition_on_initial_pose``); ``ablation``: the ablation baseline x
    ``ABLATION_VARIANTS`` and ``rgb_seg`` (Tables 2 and 3 and the controls), less what ``table1`` has; none
    when ``ablation_baseline`` is None. Nothing when no baseline has a training split (an updater learns from
    training-split predictions); ValueError when some have, but not the ablation baseline."""
    if not with_training_split:
        return {"table1": [], "ablation": []}
    first = "rgb_seg_conditioned" if conditioned else TABLE1_VARIANT
    if ablation_baseline is None:
        return {"table1": [(baseline, first) for baseline in with_training_split], "ablation": []}
    if ablation_baseline not in with_training_split:
        raise ValueError(
            f"updater.ablation_baseline {ablation_baseline!r} must be a baseline with a training split "
            f"({', '.join(with_training_split)}), or null for no ablations"
        )
    table1 = [(baseline, first) for baseline in with_training_split]
    wanted = [(ablation_baseline, variant) for variant in (TABLE1_VARIANT, *ABLATION_VARIANTS)]
    return {"table1": table1, "ablation": [pair for pair in wanted if pair not in table1]}


def wildcard_constraint() -> str:
    """Regex matching exactly the variant names (for the ``{variant}`` wildcard)."""
    return "|".join(sorted(VARIANTS, key=len, reverse=True))
