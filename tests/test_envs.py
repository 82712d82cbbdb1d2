"""envs/*.yaml (conda, for users who have it) carry exactly the pins of pyproject.toml."""

from __future__ import annotations

import re
import tomllib

import yaml

from tests.conftest import REPO

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
