"""The on-disk array cache: made once, read back, remade when broken, off on request."""

from __future__ import annotations

import numpy as np
import pytest

from monde.data.cache import cache_root, cached_arrays, key_digest


def _maker(calls):
    def make():
        calls.append(1)
        return {"x": np.arange(6.0).reshape(2, 3), "n": np.array(3)}
    return make


def test_entries_are_made_once_and_named_by_their_key(monkeypatch, tmp_path):
    monkeypatch.setenv("MONDE_CACHE", str(tmp_path))
    calls = []
    a = cached_arrays("k", {"seed": 1}, _maker(calls), names=("x",))
    b = cached_arrays("k", {"seed": 1}, _maker(calls), names=("x",))
    assert len(calls) == 1
    np.testing.assert_array_equal(a["x"], b["x"])
    assert int(b["n"]) == 3
    cached_arrays("k", {"seed": 2}, _maker(calls))
    assert len(calls) == 2 and len(list((tmp_path / "k").glob("*.npz"))) == 2
    assert not list((tmp_path / "k").glob(".*"))  # no temporary files left behind
    assert key_digest({"a": 1, "b": [1, 2]}) == key_digest({"b": [1, 2], "a": 1})


def test_a_broken_or_incomplete_entry_is_made_again(monkeypatch, tmp_path):
    monkeypatch.setenv("MONDE_CACHE", str(tmp_path))
    calls = []
    cached_arrays("k", {}, _maker(calls))
    (entry,) = (tmp_path / "k").glob("*.npz")
    entry.write_bytes(b"not a zip")
    with pytest.warns(UserWarning, match="does not read back"):
        out = cached_arrays("k", {}, _maker(calls))
    assert len(calls) == 2 and out["x"].shape == (2, 3)
    assert len(cached_arrays("k", {}, _maker(calls))["x"]) == 2 and len(calls) == 2  # repaired
    with pytest.warns(UserWarning, match="missing"):
        cached_arrays("k", {}, _maker(calls), names=("x", "y"))
    assert len(calls) == 3


def test_caching_off_and_an_unwritable_folder_cost_time_not_the_result(monkeypatch, tmp_path):
    for off in ("off", "0", ""):
        monkeypatch.setenv("MONDE_CACHE", off)
        assert cache_root() is None
    calls = []
    cached_arrays("k", {}, _maker(calls))
    cached_arrays("k", {}, _maker(calls))
    assert len(calls) == 2
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("MONDE_CACHE", str(blocker))
    with pytest.warns(UserWarning, match="could not write"):
        out = cached_arrays("k", {}, _maker(calls))
    assert len(calls) == 3 and out["x"].sum() == 15
    monkeypatch.delenv("MONDE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "monde"
