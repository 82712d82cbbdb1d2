# Schema validation, wildcard constraints and input functions. No rule lives here.
from snakemake.exceptions import WorkflowError

from patchpose.config import ConfigError, validate_config
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


def get_final_outputs():
    """Everything `snakemake` with no target builds."""
    return [
        *expand(f"{RESULTS}/dataset/{{split}}.zarr", split=SPLITS),
        *expand(f"{RESULTS}/dataset/{{split}}_contact_sheet.png", split=SPLITS),
    ]


def get_world_params(wildcards):
    """The synthetic-world keys that shape one split (so a train-only key never rerenders test)."""
    return world_params_for_split(config["dataset"]["synthetic"], wildcards.split)
