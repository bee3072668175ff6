"""A plant's sensor history: CSV / Parquet tables read with a declared schema.

:func:`read_table` reads the columns a :class:`~monde.data.sensor_schema.SensorSchema` names
into a :class:`SensorTable` of float32 arrays with ``NaN`` for missing readings (never
zero-filled: a model must know what it did not see). pandas is imported only when a file is
read (``pip install "monde[sensors]"``), so ``import monde`` does not need it.
"""

from __future__ import annotations

import difflib
import fnmatch
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monde.data.normalizer import Normalizer
from monde.data.sensor_schema import SensorSchema, load_schema, schema_from_args
from monde.errors import ConfigError, DataError

__all__ = [
    "PARQUET_SUFFIXES", "TEXT_SUFFIXES", "Normalizer", "SensorSchema", "SensorTable",
    "load_schema", "read_table", "schema_from_args",
]

TEXT_SUFFIXES = (".csv", ".tsv", ".txt", ".dat")
PARQUET_SUFFIXES = (".parquet", ".pq")
_MISSING_TOKENS = {"", "nan", "na", "n/a", "null", "none"}  # strings that mean "no reading"


@dataclass
class SensorTable:
    """A sensor history, rows grouped by unit and sorted by time within each unit."""

    values: np.ndarray
    """float32 [T, C] sensor readings, NaN where missing."""
    actions: np.ndarray
    """float32 [T, A] control inputs (A may be 0), NaN where missing."""
    sensor_names: list[str]
    """The C sensor column names, in the order of ``values``' columns."""
    action_names: list[str]
    """The A action column names."""
    time: np.ndarray | None
    """float64 [T] time stamps (datetimes as seconds since the epoch, UTC), or None."""
    units: np.ndarray | None
    """[T] run/unit id of each row, as str, or None when the file has no unit column."""
    source: str
    """The path the table was read from (for messages)."""

    @property
    def observed(self) -> np.ndarray:
        """bool [T, C]: True where a reading exists."""
        return np.isfinite(self.values)

    def runs(self) -> list[tuple[str, slice]]:
        """Contiguous row ranges, one per unit in order of first appearance.

        ``[("all", slice(0, T))]`` when there is no unit column.
        """
        if self.units is None:
            return [("all", slice(0, len(self)))]
        u = np.asarray(self.units)
        cuts = [0, *(np.flatnonzero(u[1:] != u[:-1]) + 1).tolist(), len(u)]
        return [(str(u[a]), slice(a, b)) for a, b in zip(cuts[:-1], cuts[1:])]

    def __len__(self) -> int:
        return int(self.values.shape[0])


def _pandas():
    try:
        import pandas as pd
    except ImportError as e:
        raise ConfigError('reading sensor files needs pandas: pip install "monde[sensors]"') from e
    return pd


def read_table(path: Path | str, schema: SensorSchema, *,
               expect_sensors: list[str] | None = None,
               expect_actions: list[str] | None = None) -> SensorTable:
    """Read a CSV/TSV/whitespace text or Parquet file into a :class:`SensorTable`.

    ``expect_sensors`` / ``expect_actions`` are the channels a trained model was fit on: the
    file must hold them all, and the table's columns come back in that order (other columns of
    the file are ignored); they replace ``schema.sensors`` / ``schema.actions``.
    """
    p = Path(path)
    df = _read_frame(p, schema)
    cols = list(df.columns)
    for role, name in (("time", schema.time), ("unit", schema.unit)):
        if name is not None and name not in cols:
            raise DataError(_missing_message(p, name, cols, f"schema.{role}"))
    reserved = {c for c in (schema.time, schema.unit) if c is not None}
    if expect_actions is not None:
        action_names = _expected(p, list(expect_actions), cols, "action")
    else:
        action_names = _resolve(p, schema.actions, cols, reserved, "schema.actions")
    if expect_sensors is not None:
        sensor_names = _expected(p, list(expect_sensors), cols, "sensor")
    elif schema.sensors:
        sensor_names = _resolve(p, schema.sensors, cols, reserved | set(action_names),
                                "schema.sensors")
    else:
        sensor_names = [c for c in cols if c not in reserved and c not in action_names]
    both = sorted(set(sensor_names) & set(action_names))
    if both:
        raise ConfigError(f"column(s) {', '.join(both)} of {p} are named both as sensors and as "
                          "actions; list each column in one role only")
    if not sensor_names:
        raise DataError(f"{p} has no sensor columns (columns: {_show(cols)}); name them "
                        "with schema.sensors (--sensors)")
    values = _numeric_block(df, sensor_names, p)
    actions = _numeric_block(df, action_names, p)
    time = _time_column(df[schema.time], schema.time, p) if schema.time is not None else None
    units = df[schema.unit].astype(str).to_numpy() if schema.unit is not None else None
    order = _row_order(time, units, pd=_pandas())
    if order is not None:
        values, actions = values[order], actions[order]
        time = time[order] if time is not None else None
        units = units[order] if units is not None else None
    return SensorTable(values, actions, sensor_names, action_names, time, units, str(p))


def _read_frame(p: Path, schema: SensorSchema):
    suffix = p.suffix.lower()
    if suffix not in TEXT_SUFFIXES + PARQUET_SUFFIXES:
        raise DataError(f"cannot read {p}: the suffix '{p.suffix}' is not a sensor table format; "
                        f"use one of {', '.join(TEXT_SUFFIXES + PARQUET_SUFFIXES)}")
    if not p.is_file():
        raise DataError(f"sensor file {p} does not exist; check the path")
    pd = _pandas()
    try:
        if suffix in PARQUET_SUFFIXES:
            df = pd.read_parquet(p)
        else:
            sep = schema.sep or {".csv": ",", ".tsv": "\t"}.get(suffix, r"\s+")
            ws = sep in (r"\s+", " ")  # a run of spaces is one separator; a tab is not
            df = pd.read_csv(p, sep=r"\s+" if ws else sep, header=None if schema.names else "infer",
                             skipinitialspace=not ws, index_col=False)
    except ImportError as e:
        raise ConfigError(f'reading {p} needs pyarrow: pip install "monde[sensors]"') from e
    except pd.errors.EmptyDataError as e:
        raise DataError(f"sensor file {p} is empty; it needs a header and rows of readings") from e
    except (OSError, ValueError, UnicodeDecodeError) as e:
        check = ("a Parquet file" if suffix in PARQUET_SUFFIXES else
                 "a text table and that the separator (schema.sep) and schema.names fit it")
        raise DataError(f"cannot parse sensor file {p} ({e}); check that it is {check}") from e
    if schema.names:
        if len(schema.names) != df.shape[1]:
            raise DataError(f"{p} has {df.shape[1]} columns but schema.names lists "
                            f"{len(schema.names)}; give one name per column")
        df.columns = list(schema.names)
    df.columns = [str(c) for c in df.columns]
    if len(df) == 0:
        raise DataError(f"sensor file {p} has no rows of readings (columns: "
                        f"{_show(list(df.columns))})")
    return df


def _missing_message(p: Path, name: str, cols: list[str], what: str) -> str:
    close = difflib.get_close_matches(name, cols, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return f"{what} names a column '{name}' that {p} lacks.{hint} Its columns are: {_show(cols)}"


def _show(cols: list[str]) -> str:
    return ", ".join(cols[:20]) + (f", … ({len(cols)} in all)" if len(cols) > 20 else "")


def _resolve(p: Path, patterns: list[str], cols: list[str], skip: set[str],
             what: str) -> list[str]:
    """Expand names and fnmatch patterns to file columns, keeping file order within a pattern."""
    out: list[str] = []
    for pat in patterns:
        if any(ch in pat for ch in "*?["):
            hits = [c for c in fnmatch.filter(cols, pat) if c not in skip]
            if not hits:
                raise DataError(f"{what} pattern '{pat}' matches no column of {p}; its columns "
                                f"are: {_show(cols)}")
        elif pat in cols:
            hits = [pat]
        else:
            raise DataError(_missing_message(p, pat, cols, what))
        out.extend(h for h in hits if h not in out)
    return out


def _expected(p: Path, names: list[str], cols: list[str], role: str) -> list[str]:
    missing = [n for n in names if n not in cols]
    if missing:
        raise DataError(f"the model was trained on {role} columns that {p} lacks: "
                        f"{', '.join(missing)}; read a file from the same plant, or train a "
                        "model on this one")
    return names


def _numeric_block(df, names: list[str], p: Path) -> np.ndarray:
    out = np.empty((len(df), len(names)), dtype=np.float32)
    for j, name in enumerate(names):
        out[:, j] = _numeric_column(df[name], name, p)
    return out


def _numeric_column(s, name: str, p: Path) -> np.ndarray:
    """One column as float64, NaN where missing; raise on text or infinite values."""
    pd = _pandas()
    if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
        x = s.astype("float64").to_numpy(na_value=np.nan)
    else:
        text = s.astype(object)
        blank = s.isna().to_numpy() | np.array(
            [isinstance(v, str) and v.strip().lower() in _MISSING_TOKENS for v in text], bool)
        x = pd.to_numeric(text.where(~blank, np.nan), errors="coerce").astype("float64")
        x = x.to_numpy(na_value=np.nan)
        bad = np.flatnonzero(np.isnan(x) & ~blank)
        if bad.size:
            i = int(bad[0])
            raise DataError(f"column '{name}' of {p} is not numeric: data row {i + 1} holds "
                            f"{text.iloc[i]!r} ({bad.size} non-numeric cell(s) in all); fix them, or "
                            "leave them empty to mark a missing reading")
    inf = np.flatnonzero(np.isinf(x))
    if inf.size:
        raise DataError(f"column '{name}' of {p} holds an infinite value at data row "
                        f"{int(inf[0]) + 1}; replace it with a reading or an empty cell")
    if np.isnan(x).all():
        raise DataError(f"column '{name}' of {p} has no readings at all (every cell is "
                        "missing); drop it from the schema or fix the export")
    return x


def _time_column(s, name: str, p: Path) -> np.ndarray:
    """Time stamps as float64: numbers as they are, datetimes as seconds since the epoch."""
    pd = _pandas()
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        t = s.astype("float64").to_numpy(na_value=np.nan)
    else:
        t = _datetime_seconds(s, name, p, pd)
    gap = np.flatnonzero(~np.isfinite(t))
    if gap.size:
        raise DataError(f"time column '{name}' of {p} is empty at data row {int(gap[0]) + 1}; "
                        "every row needs a time stamp to be ordered")
    return t


def _datetime_seconds(s, name: str, p: Path, pd) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "could not infer format" is not the user's problem
            dt = pd.to_datetime(s, errors="coerce", utc=True)
            if (dt.isna() & s.notna()).any():  # format inferred from row 1 did not fit every row
                dt = pd.to_datetime(s, errors="coerce", utc=True, format="mixed")
    except (TypeError, ValueError) as e:
        raise DataError(f"time column '{name}' of {p} is neither numbers nor datetimes ({e})") from e
    bad = np.flatnonzero((dt.isna() & s.notna()).to_numpy())
    if bad.size:
        i = int(bad[0])
        raise DataError(f"time column '{name}' of {p} is neither numbers nor datetimes: data row "
                        f"{i + 1} holds {s.iloc[i]!r}; use numbers or ISO dates "
                        "(2024-01-31 12:00:00)")
    epoch = pd.Timestamp("1970-01-01", tz="UTC")
    return ((dt - epoch) / pd.Timedelta(seconds=1)).astype("float64").to_numpy(na_value=np.nan)


def _row_order(time: np.ndarray | None, units: np.ndarray | None, pd) -> np.ndarray | None:
    """Stable order: units by first appearance, then time within each unit."""
    if units is None and time is None:
        return None
    if units is None:
        return np.argsort(time, kind="stable")
    codes, _ = pd.factorize(units)
    if time is None:
        return np.argsort(codes, kind="stable")
    return np.lexsort((time, codes))  # lexsort is stable; the last key sorts first
