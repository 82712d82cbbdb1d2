"""``patchpose refine``: a prediction file refined by a trained updater, as the rule refine_with_updater does."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click

from patchpose.cli.common import (
    DEFAULTS,
    InputError,
    expected_errors,
    import_file,
    import_options,
    import_settings,
    step,
)
from patchpose.dataset_format import open_dataset
from patchpose.poses3d.files import SUFFIXES

__all__ = ["refine"]

_EXAMPLE = """\b
Example:
  patchpose refine --updater results/synthetic/updater/lifting/rgb_seg/model.pt \\
      --patches results/synthetic/patches/predicted/test.zarr \\
      --dataset results/synthetic/dataset/test.zarr \\
      --predictions mine.npz --out refined.npz"""


@click.command(epilog=_EXAMPLE)
@click.option("--updater", "model", required=True, help="A trained updater's model.pt (rule train_updater).")
@click.option(
    "--patches",
    default=None,
    help="The patch store of the dataset's frames the updater reads (results/<dataset>/patches/<source>/"
    "<split>.zarr); a pose_only updater reads none, a pose_boxes updater only its limb boxes.",
)
@click.option("--dataset", "store", required=True, help="The dataset store of the predictions' split.")
@click.option("--predictions", required=True, help="The initial 3D predictions: npz, h5 or CSV.")
@click.option("--out", "output", required=True, help="The refined predictions (container by suffix), atomically.")
@click.option(
    "--method", default=None, help="Label written in the output; default: '<the file's method> + updater (<variant>)'."
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 4096),
    default=DEFAULTS["batch_size"],
    show_default=True,
    help="Frames per forward pass (config updater.prediction_batch_size; does not change the poses).",
)
@click.option("--threads", type=click.IntRange(1), default=1, show_default=True, help="CPU threads for torch.")
@import_options
@expected_errors
def refine(model, patches, store, predictions, output, method, batch_size, threads, container, unit, joint_names):
    """Refine a prediction file with a trained updater (paper Eq. 1), as the rule refine_with_updater does.

    The predictions are imported like an external baseline's first (the checks of validate-predictions;
    unit and joint order converted), then refined by refine_split in the dataset's row order and written in
    the prediction format (mm, root-relative, the dataset's frame ids).
    """
    import torch  # torch: this verb alone needs it

    from patchpose.updater.modalities import patch_source
    from patchpose.updater.stage import load_updater, refine_split

    if Path(output).suffix.lower() not in SUFFIXES:
        raise InputError(f"{output}: the suffix chooses the container; use one of {', '.join(SUFFIXES)}")
    dataset = open_dataset(store)
    with tempfile.TemporaryDirectory(prefix="patchpose-refine-") as directory:
        settings = import_settings(container, unit, joint_names)
        with step(f"importing {predictions}"):
            initial, report = import_file(predictions, store, dataset.split, settings, directory, "initial")
        with step(f"loading the updater {model}"):
            # refuses a file that is no updater, or whose weights do not fit its network, before refining
            loaded = load_updater(model, torch.device("cpu"))
        payload = loaded[1]
        modality, variant = payload["modality"], payload["variant"]
        if modality is not None and patches is None:
            reads = f"{modality} patches" if loaded[0].uses_images else f"the limb boxes of its {modality} patch store"
            raise InputError(
                f"{model}: the {variant} updater reads {reads}; give --patches (the store "
                f"results/<dataset>/patches/{patch_source(modality)}/{dataset.split}.zarr of these frames)"
            )
        if modality is None and patches is not None:
            click.echo(f"patchpose: note: --patches ignored, the {variant} updater reads no patches", err=True)
            patches = None
        label = method or f"{report['file_method'] or Path(predictions).stem} + updater ({variant})"
        frames = f"{dataset.num_frames} {dataset.split} frames"
        label_text = f"refining {frames} ({variant} updater)"
        bar = click.progressbar(length=dataset.num_frames, label=label_text, file=sys.stderr)
        with bar:
            refine_split(
                model=model,
                dataset=store,
                initial=initial,
                patches=patches,
                output=output,
                method=label,
                batch_size=batch_size,
                threads=threads,
                progress=bar.update,
                loaded=loaded,
            )
    click.echo(f"{output}: {frames} refined by {model} ({label!r})")
