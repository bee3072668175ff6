"""Checkpoints: round trips, atomic saves, pruning, corrupt files, fallback, model folders."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from monde.errors import CheckpointError
from monde.train import checkpoint as ckpt


def _model_state() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    embed = torch.randn(5, 3, generator=g)
    buf = torch.randn(8, generator=g)
    return {
        "embed.weight": embed,
        "head.weight": embed,  # tied weights: the very same tensor under two names
        "norm.weight": torch.randn(3, generator=g).bfloat16(),
        "a": buf[:4],  # two views of one buffer: safetensors refuses shared memory
        "b": buf[4:],
        "t": torch.randn(2, 3, generator=g).t(),  # non-contiguous
        "count": torch.tensor(7),  # 0-d
    }


def _trained_adam() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.8, 0.95))
    for _ in range(2):
        model(torch.randn(4, 3)).pow(2).mean().backward()
        opt.step()
    return model, opt


def _assert_same(a, b) -> None:
    assert type(a) is type(b), (a, b)
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    else:
        assert a == b


def _save(run: Path, step: int, **kw) -> Path:
    kw.setdefault("model", {"w": torch.full((2,), float(step))})
    kw.setdefault("optimizer", None)
    kw.setdefault("rng", None)
    return ckpt.save_checkpoint(run, step=step, config={"lr": 0.1}, **kw)


def test_flatten_round_trip_keeps_int_keys_tuples_and_odd_keys():
    t = torch.arange(3)
    obj = {
        "state": {0: {"exp_avg": t, "step": torch.tensor(2.0)}, "0": {"x": t + 1}},
        "param_groups": [{"betas": (0.9, 0.999), "params": [0, 1], "foreach": None}],
        "__tensor__": "not a marker",
        "nested": [[1.5, "s", True], ()],
    }
    tensors, skeleton = ckpt.flatten_state(obj)
    assert all(isinstance(v, torch.Tensor) for v in tensors.values()) and len(tensors) == 3
    skeleton = json.loads(json.dumps(skeleton))  # the skeleton must survive JSON
    _assert_same(ckpt.unflatten_state(tensors, skeleton), obj)


def test_flatten_rejects_unsupported_values():
    with pytest.raises(TypeError, match="object"):
        ckpt.flatten_state({"a": [object()]})


def test_model_state_round_trip_bf16_tied_and_views(tmp_path):
    state = _model_state()
    folder = ckpt.save_checkpoint(
        tmp_path, step=3, model=state, optimizer=None, config={}, rng=None
    )
    loaded = ckpt.load_checkpoint(folder)
    _assert_same(dict(sorted(loaded.model.items())), dict(sorted(state.items())))
    assert loaded.model["norm.weight"].dtype == torch.bfloat16
    assert loaded.model["head.weight"] is loaded.model["embed.weight"]  # tying survives
    assert loaded.step == 3 and loaded.optimizer is None and loaded.rng is None


def test_adam_state_loads_into_a_fresh_optimizer(tmp_path):
    model, opt = _trained_adam()
    ckpt.save_checkpoint(
        tmp_path,
        step=2,
        model=model.state_dict(),
        optimizer=opt.state_dict(),
        config={"recipe": "x"},
        rng=None,
        extra={"loss": 0.5},
    )
    loaded = ckpt.load_checkpoint(tmp_path)
    fresh_model = torch.nn.Linear(3, 2)
    fresh_model.load_state_dict(loaded.model)
    fresh = torch.optim.AdamW(fresh_model.parameters(), lr=0.5)
    fresh.load_state_dict(loaded.optimizer)
    _assert_same(fresh.state_dict(), opt.state_dict())
    assert loaded.config == {"recipe": "x"} and loaded.extra == {"loss": 0.5}


def test_fsdp_style_optimizer_state_with_fqn_keys(tmp_path):
    osd = {
        "state": {"enc.weight": {"step": torch.tensor(1.0), "exp_avg": torch.ones(2, 2)}},
        "param_groups": [{"lr": 0.1, "betas": (0.9, 0.99), "params": ["enc.weight"]}],
    }
    ckpt.save_checkpoint(tmp_path, step=1, model={}, optimizer=osd, config={}, rng=None)
    _assert_same(ckpt.load_checkpoint(tmp_path).optimizer, osd)


def _draws() -> tuple:
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


def test_rng_restore_reproduces_random_numbers(tmp_path):
    state = ckpt.capture_rng_state()
    expected = _draws()
    ckpt.restore_rng_state(state)
    assert _draws() == expected
    # Also through the files of a checkpoint.
    ckpt.save_checkpoint(tmp_path, step=1, model={}, optimizer=None, config={}, rng=state)
    _draws()
    ckpt.restore_rng_state(ckpt.load_checkpoint(tmp_path).rng)
    assert _draws() == expected


def test_malformed_rng_state_is_a_checkpoint_error():
    with pytest.raises(CheckpointError, match="random-number-generator"):
        ckpt.restore_rng_state({"python": [3, [1, 2], None]})


def test_crash_during_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    first = _save(tmp_path, 1)
    real, calls = ckpt.save_tensors, []

    def crash_on_second_file(path, tensors):
        calls.append(path)
        if len(calls) == 2:  # model written, crash while writing the optimizer
            raise KeyboardInterrupt("killed")
        real(path, tensors)

    monkeypatch.setattr(ckpt, "save_tensors", crash_on_second_file)
    with pytest.raises(KeyboardInterrupt):
        _save(tmp_path, 2, optimizer={"state": {0: {"m": torch.ones(1)}}})
    assert len(calls) == 2
    assert ckpt.latest_checkpoint(tmp_path) == first
    assert ckpt.load_checkpoint(tmp_path).model["w"].tolist() == [1.0, 1.0]
    assert not (tmp_path / "checkpoints" / "step_000000002").exists()


def test_stale_temp_folder_is_ignored_then_removed(tmp_path):
    first = _save(tmp_path, 1)
    # What a process killed mid-save leaves: a hidden, half-written folder of a newer step.
    stale = tmp_path / "checkpoints" / ".tmp-step_000000009-4242"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"\x00" * 10)
    assert ckpt.latest_checkpoint(tmp_path) == first
    assert ckpt.load_checkpoint(tmp_path).step == 1
    _save(tmp_path, 2)
    assert not stale.exists()


def test_crash_before_latest_pointer_keeps_previous(tmp_path, monkeypatch):
    first = _save(tmp_path, 1)

    def crash(path, text):
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt, "atomic_write_text", crash)
    with pytest.raises(KeyboardInterrupt):
        _save(tmp_path, 2)
    assert ckpt.latest_checkpoint(tmp_path) == first


def test_keep_prunes_old_checkpoints(tmp_path):
    for step in (10, 20, 30, 40):
        last = _save(tmp_path, step, keep=2)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["latest", "step_000000030", "step_000000040"]
    assert ckpt.latest_checkpoint(tmp_path) == last
    _save(tmp_path, 50, keep=1)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "latest",
        "step_000000050",
    ]


def test_saving_the_same_step_twice_replaces_it(tmp_path):
    _save(tmp_path, 5)
    _save(tmp_path, 5, model={"w": torch.zeros(1)})
    assert ckpt.load_checkpoint(tmp_path).model["w"].tolist() == [0.0]


def test_non_json_config_fails_before_writing(tmp_path):
    with pytest.raises(TypeError, match="JSON"):
        ckpt.save_checkpoint(
            tmp_path, step=1, model={}, optimizer=None, config={"p": Path(".")}, rng=None
        )
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize(
    "name, damage",
    [
        ("model.safetensors", lambda b: b[: len(b) // 2]),
        ("model.safetensors", lambda b: b"garbage" * 5),
        ("optimizer.safetensors", lambda b: b[:-3]),
        ("state.json", lambda b: b[: len(b) // 2]),
        ("state.json", lambda b: b"[1, 2]"),
    ],
)
def test_corrupt_files_raise_checkpoint_error_naming_the_file(tmp_path, name, damage):
    _, opt = _trained_adam()
    folder = _save(tmp_path, 1, optimizer=opt.state_dict())
    path = folder / name
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(CheckpointError, match=name) as info:
        ckpt.load_checkpoint(folder)
    assert "--resume" in str(info.value)


def test_missing_files_and_paths(tmp_path):
    folder = _save(tmp_path, 1, optimizer={"state": {}, "param_groups": []})
    (folder / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors is missing"):
        ckpt.load_checkpoint(folder)
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        ckpt.load_checkpoint(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="neither"):
        ckpt.load_checkpoint(tmp_path / "empty")
    (tmp_path / "empty" / "checkpoints").mkdir()
    with pytest.raises(CheckpointError, match="no complete checkpoint"):
        ckpt.load_checkpoint(tmp_path / "empty")
    assert ckpt.latest_checkpoint(tmp_path / "empty") is None


def test_broken_latest_falls_back_to_older_with_warning(tmp_path):
    _save(tmp_path, 1)
    second = _save(tmp_path, 2)
    (second / "model.safetensors").write_bytes(b"\x01\x02")
    with pytest.warns(UserWarning, match="falling back"):
        loaded = ckpt.load_checkpoint(tmp_path)
    assert loaded.step == 1
    (tmp_path / "checkpoints" / "step_000000001" / "state.json").write_text("{")
    with pytest.warns(UserWarning), pytest.raises(CheckpointError, match="step_000000002"):
        ckpt.load_checkpoint(tmp_path)


def test_latest_pointer_to_missing_folder_falls_back_to_scan(tmp_path):
    first = _save(tmp_path, 1)
    (tmp_path / "checkpoints" / "latest").write_text("step_000000009\n")  # folder gone
    assert ckpt.latest_checkpoint(tmp_path) == first
    (tmp_path / "checkpoints" / "latest").write_text("../../etc\n")  # never leave the run
    assert ckpt.latest_checkpoint(tmp_path) == first
    assert ckpt.load_checkpoint(tmp_path).step == 1


def test_model_folder_round_trip(tmp_path):
    state = _model_state()
    out = tmp_path / "export"
    ckpt.save_model_folder(
        out, model=state, config={"dim": 3}, meta={"recipe": "tiny", "steps": 10}
    )
    weights, cfg = ckpt.load_model_folder(out)
    _assert_same(dict(sorted(weights.items())), dict(sorted(state.items())))
    assert weights["head.weight"] is weights["embed.weight"]
    assert cfg["config"] == {"dim": 3} and cfg["recipe"] == "tiny" and cfg["steps"] == 10
    assert cfg["monde_version"] and ckpt.load_model_folder(out / "config.json")[1] == cfg


def test_model_folder_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no model folder"):
        ckpt.load_model_folder(tmp_path / "missing")
    with pytest.raises(CheckpointError, match="no config.json"):
        ckpt.load_model_folder(tmp_path)
    with pytest.raises(CheckpointError, match="training checkpoint"):
        ckpt.load_model_folder(_save(tmp_path / "run", 1))
    out = tmp_path / "m"
    ckpt.save_model_folder(out, model={"w": torch.ones(2)}, config={}, meta={})
    (out / "model.safetensors").write_bytes(b"nonsense")
    with pytest.raises(CheckpointError, match="model.safetensors"):
        ckpt.load_model_folder(out)
    (out / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(CheckpointError, match="not a monde model"):
        ckpt.load_model_folder(out)
    (out / "config.json").write_text(
        json.dumps({"monde_format": "model", "format_version": 99, "config": {}})
    )
    with pytest.raises(CheckpointError, match="upgrade monde"):
        ckpt.load_model_folder(out)
    with pytest.raises(ValueError, match="reserved"):
        ckpt.save_model_folder(out, model={}, config={}, meta={"config": 1})
