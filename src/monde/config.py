"""Typed configuration: dataclasses, dotted overrides, and (de)serialisation.

A run's whole configuration is a tree of dataclasses (one per component) whose defaults live
in exactly one place: the dataclass. Recipes are functions that return such a tree; the
command line changes it with dotted ``key=value`` overrides (``model.depth=4``). Values are
parsed as YAML scalars and checked against the field's annotated type, so a typo or a wrong
type is a :class:`~monde.errors.ConfigError` that names the key and lists what exists.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, TypeVar

import yaml

from monde.errors import ConfigError

T = TypeVar("T")


def to_dict(cfg: Any) -> Any:
    """Turn a dataclass tree into plain JSON-able dicts/lists (tuples become lists)."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: to_dict(v) for k, v in cfg.items()}
    return cfg


def from_dict(cls: type[T], data: dict[str, Any], *, where: str = "") -> T:
    """Build dataclass ``cls`` from a dict made by :func:`to_dict`, checking keys and types."""
    if not isinstance(data, dict):
        raise ConfigError(f"config section '{where or cls.__name__}' must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(_unknown_key_message(f"{where}.{key}".lstrip("."), sorted(names)))
    kwargs = {}
    for name, value in data.items():
        path = f"{where}.{name}".lstrip(".")
        kwargs[name] = _coerce(value, hints[name], path)
    return cls(**kwargs)


def apply_overrides(cfg: T, overrides: list[str]) -> T:
    """Return a copy of ``cfg`` with ``key.sub=value`` overrides applied.

    ``apply_overrides(run_cfg, ["optim.lr=3e-4", "train.steps=20"])`` returns a new tree; the
    input is not modified. Values are YAML scalars: ``3e-4``, ``true``, ``[8, 8]``, ``null``.
    """
    data = to_dict(cfg)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(
                f"override '{item}' is not of the form key=value (for example train.steps=200)"
            )
        key, raw = item.split("=", 1)
        key = key.strip()
        node, parts = data, key.split(".")
        cls_node: Any = cfg
        for i, part in enumerate(parts):
            fields = _field_names(cls_node)
            if part not in fields:
                prefix = ".".join(parts[:i])
                options = [f"{prefix}.{f}".lstrip(".") for f in fields]
                raise ConfigError(_unknown_key_message(key, options))
            if i == len(parts) - 1:
                node[part] = _parse_scalar(raw)
            else:
                node, cls_node = node[part], getattr(cls_node, part)
                if not isinstance(node, dict):
                    raise ConfigError(f"'{'.'.join(parts[: i + 1])}' is a value, not a section")
    return from_dict(type(cfg), data)


def _field_names(obj: Any) -> list[str]:
    if dataclasses.is_dataclass(obj):
        return [f.name for f in dataclasses.fields(obj)]
    return []


def _unknown_key_message(key: str, options: list[str]) -> str:
    close = difflib.get_close_matches(key, options, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    listing = ", ".join(options) if len(options) <= 30 else ", ".join(options[:30]) + ", …"
    return f"unknown config key '{key}'.{hint} Valid keys here: {listing}"


def _parse_scalar(raw: str) -> Any:
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        return raw
    if isinstance(value, str):
        # YAML 1.1 reads "3e-4" (no dot) as a string; users mean a number.
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _coerce(value: Any, hint: Any, path: str) -> Any:
    """Check ``value`` against the annotation ``hint``; convert lists to tuples and ints to floats."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, path)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"'{path}' got {value!r}, which is not a {_type_name(hint)}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"'{path}' must be one of {', '.join(map(repr, args))}; got {value!r}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"'{path}' must be a list like [1, 2]; got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"'{path}' needs {len(args)} values; got {value!r}")
            return tuple(_coerce(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        seq = [_coerce(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(seq) if origin is tuple else seq
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where=path)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"'{path}' must be a number; got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"'{path}' must be an integer; got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"'{path}' must be true or false; got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"'{path}' must be a string; got {value!r}")
        return value
    if hint is dict or origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"'{path}' must be a mapping; got {value!r}")
        return value
    return value


def _type_name(hint: Any) -> str:
    return str(hint).replace("typing.", "")
