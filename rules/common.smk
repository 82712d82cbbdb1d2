# Schema validation, wildcard constraints and input functions. No rule lives here.
from pathlib import Path

from snakemake.exceptions import WorkflowError

from patchpose.config import ConfigError, validate_config
from patchpose.folds import FoldError, assign_folds
from patchpose.h36m import workflow as h36m_workflow
from patchpose.person_box import split_boxes
from patchpose.provenance import code_digest
from patchpose.synthetic.params import world_params_for_split
from patchpose.poses3d import baseline_config
from patchpose.updater import variants as updater_variants
from patchpose.updater.modalities import patch_source

try:
    _validated = validate_config(config)
except ConfigError as error:
    raise WorkflowError(f"invalid config: {error}") from None
config.clear()
config.update(_validated)

DATASET = config["dataset"]["name"]
RESULTS = f"results/{DATASET}"
SPLITS = ("train", "test")


wildcard_constraints:
    split="train|test",
    variant=updater_variants.wildcard_constraint(),
    fold=r"\d+",
    source2d="predicted|groundtruth",


def get_code_version(script, *modules):
    """The ``code`` param of a rule: a digest of its workflow script and every package module it runs
    (``modules``: the stage module a generic script dispatches to), so that editing a stage's code reruns
    that stage and what depends on it (patchpose/provenance.py)."""
    return code_digest(str(Path(workflow.basedir) / "workflow_scripts" / script), *modules)


def get_dataset_outputs():
    """The dataset stage's outputs: the stores, plus contact sheets (synthetic) or protocol manifests (h36m)."""
    extra = "contact_sheet.png" if config["dataset"]["kind"] == "synthetic" else "manifest.json"
    return [
        *expand(f"{RESULTS}/dataset/{{split}}.zarr", split=SPLITS),
        *expand(f"{RESULTS}/dataset/{{split}}_{extra}", split=SPLITS),
    ]


def get_keypoints2d_and_segmentation_outputs():
    """The keypoints2d and segmentation stages' outputs: 2D keypoints and segmentations of both splits, their metrics and contact sheets."""
    return [
        *expand(f"{RESULTS}/keypoints2d/{{split}}_joints_2d.npz", split=SPLITS),
        f"{RESULTS}/keypoints2d/metrics.csv",
        *expand(f"{RESULTS}/keypoints2d/{{split}}_contact_sheet.png", split=SPLITS),
        *expand(f"{RESULTS}/segmentation/{{split}}.zarr", split=SPLITS),
        f"{RESULTS}/segmentation/metrics.csv",
        *expand(f"{RESULTS}/segmentation/{{split}}_contact_sheet.png", split=SPLITS),
    ]


def get_patches_outputs():
    """The patches stage's outputs: limb patches from the predicted 2D joints, uncropped frames, contact sheets."""
    return [
        *expand(f"{RESULTS}/patches/{{store}}/{{split}}.zarr", store=("predicted", "uncropped"), split=SPLITS),
        *expand(f"{RESULTS}/patches/predicted/{{split}}_contact_sheet.png", split=SPLITS),
    ]


def get_patch_joints_input(wildcards):
    """The 2D joints that place a split's limb boxes: the keypoints2d predictions, or none (groundtruth:
    the dataset store's own joints_2d)."""
    if wildcards.source2d == "predicted":
        return {"joints": f"{RESULTS}/keypoints2d/{wildcards.split}_joints_2d.npz"}
    return {}


def get_final_outputs():
    """Everything `snakemake` with no target builds."""
    return (
        get_dataset_outputs()
        + get_keypoints2d_and_segmentation_outputs()
        + get_baseline_outputs()
        + get_trained_baseline_outputs()
        + get_patches_outputs()
        + get_updater_outputs()
    )


def get_training_settings(stage):
    """The keys that shape a stage's fold models (not its prediction batch size or evaluation keys)."""
    return {key: config[stage][key] for key in ("model", "training", "augment")}


def get_keypoints2d_training_settings():
    """keypoints2d's model/training/augment; without the part head's keys when the segmentation has a
    network of its own (segmentation.network: refinenet), so they then shape nothing."""
    settings = get_training_settings("keypoints2d")
    if config["segmentation"]["network"] != "keypoints2d":
        settings["model"] = {k: v for k, v in settings["model"].items() if k != "part_head_channels"}
        settings["training"] = {k: v for k, v in settings["training"].items() if k != "part_loss_weight"}
    return settings


def get_segmentation_training_settings():
    return get_training_settings("segmentation")


def get_fold_count():
    """folds.k, checked against the dataset's training subjects first, so a bad k stops the DAG before any job
    runs (only where a stage with folds is built)."""
    dataset = config["dataset"]
    try:
        assign_folds(dataset[dataset["kind"]]["train_subjects"], config["folds"]["k"])
    except FoldError as error:
        raise WorkflowError(f"invalid config: {error}") from None
    return config["folds"]["k"]


def get_fold_models(stage):
    """The k fold models of a stage (folds.k, checked by ``get_fold_count``), in fold order."""
    return expand(f"{RESULTS}/{stage}/models/fold{{fold}}.pt", fold=range(get_fold_count()))


def get_keypoints2d_fold_models(wildcards):
    return get_fold_models("keypoints2d")


def get_segmentation_fold_models(wildcards):
    """The fold models that segment: keypoints2d's (their part head) or the segmentation stage's own."""
    return get_fold_models("keypoints2d" if config["segmentation"]["network"] == "keypoints2d" else "segmentation")


def get_person_boxes():
    """Each split's person box (dataset.person_box with the seed resolved; patchpose/person_box.py)."""
    return split_boxes(config["dataset"]["person_box"], config["seed"])


def get_world_params(wildcards):
    """The synthetic-world keys and person box that shape one split (so a train-only key never rerenders test)."""
    return world_params_for_split(config["dataset"]["synthetic"], wildcards.split, get_person_boxes())


def get_h36m_sequence_inputs(wildcards):
    """The release files one Human3.6M sequence is extracted from (pose file and videos)."""
    return h36m_workflow.sequence_inputs(config["dataset"]["h36m"], wildcards.subject, wildcards.sequence)


def get_h36m_sequence_settings(wildcards):
    """The dataset.h36m keys and person box that shape one sequence's extraction."""
    return h36m_workflow.settings_for_sequence(config["dataset"]["h36m"], wildcards.subject, get_person_boxes())


def get_h36m_split_sequences(wildcards):
    """The per-sequence intermediates one split is merged from (listed from the release at DAG time)."""
    return h36m_workflow.sequence_dirs(
        config["dataset"]["h36m"], f"{RESULTS}/dataset/h36m_sequences", wildcards.split
    )


def get_h36m_split_settings(wildcards):
    """The dataset.h36m keys and person box that shape one split's merge."""
    return h36m_workflow.settings_for_split(config["dataset"]["h36m"], wildcards.split, get_person_boxes())


# --- baselines (rules/baselines.smk): initial 3D poses in the prediction format, docs/predictions_format.md ---


def get_baseline_names(kind=None):
    """The configured baselines' names (of one ``kind`` if given), in config order."""
    return [name for name, settings in config["baselines"].items() if kind in (None, settings["kind"])]


def get_baseline_name_pattern(kind):
    """Wildcard regex matching exactly the baselines of ``kind`` (nothing if there are none), so that each
    kind's rules own their baselines' ``{split}_poses_3d.npz``."""
    return "|".join(get_baseline_names(kind)) or "(?!)"


def get_baseline_splits(name):
    """The splits baseline ``name`` has predictions for: ("train", "test"), or ("test",) for an external
    baseline without train_file. Decided from the config, so later stages can plan on it."""
    return baseline_config.baseline_splits(config["baselines"][name])


def get_baseline_outputs():
    """Per baseline: info.json (its splits) and mpjpe_per_action.csv (test split)."""
    return [
        f"{RESULTS}/baselines/{name}/{output}"
        for name in get_baseline_names()
        for output in ("info.json", "mpjpe_per_action.csv")
    ]


def get_baseline_split_predictions(wildcards):
    """{split: canonical prediction file} for every split baseline ``wildcards.name`` has (for ``unpack``)."""
    return {
        split: f"{RESULTS}/baselines/{wildcards.name}/{split}_poses_3d.npz"
        for split in get_baseline_splits(wildcards.name)
    }


def get_baseline_kind(wildcards):
    return config["baselines"][wildcards.name]["kind"]


def get_baseline_settings(wildcards):
    """Baseline ``wildcards.name``'s whole config block (every key shapes its predictions)."""
    return config["baselines"][wildcards.name]


def get_external_baseline_source(wildcards):
    """The user's file that external baseline ``wildcards.name``'s ``wildcards.split`` is read from."""
    try:
        return baseline_config.external_source(wildcards.name, config["baselines"][wildcards.name], wildcards.split)
    except ValueError as error:
        raise WorkflowError(str(error)) from None


def get_external_baseline_shares_file(wildcards):
    """Whether the baseline's file and train_file are one file holding both splits."""
    return baseline_config.file_holds_both_splits(config["baselines"][wildcards.name])


# --- the mean pose (kind mean_pose; patchpose/baselines/mean_pose.py): no network, the folds' mean poses ---


def get_mean_pose_fold_count(wildcards):
    """folds.k for a mean_pose baseline, checked as for the trained stages (``get_fold_count``)."""
    return get_fold_count()


# --- in-pipeline baselines (kinds lifting, integral3d; patchpose/baselines): k-fold like keypoints2d ---

TRAINED_BASELINE_KINDS = ("lifting", "integral3d")


def get_trained_baseline_names():
    """The baselines the pipeline trains itself (kinds lifting and integral3d), in config order."""
    return [name for kind in TRAINED_BASELINE_KINDS for name in get_baseline_names(kind)]


def get_trained_baseline_name_pattern():
    """Wildcard regex matching exactly the trained baselines' names (nothing if there are none)."""
    return "|".join(get_trained_baseline_names()) or "(?!)"


def get_trained_baseline_outputs():
    """Per trained baseline: the learning curves of its fold models (PNG)."""
    return [f"{RESULTS}/baselines/{name}/learning_curves.png" for name in get_trained_baseline_names()]


def get_trained_baseline_stage(wildcards):
    """The package module of a trained baseline's kind, ``patchpose.baselines.<kind>.stage``."""
    return f"baselines.{get_baseline_kind(wildcards)}"


def get_trained_baseline_training_code(wildcards):
    return get_code_version("train_fold_model.py", f"patchpose.{get_trained_baseline_stage(wildcards)}.stage")


def get_trained_baseline_prediction_code(wildcards):
    return get_code_version("predict_with_fold_models.py", f"patchpose.{get_trained_baseline_stage(wildcards)}.stage")


def get_trained_baseline_training_settings(wildcards):
    """The keys that shape a trained baseline's fold models (all but its prediction batch size)."""
    block = config["baselines"][wildcards.name]
    return {key: value for key, value in block.items() if key != "prediction_batch_size"}


def get_trained_baseline_prediction_batch_size(wildcards):
    return config["baselines"][wildcards.name]["prediction_batch_size"]


def get_trained_baseline_training_inputs(wildcards):
    """The training store, plus the training split's k-fold 2D predictions for a lifting baseline or the
    same fold's keypoints2d model an integral3d baseline starts from (for ``unpack``)."""
    inputs = {"train": f"{RESULTS}/dataset/train.zarr"}
    if get_baseline_kind(wildcards) == "lifting":
        inputs["joints_2d"] = f"{RESULTS}/keypoints2d/train_joints_2d.npz"
    if get_baseline_kind(wildcards) == "integral3d":
        inputs["init"] = get_keypoints2d_fold_models(wildcards)[int(wildcards.fold)]
    return inputs


def get_trained_baseline_prediction_inputs(wildcards):
    """The split's store and the k fold models, plus the split's 2D predictions for a lifting baseline."""
    inputs = {
        "dataset": f"{RESULTS}/dataset/{wildcards.split}.zarr",
        "models": get_fold_models(f"baselines/{wildcards.name}"),
    }
    if get_baseline_kind(wildcards) == "lifting":
        inputs["joints_2d"] = f"{RESULTS}/keypoints2d/{wildcards.split}_joints_2d.npz"
    return inputs


def get_trained_baseline_curves(wildcards):
    """The learning-curve CSVs of a trained baseline's k fold models, in fold order."""
    return expand(f"{RESULTS}/baselines/{wildcards.name}/curves/fold{{fold}}.csv", fold=range(config["folds"]["k"]))


# --- updater (rules/updater.smk) and refine/evaluate (rules/refine.smk): the pairs the tables need ---


def get_refinable_baselines():
    """Baselines an updater can be trained for: those with a training split, the mean_pose reference excepted."""
    return [
        name
        for name in get_baseline_names()
        if "train" in get_baseline_splits(name) and config["baselines"][name]["kind"] != "mean_pose"
    ]


def get_updater_plan():
    """{"table1": [(baseline, variant)], "ablation": [(baseline, variant)]} (patchpose/updater/variants.py)."""
    try:
        return updater_variants.planned_pairs(
            get_refinable_baselines(), config["updater"]["ablation_baseline"], config["updater"]["condition_on_initial_pose"]
        )
    except ValueError as error:
        raise WorkflowError(f"invalid config: {error}") from None


def get_updater_pairs():
    plan = get_updater_plan()
    return plan["table1"] + plan["ablation"]


def get_updater_outputs():
    """Per planned (baseline, variant): the refined test split's evaluation; then claims.json."""
    pairs = get_updater_pairs()
    if not pairs:
        return []
    return [
        f"{RESULTS}/refined/{baseline}/{variant}/{output}"
        for baseline, variant in pairs
        for output in ("improvement.csv", "rarity_deciles.csv")
    ] + [f"{RESULTS}/claims.json"]


def get_updater_baseline_pattern():
    """Wildcard regex matching exactly the refinable baselines' names (nothing if there are none)."""
    return "|".join(get_refinable_baselines()) or "(?!)"


def _updater_inputs(wildcards, split):
    inputs = {
        "dataset": f"{RESULTS}/dataset/{split}.zarr",
        "initial": f"{RESULTS}/baselines/{wildcards.baseline}/{split}_poses_3d.npz",
    }
    modality = updater_variants.get_variant(wildcards.variant).modality
    if modality is not None:
        inputs["patches"] = f"{RESULTS}/patches/{patch_source(modality)}/{split}.zarr"
    return inputs


def get_updater_training_inputs(wildcards):
    """The training store, the baseline's training-split predictions and the variant's patch store (for ``unpack``)."""
    return _updater_inputs(wildcards, "train")


def get_updater_refine_inputs(wildcards):
    """The trained updater, the test store, the baseline's test predictions and the variant's test patches."""
    return {
        "model": f"{RESULTS}/updater/{wildcards.baseline}/{wildcards.variant}/model.pt",
        **_updater_inputs(wildcards, "test"),
    }


def get_updater_settings(wildcards):
    """The updater keys that shape this variant's network and training (patchpose/updater/variants.py)."""
    return updater_variants.job_settings(config["updater"], wildcards.variant)


def get_claims_inputs(wildcards):
    """Every planned pair's evaluation, and the per-frame errors of every baseline refined (for ``unpack``)."""
    pairs = get_updater_pairs()
    baselines = list(dict.fromkeys(baseline for baseline, _ in pairs))
    refined = [f"{RESULTS}/refined/{baseline}/{variant}" for baseline, variant in pairs]
    return {
        "baseline_errors": [f"{RESULTS}/baselines/{baseline}/test_frame_errors.npz" for baseline in baselines],
        "refined_errors": [f"{path}/test_frame_errors.npz" for path in refined],
        "improvements": [f"{path}/improvement.csv" for path in refined],
        "deciles": [f"{path}/rarity_deciles.csv" for path in refined],
    }


def get_claims_baselines():
    return list(dict.fromkeys(baseline for baseline, _ in get_updater_pairs()))
