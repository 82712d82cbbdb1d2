"""The config contract: load ``config.yaml`` and validate it against the shipped JSON schema.

The schema (``patchpose/data/config.schema.json``) is the single source of
truth for every key: its meaning, unit, bounds and allowed values. A wrong key
or value raises ``ConfigError`` with a one-line message that names the key
(dotted path) and what is allowed. Defaults written in the schema are filled
in, so a stage never guesses.
"""

from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from patchpose.updater.variants import updater_sources

__all__ = ["ConfigError", "load_schema", "validate_config", "load_config", "merge_config"]


class ConfigError(ValueError):
    """A config key or value that the schema does not allow. The message is one line."""


def load_schema() -> dict[str, Any]:
    """The JSON schema shipped inside the package."""
    text = resources.files("patchpose").joinpath("data/config.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def _key_path(path) -> str:
    parts = [str(p) for p in path]
    return ".".join(parts) if parts else "<top level>"


def _allowed_keys(schema: dict[str, Any]) -> str:
    return ", ".join(sorted(schema.get("properties", {}))) or "none"


def _describe(error: jsonschema.ValidationError) -> str:
    """One line naming the key and what is allowed."""
    key = _key_path(error.absolute_path)
    schema, value = error.schema, error.instance
    if error.validator == "additionalProperties":
        extra = sorted(set(value) - set(schema.get("properties", {})))
        where = key if error.absolute_path else "the top level"
        unknown = ", ".join(f"{key}.{k}" if error.absolute_path else k for k in extra)
        return f"unknown config key {unknown}; allowed keys at {where}: {_allowed_keys(schema)}"
    if error.validator == "required":
        return f"config key {key} is missing a required key: {error.message}"
    prefix = f"config key {key} = {value!r}"
    if "propertyNames" in error.schema_path:
        if "enum" not in schema:  # a name pattern (e.g. baselines.<name>)
            return f"config key {key}.{value} has an invalid name: it must match {schema.get('pattern', '?')}"
        return f"unknown config key {key}.{value}; allowed keys at {key}: {', '.join(map(str, schema['enum']))}"
    if error.validator == "enum":
        return f"{prefix} is not allowed; allowed values: {', '.join(map(str, schema['enum']))}"
    if error.validator == "type":
        return f"{prefix} has the wrong type: expected {error.validator_value}"
    if error.validator in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        bounds = []
        for name, symbol in (
            ("minimum", ">="),
            ("exclusiveMinimum", ">"),
            ("maximum", "<="),
            ("exclusiveMaximum", "<"),
        ):
            if name in schema:
                bounds.append(f"{symbol} {schema[name]}")
        return f"{prefix} is out of range: must be {' and '.join(bounds)}"
    if error.validator in ("minItems", "maxItems", "uniqueItems", "minLength", "pattern", "propertyNames"):
        return f"{prefix} is not allowed: {error.message}"
    return f"{prefix} is not allowed: {error.message}"


def _fill_defaults(instance: Any, schema: dict[str, Any]) -> None:
    """Insert schema ``default`` values for missing object keys, recursively."""
    if not isinstance(instance, dict):
        return
    for key, sub in schema.get("properties", {}).items():
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if key in instance:
            _fill_defaults(instance[key], sub)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key, value in instance.items():
            if key not in schema.get("properties", {}):
                _fill_defaults(value, extra)
    for branch in schema.get("allOf", ()):  # if/then blocks, e.g. per-kind settings of a baseline
        if "then" in branch and jsonschema.Draft202012Validator(branch.get("if", {})).is_valid(instance):
            _fill_defaults(instance, branch["then"])


def validate_config(config: dict[str, Any], schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return a validated copy of ``config`` with schema defaults filled in.

    Raises ``ConfigError`` (one line, naming the key) on the first problem found.
    """
    if not isinstance(config, dict):
        raise ConfigError(f"the config must be a mapping of keys, got {type(config).__name__}")
    schema = load_schema() if schema is None else schema
    validated = copy.deepcopy(config)
    _fill_defaults(validated, schema)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(validated), key=lambda e: (len(e.absolute_path), list(map(str, e.path))))
    if errors:
        raise ConfigError(_describe(errors[0]))
    _check_relations(validated)
    return validated


def _check_relations(config: dict[str, Any]) -> None:
    """Constraints between keys that a JSON schema cannot express."""
    dataset = config["dataset"]
    for block in ("synthetic", "h36m"):
        source = dataset.get(block, {})
        overlap = sorted(set(source.get("train_subjects", ())) & set(source.get("test_subjects", ())))
        if overlap:
            raise ConfigError(
                f"config keys dataset.{block}.train_subjects and test_subjects share {', '.join(overlap)}; "
                "a subject belongs to one split"
            )
    rare_total = sum(dataset.get("synthetic", {}).get("rare_actions", {}).values())
    if rare_total >= 1:
        raise ConfigError(
            f"config key dataset.synthetic.rare_actions sums to {rare_total:g}; the rare fractions must sum to < 1 "
            "so the other actions keep some training poses"
        )
    training_subjects = dataset.get(dataset["kind"], {}).get("train_subjects", [])
    held = config.get("updater", {}).get("training", {}).get("validation_subjects", [])
    if held and (set(held) - set(training_subjects) or set(held) >= set(training_subjects)):
        raise ConfigError(
            f"config key updater.training.validation_subjects {held}: must be some, not all, of "
            f"dataset.{dataset['kind']}.train_subjects {training_subjects} (or [] for held-out poses)"
        )
    try:  # baselines.<name>.updater: own needs a training split, from: a baseline that trains its own, ...
        updater_sources(config.get("baselines", {}))
    except ValueError as error:
        raise ConfigError(str(error)) from None
    if dataset["kind"] == "h36m" and not dataset.get("h36m", {}).get("root"):
        raise ConfigError(
            "config key dataset.h36m.root is required when dataset.kind is 'h36m': the directory holding the "
            "unpacked Human3.6M release (docs/h36m.md)"
        )


def merge_config(base: dict[str, Any], update: dict[str, Any]) -> None:
    """Put ``update`` over ``base`` in place, as Snakemake merges a ``--configfile``: mappings key by key,
    anything else replaced."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge_config(base[key], value)
        else:
            base[key] = value


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file and validate it; errors name the file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    try:
        return validate_config(raw if raw is not None else {})
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
