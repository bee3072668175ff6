"""Episode datasets: collection, the on-disk format, reading, windows, and clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from monde.data.collect import CollectConfig, collect
from monde.data.episodes import EpisodeDataset, EpisodeWindows, EpisodeWriter, WindowSpec
from monde.errors import ConfigError, DataError
from monde.worlds.two_rooms import TwoRooms


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("episodes") / "d"
    collect(CollectConfig(episodes=12, steps=16, chunk=5, seed=3), out)
    return out


@pytest.fixture(scope="module")
def data(dataset_dir) -> EpisodeDataset:
    return EpisodeDataset(dataset_dir)


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_manifest_describes_the_dataset(dataset_dir):
    m = json.loads((dataset_dir / "manifest.json").read_text())
    assert m["monde_format"] == "episodes" and m["format_version"] == 1
    assert m["episodes"] == 12 and m["steps"] == 16
    assert m["obs_shape"] == [1, 64, 64] and m["action_dim"] == 2 and m["proprio_dim"] == 2
    assert m["chunks"] == [{"name": "chunk-00000", "episodes": 5},
                           {"name": "chunk-00001", "episodes": 5},
                           {"name": "chunk-00002", "episodes": 2}]
    assert m["world"] == "two-rooms" and m["policy"] == "random" and m["seed"] == 3
    assert m["world_config"]["max_speed"] == pytest.approx(2.45)
    for c in m["chunks"]:
        for key, dtype in (("obs", np.uint8), ("actions", np.float32), ("proprio", np.float32)):
            arr = np.load(dataset_dir / c["name"] / f"{key}.npy", mmap_mode="r")
            assert arr.dtype == dtype and arr.shape[0] == c["episodes"]
    # No temporary files are left behind.
    assert not list(dataset_dir.rglob(".*tmp*"))


def test_dataset_shapes_and_episodes_across_chunks(data):
    assert len(data) == 12 and data.steps == 16
    assert data.obs_shape == (1, 64, 64) and data.action_dim == 2 and data.proprio_dim == 2
    for i in (0, 4, 5, 11):  # first and last of chunks
        ep = data.episode(i)
        assert ep["obs"].shape == (17, 1, 64, 64) and ep["obs"].dtype == np.uint8
        assert ep["actions"].shape == (16, 2) and ep["actions"].dtype == np.float32
        assert ep["proprio"].shape == (17, 2) and ep["proprio"].dtype == np.float32
    arrays, row = data.locate(7)
    assert row == 2 and arrays["obs"].shape[0] == 5
    with pytest.raises(IndexError):
        data.episode(12)
    # Episodes differ from each other.
    assert not np.array_equal(data.episode(0)["proprio"], data.episode(6)["proprio"])


def test_proprio_moves_by_the_stored_action_and_obs_are_its_renders(data):
    world = TwoRooms()
    v = world.cfg.max_speed
    matched = total = 0
    for i in range(len(data)):
        ep = data.episode(i)
        p, a = ep["proprio"].astype(np.float64), ep["actions"].astype(np.float64)
        step = np.diff(p, axis=0)
        assert (np.linalg.norm(step, axis=1) <= v + 1e-4).all()
        assert (np.linalg.norm(a, axis=1) <= v + 1e-5).all()
        # The stored action is the one the world executed: replaying it gives the next state.
        np.testing.assert_allclose(world.step(p[:-1], a), p[1:], atol=1e-3)
        # A move that touches neither the wall nor the border is exactly the action.
        target = p[:-1] + a
        free = (((target > world.lo) & (target < world.hi)).all(1)
                & (np.abs(target[:, 0] - world.center) > world.cfg.wall_half + 0.01)
                & (np.abs(p[:-1, 0] - world.center) > world.cfg.wall_half + 0.01))
        np.testing.assert_allclose(step[free], a[free], atol=1e-4)
        same = np.abs(step - a).max(axis=1) < 1e-4
        matched, total = matched + same.sum(), total + len(same)
        np.testing.assert_array_equal(ep["obs"], world.render(ep["proprio"]))
    # Random walkers spend some steps pressed against a wall, but most moves are free.
    assert matched / total > 0.6


def test_windows_shapes_and_alignment(data):
    windows = EpisodeWindows(data, WindowSpec(chunks=3, frameskip=2), seed=0)
    b = windows.batch(step=0, batch_size=6)
    assert b["obs"].shape == (6, 4, 1, 64, 64) and b["obs"].dtype == torch.uint8
    assert b["actions"].shape == (6, 3, 4) and b["actions"].dtype == torch.float32
    assert b["proprio"].shape == (6, 4, 2) and b["proprio"].dtype == torch.float32
    world = TwoRooms()
    np.testing.assert_array_equal(b["obs"].numpy().reshape(-1, 1, 64, 64),
                                  world.render(b["proprio"].numpy().reshape(-1, 2)))
    # Observations every 2 steps; the 2 actions between them are concatenated, in order:
    # replaying them from one observation's state reaches the next one.
    p = b["proprio"].numpy().astype(np.float64)
    a = b["actions"].numpy().astype(np.float64).reshape(6, 3, 2, 2)
    for j in range(3):
        mid = world.step(p[:, j], a[:, j, 0])
        np.testing.assert_allclose(world.step(mid, a[:, j, 1]), p[:, j + 1], atol=1e-3)


def test_windows_are_deterministic_by_step_and_rank(data):
    windows = EpisodeWindows(data, WindowSpec(chunks=3, frameskip=2), seed=0)
    a, again = windows.batch(5, 4, rank=0), windows.batch(5, 4, rank=0)
    for key in a:
        assert torch.equal(a[key], again[key])
    assert torch.equal(a["proprio"], EpisodeWindows(data, WindowSpec(3, 2), seed=0).batch(5, 4)["proprio"])
    for other in (windows.batch(6, 4, rank=0), windows.batch(5, 4, rank=1),
                  EpisodeWindows(data, WindowSpec(3, 2), seed=1).batch(5, 4)):
        assert not torch.equal(a["proprio"], other["proprio"])


def test_windows_restricted_to_episodes_and_exact_fit(data):
    only = EpisodeWindows(data, WindowSpec(chunks=8, frameskip=2), episodes=np.array([7]))
    b = only.batch(0, 3)
    ep = data.episode(7)
    for i in range(3):  # the window spans the whole episode, so it starts at 0
        np.testing.assert_array_equal(b["proprio"][i].numpy(), ep["proprio"][::2])
        np.testing.assert_array_equal(b["actions"][i].numpy(), ep["actions"].reshape(8, 4))


def test_windows_longer_than_episodes_are_refused(data):
    with pytest.raises(DataError, match="do not fit the dataset's 16-step episodes"):
        EpisodeWindows(data, WindowSpec(chunks=9, frameskip=2))


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        EpisodeDataset(tmp_path / "nope")


def test_folder_without_manifest(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no manifest.json"):
        EpisodeDataset(tmp_path / "empty")


def test_truncated_obs_file(dataset_dir, tmp_path):
    bad = _copy(dataset_dir, tmp_path / "bad")
    f = bad / "chunk-00001" / "obs.npy"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(DataError, match="chunk-00001"):
        EpisodeDataset(bad)


def test_missing_and_misshapen_chunk_files(dataset_dir, tmp_path):
    bad = _copy(dataset_dir, tmp_path / "bad")
    (bad / "chunk-00002" / "actions.npy").unlink()
    with pytest.raises(DataError, match="missing or unreadable"):
        EpisodeDataset(bad)
    np.save(bad / "chunk-00002" / "actions.npy", np.zeros((2, 15, 2), np.float32))
    with pytest.raises(DataError, match="has shape"):
        EpisodeDataset(bad)


@pytest.mark.parametrize("change, message", [
    ({"monde_format": "video"}, "does not describe a monde episode dataset"),
    ({"format_version": 99}, "newer monde"),
    ({"action_dim": None}, "lacks"),
])
def test_bad_manifests(dataset_dir, tmp_path, change, message):
    bad = _copy(dataset_dir, tmp_path / "bad")
    m = json.loads((bad / "manifest.json").read_text())
    for k, v in change.items():
        if v is None:
            del m[k]
        else:
            m[k] = v
    (bad / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(DataError, match=message):
        EpisodeDataset(bad)


def test_unparsable_manifest(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "manifest.json").write_text("{not json")
    with pytest.raises(DataError, match="unreadable"):
        EpisodeDataset(tmp_path / "d")


def test_check_action_dim(data):
    data.check_action_dim(2)
    with pytest.raises(DataError, match="2-D actions but the model takes 3-D"):
        data.check_action_dim(3)


def test_writer_refuses_an_existing_dataset_and_bad_chunks(dataset_dir, tmp_path):
    with pytest.raises(DataError, match="already holds an episode dataset"):
        collect(CollectConfig(episodes=2, steps=4), dataset_dir)
    w = EpisodeWriter(tmp_path / "w", {})
    with pytest.raises(DataError, match="disagree"):
        w.add(np.zeros((2, 5, 1, 8, 8)), np.zeros((2, 5, 2)), np.zeros((2, 5, 2)))
    with pytest.raises(DataError, match="no episodes"):
        w.close()
    w.add(np.zeros((2, 5, 1, 8, 8)), np.zeros((2, 4, 2)), np.zeros((2, 5, 2)))
    with pytest.raises(DataError, match="differ from the first chunk"):
        w.add(np.zeros((2, 5, 1, 8, 8)), np.zeros((2, 4, 3)), np.zeros((2, 5, 2)))
    m = w.close()
    assert m["episodes"] == 2 and m["steps"] == 4 and m["obs_shape"] == [1, 8, 8]
    assert len(EpisodeDataset(tmp_path / "w")) == 2


@pytest.mark.parametrize("cfg, message", [
    (CollectConfig(world="mars"), "unknown world 'mars'"),
    (CollectConfig(policy="oracle"), "unknown policy 'oracle'"),
    (CollectConfig(episodes=0), "positive"),
])
def test_collect_config_errors(tmp_path, cfg, message):
    with pytest.raises(ConfigError, match=message):
        collect(cfg, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_collect_is_deterministic_by_seed(dataset_dir, tmp_path):
    again = collect(CollectConfig(episodes=12, steps=16, chunk=5, seed=3), tmp_path / "again")
    assert again["episodes"] == 12
    a, b = EpisodeDataset(dataset_dir), EpisodeDataset(tmp_path / "again")
    for i in (0, 11):
        for key in ("actions", "proprio"):
            np.testing.assert_array_equal(a.episode(i)[key], b.episode(i)[key])


def test_no_door_crossings_keeps_episodes_in_one_room(tmp_path):
    m = collect(CollectConfig(episodes=12, steps=32, chunk=5, door_crossings=False, seed=1),
                tmp_path / "nd")
    assert m["episodes"] == 12 and m["episodes_with_door_crossing"] == 0
    assert m["door_crossings_kept"] is False
    data = EpisodeDataset(tmp_path / "nd")
    for i in range(len(data)):
        right = data.episode(i)["proprio"][:, 0] >= 32
        assert right.all() or not right.any()


def test_noisy_expert_crosses_the_door_in_most_episodes(tmp_path):
    m = collect(CollectConfig(episodes=20, steps=64, policy="noisy-expert", seed=2), tmp_path / "ne")
    assert m["policy"] == "noisy-expert"
    assert m["episodes_with_door_crossing"] >= 14
    data = EpisodeDataset(tmp_path / "ne")
    rooms = np.stack([data.episode(i)["proprio"][:, 0] >= 32 for i in range(len(data))])
    assert (rooms != rooms[:, :1]).any(1).sum() == m["episodes_with_door_crossing"]
    # Its noise pushes raw actions past the speed limit; the stored ones are the clipped ones.
    actions = np.stack([data.episode(i)["actions"] for i in range(len(data))])
    assert np.linalg.norm(actions, axis=-1).max() <= TwoRooms().cfg.max_speed + 1e-5
    # The wandering random policy crosses far less often.
    r = collect(CollectConfig(episodes=20, steps=64, policy="random", seed=2), tmp_path / "rw")
    assert r["episodes_with_door_crossing"] < m["episodes_with_door_crossing"]
