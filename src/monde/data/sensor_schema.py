"""The schema of a sensor table: which columns are time, unit, sensors and actions.

Written by hand as YAML (``load_schema``), given on the command line as comma-separated
lists (``schema_from_args``), and saved with a trained model (``to_dict``) so that the same
columns are read again at inference time.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from monde.config import from_dict as _config_from_dict
from monde.errors import ConfigError


@dataclass
class SensorSchema:
    """Which columns of a sensor file mean what."""

    time: str | None = None
    """Time column (numbers, or datetime strings); rows are sorted by it within each unit."""
    sensors: list[str] = field(default_factory=list)
    """Sensor columns, by name or fnmatch pattern (``"XMEAS_*"``); empty = every column that is
    not the time, unit or an action column."""
    actions: list[str] = field(default_factory=list)
    """Control-input columns (setpoints, valves, manipulated variables), names or patterns."""
    unit: str | None = None
    """Run/unit column (a fleet of engines, batches): rows are grouped by it, in file order."""
    sep: str | None = None
    """Field separator; None = ``,`` for .csv, a tab for .tsv, any whitespace for .txt/.dat."""
    names: list[str] = field(default_factory=list)
    """Column names for a file without a header row (then its first row is data)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SensorSchema:
        """Build from a mapping; ``sensors: "a,b,c*"`` strings are split on commas."""
        if not isinstance(d, dict):
            raise ConfigError(f"a sensor schema must be a mapping of {_field_list()}; got {d!r}")
        d = {k: _split(v) if k in ("sensors", "actions", "names") and isinstance(v, str) else v
             for k, v in d.items()}
        return _config_from_dict(cls, d, where="")


def _field_list() -> str:
    return ", ".join(f.name for f in dataclasses.fields(SensorSchema))


def _split(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def load_schema(path: Path | str) -> SensorSchema:
    """Read a :class:`SensorSchema` from a YAML file (keys: the schema's fields)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"schema file {p} does not exist; write a YAML file with keys "
                          f"{_field_list()} (for example `time: t` and `sensors: [XMEAS_*]`)")
    try:
        data = yaml.safe_load(p.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"schema file {p} is not valid YAML ({e}); fix it") from e
    try:
        return SensorSchema.from_dict(data or {})
    except ConfigError as e:
        raise ConfigError(f"schema file {p}: {e}") from e


def schema_from_args(time: str | None = None, sensors: str | None = None,
                     actions: str | None = None, unit: str | None = None,
                     schema_file: Path | str | None = None) -> SensorSchema:
    """The command-line form: comma-separated lists (``sensors="s1,s2,XMEAS_*"``).

    Arguments that are given override the same fields of ``schema_file``.
    """
    schema = load_schema(schema_file) if schema_file is not None else SensorSchema()
    if time is not None:
        schema.time = time
    if unit is not None:
        schema.unit = unit
    if sensors is not None:
        schema.sensors = _split(sensors)
    if actions is not None:
        schema.actions = _split(actions)
    return schema
