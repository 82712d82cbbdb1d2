"""What the verbs share: one-line errors, progress lines, the import options and the import itself."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import click

from patchpose.config import load_schema
from patchpose.poses3d.files import FORMATS
from patchpose.poses3d.importer import import_external_split
from patchpose.poses3d.joints import NAMED_ORDERS
from patchpose.poses3d.units import UNITS

__all__ = [
    "DEFAULTS",
    "InputError",
    "one_line",
    "expected_errors",
    "step",
    "import_options",
    "import_settings",
    "import_file",
]

_SCHEMA = load_schema()["properties"]
DEFAULTS = {  # the config's defaults (its JSON schema), so the CLI and config.yaml agree
    "seed": _SCHEMA["seed"]["default"],
    "resamples": _SCHEMA["evaluation"]["properties"]["bootstrap_resamples"]["default"],
    "confidence": _SCHEMA["evaluation"]["properties"]["confidence"]["default"],
    "batch_size": _SCHEMA["updater"]["properties"]["prediction_batch_size"]["default"],
}


class InputError(click.ClickException):
    """An expected problem with an input: one line ``patchpose: error: <message>`` on stderr, exit 1."""

    exit_code = 1

    def show(self, file=None) -> None:
        click.echo(f"patchpose: error: {self.message}", err=True)


def one_line(error: Exception) -> str:
    """``"<file>: <problem>"`` of a package error or an ``OSError``, on one line."""
    if isinstance(error, OSError) and error.filename is not None:
        text = f"{error.filename}: {error.strerror or error}"
    else:
        text = str(error)
    return " ".join(text.split())


def expected_errors(command):
    """Turn the package's ``ValueError``s and ``OSError``s raised by ``command`` into ``InputError``s."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (ValueError, OSError) as error:
            raise InputError(one_line(error)) from error

    return wrapper


@contextlib.contextmanager
def step(text: str) -> Iterator[None]:
    """``<text> ...`` on stderr, then the seconds it took; on a terminal the seconds tick while it runs."""
    if (click.get_current_context().obj or {}).get("quiet"):
        yield
        return
    start = time.monotonic()
    live = sys.stderr.isatty()
    done = threading.Event()

    def tick() -> None:
        while not done.wait(1.0):
            click.echo(f"\r{text} ... {time.monotonic() - start:.0f} s", err=True, nl=False)

    click.echo(f"{text} ...", err=True, nl=not live)
    ticker = threading.Thread(target=tick, daemon=True) if live else None
    if ticker is not None:
        ticker.start()
    try:
        yield
    finally:
        done.set()
        if ticker is not None:
            ticker.join()
        elapsed = f"{time.monotonic() - start:.1f} s"
        click.echo(f"\r{text} ... {elapsed}" if live else f"  done in {elapsed}", err=True)


def import_options(command=None, *, prefix: str = ""):
    """``--format``, ``--unit``, ``--joint-names``: an external baseline's settings (docs/predictions_format.md);
    with ``prefix`` "against", ``--against-format`` ... for a second file (parameters ``against_container`` ...)."""
    if command is None:
        return functools.partial(import_options, prefix=prefix)
    dash, under = (f"{prefix}-", f"{prefix}_") if prefix else ("", "")
    whose = f"the --{prefix} file" if prefix else "the predictions file"
    options = [
        click.option(
            f"--{dash}format",
            f"{under}container",
            type=click.Choice(["auto", *FORMATS]),
            default="auto",
            show_default=True,
            help=f"Container of {whose}; auto: from its suffix (.npz, .h5/.hdf5, .csv).",
        ),
        click.option(
            f"--{dash}unit",
            f"{under}unit",
            type=click.Choice(["auto", *UNITS]),
            default="auto",
            show_default=True,
            help=f"Unit of {whose}'s coordinates (converted to mm); auto: what it declares, else mm. A unit the "
            "bone lengths contradict is refused either way.",
        ),
        click.option(
            f"--{dash}joint-names",
            f"{under}joint_names",
            metavar="ORDER|NAMES",
            default=None,
            help=f"Joint order of {whose}: {', '.join(NAMED_ORDERS)}, or 17 comma-separated joint names; default: "
            "the names it declares.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def import_settings(container: str = "auto", unit: str = "auto", joint_names: str | None = None) -> dict:
    """The import's ``format``, ``unit`` and ``joint_names`` from the options (names: comma-separated)."""
    if joint_names is not None and "," in joint_names:
        joint_names = [name.strip() for name in joint_names.split(",")]
    return {"format": container, "unit": unit, "joint_names": joint_names}


def import_file(source: str, store: str, split: str, settings: dict, directory: str, label: str) -> tuple[str, dict]:
    """Import ``source`` for the ``split`` store ``store`` like an external baseline (``import_external_split``)
    into ``directory``: (the canonical file ``<label>_poses_3d.npz``, the import report)."""
    output = os.path.join(directory, f"{label}_poses_3d.npz")
    report = import_external_split(
        name=Path(source).stem,
        split=split,
        source=source,
        stores={split: store},
        output=output,
        report=os.path.join(directory, f"{label}_import.json"),
        **settings,
    )
    return output, report
