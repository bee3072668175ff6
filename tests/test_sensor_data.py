"""Sensor tables: schema, CSV/Parquet reading, clear errors, and the normalizer."""

from __future__ import annotations

import numpy as np
import pytest

from monde.data import (
    Normalizer,
    SensorSchema,
    load_schema,
    read_table,
    schema_from_args,
)
from monde.errors import ConfigError, DataError

pd = pytest.importorskip("pandas")


def _write(tmp_path, name: str, text: str):
    p = tmp_path / name
    p.write_text(text)
    return p


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "t": [0.0, 1.0, 2.0, 3.0],
        "XMEAS_1": [1.0, 2.0, 3.0, 4.0],
        "XMEAS_2": [10.0, 20.0, 30.0, 40.0],
        "XMV_1": [0.5, 0.5, 0.7, 0.7],
        "comment": [5.0, 6.0, 7.0, 8.0],
    })


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_round_trip_with_patterns(tmp_path, suffix):
    df, p = _frame(), tmp_path / f"plant{suffix}"
    df.to_csv(p, index=False) if suffix == ".csv" else df.to_parquet(p, index=False)
    table = read_table(p, SensorSchema(time="t", sensors=["XMEAS_*"], actions=["XMV_1"]))
    assert table.sensor_names == ["XMEAS_1", "XMEAS_2"]
    assert table.action_names == ["XMV_1"]
    assert table.values.dtype == np.float32 and table.values.shape == (4, 2)
    np.testing.assert_array_equal(table.values[:, 1], [10, 20, 30, 40])
    np.testing.assert_array_equal(table.actions[:, 0], np.float32([0.5, 0.5, 0.7, 0.7]))
    np.testing.assert_array_equal(table.time, [0, 1, 2, 3])
    assert table.units is None and table.runs() == [("all", slice(0, 4))] and len(table) == 4


def test_default_sensors_are_the_other_columns(tmp_path):
    p = tmp_path / "plant.csv"
    _frame().to_csv(p, index=False)
    table = read_table(p, SensorSchema(time="t", actions=["XMV_*"]))
    assert table.sensor_names == ["XMEAS_1", "XMEAS_2", "comment"]
    assert table.actions.shape == (4, 1)


def test_missing_column_names_it_and_suggests(tmp_path):
    p = tmp_path / "plant.csv"
    _frame().to_csv(p, index=False)
    with pytest.raises(DataError, match=r"XMEAS_3.*Did you mean.*XMEAS_1") as e:
        read_table(p, SensorSchema(sensors=["XMEAS_1", "XMEAS_3"]))
    assert "plant.csv" in str(e.value)
    with pytest.raises(DataError, match="'TEMP_\\*' matches no column"):
        read_table(p, SensorSchema(sensors=["TEMP_*"]))
    with pytest.raises(DataError, match="time"):
        read_table(p, SensorSchema(time="tt"))


def test_non_numeric_cell_names_column_and_row(tmp_path):
    p = _write(tmp_path, "bad.csv", "a,b\n1,2\n3,abc\n5,6\n")
    with pytest.raises(DataError, match=r"column 'b' of .*bad.csv is not numeric: data row 2 "
                                        r"holds 'abc'"):
        read_table(p, SensorSchema())


def test_missing_cells_stay_nan(tmp_path):
    p = _write(tmp_path, "gaps.csv", "a,b,c\n1,,x1\n2,NaN,\n,nan,3\n4,5,6\n")
    table = read_table(p, SensorSchema(sensors=["a", "b"]))
    np.testing.assert_array_equal(table.observed, [[1, 0], [1, 0], [0, 0], [1, 1]])
    assert np.isnan(table.values[2, 0]) and table.values[3, 1] == 5
    # A column of strings with blanks: blanks are missing, text is an error naming row 1.
    with pytest.raises(DataError, match="'c'.*data row 1 holds 'x1'"):
        read_table(p, SensorSchema(sensors=["c"]))


def test_tsv_keeps_empty_cells_apart(tmp_path):
    p = _write(tmp_path, "plant.tsv", "a\tb\tc\n1\t\t3\n4\t5\t6\n")
    table = read_table(p, SensorSchema())
    np.testing.assert_array_equal(table.values[1], [4, 5, 6])
    assert np.isnan(table.values[0, 1]) and table.values[0, 2] == 3


def test_all_missing_sensor_is_an_error(tmp_path):
    p = _write(tmp_path, "dead.csv", "a,b\n1,\n2,\n3,\n")
    with pytest.raises(DataError, match="column 'b' .* no readings"):
        read_table(p, SensorSchema())


def test_expected_columns_reorder_and_must_exist(tmp_path):
    p = tmp_path / "plant.csv"
    _frame().to_csv(p, index=False)
    table = read_table(p, SensorSchema(), expect_sensors=["XMEAS_2", "XMEAS_1"],
                       expect_actions=["XMV_1"])
    assert table.sensor_names == ["XMEAS_2", "XMEAS_1"]
    np.testing.assert_array_equal(table.values[0], [10, 1])
    with pytest.raises(DataError, match="trained on sensor columns that .*plant.csv lacks: "
                                        "XMEAS_9, XMEAS_8"):
        read_table(p, SensorSchema(), expect_sensors=["XMEAS_1", "XMEAS_9", "XMEAS_8"])


def test_units_grouped_and_sorted_by_time(tmp_path):
    p = _write(tmp_path, "fleet.csv",
               "unit,cycle,s\n7,2,72\n3,1,31\n7,1,71\n3,3,33\n3,2,32\n7,3,73\n")
    table = read_table(p, SensorSchema(time="cycle", unit="unit"))
    assert table.runs() == [("7", slice(0, 3)), ("3", slice(3, 6))]
    np.testing.assert_array_equal(table.values[:, 0], [71, 72, 73, 31, 32, 33])
    np.testing.assert_array_equal(table.time, [1, 2, 3, 1, 2, 3])
    assert table.sensor_names == ["s"]


def test_datetime_time_column(tmp_path):
    p = _write(tmp_path, "dt.csv", "when,s\n2024-01-01 00:00:10,2\n2024-01-01 00:00:00,1\n")
    table = read_table(p, SensorSchema(time="when"))
    np.testing.assert_array_equal(table.values[:, 0], [1, 2])
    assert table.time[0] == 1704067200.0 and table.time[1] - table.time[0] == 10.0
    bad = _write(tmp_path, "bad_time.csv", "when,s\nmonday,1\ntuesday,2\n")
    with pytest.raises(DataError, match="time column 'when' .* neither numbers nor datetimes"):
        read_table(bad, SensorSchema(time="when"))


def test_headerless_whitespace_file(tmp_path):
    p = _write(tmp_path, "train_FD001.txt", "1 1  0.5 641.8 \n1 2  0.6 642.1 \n2 1  0.4 640.9 \n")
    schema = SensorSchema(unit="unit", time="cycle", names=["unit", "cycle", "op", "T24"],
                          actions=["op"])
    table = read_table(p, schema)
    assert table.sensor_names == ["T24"] and table.action_names == ["op"]
    np.testing.assert_allclose(table.values[:, 0], [641.8, 642.1, 640.9], rtol=1e-6)
    assert [u for u, _ in table.runs()] == ["1", "2"]
    with pytest.raises(DataError, match="3 columns but schema.names lists 4|4 columns"):
        read_table(_write(tmp_path, "x.dat", "1 2 3\n4 5 6\n"),
                   SensorSchema(names=["a", "b", "c", "d"]))


def test_file_level_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_table(tmp_path / "nope.csv", SensorSchema())
    with pytest.raises(DataError, match=r"'\.xlsx' .*\.csv"):
        read_table(_write(tmp_path, "a.xlsx", "x"), SensorSchema())
    with pytest.raises(DataError, match="empty"):
        read_table(_write(tmp_path, "e.csv", ""), SensorSchema())
    with pytest.raises(DataError, match="no rows"):
        read_table(_write(tmp_path, "h.csv", "a,b\n"), SensorSchema())
    with pytest.raises(DataError, match="cannot parse"):
        read_table(_write(tmp_path, "junk.parquet", "not parquet"), SensorSchema())
    with pytest.raises(DataError, match="no sensor columns"):
        read_table(_write(tmp_path, "t.csv", "t,u\n1,2\n"), SensorSchema(time="t", actions=["u"]))


def test_schema_yaml_round_trip_and_errors(tmp_path):
    schema = SensorSchema(time="t", sensors=["XMEAS_*"], actions=["XMV_1", "XMV_2"], unit="run")
    p = tmp_path / "schema.yaml"
    import yaml

    p.write_text(yaml.safe_dump(schema.to_dict()))
    assert load_schema(p) == schema
    assert SensorSchema.from_dict({"sensors": "a, b*"}).sensors == ["a", "b*"]
    with pytest.raises(ConfigError, match="sensorz.*sensors"):
        SensorSchema.from_dict({"sensorz": ["a"]})
    with pytest.raises(ConfigError, match="does not exist"):
        load_schema(tmp_path / "missing.yaml")
    (tmp_path / "broken.yaml").write_text("time: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_schema(tmp_path / "broken.yaml")
    merged = schema_from_args(sensors="s1, s2,XMEAS_*", unit="engine", schema_file=p)
    assert merged.sensors == ["s1", "s2", "XMEAS_*"] and merged.unit == "engine"
    assert merged.time == "t" and merged.actions == ["XMV_1", "XMV_2"]


def test_normalizer_fit_transform_inverse():
    rng = np.random.default_rng(0)
    x = rng.normal([5.0, -3.0, 2.0], [2.0, 0.5, 1.0], size=(200, 3)).astype(np.float32)
    x[:, 2] = 7.0  # constant channel
    x[10, 0] = np.nan
    norm = Normalizer.fit(x)
    assert norm.std[2] == 1.0 and norm.mean[2] == 7.0
    z = norm.transform(x)
    assert z.dtype == np.float32 and np.isnan(z[10, 0]) and np.all(z[:, 2] == 0)
    np.testing.assert_allclose(np.nanmean(z[:, :2], axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(np.nanstd(z[:, :2], axis=0), 1, atol=1e-4)
    np.testing.assert_allclose(norm.inverse(z), x, rtol=1e-5, atol=1e-5)
    again = Normalizer.from_dict(norm.to_dict())
    np.testing.assert_array_equal(again.mean, norm.mean)
    x[:, 1] = np.nan
    with pytest.raises(DataError, match="p2"):
        Normalizer.fit(x, names=["p1", "p2", "p3"])
    with pytest.raises(DataError, match="3 channels"):
        norm.transform(np.zeros((4, 2)))
