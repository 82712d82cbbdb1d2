"""Provenance: content digests of inputs, the code digest of a stage, and checkpoints that resume only for
the exact inputs they were trained on."""

from __future__ import annotations

import hashlib
import json
import re
import shutil

import numpy as np
import pytest
import torch
import zarr

from patchpose.atomic import atomic_directory
from patchpose.code_version import PACKAGE_DIR, _data_files, code_digest, module_files
from patchpose.keypoints2d.stage import train_fold
from patchpose.provenance import DIGEST_ATTRIBUTE, content_digest, input_fingerprint, seal_zarr_directory
from patchpose.training import load_torch
from tests.conftest import REPO
from tests.dataset_factory import write_tiny_dataset
from tests.test_training import tiny_keypoints_settings


def _write_zarr(path, values) -> None:
    group = zarr.open_group(path, mode="w", zarr_format=3)
    array = group.create_array("x", shape=np.shape(values), chunks=(1, np.shape(values)[1]), dtype="uint8")
    array[:] = values
    group.attrs["note"] = "test"


def test_file_digest_is_the_sha256_of_its_bytes(tmp_path):
    (tmp_path / "a.npz").write_bytes(b"0123456789")
    assert content_digest(tmp_path / "a.npz") == hashlib.sha256(b"0123456789").hexdigest()


def test_missing_input_is_an_error_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.npz: no such file"):
        content_digest(tmp_path / "nothing.npz")


def test_atomic_directory_seals_a_zarr_store_with_its_content_digest(tmp_path):
    values = np.arange(12, dtype=np.uint8).reshape(4, 3)
    with atomic_directory(tmp_path / "store.zarr") as temporary:
        _write_zarr(temporary, values)
    sealed = json.loads((tmp_path / "store.zarr" / "zarr.json").read_text())["attributes"]
    assert sealed["note"] == "test" and len(sealed[DIGEST_ATTRIBUTE]) == 64
    assert content_digest(tmp_path / "store.zarr") == sealed[DIGEST_ATTRIBUTE]
    assert zarr.open_group(tmp_path / "store.zarr", mode="r")["x"][:].tolist() == values.tolist()
    # the recorded digest is the digest of the content: an unsealed copy hashes to the same value
    shutil.copytree(tmp_path / "store.zarr", tmp_path / "copy.zarr")
    metadata = json.loads((tmp_path / "copy.zarr" / "zarr.json").read_text())
    del metadata["attributes"][DIGEST_ATTRIBUTE]
    (tmp_path / "copy.zarr" / "zarr.json").write_text(json.dumps(metadata))
    assert content_digest(tmp_path / "copy.zarr") == sealed[DIGEST_ATTRIBUTE]


def test_one_changed_chunk_changes_the_digest(tmp_path):
    values = np.zeros((4, 3), np.uint8)
    _write_zarr(tmp_path / "a.zarr", values)
    values[2, 1] = 1
    _write_zarr(tmp_path / "b.zarr", values)
    assert seal_zarr_directory(tmp_path / "a.zarr") != seal_zarr_directory(tmp_path / "b.zarr")


def test_a_directory_that_is_not_zarr_is_hashed_and_left_unchanged(tmp_path):
    with atomic_directory(tmp_path / "plain") as temporary:
        (temporary / "a.txt").write_text("a")
    assert sorted(p.name for p in (tmp_path / "plain").iterdir()) == ["a.txt"]
    first = content_digest(tmp_path / "plain")
    (tmp_path / "plain" / "a.txt").write_text("b")
    assert content_digest(tmp_path / "plain") != first


def test_input_fingerprint_names_each_input(tmp_path):
    (tmp_path / "a").write_bytes(b"a")
    (tmp_path / "b").write_bytes(b"b")
    fingerprint = input_fingerprint({"train": tmp_path / "a", "models": [tmp_path / "a", tmp_path / "b"]})
    assert list(fingerprint) == ["models", "train"]
    assert fingerprint["models"] == [content_digest(tmp_path / "a"), content_digest(tmp_path / "b")]


def test_module_files_follow_the_package_imports_and_nothing_else(tmp_path):
    script = tmp_path / "script.py"
    script.write_text("import numpy\nfrom patchpose.patches import geometry\n")
    files = {path.relative_to(PACKAGE_DIR).as_posix() for path in module_files(script) if path != script}
    assert {"__init__.py", "patches/__init__.py", "patches/geometry.py", "crop_geometry.py"} <= files
    assert not {name for name in files if name.startswith(("keypoints2d/", "segmentation/", "baselines/"))}
    stage = {path.relative_to(PACKAGE_DIR).as_posix() for path in module_files("patchpose.keypoints2d.stage")}
    assert {"keypoints2d/__init__.py", "keypoints2d/hourglass.py", "training.py", "fold_models.py"} <= stage
    assert "patches/geometry.py" not in stage and "baselines/common.py" not in stage


def test_the_rarity_and_figure_scripts_do_not_cover_the_claims_code():
    """Editing how claims or improvements are computed reruns the evaluations and claims, not the test split's
    rarity or the figures (they once imported read_rarity / write_rarity from evaluation.refinement)."""
    for script in ("pose_rarity.py", "plot_rarity_deciles.py", "plot_qualitative.py"):
        paths = module_files(str(REPO / "workflow_scripts" / script))
        files = {path.relative_to(PACKAGE_DIR).as_posix() for path in paths if PACKAGE_DIR in path.parents}
        assert "evaluation/rarity.py" in files or script != "pose_rarity.py"
        assert not files & {"evaluation/refinement.py", "evaluation/claims.py", "evaluation/bootstrap.py"}, script


def test_code_digest_covers_the_package_data_a_module_reads():
    assert [path.name for path in _data_files(module_files("patchpose.camera"))] == ["h36m_cameras.json"]
    assert _data_files(module_files("patchpose.keypoints2d.stage")) == []  # the config schema is not stage code
    assert code_digest("patchpose.camera") != code_digest("patchpose.skeleton")


def test_code_digest_does_not_depend_on_where_the_workflow_lies(tmp_path):
    """A workflow copied elsewhere (here: before and after the package in path order) keeps its digests."""
    source = (REPO / "workflow_scripts/render_synthetic.py").read_text()
    digests = set()
    for place in ("a", "zzz"):
        script = tmp_path / place / "render_synthetic.py"
        script.parent.mkdir()
        script.write_text(source)
        digests.add(code_digest(str(script)))
    assert digests == {code_digest(str(REPO / "workflow_scripts/render_synthetic.py"))}
    edited = tmp_path / "edited" / "render_synthetic.py"  # a new path: code_digest caches per path
    edited.parent.mkdir()
    edited.write_text(source + "\n")
    assert code_digest(str(edited)) not in digests


def test_unknown_code_root_is_an_error():
    with pytest.raises(FileNotFoundError, match="patchpose.no_such_module: neither"):
        module_files("patchpose.no_such_module")


def test_a_file_edited_in_the_same_process_is_parsed_again(tmp_path):
    """Each file's imports are parsed once per process and cached by its text, not by its path alone."""
    script = tmp_path / "script.py"
    script.write_text("from patchpose import skeleton\n")
    before = {path.relative_to(PACKAGE_DIR).as_posix() for path in module_files(script) if path != script}
    script.write_text("from patchpose import skeleton\nfrom patchpose.patches import geometry\n")
    after = {path.relative_to(PACKAGE_DIR).as_posix() for path in module_files(script) if path != script}
    assert "patches/geometry.py" not in before and "patches/geometry.py" in after
    assert before < after


def test_no_stage_runs_the_code_digest_module():
    """The digests' own code lies in no digest: only the workflow imports it, so making it faster reruns nothing.
    Every module the scripts run, the generic scripts' stage modules included, is covered."""
    roots = [str(path) for path in sorted((REPO / "workflow_scripts").glob("*.py"))]
    stages = PACKAGE_DIR.rglob("stage.py")
    roots += [".".join(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts) for path in stages]
    covered = {path for root in roots for path in module_files(root)}
    assert PACKAGE_DIR / "provenance.py" in covered and PACKAGE_DIR / "atomic.py" in covered
    assert PACKAGE_DIR / "code_version.py" not in covered


# --- checkpoints resume only for the inputs they were trained on ---


@pytest.fixture(scope="module")
def tiny_train_store(tmp_path_factory):
    return write_tiny_dataset(tmp_path_factory.mktemp("store") / "train.zarr", num_frames=12, split="train")


def _train(store, directory, provenance, after_epoch=None):
    train_fold(store, 0, 2, tiny_keypoints_settings(), 7, directory / "model.pt", directory / "ckpt.pt", 1,
               after_epoch, provenance=provenance)  # fmt: skip


def test_a_finished_checkpoint_of_the_same_inputs_is_reused_and_of_other_inputs_is_not(tiny_train_store, tmp_path):
    epochs_run = []
    _train(tiny_train_store, tmp_path, {"inputs": {"train": "digest-a"}, "code": "c"})
    first = load_torch(tmp_path / "model.pt")
    assert first["provenance"] == {"inputs": {"train": "digest-a"}, "code": "c"}
    _train(tiny_train_store, tmp_path, {"inputs": {"train": "digest-a"}, "code": "c"}, epochs_run.append)
    assert epochs_run == []  # same inputs: the finished checkpoint is resumed, no epoch runs
    _train(tiny_train_store, tmp_path, {"inputs": {"train": "digest-b"}, "code": "c"}, epochs_run.append)
    assert epochs_run == [0, 1]  # other inputs: trained from scratch
    _train(tiny_train_store, tmp_path, {"inputs": {"train": "digest-b"}, "code": "d"}, epochs_run.append)
    assert epochs_run == [0, 1, 0, 1]  # other code: trained from scratch
    last = load_torch(tmp_path / "model.pt")
    assert last["provenance"]["code"] == "d"
    # the same data and seed give the same weights, whatever the provenance label says
    assert all(torch.equal(first["model"][name], last["model"][name]) for name in first["model"])


def test_every_rule_with_a_script_carries_the_code_param():
    """So that Snakemake reruns a rule when the package code its script runs changes."""
    missing = []
    for path in sorted((REPO / "rules").glob("*.smk")):
        for block in re.split(r"^(?=rule \w+:)", path.read_text(), flags=re.MULTILINE)[1:]:
            name = block.split(":", 1)[0].removeprefix("rule ")
            if "    script:" in block and not re.search(r"^    params:\n(?:        .*\n)*?        code=", block, re.M):
                missing.append(f"{path.name}: {name}")
    assert missing == []
