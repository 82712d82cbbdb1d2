# Schema validation, wildcard constraints and input functions. No rule lives here.
from snakemake.exceptions import WorkflowError

from patchpose.config import ConfigError, validate_config
from patchpose.h36m import workflow as h36m_workflow
from patchpose.synthetic.params import world_params_for_split

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


def get_dataset_outputs():
    """The dataset stage's outputs: the stores, plus contact sheets (synthetic) or protocol manifests (h36m)."""
    extra = "contact_sheet.png" if config["dataset"]["kind"] == "synthetic" else "manifest.json"
    return [
        *expand(f"{RESULTS}/dataset/{{split}}.zarr", split=SPLITS),
        *expand(f"{RESULTS}/dataset/{{split}}_{extra}", split=SPLITS),
    ]


def get_final_outputs():
    """Everything `snakemake` with no target builds."""
    return get_dataset_outputs()


def get_world_params(wildcards):
    """The synthetic-world keys that shape one split (so a train-only key never rerenders test)."""
    return world_params_for_split(config["dataset"]["synthetic"], wildcards.split)


def get_h36m_sequence_inputs(wildcards):
    """The release files one Human3.6M sequence is extracted from (pose file and videos)."""
    return h36m_workflow.sequence_inputs(config["dataset"]["h36m"], wildcards.subject, wildcards.sequence)


def get_h36m_sequence_settings(wildcards):
    """The dataset.h36m keys that shape one sequence's extraction."""
    return h36m_workflow.settings_for_sequence(config["dataset"]["h36m"], wildcards.subject)


def get_h36m_split_sequences(wildcards):
    """The per-sequence intermediates one split is merged from (listed from the release at DAG time)."""
    return h36m_workflow.sequence_dirs(
        config["dataset"]["h36m"], f"{RESULTS}/dataset/h36m_sequences", wildcards.split
    )


def get_h36m_split_settings(wildcards):
    """The dataset.h36m keys that shape one split's merge."""
    return h36m_workflow.settings_for_split(config["dataset"]["h36m"], wildcards.split)
