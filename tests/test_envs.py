"""envs/*.yaml (conda, for users who have it) carry exactly the pins of pyproject.toml; constraints.txt (what
./bootstrap.sh installs) pins every other dependency exactly, within pyproject.toml's ranges."""

from __future__ import annotations

import importlib.metadata
import os
import re
import tomllib

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

from tests.conftest import REPO

TORCH_STACK = re.compile(r"^(torch|torchvision|triton|nvidia-.*|cuda-.*)$")  # pinned by torch's own wheels

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(requirements: list[str]) -> dict[str, str]:
    pins = {}
    for requirement in requirements:
        name, spec = _REQUIREMENT.match(requirement).groups()
        pins[_normalise(name)] = spec.replace(" ", "")
    return pins


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def test_env_pins_match_pyproject():
    project_pins = _pins(_pyproject()["project"]["dependencies"])
    env_files = sorted((REPO / "envs").glob("*.yaml"))
    assert env_files, "envs/ holds no conda environment"
    for env_file in env_files:
        env = yaml.safe_load(env_file.read_text(encoding="utf-8"))
        pip_section = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
        packages = [line for line in pip_section if not line.startswith("-")]
        assert packages, f"{env_file.name} pins nothing"
        for name, spec in _pins(packages).items():
            assert name in project_pins, f"{env_file.name}: {name} is not a dependency in pyproject.toml"
            assert spec == project_pins[name], f"{env_file.name}: {name}{spec} != pyproject {name}{project_pins[name]}"
        assert "-e .." in pip_section, f"{env_file.name} must install the patchpose package itself"
        pythons = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python")]
        assert pythons == ["python=3.11"], f"{env_file.name}: python pin {pythons} != python=3.11"


def test_torch_pins_are_exact():
    pins = _pins(_pyproject()["project"]["dependencies"])
    assert pins["torch"] == "==2.14.1" and pins["torchvision"] == "==0.29.1"
    for name, spec in pins.items():
        assert spec.startswith("==") or ("<" in spec and ">=" in spec), f"{name}{spec} needs lower and upper bounds"


def test_every_rule_conda_env_exists():
    for rule_file in (REPO / "rules").glob("*.smk"):
        for env in re.findall(r'conda:\s*\n\s*"([^"]+)"', rule_file.read_text(encoding="utf-8")):
            assert (rule_file.parent / env).resolve().is_file(), f"{rule_file.name}: conda env {env} missing"


def _lock() -> dict[str, str]:
    """constraints.txt as {normalised name: version}; every line a comment or ``name==version``, each name once."""
    pins = {}
    for number, line in enumerate((REPO / "constraints.txt").read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.+!\-]+)", line)
        assert match, f"constraints.txt:{number}: {line!r} is not name==version"
        name = _normalise(match[1])
        assert name not in pins, f"constraints.txt:{number}: {name} pinned twice"
        pins[name] = match[2]
    return pins


def test_the_lock_pins_every_dependency_within_its_range():
    lock = _lock()
    project = _pyproject()["project"]
    requirements = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]]
    for requirement in requirements:
        name = _normalise(requirement.name)
        if TORCH_STACK.match(name):
            assert name not in lock, f"constraints.txt pins {name}: the torch stack is pinned in pyproject.toml"
            continue
        assert name in lock, f"constraints.txt does not pin {name} (./bootstrap.sh lock rewrites it)"
        assert requirement.specifier.contains(Version(lock[name]), prereleases=True), (
            f"constraints.txt: {name}=={lock[name]} is outside pyproject.toml's {requirement.specifier}"
        )
    stray = sorted(name for name in lock if TORCH_STACK.match(name) or name in ("patchpose", "pip", "setuptools"))
    assert not stray, f"constraints.txt must not pin {stray}"
    lines = [line for line in (REPO / "constraints.txt").read_text().splitlines() if line and line[0] != "#"]
    assert lines == sorted(lines, key=str.upper), "constraints.txt is not sorted as `LC_ALL=C sort -f` sorts"


def test_the_installed_packages_are_the_locked_ones():
    """What ./bootstrap.sh installed is what constraints.txt says (CI installs that way; elsewhere a venv
    made by hand may differ, and this test only says so)."""
    lock = _lock()
    installed = {_normalise(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()}
    differ = sorted(f"{name} {installed[name]} (locked {version})" for name, version in lock.items()
                    if name in installed and installed[name] != version)  # fmt: skip
    missing = sorted(name for name in lock if name not in installed)
    if (differ or missing) and os.environ.get("CI") != "true":
        pytest.skip(f"this environment is not the locked one: {differ + missing}")
    assert not differ and not missing, f"installed packages differ from constraints.txt: {differ}, missing {missing}"


def test_bootstrap_installs_with_the_lock():
    script = (REPO / "bootstrap.sh").read_text(encoding="utf-8")
    assert "LOCK=constraints.txt" in script and 'install_into "$VENV" --constraint "$LOCK"' in script
    assert 'cat pyproject.toml "$LOCK" | sha256sum' in script  # a new lock reinstalls
    torch = re.search(r"TORCH=\(([^)]*)\)", script)[1].replace('"', "").split()
    assert torch == [r for r in _pyproject()["project"]["dependencies"] if r.startswith("torch")]
