"""End to end on the tiny config: the tables, figures and the Snakemake report of one real run; the LaTeX compiles,
the report opens in headless Chromium and shows the tables; reruns follow exactly what changed (issue 15)."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from patchpose.config import merge_config
from patchpose.dataset_format import open_dataset
from patchpose.poses3d import write_predictions
from patchpose.tables.layout import ACTION_COLUMNS, PAPER_ACTIONS
from patchpose.tables.numbers import read_tidy
from tests.conftest import HANG_LIMIT, REPO, skip_outside_ci, write_config
from tests.test_tables import compile_latex
from tests.tiny_pipeline import copy_finished_run, planned_jobs

pytestmark = pytest.mark.slow

RESULTS = "results/synthetic"
TABLES = ("table1", "table2", "table3", "extended")
FIGURES = (
    "per_action.png",
    "rarity_deciles.png",
    "qualitative/lifting/rgb_seg.png",
    "qualitative/integral3d/rgb_seg.png",
)
PAIRS = 8  # lifting and integral3d with rgb_seg (Table 1), lifting with the 6 other variants
DOWNSTREAM = {"make_table": 4, "plot_per_action": 1, "plot_rarity_deciles": 1, "plot_qualitative": 2, "all": 1}


def _snakemake(directory: Path, *args: str) -> subprocess.CompletedProcess:
    """Snakemake in ``directory`` with the directory's own copy of the package first on the path, so that the code
    digests are those of the copy (a code edit is made there) and the run is a snapshot of the code."""
    env = {**os.environ, "PYTHONPATH": f"{directory}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    result = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", *args], cwd=directory,
                            capture_output=True, text=True, timeout=HANG_LIMIT, env=env)  # fmt: skip
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    return result


@pytest.fixture(scope="module")
def finished(tiny_run, tmp_path_factory):
    """A copy of the finished tiny run (tiny updaters, 200 bootstrap resamples), with report/ and the package (whose
    code digests are the installed package's that the run had, so there is nothing to do)."""
    directory = copy_finished_run(tiny_run, tmp_path_factory.mktemp("report"))
    shutil.copytree(REPO / "report", directory / "report")
    shutil.copytree(REPO / "patchpose", directory / "patchpose", ignore=shutil.ignore_patterns("__pycache__"))
    assert "Nothing to be done" in _snakemake(directory, "-n").stdout
    return directory


def _changed(directory: Path, changes: dict) -> dict:
    """The run's config (as the fixture wrote it: the snapshot's) with ``changes`` merged in."""
    config = yaml.safe_load((directory / "config.yaml").read_text(encoding="utf-8"))
    merge_config(config, changes)
    return config


def _dry_run(directory: Path, config: dict | None = None) -> dict[str, int]:
    args = ["-n"]
    if config is not None:
        write_config(directory, config, name="changed.yaml")
        args += ["--configfile", "changed.yaml"]
    return planned_jobs(_snakemake(directory, *args))


# --- what the run wrote ---


def test_the_tables_hold_the_evaluated_numbers(finished):
    results = finished / RESULTS
    table1 = read_tidy(results / "tables/table1.csv").set_index(["method", "modality", "action"])
    for baseline in ("lifting", "integral3d", "mean_pose"):
        with open(results / f"baselines/{baseline}/mpjpe_per_action.csv") as handle:
            rows = {line.split(",")[0]: line.split(",") for line in handle.read().splitlines()[1:]}
        for paper, action in PAPER_ACTIONS.items():
            assert table1.loc[(baseline, "initial", paper), "mpjpe_mm"] == pytest.approx(
                float(rows[action][2]), abs=1e-3
            )
        average = float(rows["average (mean of action means)"][2])
        assert table1.loc[(baseline, "initial", "Avg"), "mpjpe_mm"] == pytest.approx(average, abs=1e-3)
    with open(results / "refined/lifting/rgb_seg/improvement.csv") as handle:
        rows = {line.split(",")[0]: line.split(",") for line in handle.read().splitlines()[1:]}
    refined = float(rows["average (mean of action means)"][3])
    assert table1.loc[("lifting", "rgb_seg", "Avg"), "mpjpe_mm"] == pytest.approx(refined, abs=1e-3)
    assert ("mean_pose", "rgb_seg", "Avg") not in table1.index  # the reference is not refined
    extended = read_tidy(results / "tables/extended.csv")
    assert set(zip(extended["method"], extended["modality"], strict=True)) >= {
        ("lifting", "pose_only"), ("lifting", "pose_boxes"), ("lifting", "rgb_seg_conditioned"),
        ("mean_pose", "initial")}  # fmt: skip
    improvement = extended.set_index(["method", "modality", "action"]).loc[("lifting", "rgb_seg", "Avg")]
    assert improvement["improvement_mm"] == pytest.approx(float(rows["average (mean of action means)"][4]), abs=1e-3)
    for name in FIGURES:
        with Image.open(results / "figures" / name) as image:
            assert image.format == "PNG" and min(image.size) > 200


def test_the_run_latex_compiles_in_a_plain_article(finished, tmp_path):
    for table in TABLES:
        shutil.copy(finished / RESULTS / f"tables/{table}.tex", tmp_path)
    result = compile_latex(tmp_path, [f"{table}.tex" for table in TABLES])
    assert "Overfull \\hbox" not in result.stdout


# --- reruns ---


def test_no_change_schedules_nothing(finished):
    assert _dry_run(finished) == {}


def test_updater_learning_rate_reruns_the_updaters_and_what_follows_only(finished):
    jobs = _dry_run(finished, _changed(finished, {"updater": {"training": {"learning_rate": 0.002}}}))
    updaters = {"train_updater": PAIRS, "refine_with_updater": PAIRS, "evaluate_refined": PAIRS, "write_claims": 1}
    assert jobs == updaters | DOWNSTREAM


def test_patch_scale_reruns_the_patches_and_everything_after_nothing_before(finished):
    jobs = _dry_run(finished, _changed(finished, {"patches": {"scale": 2.0}}))
    assert jobs.pop("cut_limb_patches") == 2 and jobs.pop("patches_contact_sheet") == 2
    # the uncropped frame and the pose-only control use no limb patch store (pose_boxes reads its boxes)
    limb_patch_updaters = PAIRS - 2
    assert jobs.pop("train_updater") == limb_patch_updaters and jobs.pop("refine_with_updater") == limb_patch_updaters
    assert jobs.pop("evaluate_refined") == limb_patch_updaters and jobs.pop("write_claims") == 1
    assert jobs == DOWNSTREAM


def test_a_new_external_baseline_schedules_its_jobs_and_the_tables(finished):
    store = open_dataset(finished / RESULTS / "dataset/test.zarr")
    truth = store.joints_3d - store.joints_3d[:, :1]
    noisy = truth + np.random.default_rng(1).normal(0, 40, truth.shape)
    (finished / "external").mkdir(exist_ok=True)
    write_predictions(finished / "external/noisy.npz", noisy, store.frame_ids(), split="test", method="noisy")
    noisy_baseline = {"kind": "external", "file": "external/noisy.npz"}  # test split only: unrefined
    config = _changed(finished, {"baselines": {"noisy": noisy_baseline}})
    jobs = _dry_run(finished, config)
    # its import and evaluation; Table 1 and the extended table gain its column, the bars follow Table 1
    assert jobs == {"import_external_baseline": 1, "baseline_info": 1, "evaluate_baseline": 1, "make_table": 2,
                    "plot_per_action": 1, "all": 1}  # fmt: skip


def _edited(path: Path):
    original = path.read_text()
    path.write_text(original + "\n# edited by a test\n")
    return original


def test_editing_a_figure_script_reruns_that_figure_only(finished):
    script = finished / "workflow_scripts/plot_rarity_deciles.py"
    original = _edited(script)
    try:
        assert _dry_run(finished) == {"plot_rarity_deciles": 1, "all": 1}
    finally:
        script.write_text(original)


def test_editing_the_figures_module_reruns_the_figures_not_the_tables_or_training(finished):
    module = finished / "patchpose/tables/figures.py"
    original = _edited(module)
    try:
        jobs = _dry_run(finished)
    finally:
        module.write_text(original)
    assert jobs == {"plot_per_action": 1, "plot_rarity_deciles": 1, "plot_qualitative": 2, "all": 1}


# --- the report: offline, in a real browser ---


@pytest.fixture(scope="module")
def report(finished):
    """``snakemake --report report.html`` of the run, without a network where ``unshare -n`` can take it away."""
    offline = shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0
    command = [sys.executable, "-m", "snakemake", "--report", "report.html"]
    env = {**os.environ, "PYTHONPATH": f"{finished}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    result = subprocess.run((["unshare", "-n"] if offline else []) + command, cwd=finished, capture_output=True,
                            text=True, timeout=HANG_LIMIT, env=env)  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return {"path": finished / "report.html", "offline": bool(offline)}


def test_the_report_is_built_without_a_network(report):
    if not report["offline"]:
        pytest.skip("unshare -n is not permitted here, so the report was built with the network available")
    assert report["path"].stat().st_size > 100_000


class Browser:
    """Headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: messages are
    JSON ended by NUL on the child's fds 3 and 4), with the standard library only."""

    def __init__(self, binary: str, timeout: float = 60):
        self.timeout, self._buffer, self._next, self.events = timeout, b"", 0, []
        to_chrome, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome = os.pipe()
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_chrome, from_chrome)]  # clear of fds 3 and 4
        os.close(to_chrome), os.close(from_chrome)
        self._profile = tempfile.mkdtemp(prefix="chromium-profile-")
        args = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--remote-debugging-pipe",
                f"--user-data-dir={self._profile}", "--window-size=1400,1000", "about:blank"]  # fmt: skip
        script = f'exec "$0" "$@" 3<&{high[0]} 4>&{high[1]} {high[0]}<&- {high[1]}>&-'
        self.process = subprocess.Popen(["bash", "-c", script, *args], pass_fds=high, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)  # fmt: skip
        os.close(high[0]), os.close(high[1])

    def _message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._from_chrome], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed its DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, session: str | None = None, **params) -> dict:
        self._next += 1
        message = {"id": self._next, "method": method, "params": params, **({"sessionId": session} if session else {})}
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            answer = self._message(deadline)
            if answer.get("id") == self._next:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer["result"]
            self.events.append(answer)

    def wait_for(self, method: str) -> dict:
        deadline = time.monotonic() + self.timeout
        while True:
            for number, event in enumerate(self.events):
                if event.get("method") == method:
                    return self.events.pop(number)
            self.events.append(self._message(deadline))

    def close(self) -> None:
        try:
            self.send("Browser.close")
            self.process.wait(timeout=20)
        except Exception:
            self.process.kill()
            self.process.wait(timeout=20)
        os.close(self._to_chrome), os.close(self._from_chrome)
        shutil.rmtree(self._profile, ignore_errors=True)


class Page:
    """One tab of ``Browser`` showing ``url``; ``run`` evaluates JavaScript (in a child frame if given)."""

    def __init__(self, browser: Browser, url: str):
        self.browser = browser
        target = browser.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = browser.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        browser.send("Page.enable", self.session)
        browser.send("Page.navigate", self.session, url=url)
        browser.wait_for("Page.loadEventFired")

    def run(self, expression: str, frame: str | None = None):
        options = {}
        if frame is not None:
            world = self.browser.send("Page.createIsolatedWorld", self.session, frameId=frame)
            options["contextId"] = world["executionContextId"]
        result = self.browser.send("Runtime.evaluate", self.session, expression=expression, returnByValue=True,
                                   awaitPromise=True, **options)  # fmt: skip
        return result["result"].get("value")

    def until(self, expression: str, frame: str | None = None, seconds: float = 20):
        """The first truthy value of ``expression``, polled (the report is a React app that renders late)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            value = self.run(expression, frame)
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"never true in the page: {expression}")

    def click_menu(self, text: str) -> None:
        """Click the visible navigation entry reading ``text`` (the innermost, the last one shown)."""
        self.until(
            "(() => { const el = [...document.querySelectorAll('nav *')].reverse().find(e => "
            f"e.textContent.trim() === {json.dumps(text)} && e.offsetParent !== null); "
            "if (!el) return false; el.click(); return true; })()"
        )

    def click_result(self, label: str, button: int = 0) -> None:
        """Click the ``button``-th icon (0: view, 1: info) of the result row labelled ``label``."""
        self.until(
            "(() => { const row = [...document.querySelectorAll('nav tr')].find(r => [...r.cells].some(c => "
            f"c.textContent.trim() === {json.dumps(label)})); if (!row) return false; "
            f"const buttons = row.querySelectorAll('a'); if (buttons.length <= {button}) return false; "
            f"buttons[{button}].click(); return true; }})()"
        )

    def child_frame(self) -> str:
        deadline = time.monotonic() + self.browser.timeout
        while time.monotonic() < deadline:
            tree = self.browser.send("Page.getFrameTree", self.session)["frameTree"]
            if tree.get("childFrames"):
                return tree["childFrames"][0]["frame"]["id"]
            time.sleep(0.2)
        raise AssertionError("the report shows no framed result")


_TABLE_DOM = """(() => { const table = document.querySelector('table');
  if (!table || !table.tBodies.length) return null;
  const rows = [...table.tBodies[0].rows].map(row => [...row.cells].map(cell => ({
    text: cell.textContent.trim(), bold: Number(getComputedStyle(cell).fontWeight) >= 600,
    width: cell.getBoundingClientRect().width})));
  return {tables: document.querySelectorAll('table').length, rows: rows,
          head: [...table.tHead.rows].map(row => [...row.cells].map(cell => cell.textContent.trim())),
          caption: table.caption ? table.caption.textContent : ''}; })()"""


def test_the_report_shows_the_tables_in_a_browser(report, finished):
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        skip_outside_ci("chromium is not installed (.ci/run installs Debian's chromium)")
    browser = Browser(binary)
    try:
        page = Page(browser, report["path"].as_uri())
        page.click_menu("Tables")
        page.click_menu("Tables")  # the subcategory of the HTML pages
        page.click_result("table1")
        frame = page.child_frame()
        table = page.until(_TABLE_DOM, frame)
        # the page lays Table 1 out: every action row, every cell drawn, the pairs' better halves in bold
        assert [row[0]["text"] for row in table["rows"]] == list(ACTION_COLUMNS)
        assert table["head"][0][1:] == ["lifting", "integral3d", "mean_pose"]
        assert all(cell["width"] > 0 for row in table["rows"] for cell in row)
        tidy = read_tidy(finished / RESULTS / "tables/table1.csv").set_index(["method", "modality", "action"])
        shown = [[float(cell["text"]) for cell in row[1:]] for row in table["rows"]]
        columns = [("lifting", "initial"), ("lifting", "rgb_seg"), ("integral3d", "initial"),
                   ("integral3d", "rgb_seg"), ("mean_pose", "initial")]  # fmt: skip
        expected = [
            [round(tidy.loc[(*column, action), "mpjpe_mm"], 1) for column in columns] for action in ACTION_COLUMNS
        ]
        assert np.allclose(shown, expected, atol=0.051)
        for row in table["rows"]:
            for first, second in ((1, 2), (3, 4)):  # each pair has its lower printed value in bold
                pair = (row[first], row[second])
                best = min(float(cell["text"]) for cell in pair)
                assert [cell["bold"] for cell in pair] == [float(cell["text"]) == best for cell in pair], row[0]
            assert not row[5]["bold"]  # the reference is compared with nothing
        assert "mean of the 15 action means" in table["caption"] and table["tables"] == 2  # ours, the paper's gains
        # the caption beside it states the config values behind the table
        page.click_result("table1", button=1)
        info = page.until("(() => { const t = document.querySelector('nav').innerText; "
                          "return t.includes('bootstrap') ? t : false; })()")  # fmt: skip
        assert "200 resamples" in info and "updater.model.architecture limb_encoder" in info
        assert "predicts orientation" in info and "conditioning_dropout 0.75" in info
        assert "updater.model.limb_encoder: widths" in info and "pooled_side" in info  # the network's own block
        # a figure renders as an image
        page.click_menu("Results")
        page.click_menu("Figures")
        page.click_result("per action, initial vs refined")
        image = "[...document.querySelectorAll('img')].find(i => i.src.includes('per_action.png'))"
        width = page.until(f"(() => {{ const i = {image}; return i && i.complete ? i.naturalWidth : 0; }})()")
        assert width > 200
        shot = browser.send("Page.captureScreenshot", page.session, format="png")
        (finished / "report_screenshot.png").write_bytes(base64.b64decode(shot["data"]))
    finally:
        browser.close()
