"""The ``patchpose`` command line: the rules' numbers and files from the same inputs (tiny config, once through
Snakemake), and one clear error naming the file for every bad input, from every verb."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from patchpose.cli import main
from patchpose.dataset_format import open_dataset
from patchpose.poses3d import VIDEOPOSE3D_JOINT_NAMES, PredictionFileError, import_external_split, write_predictions
from patchpose.poses3d.files import read_predictions
from patchpose.skeleton import H36M
from tests.dataset_factory import write_tiny_dataset

SCRIPT = Path(sys.executable).parent / "patchpose"  # the console script pyproject.toml installs
VERBS = ("refine", "evaluate", "validate-predictions")


def _run(*args: str):
    return CliRunner().invoke(main, ["--quiet", *map(str, args)])


def _truth(store_path) -> tuple[np.ndarray, list[str]]:
    """(N, 17, 3) mm root-relative ground truth plus 10 mm of seeded noise, and the frame ids."""
    store = open_dataset(store_path)
    poses = store.joints_3d - store.joints_3d[:, :1]
    poses = poses + np.random.default_rng(3).normal(0, 10, poses.shape)
    return poses - poses[:, :1], store.frame_ids()


def _npz(path: Path, poses, ids, **fields) -> Path:
    np.savez(path, poses_3d=poses, frame_ids=np.array(ids), **{key: np.array(v) for key, v in fields.items()})
    return path


def _not_in_dataset(ids: list[str]) -> list[str]:
    return [f"S11/Walking/1/54138969/{index:06d}" for index in range(2)] + ids[2:]


def _bad_input(case: str, directory: Path, store) -> tuple[Path, list[str], str]:
    """(file, extra options, what the error says) for each bad input the import refuses."""
    poses, ids = _truth(store)
    names = H36M.joint_names
    if case == "missing file":
        return directory / "absent.npz", [], "prediction file not found"
    if case == "text file named .npz":
        (directory / "text.npz").write_text("frame_id,x\nS9,1\n")
        return directory / "text.npz", [], "not an npz file"
    if case == "NaN poses":
        nan = poses.copy()
        nan[1, 4, 2] = np.nan
        return _npz(directory / "nan.npz", nan, ids, joint_names=names), [], "1 NaN or inf values in 1 frames"
    if case == "wrong shape":
        return _npz(directory / "16.npz", poses[:, :16], ids), [], "holds 16 joints per frame, expected the 17"
    if case == "metres declared mm":
        return _npz(directory / "m.npz", poses / 1000, ids, joint_names=names, unit="mm"), [], "unit mismatch"
    if case == "no joint order":
        return _npz(directory / "unnamed.npz", poses, ids), [], "the joint order is unknown"
    if case == "unknown joint order name":
        path = _npz(directory / "unnamed.npz", poses, ids)
        return path, ["--joint-names", "openpose"], "unknown named joint order 'openpose'"
    if case == "joints not in the declared order":
        shuffled = poses[:, np.random.default_rng(0).permutation(17)]
        return _npz(directory / "shuffled.npz", shuffled, ids, joint_names=names), [], "not seem to be in the declared"
    if case == "ids not in the dataset":
        path = _npz(directory / "ids.npz", poses, _not_in_dataset(ids), joint_names=names)
        return path, [], "2 frame ids are not in the dataset"
    raise AssertionError(case)


BAD_INPUTS = (
    "missing file",
    "text file named .npz",
    "NaN poses",
    "wrong shape",
    "metres declared mm",
    "no joint order",
    "unknown joint order name",
    "joints not in the declared order",
    "ids not in the dataset",
)


def _invocation(verb: str, source: Path, store, options: list[str], directory: Path) -> tuple[list, Path | None]:
    """The arguments of ``verb`` on ``source`` and the output it must not leave behind."""
    if verb == "validate-predictions":
        return [verb, source, "--dataset", store, *options], None
    output = directory / ("out.npz" if verb == "refine" else "out.csv")
    if verb == "refine":  # the predictions are imported before the model is opened
        return [verb, "--updater", directory / "model.pt", "--dataset", store, "--predictions", source,
                "--out", output, *options], output  # fmt: skip
    return [verb, "--predictions", source, "--dataset", store, "--csv", output, *options], output


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A tiny test-split store (9 frames; tests/dataset_factory.py)."""
    return write_tiny_dataset(tmp_path_factory.mktemp("cli") / "test.zarr", 9, with_part_labels=False, seed=2)


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize("case", BAD_INPUTS)
def test_every_bad_input_is_one_line_naming_the_file(store, tmp_path, verb, case):
    source, options, problem = _bad_input(case, tmp_path, store)
    arguments, output = _invocation(verb, source, store, options, tmp_path)
    result = _run(*arguments)
    assert result.exit_code == 1, result.output
    assert f"patchpose: error: {source}: " in result.stderr and problem in result.stderr, result.stderr
    assert "Traceback" not in result.output and result.stdout == ""
    assert output is None or not output.exists()
    with pytest.raises(PredictionFileError) as refused:  # the message is the import's own (the rule's)
        import_external_split(name="x", split="test", source=source, stores={"test": store},
                              output=tmp_path / "canonical.npz", report=tmp_path / "report.json",
                              joint_names=options[1] if options else None)  # fmt: skip
    assert result.stderr.splitlines()[0] == f"patchpose: error: {refused.value}"


def test_validate_lists_every_problem_in_the_import_order(store, tmp_path):
    poses, ids = _truth(store)
    poses = poses / 1000
    poses[3, 2, 1] = np.inf
    source = _npz(tmp_path / "many.npz", poses, _not_in_dataset(ids), joint_names=H36M.joint_names, unit="mm",
                  split="train")  # fmt: skip
    result = _run("validate-predictions", source, "--dataset", store)
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("patchpose: error: ")]
    expected = [
        "1 NaN or inf values",
        "unit mismatch (declared 'mm')",
        "declares split 'train' but is read for the test",
        "2 frame ids are not in the dataset",
        "is missing 2 of 9 test-split frames",
    ]
    assert len(errors) == len(expected), result.stderr
    for line, fragment in zip(errors, expected, strict=True):
        assert line.startswith(f"patchpose: error: {source}: ") and fragment in line, line
    assert "not checked: the joint order against the ground truth" in result.stderr
    assert result.stderr.splitlines()[-1] == f"patchpose: 5 problem(s) in {source}"


def test_a_good_file_in_any_container_validates_and_evaluates_alike(store, tmp_path):
    poses, ids = _truth(store)
    reference = tmp_path / "mine.npz"
    write_predictions(reference, poses, ids, split="test", method="mine")
    order = np.random.default_rng(1).permutation(17)  # another joint order, VideoPose3D's names, metres, reversed rows
    other = tmp_path / "mine.csv"
    write_predictions(other, poses[::-1, order] / 1000, ids[::-1], split="test", method="mine", unit="m",
                      joint_names=[VIDEOPOSE3D_JOINT_NAMES[j] for j in order])  # fmt: skip
    valid = _run("validate-predictions", other, "--dataset", store, "--unit", "m")
    assert valid.exit_code == 0, valid.output
    assert valid.stdout.count("\n") == 1 and valid.stdout.startswith(f"{other}: OK: 9 test frames of {store}; unit m")
    tables = []
    for source in (reference, other):
        result = _run("evaluate", "--predictions", source, "--dataset", store, "--csv", tmp_path / "table.csv")
        assert result.exit_code == 0, result.output
        with open(tmp_path / "table.csv", newline="") as handle:
            tables.append([[float(row["mpjpe_mm"]), float(row["pa_mpjpe_mm"])] for row in csv.DictReader(handle)])
    np.testing.assert_allclose(tables[0], tables[1], atol=2e-3)  # the CSV keeps metres to 1 micrometre
    paired = _run("evaluate", "--predictions", reference, "--dataset", store, "--against", other, "--against-unit", "m",
                  "--resamples", 100, "--improvement-csv", tmp_path / "improvement.csv")  # fmt: skip
    assert paired.exit_code == 0, paired.output
    with open(tmp_path / "improvement.csv", newline="") as handle:
        improvements = [float(row[key]) for row in csv.DictReader(handle) for key in ("improvement_mm", "ci_high_mm")]
    np.testing.assert_allclose(improvements, 0, atol=2e-3)


def test_refine_names_a_bad_model_file(store, tmp_path):
    poses, ids = _truth(store)
    source = tmp_path / "mine.npz"
    write_predictions(source, poses, ids, split="test", method="mine")
    (tmp_path / "model.pt").write_text("not a model")
    result = _run("refine", "--updater", tmp_path / "model.pt", "--dataset", store, "--predictions", source,
                  "--out", tmp_path / "refined.npz")  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.startswith(f"patchpose: error: {tmp_path / 'model.pt'}: not a readable patchpose")
    assert not (tmp_path / "refined.npz").exists()


def test_usage_errors_and_help(store, tmp_path):
    for verb in VERBS:
        result = _run(verb, "--help")
        assert result.exit_code == 0 and "Example" in result.output and f"patchpose {verb} " in result.output
    missing = _run("evaluate", "--dataset", store)
    assert missing.exit_code == 2 and "Missing option '--predictions'" in missing.output
    lone = _run("evaluate", "--predictions", "x.npz", "--dataset", store, "--improvement-csv", tmp_path / "i.csv")
    assert lone.exit_code == 2 and "--improvement-csv needs --against" in lone.output
    store_missing = _run("validate-predictions", "x.npz", "--dataset", tmp_path / "none.zarr")
    assert store_missing.exit_code == 1
    assert store_missing.stderr == f"patchpose: error: {tmp_path / 'none.zarr'}: missing store (no such directory)\n"


def test_the_console_script_is_installed(store, tmp_path):
    source, _, problem = _bad_input("NaN poses", tmp_path, store)
    result = subprocess.run(
        [SCRIPT, "validate-predictions", source, "--dataset", store], capture_output=True, text=True
    )
    assert (
        result.returncode == 1
        and result.stderr.startswith(f"patchpose: error: {source}: ")
        and problem in result.stderr
    )
    assert "Traceback" not in result.stderr


# The same inputs as the rules, from the tiny run of the workflow (tests/tiny_pipeline.py: 2 test poses per action,
# so the bootstrap has clusters to resample): the lifting baseline refined by its rgb_seg and pose_only updaters.


@pytest.fixture(scope="module")
def results(tiny_run) -> Path:
    return tiny_run / "results/synthetic"  # only read


def _refine_arguments(results: Path, variant: str, output: Path, predictions: Path | None = None) -> list:
    predictions = predictions or results / "baselines/lifting/test_poses_3d.npz"
    arguments = ["refine", "--updater", results / f"updater/lifting/{variant}/model.pt",
                 "--dataset", results / "dataset/test.zarr", "--predictions", predictions, "--out", output]  # fmt: skip
    if variant != "pose_only":
        arguments += ["--patches", results / "patches/predicted/test.zarr"]
    return arguments


def _same_predictions(path: Path, reference: Path) -> None:
    ours, theirs = read_predictions(path), read_predictions(reference)
    np.testing.assert_array_equal(ours.poses_3d, theirs.poses_3d)
    assert (ours.frame_ids, ours.joint_names, ours.unit, ours.split, ours.method) == (
        theirs.frame_ids, theirs.joint_names, theirs.unit, theirs.split, theirs.method)  # fmt: skip
    assert path.read_bytes() == reference.read_bytes()  # the npz writer is deterministic


@pytest.mark.slow
def test_console_script_refines_as_the_rule(results, tmp_path):
    output = tmp_path / "refined.npz"
    result = subprocess.run([SCRIPT, *_refine_arguments(results, "rgb_seg", output)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "refining 30 test frames (rgb_seg updater" in result.stderr  # the progress lines
    assert result.stdout.startswith(f"{output}: 30 test frames refined by ")
    _same_predictions(output, results / "refined/lifting/rgb_seg/test_poses_3d.npz")


@pytest.mark.slow
def test_pose_only_refines_without_patches_and_patch_updaters_need_them(results, tmp_path):
    result = _run(*_refine_arguments(results, "pose_only", tmp_path / "refined.npz"))
    assert result.exit_code == 0, result.output
    _same_predictions(tmp_path / "refined.npz", results / "refined/lifting/pose_only/test_poses_3d.npz")
    # an updater that reads its patch store is refused without one; the message says what it reads there (the
    # pose + boxes control reads no pixel, only the boxes)
    for variant, reads in (("rgb_seg", "rgb_seg patches"), ("pose_boxes", "the limb boxes of its rgb_seg patch store")):
        arguments = _refine_arguments(results, variant, tmp_path / f"{variant}.npz")
        result = _run(*arguments[: arguments.index("--patches")])
        assert result.exit_code == 1 and not (tmp_path / f"{variant}.npz").exists()
        model = results / f"updater/lifting/{variant}/model.pt"
        expected = f"patchpose: error: {model}: the {variant} updater reads {reads}; give --patches"
        assert result.stderr.startswith(expected)


@pytest.mark.slow
def test_refine_reads_any_container_the_import_accepts(results, tmp_path):
    baseline = read_predictions(results / "baselines/lifting/test_poses_3d.npz")
    order = np.random.default_rng(2).permutation(17)
    converted = tmp_path / "lifting.h5"  # joints in another order with VideoPose3D's names, rows reversed
    write_predictions(converted, baseline.poses_3d[::-1, order], baseline.frame_ids[::-1], split="test",
                      method="lifting", joint_names=[VIDEOPOSE3D_JOINT_NAMES[j] for j in order])  # fmt: skip
    result = _run(*_refine_arguments(results, "rgb_seg", tmp_path / "refined.npz", converted))
    assert result.exit_code == 0, result.output
    _same_predictions(tmp_path / "refined.npz", results / "refined/lifting/rgb_seg/test_poses_3d.npz")
    metres = tmp_path / "lifting.csv"
    write_predictions(metres, baseline.poses_3d / 1000, baseline.frame_ids, split="test", method="lifting", unit="m")
    result = _run(*_refine_arguments(results, "pose_only", tmp_path / "refined.csv", metres), "--method", "mine")
    assert result.exit_code == 0, result.output
    refined = read_predictions(tmp_path / "refined.csv")
    reference = read_predictions(results / "refined/lifting/pose_only/test_poses_3d.npz")
    assert refined.method == "mine" and refined.frame_ids == reference.frame_ids
    np.testing.assert_allclose(refined.poses_3d, reference.poses_3d, atol=0.05)  # the CSV kept 1 micrometre


def _printed_rows(stdout: str, labels) -> dict[str, list[str]]:
    """The printed table's cells (after the action label) of each label."""
    rows = {}
    for line in stdout.splitlines():
        label = next((label for label in labels if re.match(re.escape(label) + r"  +\d", line)), None)
        if label is not None:
            rows[label] = re.findall(r"-?\d+\.\d+|\d+", line[len(label) :])
    assert set(rows) == set(labels), stdout
    return rows


@pytest.mark.slow
def test_evaluate_prints_and_writes_the_rule_numbers(results, tmp_path):
    refined = results / "refined/lifting/rgb_seg"
    store = results / "dataset/test.zarr"
    result = _run("evaluate", "--predictions", refined / "test_poses_3d.npz", "--dataset", store,
                  "--csv", tmp_path / "table.csv")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (tmp_path / "table.csv").read_bytes() == (refined / "mpjpe_per_action.csv").read_bytes()
    with open(refined / "mpjpe_per_action.csv", newline="") as handle:
        table = {row["action"]: [row["frames"], row["mpjpe_mm"], row["pa_mpjpe_mm"]] for row in csv.DictReader(handle)}
    assert len(table) == 17 and _printed_rows(result.stdout, table) == table
    assert "'average (mean of action means)' weighs every action the same" in " ".join(result.stdout.split())


@pytest.mark.slow
def test_evaluate_against_gives_the_rule_interval(results, tmp_path):
    refined = results / "refined/lifting/rgb_seg"

    def against(*options):
        result = _run("evaluate", "--predictions", refined / "test_poses_3d.npz",
                      "--dataset", results / "dataset/test.zarr",
                      "--against", results / "baselines/lifting/test_poses_3d.npz", "--resamples", 200, "--seed", 0,
                      "--improvement-csv", tmp_path / "improvement.csv", *options)  # fmt: skip
        assert result.exit_code == 0, result.output
        return result.stdout

    stdout = against("--stream", "refined/lifting/rgb_seg")  # the rule's stream names (rules/refine.smk)
    assert (tmp_path / "improvement.csv").read_bytes() == (refined / "improvement.csv").read_bytes()
    with open(refined / "improvement.csv", newline="") as handle:
        rows = {row["action"]: row for row in csv.DictReader(handle)}
    printed = _printed_rows(stdout, rows)
    for label, row in rows.items():
        assert printed[label][3:] == [row[key] for key in ("initial_mm", "improvement_mm", "ci_low_mm", "ci_high_mm")]
    average = rows["average (mean of action means)"]
    assert float(average["ci_low_mm"]) < float(average["ci_high_mm"])  # 2 clusters per action: a real interval
    assert "200 resamples of clusters (the views of one pose) drawn within each action" in " ".join(stdout.split())
    mine = printed["average (mean of action means)"]
    other = _printed_rows(against("--stream", "cli"), rows)["average (mean of action means)"]
    assert other[:5] == mine[:5] and other[5:] != mine[5:]  # another stream: the same estimate, another interval
