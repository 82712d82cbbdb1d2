"""The updater variants the tables need, as one frozen table: name -> input modality, network override.

A variant is what one updater job trains for one baseline (paper §3.2, Tables 1-3, and three controls the paper
does not have):

* ``rgb_seg`` (Table 1, Table 3): the paper's input Concat(Crop(I), Crop(S)), the configured network;
* ``rgb``, ``seg`` (Table 3) and ``uncropped_rgb`` (Table 2): the other modalities, same network;
* ``pose_only`` (control): the same training on the same targets, but the network sees only the initial
  orientations U_init, no image (``updater.model.pose_only``): what a refiner achieves without the patches;
* ``pose_boxes`` (control): the ``pose_only`` network that also receives the limb boxes of the ``rgb_seg`` patch
  store (U_init and the boxes, no pixels): the boxes come from the 2D keypoint network's predictions, information
  the initial pose may lack, so what the conditioned updater adds over this control is what its pixels add;
* ``rgb_seg_conditioned`` (control): the ``rgb_seg`` network that also receives U_init and the limb boxes
  before its head (``condition_on_initial_pose``), so it can correct the pose it is given.

Which updater refines a baseline (``baselines.<name>.updater``; ``updater_sources``): ``own`` (trained on its
training-split predictions; the default where it has them), ``error_model`` (trained on the training split's
ground truth perturbed by an error model, ``patchpose.updater.error_model``: for a baseline with test
predictions only) or ``{from: <other>}`` (no training: the other baseline's updaters refine it). The plan
(``planned_pairs``) gives every refined baseline its Table 1 pair either way.

Torch-free, so ``rules/common.smk`` can build the ``{variant}`` wildcard constraint from it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from patchpose.poses3d.baseline_config import baseline_splits
from patchpose.updater.modalities import get_modality

__all__ = [
    "Variant",
    "VARIANTS",
    "TABLE1_VARIANT",
    "ABLATION_VARIANTS",
    "get_variant",
    "variant_settings",
    "job_settings",
    "updater_seed",
    "planned_pairs",
    "wildcard_constraint",
    "UPDATER_KEYS",
    "FIT_ON_KINDS",
    "updater_sources",
    "updater_source",
    "updater_owner",
    "error_model_fit",
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
            Variant("pose_boxes", "rgb_seg", architecture="pose_only", conditioned=True),
            Variant("rgb_seg_conditioned", "rgb_seg", conditioned=True),
        )
    }
)
TABLE1_VARIANT = "rgb_seg"  # every refined baseline (Table 1)
# the ablation baseline's updaters besides rgb_seg: Tables 2 and 3 and the controls
ABLATION_VARIANTS = ("rgb", "seg", "uncropped_rgb", "pose_only", "pose_boxes", "rgb_seg_conditioned")


def get_variant(name: str) -> Variant:
    if name not in VARIANTS:
        raise ValueError(f"unknown updater variant {name!r}; known: {', '.join(VARIANTS)}")
    return VARIANTS[name]


def variant_settings(model_settings: dict, name: str) -> dict:
    """``updater.model`` as variant ``name`` trains it: the architecture overridden where the variant says
    (``pose_only``, ``pose_boxes``), ``condition_on_initial_pose`` set to the variant's, ``predicts`` set to
    ``residual`` for the controls, which read no pixels (``predicts: orientation`` is for networks that read the
    patches: ``patchpose.updater.network``), ``conditioning_dropout`` only where it acts, a conditioned
    network that reads the patches (so changing it reruns no other variant), and ``limb_encoder.head`` not for a
    modality of one patch (the whole frame has one token, so its head is joint whatever the key says: changing it
    reruns no such updater)."""
    variant = get_variant(name)
    settings = dict(model_settings)
    if variant.architecture is not None:
        settings["architecture"] = variant.architecture
    settings["condition_on_initial_pose"] = variant.conditioned
    reads_pixels = settings["architecture"] != "pose_only"
    if "predicts" in settings and not reads_pixels:
        settings["predicts"] = "residual"
    if not (variant.conditioned and reads_pixels):
        settings.pop("conditioning_dropout", None)
    encoder = settings.get("limb_encoder")
    if isinstance(encoder, dict) and variant.modality is not None and get_modality(variant.modality).num_patches == 1:
        settings["limb_encoder"] = {key: value for key, value in encoder.items() if key != "head"}
    return settings


def job_settings(updater: dict, name: str) -> dict:
    """The keys of the config's ``updater`` block that shape variant ``name``'s updater: ``model`` as the
    variant trains it (``variant_settings``) with only its architecture's block, and ``training``. A rule's
    params hold exactly these, so a key of another architecture reruns nothing."""
    model = variant_settings(updater["model"], name)
    architecture = model["architecture"]
    common = {key: value for key, value in model.items() if not isinstance(value, dict)}
    return {"model": {**common, architecture: model[architecture]}, "training": updater["training"]}


def updater_seed(config: Mapping) -> int:
    """The seed the updaters train with: ``updater.seed``, or the run's ``seed`` where that is null (the
    default), so setting it retrains the updaters alone on the same inputs. ``config``: the validated config."""
    own = config["updater"].get("seed")
    return config["seed"] if own is None else own


def planned_pairs(
    refined: list[str], ablation_baseline: str | None, conditioned: bool, trained: Collection[str] | None = None
) -> dict:
    """The (baseline, variant) updaters the tables need, not a cross product: ``table1``: every refined baseline
    (``refined``, config order: ``updater_sources``) x ``rgb_seg`` (``rgb_seg_conditioned`` when ``conditioned``:
    the config's ``updater.condition_on_initial_pose``); ``ablation``: the ablation baseline x
    ``ABLATION_VARIANTS`` and ``rgb_seg`` (Tables 2 and 3 and the controls), less what ``table1`` has; none
    when ``ablation_baseline`` is None. ``trained``: the refined baselines that train updaters of their own
    (``own`` or ``error_model``; default: all of ``refined``); the ablation baseline must be one, ValueError
    otherwise. Nothing when no baseline is refined."""
    if not refined:
        return {"table1": [], "ablation": []}
    trained = list(refined if trained is None else trained)
    first = "rgb_seg_conditioned" if conditioned else TABLE1_VARIANT
    table1 = [(baseline, first) for baseline in refined]
    if ablation_baseline is None:
        return {"table1": table1, "ablation": []}
    if ablation_baseline not in trained:
        raise ValueError(
            f"updater.ablation_baseline {ablation_baseline!r} must be a baseline with a training split or with "
            f"updater: error_model (one that trains updaters of its own: {', '.join(trained) or 'none'}), or null "
            "for no ablations"
        )
    wanted = [(ablation_baseline, variant) for variant in (TABLE1_VARIANT, *ABLATION_VARIANTS)]
    return {"table1": table1, "ablation": [pair for pair in wanted if pair not in table1]}


# --- which updater refines a baseline: baselines.<name>.updater ---

UPDATER_KEYS = ("updater", "validation_file", "error_model_baselines")  # shape the updater, not the predictions
FIT_ON_KINDS = ("lifting", "integral3d")  # an error model's default residuals: the pipeline's trained baselines


def _key(name: str, key: str = "updater") -> str:
    return f"config key baselines.{name}.{key}"


def _own_source(name: str, settings: Mapping) -> str | None:
    """ "own", "error_model", "from <other>" (unchecked) or None (not refined), from one block alone."""
    choice = settings.get("updater")
    has_train = "train" in baseline_splits(settings)
    extras = [key for key in UPDATER_KEYS[1:] if settings.get(key) is not None]
    if extras and choice != "error_model":
        raise ValueError(f"{_key(name, extras[0])} is used only with updater: error_model (updater is {choice!r})")
    if settings["kind"] == "mean_pose":
        return None  # the reference row: never refined
    if choice is None:
        return "own" if has_train else None
    if choice == "own" and not has_train:
        raise ValueError(
            f"{_key(name)} = 'own' needs training-split predictions (baselines.{name}.train_file); a baseline "
            "with test predictions only takes updater: error_model or updater: {from: <baseline>}"
        )
    if isinstance(choice, Mapping):
        return f"from {choice['from']}"
    return choice


def updater_sources(baselines: Mapping[str, Mapping]) -> dict[str, str]:
    """{name: "own" | "error_model" | "from <other>"} for every baseline that is refined, in config order (the
    config's ``baselines`` block, schema defaults filled). ``own`` is the default where the baseline has a
    training split; a baseline with neither training split nor ``updater`` is not refined, nor is ``mean_pose``.
    ValueError naming the key: ``own`` without a training split, ``from`` a baseline that is missing, itself
    or without updaters of its own, an error model with nothing to fit on, an error-model key without
    ``updater: error_model``."""
    sources = {name: _own_source(name, settings) for name, settings in baselines.items()}
    sources = {name: source for name, source in sources.items() if source is not None}
    trained = [name for name, source in sources.items() if not source.startswith("from ")]
    for name, source in sources.items():
        if source == "error_model":
            error_model_fit(baselines, name)  # raises when there is nothing to fit on
        if not source.startswith("from "):
            continue
        other = source.removeprefix("from ")
        problem = None
        if other == name:
            problem = "is the baseline itself"
        elif other not in baselines:
            problem = "is not a configured baseline"
        elif other not in trained:
            why = sources.get(other, "not refined")
            problem = f"has no updater of its own (its updater: {why})"
        if problem:
            raise ValueError(
                f"{_key(name)}.from = {other!r} {problem}; it must name a baseline that trains updaters of its own "
                f"({', '.join(trained) or 'none configured'})"
            )
    return sources


def updater_source(config: Mapping, baseline: str) -> str:
    """Which updater refines ``baseline`` (for the tables): "own", "error_model" or "from <name>". ``config``:
    the validated config. ValueError if the baseline is not refined."""
    sources = updater_sources(config["baselines"])
    if baseline not in sources:
        refined = ", ".join(sources) or "none"
        raise ValueError(f"baseline {baseline!r} is not refined by any updater (refined baselines: {refined})")
    return sources[baseline]


def updater_owner(baseline: str, source: str) -> str:
    """The baseline whose trained updaters refine ``baseline``: the other one for "from <other>", else itself."""
    return source.removeprefix("from ") if source.startswith("from ") else baseline


def error_model_fit(baselines: Mapping[str, Mapping], name: str) -> dict:
    """What baseline ``name``'s error model is fitted on: ``validation_file`` (with the block's ``format``,
    ``unit``, ``joint_names``; for an in-pipeline kind, auto / auto / the file's) or, without one, ``baselines``:
    the training splits of ``error_model_baselines`` (default: every lifting and integral3d baseline, config
    order). ValueError naming the key when both are set, or a listed baseline is missing, the mean pose or has no
    training split, or the list is empty."""
    settings = baselines[name]
    validation, listed = settings.get("validation_file"), settings.get("error_model_baselines")
    if validation is not None:
        if listed is not None:
            raise ValueError(
                f"{_key(name, 'error_model_baselines')} and validation_file are both set; the error model is fitted "
                "on one: the validation file's residuals, or (without one) those baselines' training splits"
            )
        return {
            "validation_file": validation,
            "format": settings.get("format", "auto"),
            "unit": settings.get("unit", "auto"),
            "joint_names": settings.get("joint_names"),
            "baselines": [],
        }
    usable = [o for o, block in baselines.items() if block["kind"] != "mean_pose" and "train" in baseline_splits(block)]
    chosen = list(listed) if listed is not None else [o for o, b in baselines.items() if b["kind"] in FIT_ON_KINDS]
    wrong = [other for other in chosen if other not in usable]
    if wrong:
        raise ValueError(
            f"{_key(name, 'error_model_baselines')} lists {', '.join(map(repr, wrong))}: not baselines with "
            f"training-split predictions ({', '.join(usable) or 'none configured'})"
        )
    if not chosen:
        candidates = ", ".join(usable) or "none configured"
        raise ValueError(
            f"{_key(name)} = 'error_model' has nothing to fit on: no lifting or integral3d baseline and no "
            f"error_model_baselines; list baselines with training-split predictions ({candidates}) in "
            f"baselines.{name}.error_model_baselines, or give baselines.{name}.validation_file"
        )
    return {"validation_file": None, "format": "auto", "unit": "auto", "joint_names": None, "baselines": chosen}


def wildcard_constraint() -> str:
    """Regex matching exactly the variant names (for the ``{variant}`` wildcard)."""
    return "|".join(sorted(VARIANTS, key=len, reverse=True))
