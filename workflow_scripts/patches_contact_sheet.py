"""Snakemake script: the contact sheet of one patch store (rules/patches.smk)."""

from patchpose.dataset_format import open_dataset
from patchpose.patches.contact_sheet import write_contact_sheet
from patchpose.patches.store import open_patch_store
from patchpose.workflow_logging import log_to_file

with log_to_file(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    dataset = open_dataset(snakemake.input.dataset)  # noqa: F821
    store = open_patch_store(snakemake.input.store, dataset)  # noqa: F821
    write_contact_sheet(store, dataset, snakemake.params.frames, snakemake.output.sheet)  # noqa: F821
