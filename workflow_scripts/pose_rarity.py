"""Snakemake script: each test frame's pose rarity among the training poses (patchpose.evaluation.rarity)."""

from patchpose.dataset_format import open_dataset
from patchpose.evaluation.rarity import frame_rarity, write_rarity
from patchpose.workflow_logging import log_to_file

with log_to_file(snakemake.log[0]):
    test, train = open_dataset(snakemake.input.test), open_dataset(snakemake.input.train)
    k = snakemake.params.neighbours
    write_rarity(snakemake.output.rarity, frame_rarity(test, train, k), test.frame_ids(), k)
